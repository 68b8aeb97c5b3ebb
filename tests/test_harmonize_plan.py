"""``--harmonize`` decisions before any graph: the plan, the T1w message, the group column."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from taupet_bids.errors import InputError
from taupet_bids.group import read_table
from taupet_bids.plan import plan_scan
from tests.test_plan import _checked, _config

MR_AC = {"AttenuationCorrection": "DIXON Brain HiRes", "ManufacturersModelName": "Biograph mMR"}
# tests/data/pet002 (bids-examples): an HRRT with a transmission scan, not a PET/MR.
HRRT = {}


def _harmonize(tmp_path: Path, mode: str = "auto", **options):
    return _config(tmp_path, harmonize=mode, harmonization_bundle=tmp_path / "bundle", **options)


def test_auto_harmonises_the_pet_mr_scan_with_its_own_t1w(tmp_path):
    plan = plan_scan(_harmonize(tmp_path), _checked(tmp_path, **MR_AC))
    assert plan.harmonize and plan.harmonization_anatomy == "subject"
    assert "DIXON Brain HiRes" in plan.harmonization_reason
    assert plan.harmonization_bundle == tmp_path / "bundle"
    assert plan.harmonization_ac_method == "dixon"  # the harmoniser is told the method


def test_auto_leaves_other_scans_and_says_why(tmp_path):
    plan = plan_scan(_harmonize(tmp_path), _checked(tmp_path, **HRRT))
    assert not plan.harmonize and plan.harmonization_anatomy is None
    assert "transmission scan" in plan.harmonization_reason
    none = plan_scan(_config(tmp_path), _checked(tmp_path / "b", **MR_AC))
    assert not none.harmonize and none.harmonization_reason == "--harmonize none"


def test_a_scan_without_t1w_uses_the_template_anatomy_and_says_so(tmp_path):
    plan = plan_scan(_harmonize(tmp_path), _checked(tmp_path, t1w=False, **MR_AC))
    assert plan.mr_less and plan.harmonize and plan.harmonization_anatomy == "template"
    assert "no T1w" in plan.harmonization_reason
    assert "template's T1w" in plan.harmonization_reason


def test_all_mode_takes_a_transmission_corrected_scan_too_at_zero_correction(tmp_path):
    plan = plan_scan(_harmonize(tmp_path, "all"), _checked(tmp_path, **HRRT))
    assert plan.harmonize and plan.harmonization_ac_method == "ct"
    assert "zero correction" in plan.harmonization_reason


def test_unreadable_t1w_of_a_harmonised_scan_names_the_way_out(tmp_path):
    from taupet_bids.cli.run import check_t1w

    plan = plan_scan(_harmonize(tmp_path), _checked(tmp_path, **MR_AC))
    plan.t1w.write_bytes(b"\x1f\x8b truncated")
    with pytest.raises(InputError) as raised:
        check_t1w(plan)
    message = str(raised.value)
    assert message.startswith("sub-01_T1w.nii.gz:")
    assert "to be harmonised" in message and "--mr-less always" in message
    plain = dataclasses.replace(plan, harmonization_bundle=None)
    with pytest.raises(InputError) as raised:
        check_t1w(plain)
    assert "harmonised" not in str(raised.value)


def test_group_reads_harmonised_tables_as_their_own_method(tmp_path):
    rows = pd.DataFrame({
        "region": ["metatemporal", "reference-InfCerebGrey"], "suvr_mean": [1.3, 1.0],
        "suvr_median": [1.3, 1.0], "suvr_sd": [0.1, 0.1], "volume_ml": [20.0, 10.0],
        "n_voxels": [2500, 1250],
    })  # fmt: skip
    folder = tmp_path / "sub-01" / "pet"
    folder.mkdir(parents=True)
    stem = "sub-01_trc-FTP_rec-mrac_space-MNI152NLin6Asym_seg-MetaTemporal_label-InfCerebGrey"
    for name in (f"{stem}_suvr.tsv", f"{stem}_desc-harmonized_suvr.tsv"):
        rows.to_csv(folder / name, sep="\t", index=False)
    measured = read_table(folder / f"{stem}_suvr.tsv")
    harmonized = read_table(folder / f"{stem}_desc-harmonized_suvr.tsv")
    assert set(measured["harmonized"]) == {False} and set(measured["method"]) == {"SUVR"}
    assert set(harmonized["harmonized"]) == {True}
    assert set(harmonized["method"]) == {"SUVR-harmonized"}
