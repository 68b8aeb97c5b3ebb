"""Which MR-less bundle to ship: the default method (network+ants) with each bundle, via the app.

``mrless_bundle_comparison.py`` scores bundles on the training generator's validation heads
(the anatomy both were trained on). What decides the product is the composite SUVR the default
method reads on phantoms, above all on an anatomy no bundle was trained on. Each cohort here is
a simulated BIDS dataset processed by ``benchmarks/mrless_accuracy.py --run-only network+ants
--mr-less-model BUNDLE`` once per bundle; this script reads those outputs and tabulates, per
cohort and bundle, the composites' MAPE, bias, ICC(2,1) and worst error against the blurred truth.

Usage: python benchmarks/mrless_bundle_choice.py
    --cohort NAME BIDS LABEL=DERIVATIVES [LABEL=DERIVATIVES ...] [--cohort ...]
Writes benchmarks/results/mrless_bundle_choice.json and its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stats import agreement  # noqa: E402
from participant_accuracy import (  # noqa: E402
    REPO,
    RESULTS_DIR,
    collect_measurements,
    markdown_table,
    update_report,
)

MARKERS = ("<!-- mrless-bundle-choice:start -->", "<!-- mrless-bundle-choice:end -->")
COMPOSITES = {
    "metatemporal": "meta-temporal",
    "BraakI_II": "Braak I-II",
    "BraakIII_IV": "Braak III-IV",
    "BraakV_VI": "Braak V-VI",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cohort",
        nargs="+",
        action="append",
        required=True,
        metavar="NAME BIDS LABEL=DERIVATIVES",
        help="a cohort name, its BIDS dataset, then one LABEL=DERIVATIVES per bundle",
    )
    parser.add_argument("--report", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    for cohort in args.cohort:
        if len(cohort) < 3 or any("=" not in item for item in cohort[2:]):
            parser.error(f"--cohort {' '.join(cohort)}: need NAME BIDS LABEL=DERIVATIVES ...")
    return args


def composite_rows(cohort: str, bids: Path, label: str, derivatives: Path) -> list[dict]:
    """One row per composite: agreement of one bundle's outputs with the blurred truth."""
    long = collect_measurements(bids, derivatives)
    rows = []
    for region, name in COMPOSITES.items():
        part = long[long.region == region]
        stats = agreement(part.measured.to_numpy(), part.truth_blurred.to_numpy())
        rows.append({"cohort": cohort, "bundle": label, "composite": name, **stats})
    return rows


def made_by(derivatives: Path) -> str:
    """The app command that wrote these derivatives (mrless_accuracy.py records it)."""
    record = derivatives.parent / "network_ants.json"
    if not record.exists():
        return "not recorded"
    command = json.loads(record.read_text())["command"]
    return " ".join([Path(command[0]).name, *command[1:]])


def render(table: pd.DataFrame, sources: dict[str, str]) -> str:
    wide = table.pivot_table(
        index=["cohort", "composite"],
        columns="bundle",
        values=["mape_pct", "bias_pct", "icc", "max_abs_pct"],
        sort=False,
    )
    wide.columns = [
        f"{bundle} {stat.replace('_pct', ' %').replace('_', ' ')}" for stat, bundle in wide.columns
    ]
    wide = wide.reset_index()
    for column in [c for c in wide.columns if c.endswith(" icc")]:
        wide[column] = wide[column].map(lambda value: f"{value:.3f}")
    lines = [
        MARKERS[0],
        "## MR-less bundle choice: the default method with each bundle",
        "",
        f"Produced by `benchmarks/mrless_bundle_choice.py` on {datetime.date.today()}; raw rows in "
        "`benchmarks/results/mrless_bundle_choice.json`. Each cohort was processed once per "
        "bundle by the app with `--mr-less always --mr-less-method network+ants --mr-less-model "
        "BUNDLE` (through `benchmarks/mrless_accuracy.py --run-only network+ants`); errors are "
        "against the simulator's blurred truth, ICC is ICC(2,1) over the cohort's subjects.",
        "",
        markdown_table(wide, ".2f"),
        "",
        "Derivatives, made by:",
        "",
        *(f"- {key}: `{value}`" for key, value in sources.items()),
        MARKERS[1],
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rows, sources = [], {}
    for name, bids, *runs in args.cohort:
        for run in runs:
            label, derivatives = run.split("=", 1)
            rows += composite_rows(name, Path(bids), label, Path(derivatives))
            sources[f"{name} / {label}"] = made_by(Path(derivatives))
    table = pd.DataFrame(rows)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {"cohorts": args.cohort, "rows": table.to_dict(orient="records"), "made_by": sources}
    (RESULTS_DIR / "mrless_bundle_choice.json").write_text(json.dumps(payload, indent=2) + "\n")
    update_report(args.report.resolve(), render(table, sources), *MARKERS)
    print(table.to_string())


if __name__ == "__main__":
    main()
