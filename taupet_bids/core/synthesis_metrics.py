"""How close a synthetic SUVR image is to the measured one: voxel and regional agreement.

Plain NumPy (and scikit-image's SSIM). Every voxel metric is taken inside a mask (the brain)
on SUVR as it is, with a stated data range, because published figures differ mostly in these
choices (per-volume min-max scaling, 2-D slices, background included): a number without its
mask, scaling and range cannot be compared with another.

- MSE: mean squared SUVR difference inside the mask.
- PSNR: ``10 log10(range^2 / MSE)`` with ``range`` :data:`DATA_RANGE` (SUVR 0-4, the clip of
  the network's targets), not the image's own maximum.
- SSIM: scikit-image's 3-D SSIM (7-voxel window) with the same data range, averaged over the
  mask's voxels.
- Regional: per subject the composite's mean SUVR; across subjects Pearson r and the mean
  absolute percentage error (MAPE) of synthetic against measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from skimage.metrics import structural_similarity

#: SUVR range of PSNR and SSIM (the network's target clip).
DATA_RANGE = 4.0
#: Composites the regional agreement is reported for: (atlas, region).
COMPOSITES = (
    ("MetaTemporal", "metatemporal"),
    ("Braak", "BraakI_II"),
    ("Braak", "BraakIII_IV"),
    ("Braak", "BraakV_VI"),
)


def masked_mse(predicted: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Mean squared difference inside ``mask``."""
    difference = np.asarray(predicted, np.float64)[mask] - np.asarray(truth, np.float64)[mask]
    return float(np.mean(difference**2))


def psnr(mse: float, data_range: float = DATA_RANGE) -> float:
    """Peak signal-to-noise ratio (dB) of an MSE for a fixed data range."""
    return float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse))


def masked_ssim(
    predicted: np.ndarray, truth: np.ndarray, mask: np.ndarray, data_range: float = DATA_RANGE
) -> float:
    """3-D SSIM with a fixed data range, averaged over the voxels of ``mask``."""
    _, full = structural_similarity(
        np.asarray(truth, np.float64),
        np.asarray(predicted, np.float64),
        data_range=data_range,
        win_size=7,
        full=True,
    )
    return float(full[mask].mean())


def voxel_metrics(predicted: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict:
    """MSE, PSNR and SSIM of one image pair inside ``mask``."""
    mse = masked_mse(predicted, truth, mask)
    return {"mse": mse, "psnr_db": psnr(mse), "ssim": masked_ssim(predicted, truth, mask)}


def composite_means(
    image: np.ndarray, atlases: Mapping[str, np.ndarray], groups: Mapping[str, Mapping]
) -> dict[str, float]:
    """Mean of ``image`` in each of :data:`COMPOSITES` (``atlas:region`` -> SUVR)."""
    out = {}
    for atlas, region in COMPOSITES:
        inside = np.isin(np.rint(atlases[atlas]).astype(np.int64), groups[atlas][region])
        out[f"{atlas}:{region}"] = float(np.asarray(image, np.float64)[inside].mean())
    return out


def regional_agreement(predicted: Sequence[float], truth: Sequence[float]) -> dict:
    """Pearson r, MAPE (%), slope and spread ratio of regional SUVR across subjects.

    r and MAPE alone flatter a network that predicts nearly the same value for everyone: a
    tiny variation can still rank subjects (high r), and a level near the typical subject gives
    a low MAPE. The slope (least squares of predicted on true SUVR: 1 follows the person, 0 is
    a constant) and the spread ratio (SD of predicted / SD of true) show how much of the
    person's difference from others is predicted. r, slope and ratio are None for < 3
    subjects or a constant true series.
    """
    p, t = np.asarray(predicted, np.float64), np.asarray(truth, np.float64)
    r = slope = ratio = None
    if len(p) >= 3 and t.std() > 0:
        slope = float(np.cov(p, t, bias=True)[0, 1] / t.var())
        ratio = float(p.std() / t.std())
        if np.ptp(p) > 0:
            r = float(np.corrcoef(p, t)[0, 1])
    return {
        "r": r,
        "mape_percent": float(np.mean(np.abs(p - t) / np.abs(t)) * 100),
        "slope": slope,
        "spread_ratio": ratio,
    }
