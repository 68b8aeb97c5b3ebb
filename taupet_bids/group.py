"""Group level: every participant's regional tables as one long and one wide table, plus QC.

The tables are read back from the derivatives the participant level wrote, so the group level
needs nothing but ``OUTPUT_DIR`` (and ``participants.tsv`` from the BIDS folder); values are
copied, never recomputed, so they equal the participant tables exactly.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from taupet_bids import staging, tracers
from taupet_bids.core.regions import STAT_COLUMNS
from taupet_bids.naming import SCAN_ENTITIES, entities, scan_stem
from taupet_bids.reports import qc

LOG = logging.getLogger("taupet_bids")

#: Columns of the participant tables after ``region`` (``suvr_mean`` becomes ``suvr``).
TABLE_COLUMNS = STAT_COLUMNS[1:]
ID_COLUMNS = ["scan", *SCAN_ENTITIES.values(), "tracer_name", "method", "reference"]
GROUP_DIR = "group"


def find_tables(output_dir: Path) -> list[Path]:
    """Every regional SUVR table the participant level committed."""
    return sorted(output_dir.glob("sub-*/**/pet/*_seg-*_suvr.tsv"))


def _tracer_name(table: Path) -> str:
    """The tracer's canonical name from the table's sidecar (TracerName) or the trc- label."""
    sidecar = table.with_suffix(".json")
    name = json.loads(sidecar.read_text()).get("TracerName") if sidecar.exists() else None
    found = tracers.identify_tracer(name, entities(table.name).get("trc"))
    return found.name if found else (name or entities(table.name).get("trc", "n/a"))


def read_table(table: Path) -> pd.DataFrame:
    """One participant table with the scan's identifiers as leading columns."""
    ents = entities(table.name)
    frame = pd.read_csv(table, sep="\t", na_values="n/a")
    ids = {column: ents.get(key) for key, column in SCAN_ENTITIES.items()}
    ids["participant_id"] = f"sub-{ents['sub']}"
    ids["session_id"] = f"ses-{ents['ses']}" if "ses" in ents else None
    ids.update(
        scan=scan_stem(table.name),
        tracer_name=_tracer_name(table),
        method=f"SUVR-PVC-{ents['pvc']}" if "pvc" in ents else "SUVR",
        reference=ents.get("label"),
        atlas=ents.get("seg"),
    )
    return frame.assign(**ids)


def long_table(output_dir: Path) -> pd.DataFrame:
    """One row per scan, atlas and region; ``suvr`` is the participant table's ``suvr_mean``."""
    tables = find_tables(output_dir)
    if not tables:
        return pd.DataFrame(columns=[*ID_COLUMNS, "atlas", "region", "suvr", *TABLE_COLUMNS[1:]])
    frame = pd.concat([read_table(path) for path in tables], ignore_index=True)
    frame = frame.rename(columns={"suvr_mean": "suvr"})
    return frame[[*ID_COLUMNS, "atlas", "region", "suvr", *TABLE_COLUMNS[1:]]]


def wide_column(atlas: str, region: str) -> str:
    """Formula-safe column name of one region's SUVR: ``Braak_BraakI``, ``DK_left_entorhinal``."""
    return re.sub(r"[^A-Za-z0-9]", "_", f"{atlas}_{region}")


def wide_table(long: pd.DataFrame) -> pd.DataFrame:
    """One row per scan, one SUVR column per atlas region (reference rows dropped: all 1)."""
    regions = long[~long["region"].str.startswith("reference-")]
    columns = [wide_column(a, r) for a, r in zip(regions["atlas"], regions["region"], strict=True)]
    regions = regions.assign(column=columns)
    key = ["scan", "reference", "method"]
    values = regions.pivot(index=key, columns="column", values="suvr")
    values = values.reindex(columns=list(dict.fromkeys(columns))).reset_index()
    ids = long[ID_COLUMNS].drop_duplicates(subset=key)
    return ids.merge(values, on=key, how="inner").rename_axis(columns=None)


def read_participants(bids_dir: Path) -> pd.DataFrame | None:
    """participants.tsv, with values from sessions.tsv (per visit) where those exist."""
    path = bids_dir / "participants.tsv"
    if not path.exists():
        return None
    return pd.read_csv(path, sep="\t", na_values="n/a", dtype={"participant_id": str})


def read_sessions(bids_dir: Path) -> pd.DataFrame | None:
    """Every ``sub-*_sessions.tsv`` stacked, with a participant_id column."""
    frames = [
        pd.read_csv(path, sep="\t", na_values="n/a").assign(participant_id=path.parent.name)
        for path in sorted(bids_dir.glob("sub-*/sub-*_sessions.tsv"))
    ]
    return pd.concat(frames, ignore_index=True) if frames else None


def add_demographics(wide: pd.DataFrame, bids_dir: Path) -> pd.DataFrame:
    """Merge participants.tsv; per-visit values in sessions.tsv replace the baseline ones."""
    participants = read_participants(bids_dir)
    if participants is not None:
        wide = wide.merge(participants, on="participant_id", how="left")
    sessions = read_sessions(bids_dir)
    if sessions is not None and wide["session_id"].notna().any():
        keys = ["participant_id", "session_id"]
        indexed = wide.set_index(keys)
        visit = sessions.set_index(keys)
        for column in visit.columns:
            values = visit[column].reindex(indexed.index)
            if column in indexed:
                indexed[column] = values.where(values.notna(), indexed[column])
            else:
                indexed[column] = values
        wide = indexed.reset_index()[[*wide.columns, *[c for c in visit if c not in wide]]]
    return wide


def _reference_group(rows: pd.DataFrame, diagnosis: str) -> pd.DataFrame:
    """Baseline scans of the reference diagnosis (one per participant)."""
    if "diagnosis" not in rows:
        return rows.iloc[0:0]
    chosen = rows[rows["diagnosis"].astype(str) == diagnosis]
    return chosen.sort_values(["participant_id", "session_id"]).drop_duplicates("participant_id")


def add_staging(
    wide: pd.DataFrame, cutpoint: float | None = None, reference_diagnosis: str = "CN"
) -> pd.DataFrame:
    """Tau positivity and Braak stage estimate per scan (rules: :mod:`taupet_bids.staging`)."""
    braak_columns = {stage: wide_column("Braak", f"Braak{stage}") for stage in staging.STAGES}
    meta = wide_column("MetaTemporal", "metatemporal")
    out = []
    for _, rows in wide.groupby(["tracer_name", "reference", "method"], sort=False, dropna=False):
        rows = rows.copy()
        cut = staging.cutpoint_for(rows["tracer_name"].iloc[0], cutpoint)
        braak = rows.reindex(columns=list(braak_columns.values())).set_axis(
            list(braak_columns), axis=1
        )
        reference = _reference_group(rows, reference_diagnosis)
        thresholds = staging.reference_thresholds(braak.loc[reference.index])
        if thresholds is not None:
            rule = f"{reference_diagnosis} mean + {staging.N_SD:g} SD (n={len(reference)})"
        elif cut is not None:
            thresholds, rule = staging.fixed_thresholds(cut), f"cut-point {cut.value:g} per stage"
        metatemporal = rows[meta] if meta in rows else pd.Series(np.nan, index=rows.index)
        rows["tau_cutpoint"] = cut.value if cut else np.nan
        rows["tau_positive"] = [staging.is_positive(v, cut) for v in metatemporal]
        if thresholds is None:
            rows["braak_stage_estimate"], rows["braak_conforming"] = None, None
            rows["braak_rule"] = "n/a (no reference group and no cut-point)"
        else:
            estimates = [
                staging.braak_stage(values, thresholds) for values in braak.to_dict("records")
            ]
            rows["braak_stage_estimate"] = [e.stage for e in estimates]
            rows["braak_conforming"] = [e.conforming for e in estimates]
            rows["braak_rule"] = rule
        out.append(rows)
    return pd.concat(out) if out else wide


#: Columns of the participant ``_braakstage.tsv`` tables copied into the wide table, renamed so
#: they are not confused with the data-driven ``braak_stage_estimate``.
PUBLISHED_STAGE_COLUMNS = {
    "braak_stage": "braak_stage_published",
    "braak_stage_label": "braak_stage_published_label",
    "braak_conforming": "braak_published_conforming",
    "threshold_set": "braak_published_thresholds",
}


def find_stage_tables(output_dir: Path) -> list[Path]:
    """Every per-scan Braak stage table the participant level committed."""
    return sorted(output_dir.glob("sub-*/**/pet/*_braakstage.tsv"))


def add_published_stage(wide: pd.DataFrame, output_dir: Path) -> pd.DataFrame:
    """Copy each scan's published-threshold Braak stage (one row per method) into ``wide``."""
    frames = []
    for path in find_stage_tables(output_dir):
        table = pd.read_csv(path, sep="\t", na_values="n/a", dtype={"braak_stage": "Int64"})
        table = table[["method", *PUBLISHED_STAGE_COLUMNS]].rename(columns=PUBLISHED_STAGE_COLUMNS)
        ents = entities(path.name)
        frames.append(table.assign(scan=scan_stem(path.name), reference=ents.get("label")))
    if not frames:
        return wide.assign(**{column: None for column in PUBLISHED_STAGE_COLUMNS.values()})
    stages = pd.concat(frames, ignore_index=True)
    return wide.merge(stages, on=["scan", "reference", "method"], how="left")


def qc_table(output_dir: Path, wide: pd.DataFrame) -> pd.DataFrame:
    """One row per scan: motion, registration scores, flags (see :mod:`taupet_bids.reports.qc`).

    ``wide`` has a row per scan and method (uncorrected, each PVC method); the staging flags
    of all of a scan's rows are gathered on its one QC row, naming the method.
    """
    rows = []
    for name, scan_rows in wide.groupby("scan", sort=False):
        metrics = qc.scan_metrics(output_dir, name)
        flags = list(metrics["flags"])
        for _, row in scan_rows.iterrows():
            method = f" ({row['method']})" if "method" in row and len(scan_rows) > 1 else ""
            if row.get("braak_conforming") is False:
                flags.append(f"Braak pattern non-conforming{method}")
            if row.get("braak_published_conforming") is False:
                flags.append(f"Braak composites non-conforming (published thresholds){method}")
        first = scan_rows.iloc[0]
        ids = {key: first[key] for key in ("scan", "participant_id", "session_id")}
        numbers = {k: v for k, v in metrics.items() if k not in ("normalisation_flags", "flags")}
        rows.append({**ids, **numbers, "flags": "; ".join(dict.fromkeys(flags))})
    return pd.DataFrame(rows)


SIDECARS = {
    "suvr_long": {
        "Description": "every participant regional SUVR table stacked: one row per scan, atlas "
        "and region; values copied from the participant tables",
        "suvr": "the participant table's suvr_mean",
    },
    "suvr_wide": {
        "Description": "one row per scan: SUVR (participant tables' suvr_mean) per atlas region "
        "as <atlas>_<region> columns, participants.tsv/sessions.tsv columns, positivity, "
        "data-driven Braak stage estimate and the participant level's published-threshold "
        "Braak stage (rules and sources: docs/group.md, taupet_bids/staging.py)",
        "braak_stage_published": "braak_stage of the participant _braakstage.tsv table for "
        "this scan and method (0, 2, 4, 6; n/a: no published threshold set applies, e.g. "
        "uncorrected SUVR)",
        "braak_stage_published_label": "0, I-II, III-IV or V-VI",
        "braak_published_conforming": "false when an earlier Braak composite is not abnormal",
        "braak_published_thresholds": "key of the published threshold set (Maass2017_PVC)",
    },
    "qc": {"Description": "per-scan quality control: motion, registration scores, flags"},
}


def _write(frame: pd.DataFrame, path: Path, sidecar: dict) -> None:
    frame.to_csv(path, sep="\t", index=False, na_rep="n/a")  # full precision: values are copies
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2) + "\n")


def run_group(
    bids_dir: Path,
    output_dir: Path,
    cutpoint: float | None = None,
    reference_diagnosis: str = "CN",
) -> Path:
    """Write the group tables and report under ``OUTPUT_DIR/group``; return the report's path."""
    from taupet_bids.reports.group import write_group_report

    long = long_table(output_dir)
    if long.empty:
        raise FileNotFoundError(
            f"no regional tables under {output_dir}; run the participant level first"
        )
    wide = add_staging(add_demographics(wide_table(long), bids_dir), cutpoint, reference_diagnosis)
    wide = add_published_stage(wide, output_dir)
    quality = qc_table(output_dir, wide)
    folder = output_dir / GROUP_DIR
    folder.mkdir(parents=True, exist_ok=True)
    _write(long, folder / "suvr_long.tsv", SIDECARS["suvr_long"])
    _write(wide, folder / "suvr_wide.tsv", SIDECARS["suvr_wide"])
    _write(quality, folder / "qc.tsv", SIDECARS["qc"])
    LOG.info("Group tables: %d scan(s) of %d participant(s) in %s", len(wide),
             wide["participant_id"].nunique(), folder)  # fmt: skip
    return write_group_report(folder, long, wide, quality)
