"""The subject-gm reference with and without a margin from white matter, on an app run's own images.

Until 2026-12-06 ``--regional-mask subject-gm`` cut the SUVR reference (InfCerebGrey) to the
subject's grey matter, 4 mm from the brain's edge and 2 mm from the subject's white matter. This
script re-solves an MR-based run's SUVR with each rule from that run's own template-space PET
(``pet_to_template``) and tissue maps (``tissues_to_template``): every regional SUVR of a scan
scales with 1 / its reference mean, so the composites of each rule follow from the run's tables.
Errors are against the simulator's blurred truth.

Usage: python benchmarks/reference_margin.py --run DIR [--report docs/benchmarks.md]
(DIR holds ``bids/``, ``derivatives-mrbased/`` and ``work-mrbased/``, as
benchmarks/mrless_accuracy.py leaves them).
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
from participant_accuracy import (  # noqa: E402
    REPO,
    RESULTS_DIR,
    collect_measurements,
    markdown_table,
    update_report,
)

from taupet_bids.core.suvr import subject_reference
from taupet_bids.templates import reference_mask_path

MARKERS = ("<!-- reference-margin:start -->", "<!-- reference-margin:end -->")
COMPOSITES = ["metatemporal", "BraakI_II", "BraakIII_IV", "BraakV_VI"]
#: The white-matter margin the subject-gm reference had until 2026-12-06 (mm).
OLD_WM_MARGIN_MM = 2.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="an mrless_accuracy.py --out")
    parser.add_argument("--report", type=Path, default=REPO / "docs" / "benchmarks.md")
    return parser.parse_args(argv)


def reference_masks(template: np.ndarray, tissues: np.ndarray) -> dict[str, np.ndarray]:
    """The rules compared, on the template 2 mm grid."""
    gm, wm, brain = tissues[..., 0], tissues[..., 1], tissues[..., 2]
    now, _ = subject_reference(template, gm, brain, (2.0, 2.0, 2.0))
    from_wm = ndimage.distance_transform_edt(wm < 0.5, sampling=2.0)
    return {
        "subject-gm (the app's)": now > 0,
        "subject-gm with the old 2 mm white-matter margin": (now > 0)
        & (from_wm > OLD_WM_MARGIN_MM),
        "template InfCerebGrey": template > 0,
    }


def scan_rows(run: Path, long: pd.DataFrame) -> list[dict]:
    """Per scan and rule: the reference mean against the app's, and the composites' errors."""
    template = np.asarray(nib.load(reference_mask_path("InfCerebGrey")).dataobj) > 0
    root = run / "work-mrbased" / "taupet_participant_wf"
    rows = []
    for scan in sorted(root.glob("scan_sub_*")):
        subject = scan.name.split("_")[2]
        (pet_file,) = (scan / "quantification_wf" / "pet_to_template").glob("*_std.nii.gz")
        (used_file,) = (scan / "quantification_wf" / "suvr").glob("*_reference.nii.gz")
        (tissue_file,) = (scan / "anat_wf" / "tissues_to_template").glob("*_std.nii.gz")
        pet = np.asarray(nib.load(pet_file).dataobj, dtype=np.float64)
        measured = pet != 0
        used = np.asarray(nib.load(used_file).dataobj) > 0
        app_mean = pet[used & measured].mean()
        tissues = np.asarray(nib.load(tissue_file).dataobj, dtype=np.float32)
        mine = long[long.subject == subject].set_index("region")
        for rule, mask in reference_masks(template, tissues).items():
            mean = pet[mask & measured].mean()
            errors = 100 * (mine.measured * app_mean / mean / mine.truth_blurred - 1)
            rows.append({"subject": subject, "rule": rule, "voxels": int(mask.sum()),
                         "reference_vs_app_pct": 100 * (mean / app_mean - 1),
                         **{c: float(errors[c]) for c in COMPOSITES}})  # fmt: skip
    return rows


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per rule: composites' MAPE, the worst error, and how far the reference moves."""
    rows = []
    for rule, part in table.groupby("rule", sort=False):
        errors = part[COMPOSITES].abs()
        rows.append({
            "rule": rule,
            **{f"{c} MAPE %": errors[c].mean() for c in COMPOSITES},
            "worst composite %": errors.to_numpy().max(),
            "scans > 4 %": int((errors.max(axis=1) > 4).sum()),
            "reference vs app's % (min..max)": f"{part.reference_vs_app_pct.min():+.1f} .. "
            f"{part.reference_vs_app_pct.max():+.1f}",
        })  # fmt: skip
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run = args.run.resolve()
    long = collect_measurements(run / "bids", run / "derivatives-mrbased")
    table = pd.DataFrame(scan_rows(run, long))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    table.to_csv(RESULTS_DIR / "reference_margin.csv", index=False)
    text = "\n".join([
        MARKERS[0],
        "## Subject-gm reference: with and without a white-matter margin",
        "",
        f"Produced by `benchmarks/reference_margin.py --run {run}` (do not edit by hand); rows "
        "per scan in `benchmarks/results/reference_margin.csv`. The MR-based run of that "
        "cohort re-solved with each reference rule from its own template-space PET and tissue "
        "maps (every regional SUVR scales with 1 / the reference mean); errors against the "
        "blurred truth.",
        "",
        markdown_table(summary(table), ".2f"),
        MARKERS[1],
    ])  # fmt: skip
    update_report(args.report.resolve(), text, *MARKERS)
    print(text)


if __name__ == "__main__":
    main()
