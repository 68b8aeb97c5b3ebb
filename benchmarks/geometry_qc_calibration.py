"""Does the geometry QC catch normalisations that move a composite SUVR by more than 4 %?

Phantoms of the simulator's other anatomy (realistic heads, not the template) are put on the
template 2 mm grid as a correct normalisation would (world coordinates, PSF-blurred, noisy), with
three uptake patterns: tau-like (the simulator's), amyloid-like (bright white matter, variable
cortex) and FDG-like (bright grey matter). Each is then misplaced by known amounts (shifts,
rotations about the brain's centre, isotropic scalings), and for every copy the script computes
the meta-temporal SUVR (template masks, InfCerebGrey reference) relative to the correctly placed
copy, and the geometry QC of :mod:`taupet_bids.normalisation.geometry_qc` with its flags.

Reports, per pattern: false alarms on the correctly placed copies; the detection rate among
copies whose meta-temporal SUVR is off by more than 4 %; and the flag rate among copies off by
less. Writes the "Geometry QC calibration" section of docs/benchmarks.md and
benchmarks/results/geometry_qc_calibration.json.

Usage: python benchmarks/geometry_qc_calibration.py [--n-subjects 4] [--seed 20265]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from participant_accuracy import (  # noqa: E402
    REPO,
    RESULTS_DIR,
    environment,
    markdown_table,
    update_report,
)

from taupet_bids import atlases, templates  # noqa: E402
from taupet_bids.core.grids import apply_affine, linear_coordinates, rigid_matrix, sample  # noqa: E402
from taupet_bids.normalisation import geometry_qc  # noqa: E402

MARKER_START = "<!-- geometry-qc-calibration:start -->"
MARKER_END = "<!-- geometry-qc-calibration:end -->"
#: Composite SUVR error above which a normalisation must be flagged (issue #15).
ERROR_PCT = 4.0
FWHM_MM = 6.5
NOISE = 0.03
#: Misplacements: (kind, size); direction or axis drawn per subject.
MOVES = [("none", 0.0)] + [("shift_mm", s) for s in (3.0, 5.0, 8.0, 12.0)] + [
    ("rotation_deg", r) for r in (4.0, 8.0, 12.0)
] + [("scale_pct", s) for s in (-10.0, -6.0, -3.0, 3.0, 6.0, 10.0)]  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-subjects", type=int, default=4)
    parser.add_argument("--seed", type=int, default=20265, help="benchmark seed, used only here")
    parser.add_argument("--report", type=Path, default=REPO / "docs" / "benchmarks.md")
    return parser.parse_args(argv)


def patterns(rng: np.random.Generator, other) -> dict[str, np.ndarray]:
    """Tau-like, amyloid-like and FDG-like SUVR maps of one subject (other anatomy, 2 mm)."""
    from taupet_bids.simulate import uptake

    profile = uptake.random_profile(rng, realistic=True)
    stage = int(rng.integers(0, 7))
    tau = uptake.suvr_map(profile, uptake.TauState(stage, rng.uniform(0.3, 0.5)), other)
    tissue = {label.index: label.tissue for label in atlases.dk_labels()}
    lut = np.zeros(int(other.dk.max()) + 1, np.float32)
    amyloid, fdg = lut.copy(), lut.copy()
    cortex_amyloid = rng.uniform(1.0, 2.2)
    for index, kind in tissue.items():
        if index >= lut.size:
            continue
        amyloid[index] = {"cortex": cortex_amyloid, "white_matter": 2.0}.get(kind, 1.0)
        fdg[index] = {"cortex": 5.0, "white_matter": 2.0, "subcortical": 4.5,
                      "cerebellar_cortex": 4.0}.get(kind, 1.0)  # fmt: skip
    out = {"tau-like": tau}
    for name, table in (("amyloid-like", amyloid), ("FDG-like", fdg)):
        image = tau.copy()
        image[other.brain_mask] = 1.0
        labelled = other.dk > 0
        image[labelled] = table[other.dk[labelled]]
        out[name] = image
    sigma = FWHM_MM / 2.355 / abs(other.grid_2mm.affine[0, 0])
    return {name: ndimage.gaussian_filter(image, sigma) for name, image in out.items()}


def move_matrix(kind: str, size: float, rng: np.random.Generator, centre: np.ndarray):
    """Template point -> phantom point for one misplacement (about the brain's centre)."""
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    if kind == "shift_mm":
        return rigid_matrix(np.zeros(3), direction * size)
    to_origin, back = np.eye(4), np.eye(4)
    to_origin[:3, 3], back[:3, 3] = -centre, centre
    if kind == "rotation_deg":
        move = rigid_matrix(direction * size, np.zeros(3))
    elif kind == "scale_pct":
        move = np.diag([1 + size / 100] * 3 + [1.0])
    else:
        return np.eye(4)
    return back @ move @ to_origin


def run(args: argparse.Namespace) -> pd.DataFrame:
    from taupet_bids.simulate.other_anatomy import load_other_anatomy

    other = load_other_anatomy()
    reference_image = nib.load(templates.t1w_path(templates.WORKING_RESOLUTION))
    points = linear_coordinates(reference_image.affine, reference_image.shape)
    ref_mask = np.asarray(nib.load(templates.reference_mask_path("InfCerebGrey")).dataobj) > 0
    meta = np.asarray(nib.load(templates.atlas_path("MetaTemporal")).dataobj) == 1
    brain = np.asarray(nib.load(templates.brain_mask_path()).dataobj) > 0
    centre = points[:, brain].mean(axis=1)
    rows = []
    for subject in range(args.n_subjects):
        rng = np.random.default_rng([args.seed, subject])
        for pattern, image in patterns(rng, other).items():
            baseline = None
            for kind, size in MOVES:
                move = move_matrix(kind, size, rng, centre)
                pet = sample(image, other.grid_2mm.affine, apply_affine(move, points))
                noise = rng.normal(0, NOISE * np.percentile(pet, 99), pet.shape)
                pet = (pet + noise * (pet > 1e-3)).astype(np.float32)
                composite = float(pet[meta].mean() / pet[ref_mask & (pet != 0)].mean())
                baseline = composite if kind == "none" else baseline
                start = time.perf_counter()
                qc = geometry_qc.geometry_qc(pet, ref_mask)
                rows.append({
                    "subject": subject, "pattern": pattern, "move": kind, "size": size,
                    "error_pct": 100 * (composite / baseline - 1),
                    "flagged": bool(qc["GeometryFlags"]),
                    "head_shift_mm": qc["HeadShiftMm"], "head_scale_pct": qc["HeadScalePct"],
                    "head_rotation_deg": qc["HeadRotationDeg"],
                    "head_rotation_mm": qc["HeadRotationMm"],
                    "qc_seconds": time.perf_counter() - start,
                })  # fmt: skip
            print(f"subject {subject}: {pattern} done", flush=True)
    return pd.DataFrame(rows)


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    out = []
    for pattern, part in rows.groupby("pattern", sort=False):
        correct = part[part.move == "none"]
        big = part[(part.move != "none") & (part.error_pct.abs() > ERROR_PCT)]
        small = part[(part.move != "none") & (part.error_pct.abs() <= ERROR_PCT)]
        out.append({
            "pattern": pattern,
            "false alarms (correct)": f"{int(correct.flagged.sum())}/{len(correct)}",
            f"detected (error > {ERROR_PCT:.0f} %)": f"{int(big.flagged.sum())}/{len(big)}",
            f"flagged (error <= {ERROR_PCT:.0f} %)": f"{int(small.flagged.sum())}/{len(small)}",
        })  # fmt: skip
    return pd.DataFrame(out)


def by_move(rows: pd.DataFrame) -> pd.DataFrame:
    moved = rows.assign(abs_error_pct=rows.error_pct.abs())
    table = moved.groupby(["move", "size"], sort=False).agg(
        max_abs_error_pct=("abs_error_pct", "max"),
        mean_head_shift_mm=("head_shift_mm", "mean"),
        mean_head_scale_pct=("head_scale_pct", "mean"),
        mean_head_rotation_deg=("head_rotation_deg", "mean"),
        mean_head_rotation_mm=("head_rotation_mm", "mean"),
        flagged=("flagged", "mean"),
    )
    return table.reset_index()


def render(args: argparse.Namespace, rows: pd.DataFrame) -> str:
    env = environment()
    return "\n".join([
        MARKER_START,
        "## Geometry QC calibration (tracer-independent)",
        "",
        f"Generated by `python benchmarks/geometry_qc_calibration.py --n-subjects "
        f"{args.n_subjects} --seed {args.seed}` on {env['date']}, commit `{env['git_commit']}`. "
        "Phantoms of the other anatomy placed on the template grid by world coordinates, then "
        "misplaced; the error is the meta-temporal SUVR's change from the correctly placed "
        "copy. Thresholds are those of `taupet_bids/normalisation/geometry_qc.py`.",
        "",
        markdown_table(summary(rows)),
        "",
        "By misplacement (all patterns):",
        "",
        markdown_table(by_move(rows), ".2f"),
        "",
        f"Geometry QC time per image: {rows.qc_seconds.mean():.2f} s (mean).",
        MARKER_END,
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    templates.ensure_templateflow()
    rows = run(args)
    update_report(args.report.resolve(), render(args, rows), MARKER_START, MARKER_END)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {"arguments": {k: str(v) for k, v in vars(args).items()},
               "rows": rows.to_dict(orient="records"), "environment": environment()}  # fmt: skip
    (RESULTS_DIR / "geometry_qc_calibration.json").write_text(
        json.dumps(payload, indent=2, default=float)
    )
    print(summary(rows).to_string())


if __name__ == "__main__":
    main()
