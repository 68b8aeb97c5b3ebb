"""The real CLI on a scan with a task- PET and an acq- T1w: every file keeps its entities.

One simulated participant, renamed as in the BIDS example pet005 (``task-rest``) with an
``acq-mprage`` T1w. Before, the tables and transforms dropped ``task-``, the subject report
could not find the scan's figures, and the group level lost the scan's QC.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from taupet_bids import naming

PET_STEM = "sub-001_task-rest_trc-18FAV1451"
T1W_STEM = "sub-001_acq-mprage"


@dataclass(frozen=True)
class Run:
    bids: Path
    out: Path
    participant: subprocess.CompletedProcess
    group: subprocess.CompletedProcess


def _cli(*args) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("taupet-bids")), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=1800)


def _rename(folder: Path, old: str, new: str) -> None:
    for path in folder.glob(f"{old}_*"):
        path.rename(path.with_name(new + path.name[len(old) :]))


@pytest.fixture(scope="module")
def run(tmp_path_factory, templateflow_home) -> Run:
    root = tmp_path_factory.mktemp("entities")
    bids, out = root / "bids", root / "out"
    simulate = Path(sys.executable).with_name("taupet-bids-simulate")
    subprocess.run([simulate, bids, "--n-subjects", "1", "--seed", "11"],
                   check=True, capture_output=True)  # fmt: skip
    _rename(bids / "sub-001" / "pet", "sub-001_trc-18FAV1451", PET_STEM)
    _rename(bids / "sub-001" / "anat", "sub-001", T1W_STEM)
    participant = _cli(bids, out, "participant", "-w", root / "work", "--skip-bids-validation")
    group = _cli(bids, out, "group") if participant.returncode == 0 else participant
    return Run(bids, out, participant, group)


def test_the_run_succeeds(run: Run) -> None:
    assert run.participant.returncode == 0, run.participant.stdout[-3000:]
    assert "FAILED" not in run.participant.stdout, run.participant.stdout[-3000:]


def test_every_file_keeps_its_source_entities(run: Run) -> None:
    subject = run.out / "sub-001"
    pet = sorted(p.name for p in (subject / "pet").iterdir())
    figures = sorted(p.name for p in (subject / "figures").iterdir())
    anat = sorted(p.name for p in (subject / "anat").iterdir())
    assert pet and figures and anat
    assert [n for n in pet + figures if not n.startswith(f"{PET_STEM}_")] == []
    assert [n for n in anat if not n.startswith(f"{T1W_STEM}_")] == []
    assert {p.parent.name for p in subject.rglob("*") if p.is_file()} == {"pet", "figures", "anat"}


def test_tables_and_transforms_exist(run: Run) -> None:
    pet, anat = naming.pet_folder(run.out, PET_STEM), run.out / "sub-001" / "anat"
    tables = sorted(pet.glob(f"{PET_STEM}_space-*_seg-*_suvr.tsv"))
    assert {naming.entities(t.name)["seg"] for t in tables} >= {"MetaTemporal", "Braak", "DK"}
    assert (pet / f"{PET_STEM}_from-pet_to-T1w_mode-image_xfm.mat").is_file()
    for name in ("desc-warp_xfm.nii.gz", "desc-affine_xfm.mat"):
        assert (anat / f"{T1W_STEM}_from-T1w_to-MNI152NLin6Asym_mode-image_{name}").is_file()
    for lookup in (naming.suvr_image, naming.preproc_pet, naming.motion_table, naming.qc_json):
        assert lookup(run.out, PET_STEM).is_file(), lookup


def test_the_subject_report_embeds_the_scans_figures(run: Run) -> None:
    report = (run.out / "sub-001.html").read_text()
    assert f'<section id="{PET_STEM}">' in report
    assert "Figure not available" not in report
    assert report.count("data:image/png;base64,") + report.count('<div class="svg"') >= 5


def test_the_group_level_finds_the_scan(run: Run) -> None:
    assert run.group.returncode == 0, run.group.stdout[-3000:] + run.group.stderr[-3000:]
    wide = pd.read_csv(run.out / "group" / "suvr_wide.tsv", sep="\t", dtype=str)
    assert set(wide["scan"]) == {PET_STEM}
    assert set(wide["task"]) == {"rest"} and set(wide["tracer"]) == {"18FAV1451"}
    assert len(wide[wide["method"] == "SUVR"]) == 1
    qc = pd.read_csv(run.out / "group" / "qc.tsv", sep="\t")
    assert list(qc["scan"]) == [PET_STEM]
    assert qc["coreg_nmi"].notna().all() and qc["t1w2std_correlation"].notna().all()
    assert "unavailable" not in str(qc["flags"].iloc[0])


def test_training_finds_the_scans_transforms(run: Run) -> None:
    """taupet-bids-train --derivatives reads the T1w's transforms under the T1w's own name."""
    from taupet_bids.training.heads import derivatives_transforms, find_derivative_pets

    pets = find_derivative_pets(run.out)
    assert [p.name for p in pets] == [f"{PET_STEM}_desc-preproc_pet.nii.gz"]
    warp, affine, pet2t1w = map(Path, derivatives_transforms(pets[0]))
    assert warp.name.startswith(f"{T1W_STEM}_") and affine.name.startswith(f"{T1W_STEM}_")
    assert pet2t1w.name.startswith(f"{PET_STEM}_")
