"""CenTauRz conversions and the approximate/official labelling."""

import numpy as np
import pandas as pd
import pytest

from taupet_bids import atlases, centaurz


def test_published_flortaucipir_and_mk6240_equations():
    assert centaurz.to_centaurz(1.0, "FTP", "universal") == pytest.approx(13.63 - 15.85)
    assert centaurz.to_centaurz(2.0, "AV1451", "meta_temporal") == pytest.approx(12.95 * 2 - 15.37)
    assert centaurz.to_centaurz(1.5, "18F-MK-6240", "universal") == pytest.approx(
        10.08 * 1.5 - 10.06
    )
    assert centaurz.to_centaurz(1.5, "MK6240", "meta_temporal") == pytest.approx(9.36 * 1.5 - 10.6)
    assert centaurz.to_centaurz(1.2, "RO948") == pytest.approx(13.05 * 1.2 - 15.57)
    assert centaurz.to_centaurz(1.2, "PI2620") == pytest.approx(8.45 * 1.2 - 9.61)
    np.testing.assert_allclose(
        centaurz.to_centaurz(np.array([1.0, 2.0]), "18FAV1451"), [13.63 - 15.85, 27.26 - 15.85]
    )


def test_every_tracer_has_every_mask_and_a_positive_slope():
    for tracer, masks in centaurz.CONVERSIONS.items():
        assert tuple(masks) == centaurz.MASKS, tracer
        assert all(c.slope > 0 and c.intercept < 0 for c in masks.values())
    for name, key in centaurz.CONVERSION_KEYS.items():
        assert key in centaurz.CONVERSIONS, name
        assert centaurz.canonical_tracer(name) == key
    for alias in ("18F-AV-1451", "T807", "18Fflortaucipir", "florquinitau", "APN-1607"):
        assert centaurz.canonical_tracer(alias) in centaurz.CONVERSIONS, alias


def test_unknown_tracer_and_mask():
    with pytest.raises(KeyError, match="no CenTauRz conversion"):
        centaurz.to_centaurz(1.0, "PBR28")
    with pytest.raises(KeyError, match="unknown CenTauR mask"):
        centaurz.to_centaurz(1.0, "FTP", "occipital")


def test_approximate_masks_use_known_dk_regions():
    for regions in centaurz.APPROXIMATE_MASKS.values():
        atlases.dk_indices(regions)  # raises on an unknown region
    assert centaurz.APPROXIMATE_MASKS["meta_temporal"] == atlases.metatemporal_regions()
    universal = set(centaurz.APPROXIMATE_MASKS["universal"])
    for mask in centaurz.MASKS:
        assert set(centaurz.APPROXIMATE_MASKS[mask]) <= universal
    assert "hippocampus" not in universal  # choroid-plexus spill-in


def dk_table(value_by_region: dict[str, float], voxels: int = 100) -> pd.DataFrame:
    regions = sorted({label.region for label in atlases.dk_labels()})
    return pd.DataFrame(
        {
            "region": regions,
            "suvr_mean": [value_by_region.get(r, 1.0) for r in regions],
            "n_voxels": [voxels] * len(regions),
        }
    )


def test_approximate_table_is_labelled_and_volume_weighted():
    table = dk_table({"entorhinal": 2.0, "parahippocampal": 1.0})
    table.loc[table.region == "entorhinal", "n_voxels"] = 300
    out = centaurz.approximate_centaurz(table, "FTP").set_index("mask")
    assert out.loc["mesial_temporal", "suvr"] == pytest.approx((2.0 * 300 + 100) / 400)
    assert out.approximate.all()
    assert (out.mask_source == centaurz.APPROXIMATE_LABEL).all()
    assert "approximate" in centaurz.APPROXIMATE_LABEL
    expected = 10.42 * out.loc["mesial_temporal", "suvr"] - 12.11
    assert out.loc["mesial_temporal", "centaurz"] == pytest.approx(expected)


def test_official_masks_are_used_as_given_and_not_labelled_approximate():
    suvr = np.ones((4, 4, 4))
    suvr[:2] = 2.0
    suvr[0, 0, 0] = np.nan
    mask = np.zeros(suvr.shape)
    mask[:2] = 1
    out = centaurz.official_centaurz(suvr, {"universal": mask}, "MK6240")
    row = out.iloc[0]
    assert row["suvr"] == 2.0 and not row["approximate"]
    assert row["centaurz"] == pytest.approx(10.08 * 2.0 - 10.06)
    assert row["mask_source"] == centaurz.OFFICIAL_LABEL
    with pytest.raises(KeyError):
        centaurz.official_centaurz(suvr, {"parietal": mask}, "FTP")
    with pytest.raises(ValueError, match="empty"):
        centaurz.official_centaurz(suvr, {"frontal": np.zeros(suvr.shape)}, "FTP")


def test_values_are_re_referenced_to_whole_cerebellar_grey():
    """The constants need whole-cerebellar-grey SUVR, whatever the run's reference was."""
    assert centaurz.REFERENCE_REGION == "CerebGrey"
    table = dk_table({"entorhinal": 2.2, "parahippocampal": 2.2})
    out = centaurz.approximate_centaurz(table, "FTP", reference_suvr=1.1).set_index("mask")
    assert out.loc["mesial_temporal", "suvr"] == pytest.approx(2.0)
    assert (out.reference == "CerebGrey").all()
    assert list(out.reset_index().columns) == centaurz.TABLE_COLUMNS
    suvr = np.full((4, 4, 4), 2.2)
    official = centaurz.official_centaurz(suvr, {"universal": np.ones(suvr.shape)}, "FTP", 1.1)
    assert official.iloc[0]["suvr"] == pytest.approx(2.0)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="CerebGrey"):
            centaurz.approximate_centaurz(table, "FTP", reference_suvr=bad)


def test_interface_measures_the_reference_on_the_suvr_image(tmp_path, monkeypatch):
    import nibabel as nib

    from taupet_bids.interfaces.centaurz import CenTauRzTable

    monkeypatch.chdir(tmp_path)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    suvr = np.full((6, 6, 6), 1.6, np.float32)
    suvr[:2] = 0.8  # the "cerebellar grey", read 0.8 against the run's own reference
    suvr[0, 0] = 0.0  # out of the field of view: not part of the reference mean
    reference = np.zeros(suvr.shape, np.uint8)
    reference[:2] = 1
    nib.save(nib.Nifti1Image(suvr, affine), tmp_path / "suvr.nii.gz")
    nib.save(nib.Nifti1Image(reference, affine), tmp_path / "ref.nii.gz")
    dk_table({"entorhinal": 1.6, "parahippocampal": 1.6}).to_csv(
        tmp_path / "dk.tsv", sep="\t", index=False
    )
    out = (
        CenTauRzTable(
            dk_table=str(tmp_path / "dk.tsv"),
            suvr_file=str(tmp_path / "suvr.nii.gz"),
            reference_mask=str(tmp_path / "ref.nii.gz"),
            tracer="AV1451",
        )
        .run()
        .outputs
    )
    table = pd.read_csv(out.out_table, sep="\t").set_index("mask")
    assert table.loc["mesial_temporal", "suvr"] == pytest.approx(2.0)
    assert table.loc["mesial_temporal", "centaurz"] == pytest.approx(10.42 * 2.0 - 12.11)


@pytest.mark.parametrize("with_reference", [False, True])
def test_interface_with_official_masks_says_which_reference(tmp_path, monkeypatch, with_reference):
    import nibabel as nib

    from taupet_bids.interfaces.centaurz import CenTauRzTable

    monkeypatch.chdir(tmp_path)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    suvr = np.full((6, 6, 6), 2.4, np.float32)
    suvr[:2] = 1.2  # our cerebellar grey
    suvr[2] = 0.8  # the "official" reference
    ours, official, universal = (np.zeros(suvr.shape, np.uint8) for _ in range(3))
    ours[:2], official[2], universal[4:] = 1, 1, 1
    nib.save(nib.Nifti1Image(suvr, affine), tmp_path / "suvr.nii.gz")
    nib.save(nib.Nifti1Image(ours, affine), tmp_path / "ours.nii.gz")
    masks = tmp_path / "masks"
    masks.mkdir()
    nib.save(nib.Nifti1Image(universal, affine), masks / "universal.nii.gz")
    if with_reference:
        nib.save(nib.Nifti1Image(official, affine), masks / "reference.nii.gz")
    dk_table({}).to_csv(tmp_path / "dk.tsv", sep="\t", index=False)
    out = (
        CenTauRzTable(
            dk_table=str(tmp_path / "dk.tsv"),
            suvr_file=str(tmp_path / "suvr.nii.gz"),
            reference_mask=str(tmp_path / "ours.nii.gz"),
            masks_dir=str(masks),
            tracer="MK6240",
        )
        .run()
        .outputs
    )
    row = pd.read_csv(out.out_table, sep="\t").iloc[0]
    assert row["mask"] == "universal" and not row["approximate"]
    if with_reference:
        assert row["suvr"] == pytest.approx(3.0)
        assert row["mask_source"] == centaurz.OFFICIAL_LABEL
    else:
        assert row["suvr"] == pytest.approx(2.0)
        assert row["mask_source"] == centaurz.OFFICIAL_LABEL + centaurz.OWN_REFERENCE_NOTE
