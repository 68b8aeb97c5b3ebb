"""Is the geometry QC the same for every tracer? Tau and FDG scans of the same heads, MR-based.

The geometry QC (``normalisation/geometry_qc.py``) should flag a normalisation that moves a
composite SUVR by more than 4 % and leave a good one alone, whatever the tracer. Its thresholds
were chosen on tau-like images; this script scores them on cohorts that have a tau and an FDG
scan of every participant (``taupet-bids-simulate --modalities tau fdg ...``), each processed by
the app through the participant's T1w (``--regional-mask template``; FDG with ``--tracer FDG``,
pons reference). For every scan:

* the **error**: the app's meta-temporal and Braak I/II, III/IV, V/VI SUVR (its tables) against
  the simulator's blurred truth of that scan (same reference region); *off* when the largest
  composite error exceeds 4 %;
* the **flags**: the geometry flags of the QC values the app wrote into the SUVR sidecar when
  it ran (``as run``; :func:`geometry_qc.geometry_flags` on the recorded values), and those of
  this code's geometry QC recomputed from the written SUVR image with the brain check
  (``now``), so a change of the QC shows on the same images.

A flag on a scan that is not off is a false alarm; an off scan without a flag is a miss. Writes
the "Geometry QC by tracer" section of docs/benchmarks.md and
benchmarks/results/geometry_qc_by_tracer.json.

Usage: python benchmarks/geometry_qc_by_tracer.py --cohort BIDS=DERIVATIVES [BIDS=DERIVATIVES ...]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from participant_accuracy import (  # noqa: E402
    GOAL_REGIONS,
    QC_MISS_PCT,
    REPO,
    RESULTS_DIR,
    environment,
    markdown_table,
    update_report,
    with_composites,
)

from taupet_bids import templates  # noqa: E402
from taupet_bids.normalisation import geometry_qc  # noqa: E402
from taupet_bids.normalisation.registration_check import brain_check_array  # noqa: E402

MARKER_START = "<!-- geometry-qc-by-tracer:start -->"
MARKER_END = "<!-- geometry-qc-by-tracer:end -->"
SUVR_IMAGE = "space-MNI152NLin6Asym_res-2_desc-suvr_pet.nii.gz"
#: Tracer label in the file names -> (name in the tables, reference region the app used).
TRACERS = {"18FAV1451": ("tau (flortaucipir)", "InfCerebGrey"), "18FFDG": ("FDG", "Pons")}


def composites(table: pd.DataFrame, value: str) -> dict[str, float]:
    """Meta-temporal and Braak composites of a regional table (app's or truth's)."""
    meta = table.loc[table.region == "metatemporal", value]
    braak = table[table.region.str.startswith("Braak")]
    if not set(GOAL_REGIONS[1:]) <= set(braak.region):
        braak = with_composites(braak[braak.region.str.fullmatch(r"Braak[IV]+")], value)
    values = braak.set_index("region")[value]
    return {"metatemporal": float(meta.iloc[0]), **{k: float(values[k]) for k in GOAL_REGIONS[1:]}}


def measured(pet_dir: Path, stem: str, reference: str) -> dict[str, float]:
    tables = [
        pd.read_csv(next(pet_dir.glob(f"{stem}_*seg-{seg}_label-{reference}_suvr.tsv")), sep="\t")
        for seg in ("MetaTemporal", "Braak")
    ]
    return composites(pd.concat(tables, ignore_index=True), "suvr_mean")


def truth(bids: Path, subject: str, tracer: str) -> dict[str, float]:
    from taupet_bids.simulate import load_truth

    table = load_truth(bids, subject, kind="blurred", tracer=tracer)
    keep = table.atlas.isin(["MetaTemporal", "Braak"])
    return composites(table[keep], "suvr")


def score_scan(bids: Path, derivatives: Path, suvr_image: Path) -> dict:
    """One scan's composite error and its geometry flags, as run and recomputed."""
    stem = suvr_image.name.split("_space-")[0]
    subject = stem.split("_")[0].removeprefix("sub-")
    tracer = next(t for t in TRACERS if f"trc-{t}" in stem)
    name, reference = TRACERS[tracer]
    found, true = measured(suvr_image.parent, stem, reference), truth(bids, subject, tracer)
    errors = {k: 100 * (found[k] / true[k] - 1) for k in GOAL_REGIONS}
    sidecar = json.loads(suvr_image.with_name(suvr_image.name.replace(".nii.gz", ".json"))
                         .read_text())  # fmt: skip
    as_run = geometry_qc.geometry_flags(sidecar["SpatialNormalisation"])
    image = nib.load(suvr_image)
    pet = np.asarray(image.dataobj, dtype=np.float32)
    mask = np.asarray(nib.load(templates.reference_mask_path(reference)).dataobj) > 0
    now = geometry_qc.geometry_qc(pet, mask, brain_check=brain_check_array(pet, image.affine))
    return {
        "cohort": derivatives.parent.name, "scan": stem, "tracer": name,
        "largest_error_pct": max(abs(e) for e in errors.values()),
        **{f"error_{k}_pct": v for k, v in errors.items()},
        "flagged_as_run": bool(as_run), "flagged_now": bool(now["GeometryFlags"]),
        "flags_as_run": as_run, "flags_now": now["GeometryFlags"],
    }  # fmt: skip


def summary(scans: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for tracer, group in scans.groupby("tracer", sort=False):
        off = group.largest_error_pct > QC_MISS_PCT
        row = {"tracer": tracer, "scans": len(group), f"off by > {QC_MISS_PCT:g} %": int(off.sum())}
        for when in ("as_run", "now"):
            flagged = group[f"flagged_{when}"]
            label = when.replace("_", " ")
            row[f"false alarms ({label})"] = f"{int((flagged & ~off).sum())} / {int((~off).sum())}"
            row[f"off flagged ({label})"] = f"{int((flagged & off).sum())} / {int(off.sum())}"
        rows.append(row)
    return pd.DataFrame(rows)


def render(scans: pd.DataFrame, command: str, env: dict) -> str:
    table = summary(scans)
    per_flag = (scans.explode("flags_now").dropna(subset=["flags_now"])
                .assign(flag=lambda f: f.flags_now.str.split(r" \d", regex=True).str[0])
                .groupby(["tracer", "flag"]).size().rename("scans").reset_index())  # fmt: skip
    errors = scans.groupby("tracer", sort=False)[[f"error_{k}_pct" for k in GOAL_REGIONS]].agg(
        lambda e: float(np.mean(np.abs(e)))
    )
    errors.columns = [c.removeprefix("error_").removesuffix("_pct") for c in errors.columns]
    return "\n".join([
        MARKER_START,
        "## Geometry QC by tracer: tau and FDG scans of the same heads "
        "(`benchmarks/geometry_qc_by_tracer.py`)",
        "",
        f"Generated by `{command}` on {env['date']}, commit `{env['git_commit']}`. Every "
        "participant has a tau and an FDG scan and a T1w; both scans went through the app MR-based "
        "(`--regional-mask template`; FDG with `--tracer FDG`, pons reference). A scan is *off* "
        f"when a composite (meta-temporal, Braak I/II, III/IV, V/VI) of the app's tables differs "
        f"from the simulator's blurred truth by more than {QC_MISS_PCT:g} %. *as run*: the "
        "geometry flags the app wrote when it processed the scan; *now*: this commit's geometry "
        "QC (head outline, reference placement, brain check) recomputed on the written SUVR "
        "image. A flag on a scan that is not off is a false alarm.",
        "",
        markdown_table(table),
        "",
        "Mean absolute composite error (%), by tracer:",
        "",
        markdown_table(errors.reset_index(), ".2f"),
        "",
        "Flags (now), by kind:",
        "",
        markdown_table(per_flag) if len(per_flag) else "(none)",
        "",
        f"Machine: {env['cpu']}, {env['cores']} cores.",
        MARKER_END,
    ])  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cohort", nargs="+", required=True, metavar="BIDS=DERIVATIVES")
    parser.add_argument("--report", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR / "geometry_qc_by_tracer.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = []
    for pair in args.cohort:
        bids, derivatives = (Path(p) for p in pair.split("=", 1))
        images = sorted(derivatives.glob(f"sub-*/**/pet/*_{SUVR_IMAGE}"))
        images = [i for i in images if any(f"trc-{t}_" in i.name for t in TRACERS)]
        for image in images:
            rows.append(score_scan(bids, derivatives, image))
            row = rows[-1]
            error, before, now = row["largest_error_pct"], row["flags_as_run"], row["flags_now"]
            print(f"{row['scan']}: largest error {error:.1f} %, flags {len(before)} -> {len(now)}")
    scans = pd.DataFrame(rows)
    command = shlex.join(["python", "benchmarks/geometry_qc_by_tracer.py", *sys.argv[1:]])
    env = environment()
    update_report(args.report, render(scans, command, env), MARKER_START, MARKER_END)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    payload = {"command": command, "environment": env, "scans": rows}
    args.results.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    print(summary(scans).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
