"""Check the derivatives a container run wrote: files present, BIDS-valid, SUVR near the truth.

    python containers/check_outputs.py BIDS_DIR OUTPUT_DIR SUB [SUB ...]

Exit code 0 when every check passes; each failure is printed on its own line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from taupet_bids import bids
from taupet_bids.errors import InputError
from taupet_bids.simulate import load_truth

ATLASES = ("DK", "Braak", "MetaTemporal")


def check(bids_dir: Path, out: Path, subjects: list[str]) -> list[str]:
    """Return the problems found (empty when the outputs are good)."""
    problems = []
    if not (out / "dataset_description.json").is_file():
        problems.append("no dataset_description.json")
    for sub in subjects:
        pet = out / f"sub-{sub}" / "pet"
        suvr = sorted(pet.glob("*_space-MNI152NLin6Asym_res-2_desc-suvr_pet.nii.gz"))
        if not suvr:
            problems.append(f"sub-{sub}: no SUVR image in {pet}")
        for atlas in ATLASES:
            if not sorted(pet.glob(f"*_seg-{atlas}_label-*_suvr.tsv")):
                problems.append(f"sub-{sub}: no {atlas} regional table")
        tables = sorted(pet.glob("*_seg-MetaTemporal_label-*_suvr.tsv"))
        if tables:
            measured = pd.read_csv(tables[0], sep="\t").set_index("region")
            truth = load_truth(bids_dir, sub, kind="blurred").set_index(["atlas", "region"])
            expected = truth.loc[("MetaTemporal", "metatemporal"), "suvr"]
            value = measured.loc["metatemporal", "suvr_mean"]
            if abs(value / expected - 1) >= 0.05:
                problems.append(f"sub-{sub}: meta-temporal SUVR {value:.3f}, truth {expected:.3f}")
    try:
        bids.validate_dataset(out)
    except InputError as error:
        problems.append(f"derivatives are not BIDS-valid: {error}")
    return problems


def main(argv: list[str]) -> int:
    bids_dir, out, *subjects = argv
    problems = check(Path(bids_dir), Path(out), subjects)
    for problem in problems:
        print(f"FAIL {problem}")
    if not problems:
        print(f"OK {len(subjects)} participant(s): files present, BIDS-valid, SUVR within 5 %")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
