"""Report figures of one scan, drawn inside the participant graph and saved as files.

Each function draws one figure and writes it to ``out_file``: SVG for plots, PNG for brain
slices (which would be megabytes as vector graphics). The figures are committed with the other
derivatives (``sub-<label>/figures/``), so the report only embeds files that already exist and
can be rebuilt from the output folder alone. Brain figures use nilearn; the images are brought
into a common space with antspyx and the transforms the participant level wrote.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from nilearn import plotting  # noqa: E402

DPI = 90

#: Figure key (the ``desc-`` of its file name) -> (file extension, alt text in the report).
FIGURES: dict[str, tuple[str, str]] = {
    "motion": ("svg", "motion parameters per frame"),
    "coreg": ("png", "PET-to-T1w coregistration overlay"),
    "t1w2std": ("png", "T1w on the template brain outline"),
    "pet2std": ("png", "SUVR (MR-less) on the template brain outline"),
    "regions": ("png", "reference region and ROI overlays on the SUVR image"),
    "montage": ("png", "SUVR montage"),
    "occlusion": ("png", "occlusion sensitivity of the AD-vs-CN classifier"),
    "attribution": ("png", "integrated-gradients attribution of the AD-vs-CN classifier"),
    "harmonization": ("png", "PET-MR to PET-CT correction applied by --harmonize"),
}


def figure_name(stem: str, key: str) -> str:
    """File name of one of a scan's figures: ``<stem>_desc-<key>_pet.<svg|png>``."""
    extension, _ = FIGURES[key]
    return f"{stem}_desc-{key}_pet.{extension}"


def svg_text(fig: plt.Figure) -> str:
    """The figure as an SVG document (closes the figure)."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _save_png(fig: plt.Figure, out_file: Path) -> Path:
    fig.savefig(out_file, format="png", dpi=DPI, bbox_inches="tight",
                facecolor=fig.get_facecolor())  # fmt: skip
    plt.close(fig)
    return out_file


def _ants_to_nifti(image) -> nib.Nifti1Image:
    """An antspyx image as nibabel, via a temporary file (keeps the affine exact)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "image.nii.gz"
        image.to_file(str(path))
        loaded = nib.load(path)
        return nib.Nifti1Image(np.asarray(loaded.dataobj, dtype=np.float32), loaded.affine)


def resample(moving: Path, fixed: Path, transforms: list[Path]) -> nib.Nifti1Image:
    """``moving`` on the grid of ``fixed`` through ANTs transforms (ANTs order)."""
    import ants

    out = ants.apply_transforms(
        fixed=ants.image_read(str(fixed)),
        moving=ants.image_read(str(moving)),
        transformlist=[str(t) for t in transforms],
        interpolator="linear",
    )
    return _ants_to_nifti(out)


def motion_plot(motion_tsv: Path, out_file: Path) -> Path:
    """Translations, rotations and framewise displacement per frame."""
    motion = pd.read_csv(motion_tsv, sep="\t")
    fig, axes = plt.subplots(1, 3, figsize=(11, 2.6))
    for ax, columns, unit in (
        (axes[0], ["trans_x", "trans_y", "trans_z"], "mm"),
        (axes[1], ["rot_x", "rot_y", "rot_z"], "degrees"),
        (axes[2], ["framewise_displacement"], "mm"),
    ):
        for column in columns:
            ax.plot(motion["frame"], motion[column], marker="o", label=column)
        ax.set_xlabel("frame")
        ax.set_ylabel(unit)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out_file.write_text(svg_text(fig))
    return out_file


def coregistration_overlay(
    t1w: Path, pet: Path, pet2t1w: list[Path], mask: Path, out_file: Path
) -> Path:
    """PET resampled onto the T1w, with the brain-mask outline: do edges line up?"""
    pet_in_t1w = resample(pet, t1w, pet2t1w)
    display = plotting.plot_anat(str(t1w), display_mode="ortho", title="PET on T1w", dim=-0.3)
    high = float(np.percentile(pet_in_t1w.get_fdata(), 99.5))
    display.add_overlay(pet_in_t1w, cmap="hot", transparency=0.45, threshold=0.4 * high, vmax=high)
    display.add_contours(str(mask), levels=[0.5], colors="cyan", linewidths=0.8)
    return _save_png(display.frame_axes.figure, out_file)


def normalization_overlay(
    image: Path,
    template: Path,
    template_mask: Path,
    xfms: list[Path],
    out_file: Path,
    title: str = "T1w",
) -> Path:
    """An image warped to the template with the template brain outline: is the anatomy aligned?

    With no transforms the image is taken as already in template space (the SUVR image of an
    MR-less scan).
    """
    warped = resample(image, template, xfms) if xfms else str(image)
    display = plotting.plot_anat(
        warped, display_mode="z", cut_coords=6, title=f"{title} in MNI152NLin6Asym"
    )
    display.add_contours(str(template_mask), levels=[0.5], colors="red", linewidths=0.8)
    display.add_edges(str(template), color="yellow")
    return _save_png(display.frame_axes.figure, out_file)


def region_overlay(
    suvr: Path, reference_mask: Path, metatemporal: Path, braak: Path, out_file: Path
) -> Path:
    """SUVR with the reference region (blue), meta-temporal ROI (green) and Braak I (magenta)."""
    display = plotting.plot_anat(
        str(suvr), display_mode="ortho", cut_coords=(-25, -55, -30), title="regions on SUVR",
        vmin=0, vmax=3,
    )  # fmt: skip
    braak_i = nib.load(braak)
    stage_one = nib.Nifti1Image((np.asarray(braak_i.dataobj) == 1).astype(np.uint8), braak_i.affine)
    for image, color in ((str(reference_mask), "deepskyblue"), (str(metatemporal), "lime"),
                         (stage_one, "magenta")):  # fmt: skip
        display.add_contours(image, levels=[0.5], colors=color, linewidths=1.0)
    return _save_png(display.frame_axes.figure, out_file)


def suvr_montage(suvr: Path, template: Path, out_file: Path) -> Path:
    """Axial SUVR slices on the template, thresholded at 1 (the reference level)."""
    display = plotting.plot_stat_map(
        str(suvr), bg_img=str(template), display_mode="z", cut_coords=list(range(-40, 50, 10)),
        threshold=1.0, vmin=1.0, vmax=3.0, symmetric_cbar=False, cmap="inferno", title="SUVR",
    )  # fmt: skip
    return _save_png(display.frame_axes.figure, out_file)


def occlusion_montage(
    sensitivity: Path, template: Path, out_file: Path, title: str = "drop in P(AD) when occluded"
) -> Path:
    """Axial slices of one of the classifier's maps (occlusion or attribution) on the template:
    red where the uptake raised P(AD), blue where it lowered it; the colour scale is symmetric
    around 0."""
    data = np.asarray(nib.load(sensitivity).dataobj, dtype=np.float32)
    vmax = float(np.abs(data).max()) or 1.0  # an all-zero map is drawn, not an error
    display = plotting.plot_stat_map(
        str(sensitivity), bg_img=str(template), display_mode="z",
        cut_coords=list(range(-40, 50, 10)), vmax=vmax, symmetric_cbar=True, cmap="RdBu_r",
        title=title,
    )  # fmt: skip
    return _save_png(display.frame_axes.figure, out_file)


def harmonization_montage(log_ratio: Path, template: Path, out_file: Path) -> Path:
    """Axial slices of the harmoniser's correction (percent change of SUVR) on the template:
    red where the harmonised SUVR is higher than the measured one."""
    data = np.asarray(nib.load(log_ratio).dataobj, dtype=np.float32)
    percent = nib.Nifti1Image(100.0 * np.expm1(data), nib.load(log_ratio).affine)
    vmax = float(np.abs(percent.get_fdata()).max()) or 1.0  # a zero field is drawn too
    display = plotting.plot_stat_map(
        percent, bg_img=str(template), display_mode="z", cut_coords=list(range(-40, 50, 10)),
        vmax=vmax, symmetric_cbar=True, cmap="RdBu_r", title="harmonisation (% of SUVR)",
    )  # fmt: skip
    return _save_png(display.frame_axes.figure, out_file)
