"""How much does the way the reference region is drawn move every SUVR?

SUVR divides by the reference mean, so a reference that reads 2 % low raises every regional SUVR
by 2 %. Under the scanner PSF the cerebellar surface reads low (it borders CSF and, outside, the
tentorium, venous sinuses and bone), so masks that reach the surface read lower than the app's
InfCerebGrey (inferior cerebellar cortex, eroded by 1 mm). This script measures that on the
simulator's blurred truth (noise-free, PSF-blurred PET pulled back to the phantom's anatomy),
phantom by phantom, for the app's mask and for wider or narrower alternatives drawn on the same
anatomy, and writes the "Reference region" section of docs/benchmarks.md.

Usage: python benchmarks/reference_region.py --bids /tmp/taupet-bench14/other/bids
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from participant_accuracy import REPO, RESULTS_DIR, environment, markdown_table, update_report  # noqa: E402

from taupet_bids import atlases  # noqa: E402
from taupet_bids.simulate import find_truth  # noqa: E402
from taupet_bids.simulate.other_anatomy import SPACE, source_anatomy  # noqa: E402

MARKER_START = "<!-- reference-region:start -->"
MARKER_END = "<!-- reference-region:end -->"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bids",
        type=Path,
        nargs="+",
        default=[Path("/tmp/taupet-bench14/other/bids"), Path("/tmp/taupet-bench14/template/bids")],
        help="simulated datasets (with derivatives/truth) of the participant benchmark",
    )
    parser.add_argument("--report", type=Path, default=REPO / "docs" / "benchmarks.md")
    return parser.parse_args(argv)


def masks(anatomy) -> dict[str, np.ndarray]:
    """The app's reference and alternatives, all drawn on the phantom's own anatomy."""
    references = anatomy.reference_masks
    cerebellar_cortex = np.isin(anatomy.dk, atlases.dk_indices(["cerebellum-cortex"]))
    app = references[atlases.DEFAULT_REFERENCE]
    inferior = ndimage.binary_dilation(app, iterations=1) & cerebellar_cortex
    surface = ndimage.binary_dilation(inferior, iterations=1) & anatomy.brain_mask
    white = np.isin(anatomy.dk, atlases.dk_indices(["cerebellum-white-matter"]))
    off_edge = app & (ndimage.distance_transform_edt(anatomy.brain_mask) > 2)
    off_white = off_edge & (ndimage.distance_transform_edt(~white) > 1)
    return {
        "InfCerebGrey (the app's: inferior cerebellar cortex, eroded 1 mm)": app,
        "inferior cerebellar cortex, not eroded": inferior,
        "inferior cerebellar cortex reaching 2 mm beyond the cerebellar surface": surface,
        "InfCerebGrey away from the brain edge (subject-gm rule)": off_edge,
        "InfCerebGrey away from white matter and the brain edge (subject-gm rule before "
        "2026-12-06)": off_white,
        "CerebGrey (whole cerebellar cortex)": references["CerebGrey"],
        "WholeCereb (cerebellar cortex and white matter)": references["WholeCereb"],
    }


def measure(bids: Path) -> pd.DataFrame:
    """Per phantom and mask: the mask's mean in the blurred truth (app's reference = 1)."""
    rows, drawn = [], None
    for participant in pd.read_csv(bids / "participants.tsv", sep="\t").itertuples():
        subject = participant.participant_id.removeprefix("sub-")
        path = find_truth(bids, subject, kind="blurred", suffix=".nii.gz")
        if drawn is None:  # the truth's space names the anatomy the cohort was made from
            anatomy_name = "other" if f"space-{SPACE}_" in path.name else "template"
            drawn = masks(source_anatomy(anatomy_name))
        blurred = np.asarray(nib.load(path).dataobj, dtype=np.float32)
        for name, mask in drawn.items():
            mean = float(blurred[mask].mean())
            rows.append({"anatomy": anatomy_name, "subject": subject, "mask": name,
                         "voxels": int(mask.sum()), "mean": mean})  # fmt: skip
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    long = pd.concat([measure(b) for b in args.bids], ignore_index=True)
    long["shift_pct"] = 100 * (1 / long["mean"] - 1)
    table = (
        long.groupby(["mask", "anatomy"], sort=False)
        .agg(
            voxels=("voxels", "first"),
            reference_mean=("mean", "mean"),
            shift_mean=("shift_pct", "mean"),
            shift_min=("shift_pct", "min"),
            shift_max=("shift_pct", "max"),
        )  # fmt: skip
        .reset_index()
        .rename(
            columns={
                "reference_mean": "mean in blurred truth (app's = 1)",
                "shift_mean": "SUVR change % (mean)",
                "shift_min": "min %",
                "shift_max": "max %",
            }
        )  # fmt: skip
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    long.to_csv(RESULTS_DIR / "reference_region.csv", index=False)
    env = environment()
    section = "\n".join([
        MARKER_START,
        "## Reference region: how its drawing moves every SUVR",
        "",
        "Produced by `benchmarks/reference_region.py` (do not edit by hand). Measured "
        f"{env['date']}, commit `{env['git_commit']}`; raw rows in "
        "`benchmarks/results/reference_region.csv`.",
        "",
        "Each mask is drawn on the phantom's own anatomy and averaged in its blurred truth "
        "(noise-free PET with the scanner PSF, pulled back without registration error), where "
        "the app's InfCerebGrey reads 1 by construction. *SUVR change* is how much every "
        "regional SUVR would move if that mask were the reference instead (100 (1/mean - 1)).",
        "",
        markdown_table(table),
        "",
        MARKER_END,
    ])  # fmt: skip
    update_report(args.report, section, MARKER_START, MARKER_END)
    print(table.to_string())


if __name__ == "__main__":
    main()
