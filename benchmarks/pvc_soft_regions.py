"""Soft against hard GTM regions on the app's own PET-space inputs, with Atropos posteriors.

``benchmarks/pvc_tissue_mixing.py`` shows that soft regions (voxels shared by their tissue
fractions) recover the truth when the fractions are true ones. The app's only fractions are the
Atropos posteriors of the subject's T1w. This script re-solves the app's PET-space GTM of a
``--pvc gtm --regional-mask subject-gm`` run whose work directory kept, per scan, the averaged
PET, the label image pulled onto it, and the subject's tissue posteriors pulled onto it the same
way (``quantification_wf/pvc_tissues_to_pet``, written by the app at commit 11f8211, which made
the regions soft), once with hard labels and once with soft regions, and scores the Braak
composites against the simulator's sharp truth. Composites here are label values weighted by the
labels' voxel counts on the PET grid (the app paints them on the template labels instead), so
the two rows are comparable with each other, not number for number with pvc_native.py.

Rerun: ``python benchmarks/pvc_soft_regions.py --work WORK --bids BIDS --report
docs/benchmarks.md``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from participant_accuracy import RESULTS_DIR, markdown_table, update_report  # noqa: E402

from taupet_bids import atlases  # noqa: E402
from taupet_bids.core import pvc  # noqa: E402
from taupet_bids.core import pvc_segmentation as segmentation  # noqa: E402

MARKER_START = "<!-- pvc-soft-regions:start -->"
MARKER_END = "<!-- pvc-soft-regions:end -->"
COMPOSITES = {"BraakI_II": (1, 2), "BraakIII_IV": (3, 4), "BraakV_VI": (5, 6)}
STAGE_NAMES = ("I", "II", "III", "IV", "V", "VI")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="the app run's work directory")
    parser.add_argument("--bids", type=Path, required=True, help="the simulated dataset")
    parser.add_argument("--report", type=Path, default=None)
    return parser.parse_args(argv)


def _one(pattern: str, folder: Path) -> Path:
    (found,) = sorted(folder.glob(pattern))
    return found


def truth_composites(bids: Path, subject: str) -> dict[str, float]:
    path = _one(f"sub-{subject}/pet/*desc-sharp_suvr.tsv", bids / "derivatives" / "truth")
    braak = pd.read_csv(path, sep="\t").query("atlas == 'Braak'").set_index("region")
    out = {}
    for name, stages in COMPOSITES.items():
        rows = braak.loc[[f"Braak{STAGE_NAMES[k - 1]}" for k in stages]]
        out[name] = float((rows.suvr * rows.n_voxels).sum() / rows.n_voxels.sum())
    return out


def solve(scan: Path, soft: bool) -> dict[str, float]:
    """Braak composites of one scan's PET-space GTM, hard or soft regions."""
    image = nib.load(_one("pet_preproc_wf/average/*_twa.nii.gz", scan))
    data = np.asarray(image.dataobj, np.float64)
    quant = scan / "quantification_wf"
    seg = np.rint(np.asarray(nib.load(_one("pvc_labels_to_pet/*.nii.gz", quant)).dataobj))
    seg = segmentation.mark_missing_data(seg.astype(np.int64), data)
    report = (quant / "pvc_gtm" / "_report" / "report.rst").read_text()
    fwhm = float(report.split("* fwhm_mm : ")[1].split()[0])
    sigma = pvc.fwhm_to_sigma(fwhm, image.header.get_zooms()[:3])
    mixing = None
    if soft:
        tissues = np.asarray(nib.load(_one("pvc_tissues_to_pet/*.nii.gz", quant)).dataobj)
        table = pd.read_csv(_one("pvc_segmentation/*.tsv", quant), sep="\t")
        grey = segmentation.mixing_grey_labels(table)
        mixing = segmentation.tissue_mixing(seg, tissues[..., 0], tissues[..., 1], grey)
    values = pvc.gtm(data, seg, sigma, mixing=mixing).values()
    reference = values[pvc.REFERENCE_LABEL]
    regions = atlases.braak_regions()
    out = {}
    for name, stages in COMPOSITES.items():
        labels = [i for k in stages for i in atlases.dk_indices(regions[k]) if i in values]
        counts = np.array([np.count_nonzero(seg == i) for i in labels], float)
        suvr = np.array([values[i] / reference for i in labels])
        out[name] = float((counts * suvr).sum() / counts.sum())
    return out


def run(work: Path, bids: Path) -> pd.DataFrame:
    rows = []
    for scan in sorted((work / "taupet_participant_wf").glob("scan_sub_*")):
        subject = scan.name.split("_")[2]
        truth = truth_composites(bids, subject)
        for regions, soft in (("hard", False), ("soft (Atropos posteriors)", True)):
            for name, value in solve(scan, soft).items():
                error = 100.0 * (value / truth[name] - 1.0)
                rows.append({"subject": subject, "regions": regions, "composite": name,
                             "error_pct": error})  # fmt: skip
    return pd.DataFrame(rows)


def report(rows: pd.DataFrame, args: argparse.Namespace) -> str:
    grouped = rows.groupby(["regions", "composite"])["error_pct"]
    summary = grouped.agg(
        mape_pct=lambda e: e.abs().mean(), bias_pct="mean", max_abs_pct=lambda e: e.abs().max()
    ).reset_index()
    per_scan = rows.pivot_table(
        index="subject", columns=["regions", "composite"], values="error_pct"
    ).round(1)
    per_scan.columns = [f"{a}: {b}" for a, b in per_scan.columns]
    return "\n".join([
        MARKER_START,
        "## Soft PVC regions from Atropos posteriors (`benchmarks/pvc_soft_regions.py`)",
        "",
        f"Re-solves the app's PET-space GTM from the work directory of one `--pvc gtm "
        f"--regional-mask subject-gm` run (`--work {args.work}`, dataset `{args.bids}`): the "
        "same PET, label image and PSF, with hard labels and with soft regions whose fractions "
        "are the subject's Atropos posteriors. Composites: label values weighted by the labels' "
        "voxels on the PET grid; errors against the sharp truth.",
        "",
        markdown_table(summary, floatfmt=".2f"),
        "",
        "Error % per scan:",
        "",
        markdown_table(per_scan.reset_index(), floatfmt=".1f"),
        MARKER_END,
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = run(args.work, args.bids)
    rows.to_csv(RESULTS_DIR / "pvc_soft_regions.csv", index=False, float_format="%.4f")
    text = report(rows, args)
    print(text)
    if args.report:
        update_report(args.report, text, MARKER_START, MARKER_END)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
