"""Report figures as graph nodes: each interface writes a real SVG or PNG into its folder."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from taupet_bids import templates
from taupet_bids.core.figures import FIGURES, figure_name
from taupet_bids.interfaces.reportlets import (
    CoregistrationOverlay,
    MotionPlot,
    NormalisationOverlay,
    RegionOverlay,
    SUVRMontage,
)
from taupet_bids.reports.html import figure
from tests.phantoms import phantom

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: Smaller than any real figure: a blank or truncated file is caught.
MIN_BYTES = 5000


def _save(data: np.ndarray, affine: np.ndarray, path: Path) -> Path:
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


def _identity_xfm(path: Path) -> Path:
    import ants

    ants.write_transform(ants.create_ants_transform("AffineTransform", dimension=3), str(path))
    return path


def _suvr(tmp_path: Path, scale: float, name: str = "suvr.nii.gz") -> Path:
    """A template-space 'SUVR': the template T1w scaled to SUVR-like values."""
    t1w = nib.load(templates.t1w_path())
    data = np.asarray(t1w.dataobj, dtype=np.float32)
    return _save(scale * data / np.percentile(data[data > 0], 50), t1w.affine, tmp_path / name)


def _png(path: str) -> bytes:
    content = Path(path).read_bytes()
    assert content.startswith(PNG_MAGIC)
    assert len(content) > MIN_BYTES
    return content


@pytest.fixture(autouse=True)
def _templateflow(templateflow_home: Path) -> None:
    """Template and atlases at the working resolution, offline."""


def test_motion_plot_writes_svg(tmp_path) -> None:
    frames = np.arange(6)
    motion = pd.DataFrame({"frame": frames, "framewise_displacement": 0.1 * frames})
    for column in ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"):
        motion[column] = np.sin(frames + len(column))
    motion.to_csv(tmp_path / "motion.tsv", sep="\t", index=False)
    out = MotionPlot(in_file=str(tmp_path / "motion.tsv")).run(cwd=tmp_path).outputs.out_file
    text = Path(out).read_text()
    assert Path(out).suffix == ".svg" and "<svg" in text and len(text) > MIN_BYTES


def test_coregistration_overlay_writes_png(tmp_path) -> None:
    t1w, affine = phantom(shape=(48, 48, 48), vox=4.0)
    pet, _ = phantom(shift=(3, 0, 0), shape=(48, 48, 48), vox=4.0)
    result = CoregistrationOverlay(
        t1w=str(_save(t1w, affine, tmp_path / "t1w.nii.gz")),
        pet=str(_save(pet, affine, tmp_path / "pet.nii.gz")),
        pet2t1w=str(_identity_xfm(tmp_path / "pet2t1w.mat")),
        mask=str(_save((t1w > 0.5).astype(np.uint8), affine, tmp_path / "mask.nii.gz")),
    ).run(cwd=tmp_path)
    _png(result.outputs.out_file)


@pytest.mark.parametrize("with_transform", [False, True])
def test_normalisation_overlay_writes_png(tmp_path, with_transform: bool) -> None:
    transforms = [str(_identity_xfm(tmp_path / "affine.mat"))] if with_transform else []
    result = NormalisationOverlay(
        in_file=str(_suvr(tmp_path, 1.0)), transforms=transforms, title="SUVR (MR-less)"
    ).run(cwd=tmp_path)
    _png(result.outputs.out_file)


def test_region_overlay_writes_png(tmp_path) -> None:
    result = RegionOverlay(in_file=str(_suvr(tmp_path, 1.5)), reference_region="InfCerebGrey").run(
        cwd=tmp_path
    )
    _png(result.outputs.out_file)


def test_suvr_montage_differs_with_its_input(tmp_path) -> None:
    drawn = []
    for scale in (1.2, 2.5):
        node_dir = tmp_path / f"montage_{scale}"
        node_dir.mkdir()
        suvr = _suvr(node_dir, scale)
        drawn.append(_png(SUVRMontage(in_file=str(suvr)).run(cwd=node_dir).outputs.out_file))
    assert drawn[0] != drawn[1]


def test_figure_names_follow_the_scan_stem() -> None:
    stem = "sub-001_ses-M000_trc-18FAV1451"
    assert figure_name(stem, "motion") == f"{stem}_desc-motion_pet.svg"
    assert figure_name(stem, "pet2std") == f"{stem}_desc-pet2std_pet.png"
    keys = {
        "motion",
        "coreg",
        "t1w2std",
        "pet2std",
        "regions",
        "montage",
        "occlusion",
        "attribution",
        "harmonization",
    }
    assert set(FIGURES) == keys


def test_report_embeds_figure_files(tmp_path) -> None:
    svg = tmp_path / "plot.svg"
    svg.write_text('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>')
    png = tmp_path / "slices.png"
    png.write_bytes(PNG_MAGIC + b"pixels")
    assert figure(svg, "a plot") == (
        '<div class="svg" role="img" aria-label="a plot">'
        '<svg xmlns="http://www.w3.org/2000/svg"></svg></div>'
    )
    assert figure(png, "slices").startswith('<img alt="slices" src="data:image/png;base64,iVBORw0K')


def test_report_notes_a_missing_figure(tmp_path) -> None:
    note = figure(tmp_path / "sub-001_desc-coreg_pet.png", "coregistration")
    assert "Figure not available" in note and "sub-001_desc-coreg_pet.png" in note


@pytest.mark.parametrize(
    ("t1w", "registration"), [(True, {"coreg", "t1w2std"}), (False, {"pet2std"})]
)
def test_each_path_draws_its_figures_and_commits_them(tmp_path, t1w, registration) -> None:
    """The scan graph has one figure node per figure of its path, each sunk into figures/."""
    from taupet_bids.plan import plan_scan
    from taupet_bids.workflows.base import init_scan_wf
    from tests.test_plan import _checked, _config

    plan = plan_scan(_config(tmp_path), _checked(tmp_path, t1w=t1w))
    names = set(init_scan_wf(plan).list_node_names())
    keys = {"motion", "regions", "montage"} | registration
    drawn = {n.split(".")[-1] for n in names if n.startswith("reportlets_wf.figure_")}
    sunk = {n.split(".")[-1] for n in names if n.startswith("outputs_wf.ds_figure_")}
    assert drawn == {f"figure_{key}" for key in keys}
    assert sunk == {f"ds_figure_{key}" for key in keys}
    assert keys <= set(FIGURES)
