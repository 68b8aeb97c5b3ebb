"""The real CLI on a small simulated cohort: good scans match the truth, bad ones fail alone.

One run covers two good participants and one broken participant per kind of bad input; each
test below reads what that run wrote. The broken ones are copies of a good participant with
one thing damaged, so any failure can only come from that damage.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from taupet_bids import centaurz, staging
from taupet_bids.simulate import load_truth

GOOD = ("001", "002")
#: A copy of 001 whose PET is stored in kBq/mL: its derivatives must be in Bq/mL and say so.
KBQ = "120"
TRACER = "18FAV1451"


def _pet(root: Path, sub: str, ext: str = ".nii.gz") -> Path:
    return root / f"sub-{sub}" / "pet" / f"sub-{sub}_trc-{TRACER}_pet{ext}"


def _edit_sidecar(path: Path, **changes) -> None:
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


def _edit_image(path: Path, change) -> None:
    img = nib.load(path)
    data = change(np.asarray(img.dataobj, dtype=np.float32))
    nib.save(nib.Nifti1Image(data, img.affine), path)


def _truncate(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _no_t1w(root: Path, sub: str) -> None:
    shutil.rmtree(root / f"sub-{sub}" / "anat")


def _no_sidecar(root: Path, sub: str) -> None:
    _pet(root, sub, ".json").unlink()


def _empty_sidecar(root: Path, sub: str) -> None:
    _pet(root, sub, ".json").write_text("")


def _frames_mismatch(root: Path, sub: str) -> None:
    meta = json.loads(_pet(root, sub, ".json").read_text())
    _edit_sidecar(_pet(root, sub, ".json"), FrameDuration=meta["FrameDuration"][:-1])


def _nan_voxels(root: Path, sub: str) -> None:
    def add_nan(data):
        data[10:12, 10:12, 10:12] = np.nan
        return data

    _edit_image(_pet(root, sub), add_nan)


def _all_zero(root: Path, sub: str) -> None:
    _edit_image(_pet(root, sub), np.zeros_like)


def _two_d(root: Path, sub: str) -> None:
    _edit_image(_pet(root, sub), lambda data: data[:, :, data.shape[2] // 2, 0])


def _five_d(root: Path, sub: str) -> None:
    _edit_image(_pet(root, sub), lambda data: data[..., None])


def _truncated_pet(root: Path, sub: str) -> None:
    _truncate(_pet(root, sub))


def _unknown_tracer(root: Path, sub: str) -> None:
    _edit_sidecar(_pet(root, sub, ".json"), TracerName="XYZ-123")
    for path in list((root / f"sub-{sub}" / "pet").iterdir()):
        path.rename(path.with_name(path.name.replace(f"trc-{TRACER}", "trc-XYZ123")))


def _window_not_covered(root: Path, sub: str) -> None:
    meta = json.loads(_pet(root, sub, ".json").read_text())
    early = [start - 50 * 60 for start in meta["FrameTimesStart"]]
    _edit_sidecar(_pet(root, sub, ".json"), FrameTimesStart=early)


def _truncated_t1w(root: Path, sub: str) -> None:
    _truncate(root / f"sub-{sub}" / "anat" / f"sub-{sub}_T1w.nii.gz")


def _tiny_t1w(root: Path, sub: str) -> None:
    """Passes every input check, then makes the registration itself fail inside the graph."""
    noise = np.random.default_rng(0).random((5, 5, 5)).astype(np.float32)
    nib.save(
        nib.Nifti1Image(noise, np.eye(4)), root / f"sub-{sub}" / "anat" / f"sub-{sub}_T1w.nii.gz"
    )


def _no_orientation(root: Path, sub: str) -> None:
    path = _pet(root, sub)
    nib.save(nib.Nifti1Image(np.asarray(nib.load(path).dataobj), None), path)


def _voxels_times_1e5(root: Path, sub: str) -> None:
    path = _pet(root, sub)
    img = nib.load(path)
    affine = img.affine.copy()
    affine[:3] *= 1e5
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), affine), path)


def _durations_are_end_times(root: Path, sub: str) -> None:
    """FrameDuration holding each frame's end time, as in the official BIDS examples."""
    meta = json.loads(_pet(root, sub, ".json").read_text())
    ends = [s + d for s, d in zip(meta["FrameTimesStart"], meta["FrameDuration"], strict=True)]
    _edit_sidecar(_pet(root, sub, ".json"), FrameDuration=ends)


def _boolean_durations(root: Path, sub: str) -> None:
    meta = json.loads(_pet(root, sub, ".json").read_text())
    _edit_sidecar(_pet(root, sub, ".json"), FrameDuration=[True] * len(meta["FrameDuration"]))


def _huge_nifti2_header(root: Path, sub: str) -> None:
    """A few hundred bytes declaring 100000^3 x 4 float32 voxels (16 PB)."""
    header = nib.Nifti2Header()
    header.set_data_shape((100000, 100000, 100000, 4))
    header.set_data_dtype(np.float32)
    header.set_sform(np.diag([2.0, 2.0, 2.0, 1.0]), code=1)
    header["vox_offset"] = 544
    _pet(root, sub).write_bytes(gzip.compress(header.binaryblock + b"\x00" * 4))


def _gzip_bomb(root: Path, sub: str) -> None:
    """The real image followed by 256 MiB of zeros in the same gzip stream (under 1 MB)."""
    path = _pet(root, sub)
    image = gzip.decompress(path.read_bytes())
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(path, "wb") as fh:
        fh.write(packer.compress(image))
        for _ in range(16):
            fh.write(packer.compress(bytes(2**24)))
        fh.write(packer.flush())


def _deep_sidecar(root: Path, sub: str) -> None:
    _pet(root, sub, ".json").write_text("[" * 200_000 + "]" * 200_000)


def _two_by_two_by_two(root: Path, sub: str) -> None:
    _edit_image(_pet(root, sub), lambda data: data[:2, :2, :2])


def _single_voxel(root: Path, sub: str) -> None:
    def one_voxel(data):
        kept = np.zeros_like(data)
        kept[40, 40, 40] = data[40, 40, 40] + 1
        return kept

    _edit_image(_pet(root, sub), one_voxel)


def _negated(root: Path, sub: str) -> None:
    _edit_image(_pet(root, sub), np.negative)


def _t1w_no_orientation(root: Path, sub: str) -> None:
    path = root / f"sub-{sub}" / "anat" / f"sub-{sub}_T1w.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(nib.load(path).dataobj), None), path)


@dataclass(frozen=True)
class Broken:
    """A participant damaged in one way, and words its one-line reason must contain."""

    damage: object
    words: tuple[str, ...]


BROKEN = {
    "101": Broken(_no_t1w, ("no T1w", "--mr-less")),
    "102": Broken(_no_sidecar, ("_pet.json", "missing")),
    "103": Broken(_empty_sidecar, ("_pet.json", "empty")),
    "104": Broken(_frames_mismatch, ("FrameDuration has 3", "_pet.json")),
    "105": Broken(_nan_voxels, ("_pet.nii.gz", "NaN")),
    "106": Broken(_all_zero, ("_pet.nii.gz", "constant")),
    "107": Broken(_two_d, ("_pet.nii.gz", "2D")),
    "108": Broken(_five_d, ("_pet.nii.gz", "5D")),
    "109": Broken(_truncated_pet, ("_pet.nii.gz", "truncated")),
    "110": Broken(_unknown_tracer, ("XYZ-123", "--reference-region")),
    "111": Broken(_window_not_covered, ("window", "--pet-window")),
    "112": Broken(_truncated_t1w, ("_T1w.nii.gz", "truncated")),
    "113": Broken(_tiny_t1w, ("sub-113", "Error")),
    # Hostile inputs (#13), refused by the preflight from headers and sidecars (120 is KBQ)
    "114": Broken(_no_orientation, ("_pet.nii.gz", "no orientation")),
    "115": Broken(_voxels_times_1e5, ("_pet.nii.gz", "voxel size", "outside 0.1-20 mm")),
    "116": Broken(_durations_are_end_times, ("_pet.json", "FrameDuration holds frame end times")),
    "117": Broken(_boolean_durations, ("_pet.json", "FrameDuration holds a JSON boolean")),
    "118": Broken(_huge_nifti2_header, ("_pet.nii.gz", "100000x100000x100000x4 voxels")),
    "119": Broken(_gzip_bomb, ("_pet.nii.gz", "gzip stream holds more than")),
    "121": Broken(_deep_sidecar, ("_pet.json", "nested more than")),
    "122": Broken(_two_by_two_by_two, ("_pet.nii.gz", "2x2x2")),
    "123": Broken(_single_voxel, ("_pet.nii.gz", "voxels are non-zero")),
    "124": Broken(_negated, ("_pet.nii.gz", "negative")),
    "125": Broken(_t1w_no_orientation, ("_T1w.nii.gz", "no orientation")),
}


@dataclass(frozen=True)
class Run:
    bids: Path
    out: Path
    work: Path
    returncode: int
    log: str


def _copy_participant(root: Path, source: str, target: str) -> None:
    shutil.copytree(root / f"sub-{source}", root / f"sub-{target}")
    for path in (root / f"sub-{target}").rglob("*"):
        if path.is_file():
            path.rename(path.with_name(path.name.replace(f"sub-{source}", f"sub-{target}")))
    table = pd.read_csv(root / "participants.tsv", sep="\t", dtype=str)
    row = table[table.participant_id == f"sub-{source}"].assign(participant_id=f"sub-{target}")
    pd.concat([table, row]).to_csv(root / "participants.tsv", sep="\t", index=False)


def taupet_bids(*args: str) -> subprocess.CompletedProcess:
    """The installed command, as a user runs it."""
    command = [str(Path(sys.executable).with_name("taupet-bids")), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, templateflow_home) -> Run:
    root = tmp_path_factory.mktemp("participant")
    bids = root / "bids"
    simulate = Path(sys.executable).with_name("taupet-bids-simulate")
    subprocess.run([simulate, bids, "--n-subjects", "2", "--seed", "11"], check=True)
    for label, broken in BROKEN.items():
        _copy_participant(bids, "001", label)
        broken.damage(bids, label)
    _copy_participant(bids, "001", KBQ)
    _edit_image(_pet(bids, KBQ), lambda data: data / 1000.0)
    _edit_sidecar(_pet(bids, KBQ, ".json"), Units="kBq/mL")
    out, work = root / "out", root / "work"
    done = taupet_bids(
        bids, out, "participant", "-w", work, "--skip-bids-validation",
        "--pvc", "gtm", "rbv", "--pvc-fwhm", "7", "--mr-less", "never",
    )  # fmt: skip
    return Run(bids, out, work, done.returncode, done.stdout + done.stderr)


def _tables(run: Run, sub: str, atlas: str, pvc: str = "") -> pd.DataFrame:
    entities = f"seg-{atlas}_label-InfCerebGrey{pvc}"
    name = f"sub-{sub}_trc-{TRACER}_space-MNI152NLin6Asym_{entities}_suvr.tsv"
    return pd.read_csv(run.out / f"sub-{sub}" / "pet" / name, sep="\t", na_values="n/a")


def test_exit_code_says_some_scans_failed(cohort: Run) -> None:
    assert cohort.returncode == 1, cohort.log[-3000:]
    good = len(GOOD) + 1  # and the kBq/mL copy
    assert f"{good} of {good + len(BROKEN)} scan(s) succeeded" in cohort.log


def test_kbq_input_is_written_in_bq_and_says_so(cohort: Run) -> None:
    """Units: the averaged PET and the reference value are Bq/mL whatever the input's units."""

    def preproc(sub: str) -> tuple[np.ndarray, dict]:
        path = cohort.out / f"sub-{sub}" / "pet" / f"sub-{sub}_trc-{TRACER}_desc-preproc_pet"
        meta = json.loads(path.with_suffix(".json").read_text())
        return nib.load(f"{path}.nii.gz").get_fdata(), meta

    def suvr_meta(sub: str) -> dict:
        name = f"sub-{sub}_trc-{TRACER}_space-MNI152NLin6Asym_res-2_desc-suvr_pet.json"
        return json.loads((cohort.out / f"sub-{sub}" / "pet" / name).read_text())

    bq, bq_meta = preproc("001")
    kbq, kbq_meta = preproc(KBQ)
    assert bq_meta["Units"] == kbq_meta["Units"] == "Bq/mL"
    assert "kBq/mL" in kbq_meta["UnitsNote"] and "UnitsNote" not in bq_meta
    assert kbq.mean() == pytest.approx(bq.mean(), rel=1e-3)
    reference, reference_kbq = suvr_meta("001"), suvr_meta(KBQ)
    assert reference_kbq["ReferenceValueUnits"] == "Bq/mL"
    # The copy's frames differ from 001's in the last float32 bit (/1000, then x1000), which
    # moves the registrations by a hair: agreement within 1 %, where a units slip is x1000.
    assert reference_kbq["ReferenceValue"] == pytest.approx(reference["ReferenceValue"], rel=1e-2)
    same = _tables(cohort, KBQ, "MetaTemporal").suvr_mean
    assert np.allclose(same, _tables(cohort, "001", "MetaTemporal").suvr_mean, rtol=1e-2)


@pytest.mark.parametrize("sub", GOOD)
def test_good_participants_match_the_blurred_truth(cohort: Run, sub: str) -> None:
    truth = load_truth(cohort.bids, sub, kind="blurred").set_index(["atlas", "region"])["suvr"]
    pairs = [("MetaTemporal", "metatemporal")] + [
        ("Braak", f"Braak{roman}") for roman in ("I", "III", "IV", "V", "VI")
    ]
    for atlas, region in pairs:
        table = _tables(cohort, sub, atlas).set_index("region")
        measured = table.loc[region, "suvr_mean"]
        assert abs(measured / truth[(atlas, region)] - 1) < 0.05, (atlas, region, measured)
    reference = _tables(cohort, sub, "MetaTemporal").set_index("region")
    assert reference.loc["reference-InfCerebGrey", "suvr_mean"] == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("sub", GOOD)
def test_gtm_moves_metatemporal_towards_the_sharp_truth(cohort: Run, sub: str) -> None:
    sharp = load_truth(cohort.bids, sub, kind="sharp").set_index(["atlas", "region"])["suvr"]
    truth = sharp[("MetaTemporal", "metatemporal")]
    plain = _tables(cohort, sub, "MetaTemporal").set_index("region").suvr_mean["metatemporal"]
    gtm = _tables(cohort, sub, "MetaTemporal", "_pvc-GTM").set_index("region").suvr_mean
    assert gtm["reference-InfCerebGrey"] == pytest.approx(1.0, abs=1e-4), "renormalised"
    assert gtm["metatemporal"] > plain, "PVC raises cortical tau"
    assert abs(gtm["metatemporal"] / truth - 1) < 0.05
    assert abs(gtm["metatemporal"] - truth) < abs(plain - truth)
    # RBV, corrected on the PET grid too, lands on the same regional values
    rbv = _tables(cohort, sub, "MetaTemporal", "_pvc-RBV").set_index("region").suvr_mean
    assert rbv["metatemporal"] == pytest.approx(gtm["metatemporal"], rel=0.01)
    assert rbv["reference-InfCerebGrey"] == pytest.approx(1.0, abs=1e-3)


def test_centaurz_is_written_and_labelled_approximate(cohort: Run) -> None:
    name = f"sub-001_trc-{TRACER}_space-MNI152NLin6Asym_label-CerebGrey_centaurz.tsv"
    table = pd.read_csv(cohort.out / "sub-001" / "pet" / name, sep="\t")
    assert (table["reference"] == "CerebGrey").all()
    # re-referenced from the run's inferior cerebellar grey to the whole cerebellar grey
    dk = _tables(cohort, "001", "DK").set_index("region")
    meta_temporal = table.set_index("mask").loc["meta_temporal"]
    uncorrected = centaurz.volume_weighted_suvr(
        dk.reset_index(), centaurz.APPROXIMATE_MASKS["meta_temporal"]
    )
    ratio = uncorrected / meta_temporal.suvr
    # CenTauRz keeps the template masks its constants were fitted on, while the written DK table
    # follows the subject's grey matter (the default --regional-mask), so the two agree to a few %
    assert ratio == pytest.approx(dk.loc["cerebellum-cortex", "suvr_mean"], rel=0.04)
    assert abs(ratio - 1) > 1e-3
    assert set(table["mask"]) == {
        "universal", "mesial_temporal", "meta_temporal", "temporo_parietal", "frontal"
    }  # fmt: skip
    assert table["approximate"].all()
    meta = table.set_index("mask").loc["meta_temporal"]
    assert meta.centaurz == pytest.approx(12.95 * meta.suvr - 15.37, abs=1e-4)


@pytest.mark.parametrize("sub", GOOD)
def test_braak_stage_table_applies_the_published_pvc_thresholds(cohort: Run, sub: str) -> None:
    name = f"sub-{sub}_trc-{TRACER}_space-MNI152NLin6Asym_seg-Braak_label-InfCerebGrey_braakstage"
    path = cohort.out / f"sub-{sub}" / "pet" / f"{name}.tsv"
    table = pd.read_csv(path, sep="\t", na_values="n/a").set_index("method")
    assert list(table.index) == ["SUVR", "SUVR-PVC-GTM", "SUVR-PVC-RBV"]
    plain, gtm = table.loc["SUVR"], table.loc["SUVR-PVC-GTM"]
    assert pd.isna(plain.braak_stage) and plain.note == staging.NO_UNCORRECTED_SET
    composites = _tables(cohort, sub, "Braak", "_pvc-GTM").set_index("region").suvr_mean
    assert gtm.BraakI_II_suvr == composites["BraakI_II"]
    expected = staging.composite_stage(composites.to_dict(), staging.MAASS2017_PVC.thresholds)
    assert (gtm.braak_stage, gtm.threshold_set) == (expected.stage, "Maass2017_PVC")
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["UncorrectedStage"] == staging.NO_UNCORRECTED_SET
    assert sidecar["ThresholdSets"]["Maass2017_PVC"]["Thresholds"]["BraakV_VI"] == 1.87


def test_tables_have_every_region_and_column(cohort: Run) -> None:
    dk = _tables(cohort, GOOD[0], "DK")
    assert list(dk.columns) == [
        "region", "suvr_mean", "suvr_median", "suvr_sd", "volume_ml", "n_voxels"
    ]  # fmt: skip
    for region in ("entorhinal", "left-entorhinal", "right-entorhinal", "precuneus"):
        assert dk.set_index("region").loc[region, "n_voxels"] > 0
    braak = _tables(cohort, GOOD[0], "Braak")["region"].tolist()
    assert braak[:6] == [f"Braak{r}" for r in ("I", "II", "III", "IV", "V", "VI")]


@pytest.mark.parametrize("label", sorted(BROKEN))
def test_broken_participant_gets_one_line_reason_and_no_output(cohort: Run, label: str) -> None:
    lines = [line for line in cohort.log.splitlines() if f"sub-{label}" in line and "FAILED" in line
             or f"sub-{label}" in line and "SKIPPED" in line]  # fmt: skip
    assert lines, f"no failure line for sub-{label}"
    for word in BROKEN[label].words:
        assert any(word in line for line in lines), (word, lines)
    assert not (cohort.out / f"sub-{label}").exists(), "half-written output left behind"


def test_outputs_pass_the_bids_validator(cohort: Run) -> None:
    validator = Path(sys.executable).with_name("bids-validator-deno")
    done = subprocess.run(
        [validator, "--json", cohort.out], capture_output=True, text=True, timeout=300
    )
    issues = json.loads(done.stdout)["issues"]["issues"]
    errors = [issue for issue in issues if issue["severity"] == "error"]
    assert not errors, errors[:3]


def test_methods_boilerplate_names_versions(cohort: Run) -> None:
    text = (cohort.out / "logs" / "CITATION.md").read_text()
    assert "antspyx" in text and "Baker" in text and "MNI152NLin6Asym" in text


def test_rerun_reuses_finished_steps(cohort: Run) -> None:
    n4_results = sorted(cohort.work.rglob("anat_sub_001_*/n4/result_n4.pklz"))
    assert len(n4_results) == 1
    before = n4_results[0].stat().st_mtime
    done = taupet_bids(
        cohort.bids, cohort.out, "participant", "-w", cohort.work,
        "--skip-bids-validation", "--participant-label", "001",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:]
    assert n4_results[0].stat().st_mtime == before


def test_unknown_participant_is_a_clear_error(cohort: Run, tmp_path: Path) -> None:
    done = taupet_bids(
        cohort.bids, tmp_path / "out", "participant", "--participant-label", "999",
        "--skip-bids-validation",
    )  # fmt: skip
    assert done.returncode == 1
    assert "999 not found" in done.stderr and "001, 002" in done.stderr
    assert not (tmp_path / "out").exists(), "nothing is written for a run that cannot start"


def test_unwritable_output_folder_is_a_clear_error(cohort: Run, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    done = taupet_bids(cohort.bids, blocker / "out", "participant", "--skip-bids-validation")
    assert done.returncode == 1
    assert "cannot write to the output folder" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_help_reads_like_a_bids_app() -> None:
    done = taupet_bids("--help")
    assert done.returncode == 0
    for option in ("--participant-label", "--pet-window", "--reference-region", "--work-dir"):
        assert option in done.stdout


def test_gzip_truncation_fixture_really_truncates(tmp_path: Path) -> None:
    path = tmp_path / "x.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((8, 8, 8), np.float32), np.eye(4)), path)
    _truncate(path)
    with pytest.raises((EOFError, OSError)):
        gzip.decompress(path.read_bytes())


def test_mr_based_outputs_are_training_targets_for_the_mr_less_network(cohort: Run) -> None:
    """taupet-bids-train --derivatives: the MR path's transforms give each template voxel's
    PET position; they must agree with the simulator's exact map to registration accuracy."""
    from taupet_bids.core.grids import apply_affine, sample
    from taupet_bids.normalisation import geometry
    from taupet_bids.training.heads import derivatives_head, find_derivative_pets

    pets = find_derivative_pets(cohort.out)
    assert [p.name.split("_")[0] for p in pets] == [f"sub-{s}" for s in (*GOOD, KBQ)]
    head = derivatives_head(pets[0])
    truth = cohort.bids / "derivatives" / "truth" / "sub-001"
    inverse = nib.load(next(truth.glob("anat/*desc-coordinates_xfm.nii.gz")))
    coords = np.moveaxis(inverse.get_fdata(dtype=np.float32), -1, 0)
    points = geometry.template_points()
    subject = np.stack([sample(coords[k], inverse.affine, points) for k in range(3)])
    pet_to_t1w = json.loads(next(truth.glob("pet/*from-pet_to-T1w_xfm.json")).read_text())
    motion = pet_to_t1w["FrameMotion"]
    expected = apply_affine(np.linalg.inv(np.array(pet_to_t1w["PetToT1w"])), subject)
    brain = geometry.template_brain_mask()
    # The averaged PET lives in the frames' mean position: compare with the closest frame.
    errors = [
        np.linalg.norm(apply_affine(np.linalg.inv(np.array(m)), expected) - head.targets, axis=0)[
            brain
        ].mean()
        for m in motion
    ]
    assert min(errors) < 3.0, errors
