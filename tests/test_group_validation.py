"""The group level checks every file it reads (#13 C).

Small derivative folders are written by hand (the file names the participant level writes, as
in tests/test_group.py); one file of sub-002 is damaged at a time. Each case checks that the
warning names the file, that the healthy scans' rows in the group tables are byte-identical to
those of a group run made without sub-002, and that nothing is written when nothing is usable.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from taupet_bids import group
from taupet_bids.cli.run import main
from tests.test_group import SCANS, _stem, _write_scan

TABLES = ("suvr_long.tsv", "suvr_wide.tsv", "qc.tsv")
DAMAGED = _stem("002", None)
PET = Path("sub-002") / "pet"
BASE = f"{DAMAGED}_space-MNI152NLin6Asym"


@pytest.fixture(autouse=True)
def _templateflow(templateflow_home):
    """The CLI tests run taupet-bids in this process: TemplateFlow must get its home first."""


def _write_bids(bids: Path) -> None:
    bids.mkdir(parents=True)
    pd.DataFrame({"participant_id": ["sub-001", "sub-002"], "age": [70.0, 80.0],
                  "diagnosis": ["CN", "AD"]}).to_csv(bids / "participants.tsv", sep="\t",
                                                     index=False)  # fmt: skip
    (bids / "sub-001").mkdir()
    pd.DataFrame({"session_id": ["ses-M000", "ses-M024"], "age": [70.0, 72.0]}).to_csv(
        bids / "sub-001" / "sub-001_sessions.tsv", sep="\t", index=False
    )


def _write_outputs(out: Path) -> None:
    rng = np.random.default_rng(1)
    for sub, ses in SCANS:
        _write_scan(out, sub, ses, rng)


@pytest.fixture(scope="module")
def without_sub002(tmp_path_factory, templateflow_home) -> dict[str, bytes]:
    """The group tables of the same outputs with sub-002 removed: what a healthy row is."""
    root = tmp_path_factory.mktemp("clean")
    bids, out = root / "bids", root / "out"
    _write_bids(bids)
    _write_outputs(out)
    shutil.rmtree(out / "sub-002")
    group.run_group(bids, out)
    return {name: (out / "group" / name).read_bytes() for name in TABLES}


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    bids, out = tmp_path / "bids", tmp_path / "out"
    _write_bids(bids)
    _write_outputs(out)
    return bids, out


def _table(out: Path, atlas: str) -> Path:
    return out / PET / f"{BASE}_seg-{atlas}_label-InfCerebGrey_suvr.tsv"


def _truncate_half(path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[: len(lines) // 2]))


def _set_value(path: Path, column: str, value: str) -> None:
    table = pd.read_csv(path, sep="\t", dtype=str)
    table.loc[0, column] = value
    table.to_csv(path, sep="\t", index=False)


def _add_row(path: Path, region: str) -> None:
    path.write_text(path.read_text() + f"{region}\t1.1\t1.1\t0.1\t2.0\t16\n")


def _ragged(path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = lines[2].rstrip("\n") + "\textra\n"
    path.write_text("".join(lines))


def _renamed(path: Path, seg: str) -> Path:
    return path.with_name(path.name.replace("seg-DK", seg))


def _oversized(path: Path) -> None:
    with path.open("r+b") as handle:  # sparse: no disk used, refused from its size alone
        handle.truncate(group.MAX_FILE_BYTES + 2**20)


def _stage_table(out: Path, stage: str) -> Path:
    path = out / PET / f"{BASE}_seg-Braak_label-InfCerebGrey_braakstage.tsv"
    path.write_text(
        "method\tpvc\tbraak_stage\tbraak_stage_label\tbraak_conforming\tthreshold_set\n"
        f"SUVR\tnone\t{stage}\tn/a\tn/a\tn/a\n"
    )
    return path


#: name -> (damage sub-002's file, the file named, words of the problem)
CASES = {
    "dk_cut_in_half": (
        lambda out: _truncate_half(_table(out, "DK")),
        lambda out: _table(out, "DK"),
        "rows of a seg-DK table are missing",
    ),
    "random_bytes": (
        lambda out: _table(out, "DK").write_bytes(np.random.default_rng(0).bytes(4000)),
        lambda out: _table(out, "DK"),
        "is not UTF-8 text",
    ),
    "suvr_mean_abc": (
        lambda out: _set_value(_table(out, "MetaTemporal"), "suvr_mean", "abc"),
        lambda out: _table(out, "MetaTemporal"),
        "suvr_mean of region metatemporal is 'abc', not a number",
    ),
    "infinite_value": (
        lambda out: _set_value(_table(out, "Braak"), "suvr_median", "inf"),
        lambda out: _table(out, "Braak"),
        "suvr_median of region BraakI is infinite",
    ),
    "fractional_voxel_count": (
        lambda out: _set_value(_table(out, "Braak"), "n_voxels", "3.5"),
        lambda out: _table(out, "Braak"),
        "n_voxels of region BraakI is not a whole number",
    ),
    "negative_volume": (
        lambda out: _set_value(_table(out, "Braak"), "volume_ml", "-2"),
        lambda out: _table(out, "Braak"),
        "volume_ml of region BraakI is negative",
    ),
    "unknown_row": (
        lambda out: _set_value(_table(out, "MetaTemporal"), "region", "hippocampus"),
        lambda out: _table(out, "MetaTemporal"),
        "are missing (metatemporal) and it has row(s) no seg-MetaTemporal table has (hippocampus)",
    ),
    "missing_column": (
        lambda out: _table(out, "DK").write_text(
            pd.read_csv(_table(out, "DK"), sep="\t")
            .drop(columns="suvr_sd")
            .to_csv(sep="\t", index=False)
        ),
        lambda out: _table(out, "DK"),
        "lacks column(s) suvr_sd",
    ),
    "extra_row": (
        lambda out: _add_row(_table(out, "MetaTemporal"), "hippocampus"),
        lambda out: _table(out, "MetaTemporal"),
        "has row(s) no seg-MetaTemporal table has (hippocampus)",
    ),
    "repeated_row": (
        lambda out: _add_row(_table(out, "MetaTemporal"), "metatemporal"),
        lambda out: _table(out, "MetaTemporal"),
        "repeats row(s) metatemporal",
    ),
    "ragged_line": (
        lambda out: _ragged(_table(out, "DK")),
        lambda out: _table(out, "DK"),
        "line 3 has 7 field(s), the header 6",
    ),
    "empty_table": (
        lambda out: _table(out, "Braak").write_text(""),
        lambda out: _table(out, "Braak"),
        "is empty",
    ),
    "larger_than_the_cap": (
        lambda out: _oversized(_table(out, "DK")),
        lambda out: _table(out, "DK"),
        "is 51 MB, more than the 50 MB the group level reads",
    ),
    "unknown_atlas": (
        lambda out: shutil.copy(_table(out, "DK"), _renamed(_table(out, "DK"), "seg-XX")),
        lambda out: _renamed(_table(out, "DK"), "seg-XX"),
        "seg-XX is not an atlas taupet-bids writes",
    ),
    "broken_sidecar": (
        lambda out: _table(out, "DK").with_suffix(".json").write_text("{not json"),
        lambda out: _table(out, "DK").with_suffix(".json"),
        "is not valid JSON",
    ),
    "qc_record_with_text_for_a_number": (
        lambda out: (out / PET / f"{DAMAGED}_qc.json").write_text('{"max_fd_mm": "large"}'),
        lambda out: out / PET / f"{DAMAGED}_qc.json",
        "max_fd_mm is 'large', not a number",
    ),
    "braak_stage_3": (
        lambda out: _stage_table(out, "3"),
        lambda out: _stage_table(out, "3"),
        "braak_stage of method SUVR is 3, not 0, 2, 4 or 6",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_damaged_file_leaves_its_scan_out_and_the_others_unchanged(
    case: str, dataset, without_sub002, caplog
) -> None:
    bids, out = dataset
    damage, named, problem = CASES[case]
    damage(out)
    with caplog.at_level(logging.WARNING, logger="taupet_bids"):
        group.run_group(bids, out)
    lines = [r.getMessage() for r in caplog.records if str(named(out)) in r.getMessage()]
    assert len(lines) == 1, caplog.text
    assert problem in lines[0] and f"scan {DAMAGED} left out" in lines[0], lines[0]
    assert "\n" not in lines[0]
    assert "Traceback" not in caplog.text
    for name in TABLES:  # the healthy scans' rows, byte for byte
        assert (out / "group" / name).read_bytes() == without_sub002[name], name
    sidecar = json.loads((out / "group" / "suvr_wide.json").read_text())
    assert [s["File"] for s in sidecar["Skipped"]] == [str(named(out))]
    assert problem in sidecar["Skipped"][0]["Problem"]
    summary = [
        r.getMessage()
        for r in caplog.records
        if "group tables written leaving out" in r.getMessage()
    ]
    assert summary and f"leaving out 1 scan(s) ({DAMAGED});" in summary[0]


def test_no_skipped_entries_on_healthy_outputs(dataset, caplog) -> None:
    bids, out = dataset
    with caplog.at_level(logging.WARNING, logger="taupet_bids"):
        group.run_group(bids, out)
    assert not caplog.records
    for name in ("suvr_long", "suvr_wide", "qc"):
        assert json.loads((out / "group" / f"{name}.json").read_text())["Skipped"] == []


def test_a_scan_is_left_out_whole_even_when_one_pvc_table_is_damaged(dataset, without_sub002):
    """A damaged PVC table drops the scan's uncorrected rows too (gather's docstring)."""
    bids, out = dataset
    pvc = _table(out, "DK").with_name(_table(out, "DK").name.replace("_suvr", "_pvc-GTM_suvr"))
    shutil.copy(_table(out, "DK"), pvc)
    _truncate_half(pvc)
    group.run_group(bids, out)
    long = pd.read_csv(out / "group" / "suvr_long.tsv", sep="\t")
    assert DAMAGED not in set(long["scan"])
    assert (out / "group" / "suvr_long.tsv").read_bytes() == without_sub002["suvr_long.tsv"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (bytes(range(128, 256)) * 8, "is not UTF-8 text"),
        (b"participant_id\tage\nsub-001\t70\nsub-002\t80\t3\n", "line 3 has 3 field(s)"),
        (b"participant_id\tage\nsub-001\nsub-002\t80\n", "line 2 has 1 field(s)"),
        (b"subject\tage\nsub-001\t70\nsub-002\t80\n", "has no participant_id column"),
        (b"participant_id\tage\nsub-001\t70\nsub-001\t80\n", "sub-001 is on more than one row"),
        (b"participant_id\tage\n001\t70\n002\t80\n", "'001' does not start with sub-"),
        (b'participant_id\tage\n"sub-001\t70\n', "cannot be parsed as a TSV table"),
        (b"", "is empty"),
    ],
    ids=[
        "bytes",
        "ragged_long",
        "ragged_short",
        "no_id",
        "repeated_id",
        "no_prefix",
        "quote",
        "empty",
    ],  # fmt: skip
)
def test_a_broken_participants_tsv_is_left_out_with_a_warning(
    content: bytes, problem: str, dataset, without_sub002, caplog
) -> None:
    bids, out = dataset
    shutil.rmtree(out / "sub-002")
    (bids / "participants.tsv").write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="taupet_bids"):
        group.run_group(bids, out)
    lines = [r.getMessage() for r in caplog.records if "participants.tsv" in r.getMessage()]
    assert lines and str(bids / "participants.tsv") in lines[0] and problem in lines[0], lines
    assert "continuing without it" in lines[0] and "cut-point rule" in lines[0]
    assert "Traceback" not in caplog.text
    wide = pd.read_csv(out / "group" / "suvr_wide.tsv", sep="\t", na_values="n/a")
    assert "diagnosis" not in wide and wide["braak_rule"].str.startswith("cut-point").all()
    clean = pd.read_csv(pd.io.common.BytesIO(without_sub002["suvr_wide.tsv"]), sep="\t",
                        na_values="n/a")  # fmt: skip
    regions = [c for c in clean if c.startswith(("DK_", "Braak_", "MetaTemporal_"))]
    pd.testing.assert_frame_equal(wide[regions], clean[regions])
    assert (out / "group" / "suvr_long.tsv").read_bytes() == without_sub002["suvr_long.tsv"]
    skipped = json.loads((out / "group" / "suvr_wide.json").read_text())["Skipped"]
    assert [s["File"] for s in skipped] == [str(bids / "participants.tsv")]


def test_a_participants_tsv_with_a_byte_order_mark_is_read(dataset, caplog) -> None:
    """Spreadsheets save UTF-8 with a byte-order mark; pandas accepted it, so does the check."""
    bids, out = dataset
    path = bids / "participants.tsv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    with caplog.at_level(logging.WARNING, logger="taupet_bids"):
        group.run_group(bids, out)
    assert not caplog.records, caplog.text
    wide = pd.read_csv(out / "group" / "suvr_wide.tsv", sep="\t").set_index("scan")
    assert wide.loc[_stem("002", None), "diagnosis"] == "AD"


def test_a_broken_sessions_tsv_keeps_the_baseline_values(dataset, caplog) -> None:
    bids, out = dataset
    sessions = bids / "sub-001" / "sub-001_sessions.tsv"
    sessions.write_text("session_id\tage\nses-M000\t70\nses-M000\t72\n")
    with caplog.at_level(logging.WARNING, logger="taupet_bids"):
        group.run_group(bids, out)
    assert any(str(sessions) in r.getMessage() and "ses-M000 is on more than one row"
               in r.getMessage() for r in caplog.records), caplog.text  # fmt: skip
    wide = pd.read_csv(out / "group" / "suvr_wide.tsv", sep="\t").set_index("scan")
    assert wide.loc[_stem("001", "M024"), "age"] == 70.0  # participants.tsv's, not 72


def test_participants_columns_named_like_group_columns_are_left_out(dataset, caplog) -> None:
    bids, out = dataset
    pd.DataFrame({"participant_id": ["sub-001", "sub-002"], "session_id": ["x", "y"],
                  "tau_positive": [1, 0], "age": [70.0, 80.0]}).to_csv(
        bids / "participants.tsv", sep="\t", index=False)  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="taupet_bids"):
        group.run_group(bids, out)
    assert any("session_id, tau_positive" in r.getMessage() for r in caplog.records)
    wide = pd.read_csv(out / "group" / "suvr_wide.tsv", sep="\t", na_values="n/a")
    assert set(wide["session_id"].dropna()) == {"ses-M000", "ses-M024"} and "age" in wide


def _files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize("existing", [False, True])
def test_nothing_to_gather_is_refused_with_one_line_and_nothing_written(
    tmp_path: Path, existing: bool, capsys
) -> None:
    bids, out = tmp_path / "bids", tmp_path / "out"
    _write_bids(bids)
    if existing:
        out.mkdir()
    assert main([str(bids), str(out), "group"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no regional tables under" in err
    assert "run the participant level first" in err and "Traceback" not in err
    assert out.exists() == existing and _files(out) == []


def test_every_scan_damaged_is_refused_and_nothing_written(dataset, capsys) -> None:
    bids, out = dataset
    for table in group.find_tables(out):
        if "seg-DK" in table.name:
            _truncate_half(table)
    before = _files(out)
    assert main([str(bids), str(out), "group"]) == 1
    err = capsys.readouterr().err
    assert "no usable regional table under" in err and "every scan was left out" in err
    assert err.strip().splitlines()[-1].startswith("taupet-bids: error:")
    assert _files(out) == before  # no group folder, no dataset_description.json, no log
    with pytest.raises(group.NothingToGather):
        group.run_group(bids, out)


def test_cli_exit_code_is_1_and_says_what_was_left_out(dataset, capsys) -> None:
    bids, out = dataset
    _truncate_half(_table(out, "DK"))
    (bids / "participants.tsv").write_bytes(b"\xff\xfe")
    assert main([str(bids), str(out), "group"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"taupet-bids: group tables written leaving out 1 scan(s) ({DAMAGED}) and "
                   "1 BIDS file(s), in whole or in part (participants.tsv); the warnings above "
                   "and Skipped in group/suvr_wide.json say why"]  # fmt: skip
    report = (out / "group" / "report.html").read_text()
    assert "Left out of the group tables (2 file(s)" in report and _table(out, "DK").name in report


def test_cli_exit_code_is_0_when_nothing_was_left_out(dataset, capsys) -> None:
    bids, out = dataset
    assert main([str(bids), str(out), "group"]) == 0
    assert capsys.readouterr().err == ""


def test_read_text_refuses_a_large_file_unread(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "big.tsv"
    path.write_text("region\n" + "x\n" * 100)
    monkeypatch.setattr(group, "MAX_FILE_BYTES", 50)
    opened = []
    monkeypatch.setattr(Path, "open", lambda *a, **k: opened.append(a) or 1 / 0)
    with pytest.raises(
        group.UnusableFile,
        match="big.tsv: is 207 bytes, more than the 50 bytes the group level reads",
    ):
        group.read_text(path)
    assert opened == []
