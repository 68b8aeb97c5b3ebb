"""T1-weighted MPRAGE: the template head warped to the subject, with bias field and noise.

The grid mimics ADNI's sagittal 3D MPRAGE (1.0 x 1.0 x 1.2 mm, sagittal slices last): its axis
order and orientation differ from the template's, as a real scanner's would.
"""

from __future__ import annotations

import numpy as np

from taupet_bids.core.grids import linear_coordinates, oriented_grid, sample
from taupet_bids.simulate.anatomy import Anatomy
from taupet_bids.simulate.modalities.base import Scan, Visit, nifti

#: Native grid: axes posterior, inferior, right; 1.0 x 1.0 x 1.2 mm (ADNI-GO/2 MPRAGE).
ORIENTATION = "PIR"
VOXEL_MM = (1.0, 1.0, 1.2)
SHAPE = (256, 240, 170)
#: Template T1w intensity -> scanner units (white matter ~700), Rician noise SD, bias amplitude.
INTENSITY_SCALE = 0.1
NOISE_SD = 12.0
BIAS_SD = 0.08

SIDECAR = {
    "Modality": "MR",
    "Manufacturer": "Siemens",
    "ManufacturersModelName": "Prisma_fit",
    "MagneticFieldStrength": 3,
    "MRAcquisitionType": "3D",
    "ScanningSequence": "GR_IR",
    "SequenceVariant": "SK_SP_MP",
    "PulseSequenceType": "MPRAGE",
    "RepetitionTime": 2.3,
    "EchoTime": 0.00298,
    "InversionTime": 0.9,
    "FlipAngle": 9,
    "SliceThickness": VOXEL_MM[2],
}


def bias_field(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """A smooth multiplicative field: exp of a random quadratic polynomial over the grid."""
    ramps = [np.linspace(-1, 1, n, dtype=np.float32) for n in shape]
    axes = [r.reshape([-1 if i == k else 1 for i in range(3)]) for k, r in enumerate(ramps)]
    terms = [axes[0], axes[1], axes[2], axes[0] ** 2, axes[1] ** 2, axes[2] ** 2]
    terms += [axes[0] * axes[1], axes[0] * axes[2], axes[1] * axes[2]]
    log_field = np.zeros(shape, dtype=np.float32)
    for term, coefficient in zip(terms, rng.normal(0.0, BIAS_SD, len(terms)), strict=True):
        log_field += np.float32(coefficient) * term
    return np.exp(log_field)


class T1w:
    """Generator of the anatomical T1w image."""

    name = "T1w"

    def generate(self, anatomy: Anatomy, visit: Visit, rng: np.random.Generator) -> Scan:
        """Warp the template head into the subject's scanner grid; add bias and Rician noise."""
        template = visit.template
        centre = anatomy.head_centre(template) + rng.normal(0.0, 4.0, 3) + [0.0, 0.0, 10.0]
        grid = oriented_grid(ORIENTATION, VOXEL_MM, SHAPE, centre)
        points = anatomy.to_template(linear_coordinates(grid.affine, grid.shape))
        data = sample(template.head_t1w, template.grid_1mm.affine, points)
        del points
        data *= INTENSITY_SCALE * bias_field(rng, grid.shape)
        real = data + rng.standard_normal(data.shape, dtype=np.float32) * np.float32(NOISE_SD)
        imaginary = rng.standard_normal(data.shape, dtype=np.float32) * np.float32(NOISE_SD)
        data = np.sqrt(real**2 + imaginary**2)
        image = nifti(np.clip(np.rint(data), 0, 32767).astype(np.int16), grid.affine)
        truth = {"grid": grid}
        return Scan("anat", "T1w", {}, image, dict(SIDECAR), truth)
