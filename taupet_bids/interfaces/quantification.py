"""SUVR images and regional SUVR tables.

SUVR = PET / mean PET in a reference region (inferior cerebellar grey for most tau tracers).
Both interfaces demand that their images share one voxel grid: silently comparing voxels of
different grids would give plausible-looking but wrong numbers, so a mismatch is an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from taupet_bids.errors import InputError
from taupet_bids.interfaces.frames import save_like
from taupet_bids.interfaces.registration import out_path

GRID_ATOL_MM = 1e-3
STAT_COLUMNS = ["region", "suvr_mean", "suvr_median", "suvr_sd", "volume_ml", "n_voxels"]


def check_same_grid(image_file: str, other_file: str) -> None:
    """Raise InputError naming ``other_file`` unless it shares ``image_file``'s 3D grid."""
    image, other = nib.load(image_file), nib.load(other_file)
    same_shape = image.shape[:3] == other.shape[:3]
    if not (same_shape and np.allclose(image.affine, other.affine, atol=GRID_ATOL_MM)):
        raise InputError(
            other_file,
            f"voxel grid (shape {other.shape[:3]}) differs from that of {Path(image_file).name} "
            f"(shape {image.shape[:3]}; shapes or affines differ)",
            "resample it onto the image grid first",
        )


def load_3d(path: str) -> np.ndarray:
    """Data of a 3D image (a one-frame 4D image is accepted)."""
    data = np.asarray(nib.load(path).dataobj, dtype=np.float64)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(path, f"expected a 3D image, got shape {data.shape}", "average frames")
    return data


def compute_suvr(
    pet: np.ndarray, reference: np.ndarray, brain: np.ndarray | None = None
) -> tuple[np.ndarray, float, int]:
    """(SUVR image, reference mean, reference voxel count).

    ``reference`` and ``brain`` are masks (> 0 is inside). Non-finite PET voxels, and voxels that
    are exactly 0 (outside the PET's field of view after resampling), are left out of the
    reference mean: a field of view that cuts the cerebellum would otherwise pull the reference
    down and every SUVR up (the QC reports the reference region's coverage). The brain mask only
    zeroes the SUVR image outside the brain.
    """
    inside = (reference > 0) & np.isfinite(pet) & (pet != 0)
    count = int(inside.sum())
    if count == 0:
        raise ValueError("reference region is empty")
    ref_mean = float(pet[inside].mean())
    if ref_mean <= 0:
        raise ValueError(f"mean activity in the reference region is {ref_mean:g} (<= 0)")
    suvr = pet / ref_mean
    if brain is not None:
        suvr = np.where(brain > 0, suvr, 0.0)
    return suvr, ref_mean, count


def region_stats(values: np.ndarray, voxel_ml: float) -> dict[str, float]:
    """Mean, median, population sd (ddof=0), volume and count of one region's voxels."""
    finite = values[np.isfinite(values)]
    empty = finite.size == 0
    return {
        "suvr_mean": np.nan if empty else float(finite.mean()),
        "suvr_median": np.nan if empty else float(np.median(finite)),
        "suvr_sd": np.nan if empty else float(finite.std()),
        "volume_ml": values.size * voxel_ml,
        "n_voxels": int(values.size),
    }


def regional_statistics(
    suvr: np.ndarray,
    atlas: np.ndarray,
    voxel_ml: float,
    labels: Mapping[int, str],
    groups: Mapping[str, Sequence[int]] | None = None,
) -> pd.DataFrame:
    """One row per label (or per group when ``groups`` is given); empty regions are kept."""
    regions = groups if groups else {name: [index] for index, name in labels.items()}
    atlas = np.rint(atlas).astype(np.int64)
    rows = []
    for name, indices in regions.items():
        inside = np.isin(atlas, np.asarray(list(indices), dtype=np.int64))
        rows.append({"region": name, **region_stats(suvr[inside], voxel_ml)})
    return pd.DataFrame(rows, columns=STAT_COLUMNS)


def read_label_table(path: str) -> dict[int, str]:
    """``index``/``name`` columns of a label TSV as {index: name}."""
    table = pd.read_csv(path, sep="\t")
    missing = {"index", "name"} - set(table.columns)
    if missing:
        raise InputError(path, f"missing columns {sorted(missing)}", "use index and name columns")
    return dict(zip(table["index"].astype(int), table["name"].astype(str), strict=True))


class _SUVRInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="3D PET")
    reference_mask = File(exists=True, mandatory=True, desc="reference region, same grid")
    brain_mask = File(exists=True, desc="SUVR is zeroed outside this mask")


class _SUVROutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="SUVR image (float32)")
    reference_value = traits.Float(desc="mean PET in the reference region")
    reference_nvoxels = traits.Int(desc="voxels in the reference region")


class ComputeSUVR(SimpleInterface):
    """Divide PET by its mean in the reference region."""

    input_spec = _SUVRInputSpec
    output_spec = _SUVROutputSpec

    def _run_interface(self, runtime):
        pet_file, ref_file = self.inputs.in_file, self.inputs.reference_mask
        check_same_grid(pet_file, ref_file)
        brain = None
        if self.inputs.brain_mask:
            check_same_grid(pet_file, self.inputs.brain_mask)
            brain = load_3d(self.inputs.brain_mask)
        try:
            suvr, value, count = compute_suvr(load_3d(pet_file), load_3d(ref_file), brain)
        except ValueError as err:
            raise InputError(
                ref_file, f"{err} of {Path(pet_file).name}", "check the reference mask"
            ) from err
        out = save_like(suvr, nib.load(pet_file), out_path(pet_file, "_suvr"))
        self._results.update(
            out_file=out,
            reference_value=value,
            reference_nvoxels=count,
        )
        return runtime


class _StatsInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="SUVR image")
    atlas_file = File(exists=True, mandatory=True, desc="integer label image, same grid")
    labels_file = File(exists=True, mandatory=True, desc="TSV with index and name columns")
    groups = traits.Dict(
        traits.Str, traits.List(traits.Int), desc="output region -> label indices (composites)"
    )


class _StatsOutputSpec(TraitedSpec):
    out_table = File(exists=True, desc="TSV: " + ", ".join(STAT_COLUMNS))


class RegionalStatistics(SimpleInterface):
    """Regional SUVR summary table, one row per label or composite region."""

    input_spec = _StatsInputSpec
    output_spec = _StatsOutputSpec

    def _run_interface(self, runtime):
        check_same_grid(self.inputs.in_file, self.inputs.atlas_file)
        zooms = nib.load(self.inputs.in_file).header.get_zooms()[:3]
        table = regional_statistics(
            load_3d(self.inputs.in_file),
            load_3d(self.inputs.atlas_file),
            float(np.prod(zooms)) / 1000.0,
            read_label_table(self.inputs.labels_file),
            groups=self.inputs.groups or None,
        )
        out = out_path(self.inputs.in_file, "_regions", ext=".tsv")
        table.to_csv(out, sep="\t", index=False, float_format="%.6f", na_rep="n/a")
        self._results["out_table"] = out
        return runtime
