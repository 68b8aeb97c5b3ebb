"""The bias field an assumed mu-map leaves in a reconstructed PET image.

Slice-wise 2-D physics at 4 mm (scikit-image's ``radon``/``iradon``): for each axial slice the
emission sinogram is attenuated by ``exp(-line integral)`` of the TRUE mu-map (the CT's) along
every line of response, then divided by the attenuation factors of the ASSUMED mu-map, as the
scanner's correction does, and reconstructed by filtered back-projection. The bias field is that
reconstruction over the reconstruction of correctly corrected data (which is the reconstruction of
the unattenuated sinogram), both smoothed; it is what multiplies the PET image of a scanner that
assumed the wrong mu-map. Where the correct reconstruction is near zero (air, most of the skull)
the ratio means nothing and the nearest meaningful value is used instead.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.transform import iradon, radon

#: Voxel size (mm) of the projector's grid, and projection angles over 180 degrees.
PROJECTION_MM = 4.0
N_ANGLES = 96
#: Gaussian smoothing (mm) of both reconstructions before their ratio is taken.
SMOOTHING_MM = 4.0
#: Below this fraction of the correct reconstruction's 99th percentile the ratio is not trusted.
GUARD_FRACTION = 0.1


def block_mean(volume: np.ndarray, factor: int) -> np.ndarray:
    """``volume`` averaged over blocks of ``factor``^3 voxels (edges cropped to a multiple)."""
    shape = tuple(n // factor for n in volume.shape)
    cropped = volume[tuple(slice(0, n * factor) for n in shape)]
    blocks = cropped.reshape(shape[0], factor, shape[1], factor, shape[2], factor)
    return blocks.mean(axis=(1, 3, 5), dtype=np.float64)


def _square(image: np.ndarray) -> tuple[np.ndarray, tuple[slice, slice]]:
    """``image`` zero-padded to a square (radon's rotation centre is the middle), and its place."""
    size = max(image.shape)
    before = [(size - n) // 2 for n in image.shape]
    padded = np.zeros((size, size))
    place = (
        slice(before[0], before[0] + image.shape[0]),
        slice(before[1], before[1] + image.shape[1]),
    )
    padded[place] = image
    return padded, place


def slice_reconstructions(
    emission: np.ndarray, true_mu: np.ndarray, assumed_mu: np.ndarray, pixel_mm: float
) -> tuple[np.ndarray, np.ndarray]:
    """FBP of one slice's data corrected with the assumed and with the true mu-map (/cm)."""
    theta = np.linspace(0.0, 180.0, N_ANGLES, endpoint=False)
    activity, place = _square(emission)
    sinogram = radon(activity, theta, circle=False)
    if not sinogram.any():
        zero = np.zeros(emission.shape)
        return zero, zero
    pixel_cm = pixel_mm / 10.0
    true_path = radon(_square(true_mu)[0], theta, circle=False) * pixel_cm
    assumed_path = radon(_square(assumed_mu)[0], theta, circle=False) * pixel_cm
    corrected = sinogram * np.exp(assumed_path - true_path)
    size = activity.shape[0]
    biased = iradon(corrected, theta, output_size=size, circle=False)[place]
    correct = iradon(sinogram, theta, output_size=size, circle=False)[place]
    return biased, correct


def bias_field(
    emission: np.ndarray, true_mu: np.ndarray, assumed_mu: np.ndarray, voxel_mm: float
) -> np.ndarray:
    """Multiplicative AC bias on the grid of the inputs (isotropic ``voxel_mm``; z is axial).

    The inputs are averaged to :data:`PROJECTION_MM`, projected slice by slice, and the ratio is
    brought back to the input grid by linear interpolation.
    """
    factor = max(1, int(round(PROJECTION_MM / voxel_mm)))
    coarse = [block_mean(v, factor) for v in (emission, true_mu, assumed_mu)]
    biased = np.zeros(coarse[0].shape)
    correct = np.zeros(coarse[0].shape)
    for k in range(coarse[0].shape[2]):
        biased[..., k], correct[..., k] = slice_reconstructions(
            *(v[..., k] for v in coarse), voxel_mm * factor
        )
    sigma = SMOOTHING_MM / (voxel_mm * factor)
    biased, correct = (ndimage.gaussian_filter(v, sigma) for v in (biased, correct))
    trusted = correct > GUARD_FRACTION * np.percentile(correct, 99)
    ratio = np.ones_like(correct)
    ratio[trusted] = biased[trusted] / correct[trusted]
    if trusted.any() and not trusted.all():
        nearest = ndimage.distance_transform_edt(
            ~trusted, return_distances=False, return_indices=True
        )
        ratio = ratio[tuple(nearest)]
    return _upsample(ratio, factor, emission.shape)


def _upsample(coarse: np.ndarray, factor: int, shape: tuple[int, ...]) -> np.ndarray:
    """Linear interpolation of a block-averaged field back onto the fine grid (float32)."""
    fine = [(np.arange(n) + 0.5) / factor - 0.5 for n in shape]
    coordinates = np.meshgrid(*fine, indexing="ij")
    return ndimage.map_coordinates(coarse, coordinates, order=1, mode="nearest").astype(np.float32)
