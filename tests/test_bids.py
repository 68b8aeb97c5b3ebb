"""Input handling: dataset queries, the BIDS validator, and one test per bad input."""

import gzip
import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from taupet_bids.bids import (
    PetScan,
    check_pet_scan,
    check_t1w,
    collect_scans,
    non_tau_tracer,
    validate_dataset,
)
from taupet_bids.errors import InputError

RNG = np.random.default_rng(0)


def sidecar(n_frames: int = 6, start_s: float = 75 * 60, duration_s: float = 300, **extra) -> dict:
    """A complete BIDS-PET sidecar for consecutive frames (flortaucipir 75-105 min by default)."""
    meta = json.loads(
        (Path(__file__).parent / "data/pet002/sub-01_ses-baseline_pet.json").read_text()
    )
    meta.update(
        TracerName="flortaucipir",
        TracerRadionuclide="F18",
        FrameTimesStart=[start_s + i * duration_s for i in range(n_frames)],
        FrameDuration=[duration_s] * n_frames,
    )
    meta.update(extra)
    return meta


def pet_image(shape=(8, 8, 6, 6)) -> nib.Nifti1Image:
    return nib.Nifti1Image(RNG.uniform(100, 5000, shape).astype(np.float32), np.diag([2, 2, 2, 1]))


def write_scan(folder: Path, meta, img=None, name="sub-01_trc-FTP_pet", trc="FTP") -> PetScan:
    """Write image and sidecar (meta: dict, raw text, or None for no sidecar)."""
    folder.mkdir(parents=True, exist_ok=True)
    pet = folder / f"{name}.nii.gz"
    nib.save(pet_image() if img is None else img, pet)
    side = folder / f"{name}.json"
    if isinstance(meta, dict):
        side.write_text(json.dumps(meta))
    elif isinstance(meta, str):
        side.write_text(meta)
    entities = {"trc": trc} if trc else {}
    return PetScan("01", None, pet, side if meta is not None else None, entities)


def raises(scan, *words, **kwargs) -> InputError:
    with pytest.raises(InputError) as info:
        check_pet_scan(scan, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message
    return info.value


# ------------------------------------------------------------------------------- good inputs


def test_good_dynamic_scan(tmp_path):
    checked = check_pet_scan(write_scan(tmp_path, sidecar()))
    assert checked.tracer.name == "flortaucipir"
    assert checked.reference_region == "InfCerebGrey"
    assert checked.window_min == (80.0, 100.0)
    # Frames 75-80, 80-85, ..., 100-105 min: the four inside 80-100 are used.
    assert checked.frames == (1, 2, 3, 4)
    assert checked.frame_start_min[1] == pytest.approx(80.0)
    assert checked.weights == pytest.approx((5.0,) * 4)
    assert checked.units_scale == 1.0
    assert checked.warnings == ()


def test_injection_start_shifts_frames(tmp_path):
    # TimeZero is the scan start; injection was 80 min earlier, so frame 0 starts at 80 min p.i.
    meta = sidecar(start_s=0, InjectionStart=-80 * 60)
    checked = check_pet_scan(write_scan(tmp_path, meta))
    assert checked.frame_start_min[0] == pytest.approx(80.0)
    assert checked.frames == (0, 1, 2, 3)


def test_static_3d_image_and_kbq_units(tmp_path):
    meta = sidecar(n_frames=1, start_s=80 * 60, duration_s=20 * 60, Units="kBq/mL")
    checked = check_pet_scan(write_scan(tmp_path, meta, pet_image((8, 8, 6))))
    assert checked.frames == (0,)
    assert checked.units_scale == 1000.0


def test_suv_units_accepted_with_warning(tmp_path):
    checked = check_pet_scan(write_scan(tmp_path, sidecar(Units="SUV")))
    assert checked.units_scale is None
    assert any("SUV" in w for w in checked.warnings)


def test_missing_optional_required_fields_are_warnings(tmp_path):
    meta = sidecar()
    del meta["ReconFilterType"], meta["InjectedMass"]
    checked = check_pet_scan(write_scan(tmp_path, meta))
    assert "ReconFilterType" in checked.warnings[0] and "InjectedMass" in checked.warnings[0]


def test_pet002_real_sidecar(tmp_path, pet002_dir):
    """The real [11C]DASB HRRT sidecar (32 frames) parses; DASB is not a tracer we know."""
    meta = json.loads((pet002_dir / "sub-01_ses-baseline_pet.json").read_text())
    assert len(meta["FrameTimesStart"]) == 32
    scan = write_scan(tmp_path, meta, pet_image((6, 6, 4, 32)), name="sub-01_pet", trc=None)
    raises(scan, "sub-01_pet.json", "DASB", "--reference-region")
    checked = check_pet_scan(scan, reference_region="WholeCereb")
    assert checked.tracer is None and checked.tracer_name == "DASB"
    assert checked.n_frames == 32
    assert checked.frames == tuple(range(32))  # no default window: every frame, with a warning
    assert checked.frame_end_min[-1] == pytest.approx((2916 + 300) / 60)
    assert any("no default window" in w for w in checked.warnings)
    checked = check_pet_scan(scan, window=(43, 54), reference_region="WholeCereb")
    assert checked.frames == (30, 31)  # 43.6-48.6 and 48.6-53.6 min
    # 40-54: the frame 38.95-43.6 starts more than 1 min early, so 40-43.6 is not covered.
    raises(scan, "not covered", window=(40, 54), reference_region="WholeCereb")


# -------------------------------------------------------------------------- one per bad input


def test_missing_sidecar(tmp_path):
    raises(write_scan(tmp_path, None), "sub-01_trc-FTP_pet.json", "sidecar missing")


def test_empty_sidecar(tmp_path):
    raises(write_scan(tmp_path, "  \n"), "sub-01_trc-FTP_pet.json", "empty")


def test_invalid_json(tmp_path):
    raises(write_scan(tmp_path, '{"Units": "Bq/mL",}'), "sub-01_trc-FTP_pet.json", "not valid JSON")


def test_missing_quantification_fields(tmp_path):
    meta = sidecar()
    del meta["FrameDuration"], meta["Units"]
    raises(write_scan(tmp_path, meta), "sub-01_trc-FTP_pet.json", "FrameDuration", "Units")


def test_frame_arrays_inconsistent_with_image(tmp_path):
    scan = write_scan(tmp_path, sidecar(n_frames=3), pet_image((8, 8, 6, 4)))
    err = raises(scan, "sub-01_trc-FTP_pet.json", "FrameTimesStart has 3 entries", "4 frames")
    assert err.fix == "make them match"


def test_frame_arrays_inconsistent_with_each_other(tmp_path):
    meta = sidecar()
    meta["FrameDuration"] = meta["FrameDuration"][:-1]
    raises(write_scan(tmp_path, meta), "sub-01_trc-FTP_pet.json", "FrameDuration has 5")


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_voxels(tmp_path, value):
    img = pet_image()
    data = img.get_fdata(dtype=np.float32)
    data[2, 3, 1, 4] = value
    scan = write_scan(tmp_path, sidecar(), nib.Nifti1Image(data, img.affine))
    raises(scan, "sub-01_trc-FTP_pet.nii.gz", "1 NaN/Inf voxels")


def test_all_zero_image(tmp_path):
    zero = nib.Nifti1Image(np.zeros((8, 8, 6, 6), np.float32), np.eye(4))
    raises(write_scan(tmp_path, sidecar(), zero), "sub-01_trc-FTP_pet.nii.gz", "constant", "= 0")


def test_zero_frame_inside_window(tmp_path):
    img = pet_image()
    data = img.get_fdata(dtype=np.float32)
    data[..., 2] = 0
    scan = write_scan(tmp_path, sidecar(), nib.Nifti1Image(data, img.affine))
    raises(scan, "sub-01_trc-FTP_pet.nii.gz", "frame 2")


@pytest.mark.parametrize("shape", [(16, 16), (8, 8, 6, 6, 2)])
def test_wrong_dimensionality(tmp_path, shape):
    scan = write_scan(tmp_path, sidecar(), pet_image(shape))
    raises(scan, "sub-01_trc-FTP_pet.nii.gz", f"image is {len(shape)}D", "3D or 4D")


def test_truncated_gzip(tmp_path):
    scan = write_scan(tmp_path, sidecar(), pet_image((32, 32, 16, 6)))
    blob = scan.pet.read_bytes()
    assert gzip.decompress(blob)  # valid before cutting
    scan.pet.write_bytes(blob[: len(blob) // 2])
    raises(scan, "sub-01_trc-FTP_pet.nii.gz", "truncated or corrupt")


def test_unknown_tracer_needs_reference_region(tmp_path):
    scan = write_scan(tmp_path, sidecar(TracerName="NewTauLigand"), trc="NTL")
    raises(scan, "sub-01_trc-FTP_pet.json", "NewTauLigand", "--reference-region")
    checked = check_pet_scan(scan, window=(80, 100), reference_region="InfCerebGrey")
    assert checked.tracer is None
    assert checked.reference_region == "InfCerebGrey"
    assert checked.frames == (1, 2, 3, 4)


def test_pbr28_needs_reference_region(tmp_path):
    meta = sidecar(TracerName="[11C]PBR28", start_s=60 * 60)
    scan = write_scan(tmp_path, meta, trc="PBR28")
    raises(scan, "PBR28 has no standard reference region", "--reference-region")
    assert check_pet_scan(scan, reference_region="WholeCereb").window_min == (60.0, 90.0)


def test_unknown_reference_region(tmp_path):
    raises(write_scan(tmp_path, sidecar()), "Thalamus", reference_region="Thalamus")


def test_tracer_from_entity_when_sidecar_name_unknown(tmp_path):
    scan = write_scan(tmp_path, sidecar(TracerName="in-house batch 7"), trc="18FMK6240")
    checked = check_pet_scan(scan, window=(75, 100))
    assert checked.tracer.name == "MK6240"


@pytest.mark.parametrize(
    ("start_min", "window", "problem"),
    [
        (0, None, "no frame lies within 80-100"),  # frames 0-30 min, window 80-100
        (85, None, "not covered by the frames"),  # frames 85-115: the start of 80-100 is missing
        (75, (60, 100), "not covered by the frames"),
    ],
)
def test_window_not_covered(tmp_path, start_min, window, problem):
    scan = write_scan(tmp_path, sidecar(start_s=start_min * 60))
    raises(scan, "sub-01_trc-FTP_pet.json", problem, "--pet-window", window=window)


def test_window_tolerance(tmp_path):
    # Frames 79.5-84.5 ... 99.5-104.5: every edge is within the 1 min tolerance of 80-100.
    scan = write_scan(tmp_path, sidecar(n_frames=5, start_s=79.5 * 60), pet_image((8, 8, 6, 5)))
    assert check_pet_scan(scan, window=(80, 104)).frames == (0, 1, 2, 3, 4)
    assert check_pet_scan(scan).frames == (0, 1, 2, 3)


def test_gap_inside_window(tmp_path):
    meta = sidecar(n_frames=4, start_s=80 * 60)
    meta["FrameTimesStart"] = [4800, 5400, 5700, 6000]  # 80-85, then 90-95: 85-90 is missing
    scan = write_scan(tmp_path, meta, pet_image((8, 8, 6, 4)))
    raises(scan, "sub-01_trc-FTP_pet.json", "gap")


def test_units_not_activity(tmp_path):
    raises(write_scan(tmp_path, sidecar(Units="counts")), "sub-01_trc-FTP_pet.json", "'counts'")


# ------------------------------------------------------------------------------ collect_scans


def _touch_nifti(path: Path, shape=(4, 4, 4)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.ones(shape, np.float32), np.eye(4)), path)


@pytest.fixture
def dataset(tmp_path) -> Path:
    """sub-01: two sessions (T1w only in bl); sub-02: session-less T1w; sub-03: no T1w, FDG."""
    root = tmp_path / "bids"
    root.mkdir()
    (root / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.9.0"}')
    files = [
        "sub-01/ses-bl/pet/sub-01_ses-bl_trc-18FAV1451_pet",
        "sub-01/ses-fu/pet/sub-01_ses-fu_trc-MK6240_rec-acdyn_run-1_pet",
        "sub-01/ses-fu/pet/sub-01_ses-fu_trc-MK6240_rec-acdyn_run-2_pet",
        "sub-02/ses-bl/pet/sub-02_ses-bl_trc-FTP_pet",
        "sub-03/pet/sub-03_trc-FDG_pet",
    ]
    for stem in files:
        _touch_nifti(root / f"{stem}.nii.gz")
        (root / f"{stem}.json").write_text("{}")
    _touch_nifti(root / "sub-01/ses-bl/anat/sub-01_ses-bl_T1w.nii.gz")
    _touch_nifti(root / "sub-02/anat/sub-02_T1w.nii.gz")
    return root


def test_collect_all(dataset):
    scans = collect_scans(dataset)
    assert [(s.subject, s.session) for s in scans] == [
        ("01", "bl"),
        ("01", "fu"),
        ("01", "fu"),
        ("02", "bl"),
        ("03", None),
    ]
    bl, fu1, fu2, sub02, sub03 = scans
    assert bl.entities == {"trc": "18FAV1451"}
    assert fu2.entities == {"trc": "MK6240", "rec": "acdyn", "run": "2"}
    assert bl.sidecar == bl.pet.with_name("sub-01_ses-bl_trc-18FAV1451_pet.json")
    assert bl.t1w.name == "sub-01_ses-bl_T1w.nii.gz"
    assert fu1.t1w is None  # another session's T1w is never used
    assert sub02.t1w.name == "sub-02_T1w.nii.gz"  # session-less T1w applies to every session
    assert sub03.t1w is None


def test_collect_filters(dataset):
    assert {s.subject for s in collect_scans(dataset, ["sub-02", "03"])} == {"02", "03"}
    flortaucipir = collect_scans(dataset, tracer="flortaucipir")
    assert [s.entities["trc"] for s in flortaucipir] == ["18FAV1451", "FTP"]
    assert len(collect_scans(dataset, tracer="trc-mk6240")) == 2
    assert [s.entities["run"] for s in collect_scans(dataset, session="ses-fu", run=2)] == ["2"]
    assert len(collect_scans(dataset, ["01"], rec="acdyn")) == 2


def test_collect_unknown_participant(dataset):
    with pytest.raises(InputError) as info:
        collect_scans(dataset, ["sub-99"])
    message = str(info.value)
    assert "bids: participant label(s) 99 not found" in message
    assert "available: 01, 02, 03" in message


def test_collect_nothing_matches(dataset):
    with pytest.raises(InputError, match="no PET scan"):
        collect_scans(dataset, ["03"], tracer="MK6240")


def test_collect_not_a_dataset(tmp_path):
    with pytest.raises(InputError, match="dataset_description.json: missing"):
        collect_scans(tmp_path)


def test_inherited_sidecar(dataset):
    pet = dataset / "sub-03/pet/sub-03_trc-FDG_pet.json"
    pet.unlink()
    (dataset / "trc-FDG_pet.json").write_text("{}")
    scan = collect_scans(dataset, ["03"])[0]
    assert scan.sidecar == dataset / "trc-FDG_pet.json"


# ----------------------------------------------------------------------------- the validator


def _valid_dataset(root: Path) -> Path:
    """A minimal dataset the validator accepts: real-sized images, complete sidecars."""
    root.mkdir()
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "taupet test", "BIDSVersion": "1.9.0", "Authors": ["A", "B"]})
    )
    (root / "README").write_text("A minimal tau PET dataset for tests.\n")
    pet = root / "sub-01/pet/sub-01_trc-18FAV1451_pet"
    pet.parent.mkdir(parents=True)
    img = nib.Nifti1Image(
        RNG.uniform(0, 5000, (64, 64, 40, 4)).astype(np.float32), np.diag([3, 3, 3, 1])
    )
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, f"{pet}.nii.gz")
    (pet.parent / f"{pet.name}.json").write_text(json.dumps(sidecar(4, 80 * 60)))
    anat = root / "sub-01/anat/sub-01_T1w.nii.gz"
    anat.parent.mkdir(parents=True)
    t1w = nib.Nifti1Image(RNG.uniform(0, 1000, (64, 64, 40)).astype(np.float32), np.eye(4))
    t1w.header.set_xyzt_units("mm", "sec")
    nib.save(t1w, anat)
    return root


def _validator_json(root: Path) -> dict:
    """The validator's own JSON report on ``root`` (what validate_dataset reads)."""
    validator = Path(sys.executable).with_name("bids-validator-deno")
    done = subprocess.run([validator, "--format", "json", root], capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    return json.loads(done.stdout)


def _errors(report: dict) -> list[str]:
    return [issue["code"] for issue in report["issues"]["issues"] if issue["severity"] == "error"]


def test_validator_accepts_valid_dataset(tmp_path):
    root = _valid_dataset(tmp_path / "ok")
    report = _validator_json(root)
    # The validator read the dataset (not an empty or unreadable folder) and found no error...
    assert report["summary"]["subjects"] == ["01"]
    assert {"anat", "pet"} <= set(report["summary"]["dataTypes"])
    assert _errors(report) == []
    # ...so the app's check passes it (it raises InputError on any validator error).
    assert validate_dataset(root) is None


def test_validator_reports_broken_dataset(tmp_path):
    root = _valid_dataset(tmp_path / "broken")
    (root / "dataset_description.json").unlink()
    pet = root / "sub-01/pet/sub-01_trc-18FAV1451_pet.nii.gz"
    pet.rename(pet.with_name("sub-01_trc-18FAV1451_tau.nii.gz"))
    assert {"MISSING_DATASET_DESCRIPTION", "NOT_INCLUDED"} <= set(_errors(_validator_json(root)))
    with pytest.raises(InputError) as info:
        validate_dataset(root)
    message = str(info.value)
    assert message.startswith("broken: the BIDS validator reports errors")
    assert "MISSING_DATASET_DESCRIPTION;" in message
    assert "NOT_INCLUDED (1: sub-01/pet/sub-01_trc-18FAV1451_tau.nii.gz)" in message
    assert "--skip-bids-validation" in message


def test_validator_missing(monkeypatch, tmp_path):
    import taupet_bids.bids as bids_module

    monkeypatch.setattr(bids_module.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(InputError, match="bids-validator-deno: executable not found"):
        validate_dataset(tmp_path)


def test_truncated_t1w_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sub-01_T1w.nii.gz"
    data = np.random.default_rng(1).random((32, 32, 32)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="sub-01_T1w.nii.gz: image data is truncated"):
        check_t1w(path)


def test_four_d_t1w_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sub-01_T1w.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((8, 8, 8, 2), np.float32), np.eye(4)), path)
    with pytest.raises(InputError, match="T1w is 4D"):
        check_t1w(path)


@pytest.mark.parametrize(
    "text", ["[" * 200_000 + "]" * 200_000, '{"TracerName": "FDG"' + " " * 2_000_000 + "}"]
)
def test_the_tracer_skip_reads_a_hostile_sidecar_through_the_preflight(tmp_path, text):
    """A sidecar too deep or too big to read is left to check_pet_scan to refuse by name; the
    non-tau skip must not crash the run on it (it goes by the trc- label)."""
    pet = tmp_path / "sub-01_trc-18FFDG_pet.nii.gz"
    pet.touch()
    sidecar = tmp_path / "sub-01_trc-18FFDG_pet.json"
    sidecar.write_text(text)
    scan = PetScan("01", None, pet, sidecar, {"trc": "18FFDG"})
    tracer = non_tau_tracer(scan)
    assert tracer is not None and tracer.target != "tau"
