"""Scan stems, entities and output paths: parsed and built in one place."""

from pathlib import Path

from taupet_bids import naming


def test_entities_and_scan_stem() -> None:
    name = "sub-01_ses-A_trc-X_rec-acstat_space-MNI152NLin6Asym_seg-DK_label-Ref_suvr.tsv"
    assert naming.scan_stem(name) == "sub-01_ses-A_trc-X_rec-acstat"
    assert naming.entities(name)["seg"] == "DK"
    assert naming.scan_stem("sub-01_trc-X_run-2_pet.nii.gz") == "sub-01_trc-X_run-2"
    assert naming.node_name("sub-01_ses-A_trc-X") == "sub_01_ses_A_trc_X"
    assert naming.subject_of("sub-01_ses-A_trc-X") == "sub-01"


def test_output_paths_follow_the_stem() -> None:
    out = Path("/out")
    assert naming.pet_folder(out, "sub-01_ses-A_trc-X") == out / "sub-01" / "ses-A" / "pet"
    assert naming.pet_folder(out, "sub-01_trc-X") == out / "sub-01" / "pet"
    suvr = naming.suvr_image(out, "sub-01_trc-X")
    assert suvr.name == "sub-01_trc-X_space-MNI152NLin6Asym_res-2_desc-suvr_pet.nii.gz"
    assert naming.sidecar(suvr).name == suvr.name.replace(".nii.gz", ".json")
    assert naming.qc_json(out, "sub-01_trc-X").name == "sub-01_trc-X_qc.json"
    assert naming.scan_stem(suvr.name) == "sub-01_trc-X"
