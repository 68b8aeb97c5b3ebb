"""Per-scanner resolution: the table lookup, the plan's PSF per scan, smoothing to a uniform FWHM.

A multi-scanner cohort has no single PSF; these tests check that each scan gets its own, from
the right source, and that smoothing reaches the target resolution it claims.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from taupet_bids import scanners
from taupet_bids.core.pvc import FWHM_PER_SIGMA, combine_fwhm
from taupet_bids.core.resolution import kernel_fwhm, smooth_to_fwhm
from taupet_bids.errors import InputError
from tests.test_plan import _checked, _config

HEADER = "\t".join(scanners.COLUMNS)
MCT = {"Manufacturer": "Siemens", "ManufacturersModelName": "Biograph mCT",
       "ReconMethodName": "OSEM3D+TOF", "ReconFilterType": "Gaussian",
       "ReconFilterSize": 2.0}  # fmt: skip
INGENUITY = {"Manufacturer": "Philips", "ManufacturersModelName": "Ingenuity TF",
             "ReconMethodName": "BLOB-OS-TF", "ReconFilterType": "none",
             "ReconFilterSize": 0}  # fmt: skip


@pytest.fixture(autouse=True)
def _templateflow(templateflow_home):
    """The plan imports TemplateFlow through the workflows' helpers."""


def _table(tmp_path: Path, *rows: str, header: str = HEADER, name: str = "mine.tsv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


# --- the table -------------------------------------------------------------------------------


def test_the_shipped_table_reads_and_has_the_simulator_systems():
    rows = scanners.read_table(scanners.SHIPPED_TABLE)
    assert all(row.source for row in rows)
    assert scanners.lookup(MCT).fwhm_mm == 6.5
    assert scanners.lookup(INGENUITY).fwhm_mm == 7.0
    hrplus = {"Manufacturer": "Siemens", "ManufacturersModelName": "ECAT HR+",
              "ReconMethodName": "OSEM2D", "ReconFilterType": "Gaussian",
              "ReconFilterSize": 4.0}  # fmt: skip
    assert scanners.lookup(hrplus).fwhm_mm == 7.5
    for row in (scanners.lookup(s) for s in (MCT, INGENUITY, hrplus)):
        assert row.fwhm_kind == "effective" and "simulator" in row.source


def test_the_simulator_rows_lie_in_its_ranges():
    """The table's values for the simulated systems are inside what the simulator draws."""
    from taupet_bids.simulate.modalities.taupet import SCANNERS

    for scanner in SCANNERS:
        row = scanners.lookup({
            "Manufacturer": scanner.manufacturer, "ManufacturersModelName": scanner.model,
            "ReconMethodName": scanner.recon,
            "ReconFilterType": "Gaussian" if scanner.filter_mm else "none",
            "ReconFilterSize": scanner.filter_mm,
        })  # fmt: skip
        assert row is not None and row.fwhm_kind == "effective"
        assert row.fwhm_mm == pytest.approx(sum(scanner.fwhm_mm) / 2)


def test_case_and_whitespace_do_not_matter():
    row = scanners.lookup({**MCT, "Manufacturer": " SIEMENS ",
                           "ManufacturersModelName": "biograph   MCT",
                           "ReconMethodName": "osem3d+tof"})  # fmt: skip
    assert row is not None and row.fwhm_mm == 6.5


def test_an_exact_row_beats_a_wildcard_and_a_wildcard_catches_the_rest():
    exact = scanners.lookup(MCT)
    assert exact.recon_method == "OSEM3D+TOF" and exact.specificity == 2
    other_recon = scanners.lookup({**MCT, "ReconMethodName": "OSEM3D"})
    assert other_recon.recon_method == "*" and other_recon.fwhm_kind == "system"
    other_filter = scanners.lookup({**MCT, "ReconFilterSize": 5.0})
    assert other_filter.fwhm_mm == 4.4  # the recon matches but the filter does not
    assert scanners.lookup({**MCT, "ManufacturersModelName": "Biograph mCT Flow"}) is None


def test_recon_only_row_beats_a_full_wildcard(tmp_path):
    table = _table(
        tmp_path,
        "Acme\tBrainScan\t*\t*\t6.0\teffective\tguess",
        "Acme\tBrainScan\tOSEM\t*\t7.0\teffective\tphantom",
        "Acme\tBrainScan\t*\t3\t8.0\teffective\tother",
    )  # fmt: skip
    scan = {
        "Manufacturer": "Acme",
        "ManufacturersModelName": "BrainScan",
        "ReconMethodName": "OSEM",
        "ReconFilterType": "Gaussian",
        "ReconFilterSize": 3.0,
    }
    # Two rows of specificity 1: the first in the file wins.
    assert scanners.lookup(scan, table).fwhm_mm == 7.0
    assert scanners.lookup({**scan, "ReconMethodName": "FBP"}, table).fwhm_mm == 8.0
    assert scanners.lookup({**scan, "ReconFilterType": "Hann"}, table).fwhm_mm == 7.0


def test_the_users_rows_come_first(tmp_path):
    table = _table(tmp_path, "siemens\tbiograph mct\t*\t*\t5.5\teffective\tour Hoffman phantom")
    row = scanners.lookup(MCT, table)
    assert row.fwhm_mm == 5.5 and row.origin == "mine.tsv:2" and "Hoffman" in row.describe()
    # Scanners the user's file does not name still come from the shipped table.
    assert scanners.lookup(INGENUITY, table).fwhm_mm == 7.0


@pytest.mark.parametrize(
    ("rows", "header", "problem"),
    [
        ([], "manufacturer\tmodel\tfwhm_mm", "line 1: missing column(s) recon_method, filter_mm"),
        (["Acme\tX\t*\t*\tsharp\teffective\ts"], HEADER, "line 2: fwhm_mm 'sharp' is not a number"),
        (["Acme\tX\t*\t*\t6\teffective\ts", "Acme\tY\t*\t*\t0.5\teffective\ts"], HEADER,
         "line 3: fwhm_mm 0.5 is outside 1-20 mm"),
        (["Acme\tX\t*\t*\t45\teffective\ts"], HEADER, "line 2: fwhm_mm 45 is outside 1-20 mm"),
        (["Acme\tX\t*\tsoft\t6\teffective\ts"], HEADER, "line 2: filter_mm 'soft'"),
        (["Acme\tX\t*\t*\t6\tnema\ts"], HEADER, "line 2: fwhm_kind 'nema'"),
        (["Acme\tX\t*\t*\t6\teffective"], HEADER, "line 2: 6 tab-separated cells"),
        (["Acme\tX\t*\t*\t6\teffective\t"], HEADER, "line 2: source is empty"),
    ],
)  # fmt: skip
def test_a_bad_user_table_names_the_file_and_the_line(tmp_path, rows, header, problem):
    table = _table(tmp_path, *rows, header=header, name=f"bad{abs(hash(problem))}.tsv")
    with pytest.raises(scanners.ScannerTableError) as caught:
        scanners.lookup(MCT, table)
    assert str(table) in str(caught.value) and problem in str(caught.value)


def test_comments_and_blank_lines_keep_line_numbers(tmp_path):
    table = tmp_path / "commented.tsv"
    table.write_text(f"# my site\n\n{HEADER}\n# phantom 2024\nAcme\tX\t*\t*\t99\teffective\ts\n")
    with pytest.raises(scanners.ScannerTableError, match="line 5: fwhm_mm 99"):
        scanners.read_table(table)


def test_sidecar_filter():
    assert scanners.sidecar_filter_mm({"ReconFilterType": "none", "ReconFilterSize": 0}) == 0
    assert scanners.sidecar_filter_mm({}) == 0
    assert scanners.sidecar_filter_mm({"ReconFilterType": "Hann", "ReconFilterSize": 4}) is None
    both = {"ReconFilterType": ["Gaussian", "Gaussian"], "ReconFilterSize": [3.0, 4.0]}
    assert scanners.sidecar_filter_mm(both) == pytest.approx(5.0)


# --- the plan: one PSF per scan ---------------------------------------------------------------


def test_two_scanners_two_psfs(tmp_path):
    """Without --pvc-fwhm each scan gets its own scanner's PSF, and says where it came from."""
    from taupet_bids.plan import plan_scan

    config = _config(tmp_path, pvc=("gtm",))
    mct = plan_scan(config, _checked(tmp_path / "a", **MCT))
    ingenuity = plan_scan(config, _checked(tmp_path / "b", **INGENUITY))
    assert (mct.pvc_fwhm_mm, ingenuity.pvc_fwhm_mm) == (6.5, 7.0)
    assert "Biograph mCT" in mct.pvc_fwhm_source and "Ingenuity TF" in ingenuity.pvc_fwhm_source
    assert mct.smooth_to_fwhm_mm is None and mct.smooth_kernel_mm is None


def test_precedence_pvc_fwhm_then_table_then_scanner_fwhm(tmp_path):
    from taupet_bids.plan import plan_scan

    mct = _checked(tmp_path / "a", **MCT)
    other = _checked(tmp_path / "b", **{**MCT, "ManufacturersModelName": "Prototype 1"})
    given = plan_scan(_config(tmp_path, pvc=("gtm",), pvc_fwhm=5.0, pvc_scanner_fwhm=3.0), mct)
    assert given.pvc_fwhm_mm == 5.0 and given.pvc_fwhm_source.startswith("--pvc-fwhm")
    both = _config(tmp_path, pvc=("gtm",), pvc_scanner_fwhm=3.0)
    assert plan_scan(both, mct).pvc_fwhm_mm == 6.5  # the table beats --pvc-scanner-fwhm
    fallback = plan_scan(both, other)
    assert fallback.pvc_fwhm_mm == pytest.approx(combine_fwhm(3.0, 2.0))
    assert fallback.pvc_fwhm_source.startswith("--pvc-scanner-fwhm 3")
    # A system row adds the sidecar's Gaussian filter, as --pvc-scanner-fwhm does.
    osem = _checked(tmp_path / "c", **{**MCT, "ReconMethodName": "OSEM3D"})
    system = plan_scan(_config(tmp_path, pvc=("gtm",)), osem)
    assert system.pvc_fwhm_mm == pytest.approx(combine_fwhm(4.4, 2.0))
    assert "combined with the sidecar's Gaussian filter" in system.pvc_fwhm_source


def test_a_user_table_changes_the_psf(tmp_path):
    from taupet_bids.plan import plan_scan

    table = _table(tmp_path, "Siemens\tBiograph mCT\tOSEM3D+TOF\t2\t5.8\teffective\tphantom")
    plan = plan_scan(_config(tmp_path, pvc=("gtm",), scanner_resolution=table),
                     _checked(tmp_path / "a", **MCT))  # fmt: skip
    assert plan.pvc_fwhm_mm == 5.8 and "mine.tsv:2" in plan.pvc_fwhm_source


def test_an_unknown_scanner_is_refused_naming_the_sidecar(tmp_path):
    from taupet_bids.plan import plan_scan

    checked = _checked(tmp_path, **{**MCT, "ManufacturersModelName": "Prototype 1"})
    with pytest.raises(InputError, match=r"sub-01_trc-FTP_pet.json: no resolution for --pvc: "
                       r"the scanner 'Siemens Prototype 1'.*--scanner-resolution"):  # fmt: skip
        plan_scan(_config(tmp_path, pvc=("gtm",)), checked)
    with pytest.raises(InputError, match="no resolution for --smooth-to-fwhm"):
        plan_scan(_config(tmp_path, smooth_to_fwhm=8.0), checked)
    # Neither option: nothing needs the resolution, so the scan is planned.
    assert plan_scan(_config(tmp_path), checked).scan_fwhm_mm is None


def test_smoothing_sets_the_psf_to_the_target(tmp_path):
    from taupet_bids.plan import plan_scan

    config = _config(tmp_path, pvc=("gtm",), smooth_to_fwhm=7.2)
    mct = plan_scan(config, _checked(tmp_path / "a", **MCT))
    assert mct.scan_fwhm_mm == 6.5 and mct.pvc_fwhm_mm == 7.2
    assert mct.smooth_kernel_mm == pytest.approx(np.sqrt(7.2**2 - 6.5**2))
    assert mct.pvc_fwhm_source.startswith("--smooth-to-fwhm 7.2")
    hrplus = {**MCT, "ManufacturersModelName": "ECAT HR+", "ReconMethodName": "OSEM2D",
              "ReconFilterSize": 4.0}  # fmt: skip
    coarse = plan_scan(config, _checked(tmp_path / "b", **hrplus))
    assert coarse.scan_fwhm_mm == 7.5 and coarse.smooth_kernel_mm == 0.0
    assert coarse.pvc_fwhm_mm == 7.5 and "not smoothed" in coarse.pvc_fwhm_source


# --- the command line -------------------------------------------------------------------------


def _parse(tmp_path, *extra):
    from taupet_bids.cli.parser import parse_args

    return parse_args([str(tmp_path), str(tmp_path / "out"), "participant", *extra])


def test_pvc_alone_is_accepted(tmp_path):
    config = _parse(tmp_path, "--pvc", "gtm")
    assert config.pvc == ("gtm",) and config.pvc_fwhm is None and config.pvc_scanner_fwhm is None


def test_cli_takes_a_table_and_a_target(tmp_path):
    table = _table(tmp_path, "Acme\tX\t*\t*\t6\teffective\tphantom")
    config = _parse(tmp_path, "--scanner-resolution", str(table), "--smooth-to-fwhm", "8")
    assert config.scanner_resolution == table.absolute() and config.smooth_to_fwhm == 8.0


@pytest.mark.parametrize(
    ("rows", "problem"),
    [(["Acme\tX\t*\t*\t25\teffective\tphantom"], "line 2: fwhm_mm 25 is outside 1-20 mm"),
     (None, "is not a file")],
)  # fmt: skip
def test_cli_refuses_a_bad_table(tmp_path, capsys, rows, problem):
    table = _table(tmp_path, *rows, name="cli.tsv") if rows else tmp_path / "missing.tsv"
    with pytest.raises(SystemExit):
        _parse(tmp_path, "--pvc", "gtm", "--scanner-resolution", str(table))
    err = capsys.readouterr().err
    assert "--scanner-resolution" in err and str(table) in err and problem in err


def test_cli_refuses_a_silly_target(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _parse(tmp_path, "--smooth-to-fwhm", "0")
    assert "between 0 and 30" in capsys.readouterr().err


# --- smoothing --------------------------------------------------------------------------------


def _measured_fwhm(profile: np.ndarray, voxel_mm: float) -> float:
    """FWHM of a centred Gaussian profile from its second moment (robust to sampling)."""
    x = (np.arange(profile.size) - profile.size // 2) * voxel_mm
    weights = profile / profile.sum()
    return float(np.sqrt((weights * x**2).sum() - (weights * x).sum() ** 2) * FWHM_PER_SIGMA)


@pytest.mark.parametrize(("scan", "target", "zooms"), [(6.0, 8.0, (2.0, 2.0, 2.0)),
                                                       (4.4, 8.0, (1.5, 1.5, 2.5))])  # fmt: skip
def test_a_point_source_reaches_the_target_fwhm(scan, target, zooms):
    from scipy import ndimage

    shape = (61, 61, 41)
    point = np.zeros(shape)
    point[30, 30, 20] = 1000.0
    sigma = [scan / FWHM_PER_SIGMA / z for z in zooms]
    blurred = ndimage.gaussian_filter(point, sigma, mode="constant", truncate=6.0)
    for axis, zoom in enumerate(zooms):  # the scan is at its stated resolution
        profile = blurred.sum(axis=tuple(a for a in range(3) if a != axis))
        assert _measured_fwhm(profile, zoom) == pytest.approx(scan, rel=0.05)
    smoothed, kernel = smooth_to_fwhm(blurred, zooms, scan, target)
    assert kernel == pytest.approx(np.sqrt(target**2 - scan**2))
    for axis, zoom in enumerate(zooms):
        profile = smoothed.sum(axis=tuple(a for a in range(3) if a != axis))
        assert _measured_fwhm(profile, zoom) == pytest.approx(target, rel=0.05)
    assert smoothed.sum() == pytest.approx(blurred.sum(), rel=1e-3)  # activity kept


def test_a_scan_at_or_coarser_than_the_target_is_left_alone():
    data = np.random.default_rng(0).random((8, 8, 8))
    for scan in (8.0, 9.5):
        out, kernel = smooth_to_fwhm(data, (2.0, 2.0, 2.0), scan, 8.0)
        assert kernel == 0.0 and out is data
    assert kernel_fwhm(8.0, 6.0) == pytest.approx(np.sqrt(28.0))
    with pytest.raises(ValueError):
        kernel_fwhm(8.0, 0.0)


def test_nan_voxels_stay_nan_and_do_not_spread():
    data = np.ones((12, 12, 12))
    data[0, 0, 0] = np.nan
    out, _ = smooth_to_fwhm(data, (2.0, 2.0, 2.0), 4.0, 8.0)
    assert np.isnan(out[0, 0, 0]) and np.isfinite(out).sum() == data.size - 1


def test_the_interface_writes_the_smoothed_image_or_passes_the_input(tmp_path, monkeypatch):
    from taupet_bids.interfaces.resolution import SmoothToFWHM

    monkeypatch.chdir(tmp_path)
    data = np.zeros((21, 21, 21), np.float32)
    data[10, 10, 10] = 1.0
    path = tmp_path / "pet.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0])), path)
    result = SmoothToFWHM(in_file=str(path), scan_fwhm_mm=6.0, target_fwhm_mm=8.0).run()
    assert result.outputs.kernel_fwhm_mm == pytest.approx(np.sqrt(28.0))
    out = np.asarray(nib.load(result.outputs.out_file).dataobj)
    assert out.max() < 0.5 and out.sum() == pytest.approx(1.0, rel=1e-3)
    same = SmoothToFWHM(in_file=str(path), scan_fwhm_mm=8.5, target_fwhm_mm=8.0).run()
    assert same.outputs.kernel_fwhm_mm == 0.0 and same.outputs.out_file == str(path)


# --- graph and sidecars -----------------------------------------------------------------------


def test_the_graph_smooths_only_when_asked_and_the_sidecars_say_so(tmp_path):
    from taupet_bids.plan import plan_scan
    from taupet_bids.workflows.outputs import init_outputs_wf
    from taupet_bids.workflows.pet import init_pet_preproc_wf

    checked = _checked(tmp_path, **MCT)
    plain = plan_scan(_config(tmp_path, pvc=("gtm",)), checked)
    assert "smooth_to_fwhm" not in init_pet_preproc_wf(plain).list_node_names()
    sinks = init_outputs_wf(plain)
    assert "SmoothedToFWHM" not in sinks.get_node("ds_suvr").interface._metadata
    pvc_sink = sinks.get_node("ds_table_DK_pvc_gtm").interface
    assert pvc_sink._metadata["PSFFWHM"] == 6.5
    assert "Biograph mCT" in pvc_sink._metadata["PSFFWHMSource"]

    smoothed = plan_scan(_config(tmp_path, pvc=("gtm",), smooth_to_fwhm=8.0), checked)
    workflow = init_pet_preproc_wf(smoothed)
    node = workflow.get_node("smooth_to_fwhm")
    assert (node.inputs.scan_fwhm_mm, node.inputs.target_fwhm_mm) == (6.5, 8.0)
    sinks = init_outputs_wf(smoothed)
    suvr = sinks.get_node("ds_suvr").interface._metadata
    assert suvr["SmoothedToFWHM"] == 8.0 and suvr["ScanFWHM"] == 6.5
    assert suvr["SmoothingKernelFWHM"] == pytest.approx(np.sqrt(64 - 6.5**2))
    assert "SmoothingNote" not in suvr
    assert sinks.get_node("ds_pet_preproc").interface._metadata["SmoothedToFWHM"] == 8.0
    pvc_meta = sinks.get_node("ds_table_DK_pvc_gtm").interface._metadata
    assert pvc_meta["PSFFWHM"] == 8.0 and pvc_meta["SmoothedToFWHM"] == 8.0
    json.dumps(pvc_meta)  # the sidecar must be writable as JSON


def test_methods_text_names_per_scanner_psfs_and_the_smoothing(tmp_path):
    from taupet_bids.boilerplate import methods_text

    def text(**options) -> str:
        return " ".join(methods_text(_config(tmp_path, **options)).split())

    table = text(pvc=("gtm",), scanner_resolution=tmp_path / "site.tsv")
    assert "per-scanner resolution table (site.tsv" in table
    assert "smoothed" not in table and "--pvc-fwhm" not in table
    smoothed = text(pvc=("gtm",), smooth_to_fwhm=8.0)
    assert "uniform resolution of 8 mm FWHM [joshi]" in smoothed
    assert "sqrt(8^2 - f^2)" in smoothed and "function of 8 mm FWHM" in smoothed
    assert "Joshi A, Koeppe RA, Fessler JA (2009)" in smoothed
    fixed = text(pvc=("gtm",), pvc_fwhm=6.0)
    assert "function of 6 mm FWHM" in fixed and "per-scanner" not in fixed
