"""PET-MR attenuation-correction bias of the simulator, recorded in docs/simulator.md.

Two tables: the projector on a head of concentric spheres (cortex and centre bias per MR method
and skull density), and the phantom cohort's regional bias per MR method (the same subjects and
skulls for every method), absolute and in SUVR (inferior cerebellar grey reference).

Usage: ``python benchmarks/attenuation_bias.py [--n-subjects 3] [--seed 1] [--jobs 2]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from participant_accuracy import update_report  # noqa: E402

from taupet_bids.simulate import CohortConfig, find_truth, load_truth, simulate_cohort
from taupet_bids.simulate.attenuation import ct, hounsfield, mumaps, projection, spheres

START, END = "<!-- attenuation-bias:start -->", "<!-- attenuation-bias:end -->"
REPORT = Path(__file__).resolve().parents[1] / "docs" / "simulator.md"
BONE_HU = (700.0, 1100.0, 1500.0)
VOXEL_MM = 2.0
#: Regions of the cohort table (atlas, region).
REGIONS = [("Braak", f"Braak{r}") for r in ("I", "II", "III", "IV", "V", "VI")]
REGIONS += [("MetaTemporal", "metatemporal"), ("reference", "InfCerebGrey")]


def sphere_rows(seed: int) -> list[str]:
    """Cortex / centre bias (%) per skull density and MR method on the sphere head."""
    layers, radius = spheres.sphere_head(VOXEL_MM)
    emission = spheres.sphere_emission(layers)
    rng = np.random.default_rng(seed)
    specs = {m: mumaps.random_spec(rng, m) for m in mumaps.METHODS}
    specs["ute"] = mumaps.MuMapSpec("ute", bone_scale=0.7)
    rows = []
    for bone_hu in BONE_HU:
        true_mu = hounsfield.mu_511(ct.ct_from_layers(layers, bone_hu))
        cells = [f"{bone_hu:.0f} HU, {float(hounsfield.mu_511(bone_hu)):.3f} /cm"]
        for spec in specs.values():
            begin = time.perf_counter()
            assumed = mumaps.mu_map(spec, layers, true_mu, VOXEL_MM)
            bias = projection.bias_field(emission, true_mu, assumed, VOXEL_MM)
            seconds = time.perf_counter() - begin
            cortex, centre = spheres.cortex_and_centre(bias, layers, radius)
            cells.append(f"{cortex:+.1f} / {centre:+.1f} ({seconds:.1f} s)")
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def cohort_bias(method: str, n_subjects: int, seed: int, jobs: int) -> dict:
    """Per region: mean (SD) absolute and SUVR bias (%) of PET-MR over the cohort."""
    folder = Path(tempfile.mkdtemp(prefix="taupet-acbias-"))
    try:
        config = CohortConfig(
            n_subjects=n_subjects, seed=seed, n_frames=1, jobs=jobs, pet_mr=method
        )
        subjects = simulate_cohort(folder, config, log=lambda line: None)
        absolute, suvr = {r: [] for r in REGIONS}, {r: [] for r in REGIONS}
        for subject in subjects:
            true = load_truth(folder, subject.label, kind="blurred", rec="mrac")
            biased = load_truth(folder, subject.label, kind="acbiased", rec="mrac")
            params = json.loads(
                find_truth(folder, subject.label, rec="mrac", suffix=".json").read_text()
            )["attenuation_correction"]
            for atlas, region in REGIONS:
                pick = (true.atlas == atlas) & (true.region == region)
                ratio = float(biased[pick].suvr.iloc[0] / true[pick].suvr.iloc[0])
                suvr[(atlas, region)].append(100 * (ratio - 1))
                absolute[(atlas, region)].append(100 * (ratio * params["reference_bias"] - 1))
        return {"absolute": absolute, "suvr": suvr}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _cell(values: list[float]) -> str:
    return f"{np.mean(values):+.1f} ({np.std(values):.1f})"


def section(seed: int, n_subjects: int, jobs: int, sphere: list[str], cohort: dict) -> str:
    lines = [
        START,
        "### Measured AC bias",
        "",
        "Produced by `benchmarks/attenuation_bias.py`; rerun with "
        f"`.venv/bin/python benchmarks/attenuation_bias.py --n-subjects {n_subjects} "
        f"--seed {seed} --jobs {jobs}` ({time.strftime('%Y-%m-%d')}).",
        "",
        "Sphere head (brain 70 mm radius, 3 mm CSF, 7 mm skull, 5 mm scalp; brain activity 1, "
        "other layers 0.5): bias of the PET-MR image against PET-CT, cortex (outer 5 mm of the "
        "brain) / centre (15 mm radius), %, and the time of one bias field on one core.",
        "",
        "| skull | " + " | ".join(mumaps.METHODS) + " |",
        "|---" * (len(mumaps.METHODS) + 1) + "|",
        *sphere,
        "",
        f"Phantom cohort ({n_subjects} subjects of the default anatomy, the same subjects and "
        "skulls for every method): mean (SD over subjects) bias of the noise-free PET-MR image "
        "against the PET-CT one, %, absolute and in SUVR (InfCerebGrey reference).",
        "",
        "| region | " + " | ".join(f"{m} absolute | {m} SUVR" for m in cohort) + " |",
        "|---" * (2 * len(cohort) + 1) + "|",
    ]
    for key in REGIONS:
        cells = []
        for result in cohort.values():
            cells += [_cell(result["absolute"][key]), _cell(result["suvr"][key])]
        lines.append(f"| {key[1]} | " + " | ".join(cells) + " |")
    return "\n".join([*lines, END])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-subjects", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    sphere = sphere_rows(args.seed)
    print("\n".join(sphere))
    cohort = {m: cohort_bias(m, args.n_subjects, args.seed, args.jobs) for m in mumaps.MR_METHODS}
    update_report(
        REPORT, section(args.seed, args.n_subjects, args.jobs, sphere, cohort), START, END
    )


if __name__ == "__main__":
    main()
