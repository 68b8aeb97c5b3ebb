"""Group tables from small derivative-like fixtures: values copied exactly, ids, demographics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from taupet_bids import group, naming, staging
from taupet_bids.atlases.regions import region_groups
from taupet_bids.core.qc import scan_qc

TRC = "18FAV1451"
SCANS = [("001", "M000"), ("001", "M024"), ("002", None)]
#: Every row the participant level writes for each atlas (the group level refuses a table
#: with rows missing), before the reference row.
REGIONS = {atlas: list(region_groups(atlas)) for atlas in ("MetaTemporal", "Braak", "DK")}


def _stem(sub: str, ses: str | None) -> str:
    return f"sub-{sub}" + (f"_ses-{ses}" if ses else "") + f"_trc-{TRC}"


def _write_scan(out: Path, sub: str, ses: str | None, rng: np.random.Generator) -> None:
    folder = out / f"sub-{sub}" / (f"ses-{ses}" if ses else "") / "pet"
    folder.mkdir(parents=True, exist_ok=True)
    stem = _stem(sub, ses)
    for atlas, regions in REGIONS.items():
        rows = [*regions, "reference-InfCerebGrey"]
        table = pd.DataFrame({
            "region": rows,
            "suvr_mean": [*rng.uniform(1.0, 2.5, len(regions)), 1.0],
            "suvr_median": rng.uniform(1.0, 2.5, len(rows)),
            "suvr_sd": rng.uniform(0.01, 0.2, len(rows)),
            "volume_ml": rng.uniform(1, 50, len(rows)),
            "n_voxels": rng.integers(10, 1000, len(rows)),
        })  # fmt: skip
        name = f"{stem}_space-MNI152NLin6Asym_seg-{atlas}_label-InfCerebGrey_suvr"
        table.to_csv(folder / f"{name}.tsv", sep="\t", index=False)
        (folder / f"{name}.json").write_text(json.dumps({"TracerName": "AV1451"}))
    motion = pd.DataFrame({"frame": range(3), "trans_x": [0, 1, 2.0], "trans_y": 0.0,
                           "trans_z": 0.0, "rot_x": 0.0, "rot_y": 0.0, "rot_z": 0.0,
                           "framewise_displacement": [0, 1.0, 6.0]})  # fmt: skip
    motion_tsv = folder / f"{stem}_desc-motion_timeseries.tsv"
    motion.to_csv(motion_tsv, sep="\t", index=False)
    # the record the participant graph's QC node writes
    record = scan_qc(motion_tsv, {"Method": "MR-based"}, coreg_nmi=1.06, t1w2std_correlation=0.99)
    (folder / f"{stem}_qc.json").write_text(json.dumps(record))


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    bids, out = tmp_path / "bids", tmp_path / "out"
    rng = np.random.default_rng(1)
    for sub, ses in SCANS:
        _write_scan(out, sub, ses, rng)
    bids.mkdir()
    pd.DataFrame({"participant_id": ["sub-001", "sub-002"], "age": [70.0, 80.0],
                  "diagnosis": ["CN", "AD"]}).to_csv(bids / "participants.tsv", sep="\t",
                                                     index=False)  # fmt: skip
    (bids / "sub-001").mkdir()
    pd.DataFrame({"session_id": ["ses-M000", "ses-M024"], "age": [70.0, 72.0]}).to_csv(
        bids / "sub-001" / "sub-001_sessions.tsv", sep="\t", index=False
    )
    return bids, out


def test_long_table_copies_every_participant_value(dataset) -> None:
    _, out = dataset
    long = group.long_table(out)
    assert len(long) == sum(len(r) + 1 for r in REGIONS.values()) * len(SCANS)
    for path in group.find_tables(out):
        source = pd.read_csv(path, sep="\t")
        stem, atlas = naming.scan_stem(path.name), naming.entities(path.name)["seg"]
        rows = long[(long.scan == stem) & (long.atlas == atlas)]
        assert rows["region"].tolist() == source["region"].tolist()
        assert rows["suvr"].tolist() == source["suvr_mean"].tolist()
        assert rows["volume_ml"].tolist() == source["volume_ml"].tolist()
    assert set(long["session_id"].dropna()) == {"ses-M000", "ses-M024"}
    assert set(long["tracer_name"]) == {"flortaucipir"}


def test_wide_table_has_one_row_per_scan_with_the_participant_values(dataset) -> None:
    _, out = dataset
    wide = group.wide_table(group.long_table(out))
    assert len(wide) == len(SCANS)
    for sub, ses in SCANS:
        stem = _stem(sub, ses)
        folder = out / f"sub-{sub}" / (f"ses-{ses}" if ses else "") / "pet"
        meta = pd.read_csv(next(folder.glob("*seg-MetaTemporal*.tsv")), sep="\t")
        row = wide.set_index("scan").loc[stem]
        assert row["MetaTemporal_metatemporal"] == meta.loc[0, "suvr_mean"]
        dk = pd.read_csv(next(folder.glob("*seg-DK*.tsv")), sep="\t").set_index("region")
        assert row["DK_left_entorhinal"] == dk.loc["left-entorhinal", "suvr_mean"]
    assert not any(c.startswith("MetaTemporal_reference") for c in wide)


def test_demographics_merge_with_per_visit_values(dataset) -> None:
    bids, out = dataset
    wide = group.add_demographics(group.wide_table(group.long_table(out)), bids).set_index("scan")
    assert wide.loc[_stem("001", "M024"), "age"] == 72.0  # sessions.tsv wins
    assert wide.loc[_stem("002", None), "age"] == 80.0
    assert wide.loc[_stem("001", "M000"), "diagnosis"] == "CN"


def test_run_group_writes_tables_qc_and_report(dataset) -> None:
    bids, out = dataset
    report = group.run_group(bids, out)
    assert report == out / "group" / "report.html" and report.exists()
    wide = pd.read_csv(out / "group" / "suvr_wide.tsv", sep="\t", na_values="n/a")
    cut = wide["tau_cutpoint"].iloc[0]
    assert (wide["tau_positive"] == (wide["MetaTemporal_metatemporal"] >= cut)).all()
    assert wide["braak_stage_estimate"].between(0, 6).all()
    qc = pd.read_csv(out / "group" / "qc.tsv", sep="\t", na_values="n/a", keep_default_na=False)
    assert (qc["max_fd_mm"] == 6.0).all() and qc["flags"].str.contains("motion").all()
    for name in ("suvr_long", "suvr_wide", "qc"):
        assert json.loads((out / "group" / f"{name}.json").read_text())["Description"]


def test_statsmodels_example_from_the_docs_runs(dataset) -> None:
    """The docs/group.md example, on the fixture's wide table."""
    import statsmodels.formula.api as smf

    bids, out = dataset
    group.run_group(bids, out)
    wide = pd.read_csv(out / "group" / "suvr_wide.tsv", sep="\t", na_values="n/a")
    fit = smf.ols("MetaTemporal_metatemporal ~ age", data=wide).fit()
    assert "age" in fit.params


def test_group_level_without_participant_outputs_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run the participant level first"):
        group.run_group(tmp_path, tmp_path)


def test_published_braak_stage_is_copied_per_scan_and_method(dataset) -> None:
    """A PVC Braak table and the participant _braakstage.tsv for one scan reach the wide table."""
    bids, out = dataset
    stem = _stem("001", "M000")
    folder = out / "sub-001" / "ses-M000" / "pet"
    plain = pd.read_csv(next(folder.glob("*seg-Braak*_suvr.tsv")), sep="\t")
    values = dict(zip([f"Braak{r}" for r in ("I", "II", "III", "IV", "V", "VI")],
                      [2.0, 1.9, 1.6, 1.5, 1.2, 1.1], strict=True))  # fmt: skip
    values.update(zip(staging.COMPOSITES, [1.9, 1.5, 1.15], strict=True))
    gtm = plain.assign(suvr_mean=plain["region"].map(values).fillna(1.0))  # reference: 1
    base = f"{stem}_space-MNI152NLin6Asym_seg-Braak_label-InfCerebGrey"
    gtm.to_csv(folder / f"{base}_pvc-GTM_suvr.tsv", sep="\t", index=False)
    stages = staging.stage_table({"none": plain, "gtm": gtm}, "flortaucipir", "InfCerebGrey")
    stages.to_csv(folder / f"{base}_braakstage.tsv", sep="\t", index=False, na_rep="n/a")
    group.run_group(bids, out)
    wide = pd.read_csv(out / "group" / "suvr_wide.tsv", sep="\t", na_values="n/a")
    rows = wide.set_index(["scan", "method"])
    assert rows.loc[(stem, "SUVR-PVC-GTM"), "braak_stage_published"] == 4
    assert rows.loc[(stem, "SUVR-PVC-GTM"), "braak_stage_published_label"] == "III-IV"
    assert rows.loc[(stem, "SUVR-PVC-GTM"), "braak_published_thresholds"] == "Maass2017_PVC"
    assert bool(rows.loc[(stem, "SUVR-PVC-GTM"), "braak_published_conforming"])
    assert rows["braak_stage_published"].drop((stem, "SUVR-PVC-GTM")).isna().all()
    assert len(wide) == len(SCANS) + 1


def test_qc_table_has_one_row_per_scan_with_pvc_tables(dataset) -> None:
    """Extra pvc- tables add rows to the wide table, never to the QC table."""
    bids, out = dataset
    stem = _stem("001", "M000")
    folder = out / "sub-001" / "ses-M000" / "pet"
    for path in sorted(folder.glob("*_seg-*_suvr.tsv")):
        shutil.copy(path, path.with_name(path.name.replace("_suvr.tsv", "_pvc-GTM_suvr.tsv")))
    group.run_group(bids, out)
    qc_rows = pd.read_csv(out / "group" / "qc.tsv", sep="\t")
    assert qc_rows.scan.is_unique and stem in set(qc_rows.scan)
    wide = pd.read_csv(out / "group" / "suvr_wide.tsv", sep="\t")
    assert (wide.scan == stem).sum() == 2
