"""The group HTML report, ``OUTPUT_DIR/group/report.html``: the plots a researcher draws first.

Meta-temporal SUVR by diagnosis (with the positivity cut-point), a regional heat map across
scans, estimated Braak stage counts, longitudinal change where participants have several
sessions, and the QC table. Built only from the group tables, so it is quick to redraw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from taupet_bids.core.figures import svg_text
from taupet_bids.reports.html import esc, inline_svg, page, table

META = "MetaTemporal_metatemporal"


def svg(fig: plt.Figure, alt: str) -> str:
    """A group plot inline: drawn here, at group time, from the group tables."""
    return inline_svg(svg_text(fig), alt)


def _group_column(wide: pd.DataFrame) -> pd.Series:
    return (
        wide["diagnosis"].fillna("n/a").astype(str)
        if "diagnosis" in wide
        else pd.Series("all", index=wide.index)
    )


def metatemporal_by_group(wide: pd.DataFrame) -> str:
    """Box plot and points of meta-temporal SUVR per diagnosis, with the cut-point."""
    groups = _group_column(wide)
    names = sorted(groups.unique())
    fig, ax = plt.subplots(figsize=(6, 3.5))
    values = [wide.loc[groups == name, META].dropna() for name in names]
    ax.boxplot(values, showfliers=False)
    ax.set_xticks(range(1, len(names) + 1), names)
    rng = np.random.default_rng(0)
    for position, points in enumerate(values, start=1):
        ax.scatter(position + rng.uniform(-0.12, 0.12, len(points)), points, s=18, zorder=3)
    cuts = wide["tau_cutpoint"].dropna().unique() if "tau_cutpoint" in wide else []
    for cut in cuts:
        ax.axhline(cut, color="crimson", linestyle="--", label=f"cut-point {cut:g}")
    if len(cuts):
        ax.legend(fontsize=8)
    ax.set_ylabel("meta-temporal SUVR")
    ax.set_xlabel("diagnosis")
    fig.tight_layout()
    return svg(fig, "meta-temporal SUVR by diagnosis")


def regional_heatmap(wide: pd.DataFrame) -> str:
    """Scans x Braak regions and the meta-temporal ROI, colour = SUVR."""
    columns = [c for c in wide if c.startswith("Braak_Braak") and "_" not in c[11:]] + [META]
    columns = [c for c in columns if c in wide]
    data = wide[columns].to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(wide) + 1.5))
    image = ax.imshow(data, aspect="auto", cmap="inferno", vmin=1.0)
    ax.set_xticks(range(len(columns)), [c.split("_", 1)[1] for c in columns], rotation=45,
                  ha="right")  # fmt: skip
    ax.set_yticks(range(len(wide)), wide["scan"], fontsize=7)
    fig.colorbar(image, ax=ax, label="SUVR")
    fig.tight_layout()
    return svg(fig, "regional SUVR heat map across scans")


def braak_counts(wide: pd.DataFrame) -> str:
    """Number of scans per estimated Braak stage (0-6)."""
    stages = pd.to_numeric(wide.get("braak_stage_estimate"), errors="coerce").dropna().astype(int)
    counts = stages.value_counts().reindex(range(7), fill_value=0)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(counts.index, counts.values, color="slateblue")
    ax.set_xticks(range(7))
    ax.set_xlabel("estimated Braak stage")
    ax.set_ylabel("scans")
    fig.tight_layout()
    return svg(fig, "Braak stage estimate counts")


def longitudinal(wide: pd.DataFrame) -> str | None:
    """Meta-temporal SUVR per session, one line per participant; None without repeat visits."""
    visits = wide.dropna(subset=["session_id"])
    repeated = visits.groupby("participant_id").filter(lambda rows: len(rows) > 1)
    if repeated.empty:
        return None
    order = sorted(repeated["session_id"].unique())
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for participant, rows in repeated.groupby("participant_id"):
        rows = rows.sort_values("session_id")
        ax.plot([order.index(s) for s in rows["session_id"]], rows[META], marker="o",
                label=participant)  # fmt: skip
    ax.set_xticks(range(len(order)), order)
    ax.set_ylabel("meta-temporal SUVR")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return svg(fig, "longitudinal meta-temporal SUVR")


def classification_section(tables: Mapping[str, pd.DataFrame | None]) -> str:
    """``--classify``: AD-vs-CN metrics with their intervals, other diagnoses apart, and the
    predictions; "" when no scan was classified."""
    predictions = tables.get("classification")
    if predictions is None:
        return ""
    metrics, other = tables.get("classification_metrics"), tables.get("classification_other")
    parts = ["<h2>AD vs CN classification</h2>"]
    if metrics is None:
        parts.append(
            "<p>No diagnosis column in participants.tsv or sessions.tsv: predictions only, "
            "no accuracy.</p>"
        )
    elif metrics.empty:
        parts.append("<p>No scan has the diagnosis AD or CN: no accuracy.</p>")
    else:
        parts += [
            "<p>Scans whose diagnosis is AD or CN only; 95 % intervals from resampling "
            'participants (<a href="classification_metrics.tsv">classification_metrics.tsv'
            "</a>, docs/group.md).</p>",
            table(metrics.drop(columns=["model_sha256"])),
        ]
    if other is not None and not other.empty:
        parts += [
            "<h3>Other diagnoses (not in the metrics above)</h3>",
            table(other.drop(columns=["model_sha256"])),
        ]
    shown = [c for c in ("scan", "diagnosis", "ad_probability", "label", "threshold",
                         "model_version") if c in predictions]  # fmt: skip
    parts += ["<h3>Predictions</h3>", table(predictions[shown])]
    return "".join(parts)


def write_group_report(
    folder: Path,
    long: pd.DataFrame,
    wide: pd.DataFrame,
    quality: pd.DataFrame,
    skipped: Sequence[str] = (),
    classification: Mapping[str, pd.DataFrame | None] | None = None,
) -> Path:
    """Write ``report.html`` into the group folder and return its path.

    ``skipped``: one line per file the group level left out (``<file>: <problem>; <what was
    left out>``), shown first so a reader knows the tables are not the whole cohort.
    ``classification``: the ``--classify`` tables by name (``group.CLASSIFICATION_TABLES``).
    """
    summary_columns = [c for c in ("scan", "diagnosis", "age", "sex", META, "tau_positive",
                                   "braak_stage_estimate", "braak_conforming", "braak_rule")
                       if c in wide]  # fmt: skip
    change = longitudinal(wide)
    n_flagged = int((quality["flags"].astype(str) != "").sum())
    left_out = ""
    if skipped:
        items = "".join(f"<li>{esc(line)}</li>" for line in skipped)
        left_out = (
            f'<div class="warn"><p>Left out of the group tables ({len(skipped)} file(s); also '
            f"under Skipped in suvr_wide.json):</p><ul>{items}</ul></div>"
        )
    body = "".join([
        left_out,
        f"<p>{len(wide)} scan(s) of {wide['participant_id'].nunique()} participant(s); "
        f"{n_flagged} scan(s) with QC flags. Tables: "
        '<a href="suvr_long.tsv">suvr_long.tsv</a>, <a href="suvr_wide.tsv">suvr_wide.tsv</a>, '
        '<a href="qc.tsv">qc.tsv</a>. Positivity and staging rules: docs/group.md.</p>',
        "<h2>Meta-temporal SUVR by diagnosis</h2>", metatemporal_by_group(wide),
        "<h2>Regional SUVR across scans</h2>", regional_heatmap(wide),
        "<h2>Estimated Braak stage</h2>", braak_counts(wide),
        "<h2>Longitudinal change</h2>",
        change or "<p>No participant has more than one session.</p>",
        classification_section(classification or {}),
        "<h2>Per scan</h2>", table(wide[summary_columns]),
        "<h2>Quality control</h2>", table(quality),
        f"<p>Long table: {len(long)} rows.</p>",
    ])  # fmt: skip
    path = folder / "report.html"
    path.write_text(page("taupet-bids group report", body))
    return path
