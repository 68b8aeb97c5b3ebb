"""How much grey and white matter each voxel holds, from the T1w's intensity histogram.

A soft partial-volume correction (:class:`taupet_bids.core.pvc.TissueMixing`) needs each voxel's
tissue *fractions*. Atropos gives posterior probabilities, which are not fractions: a voxel one
third grey matter gets a grey posterior far below a third, because a class likelihood falls off
with the squared distance from the class mean. Its class means are not pure either: where most
cortical voxels are mixtures (a 2 mm grid), the "grey" class sits between grey and white matter.

This module fits the mixel model (Santago & Gage 1993, IEEE TMI 12:566; the partial-volume model
of FSL FAST, Zhang et al. 2001, IEEE TMI 20:45) to the histogram of the brain's intensities:
three pure tissues (CSF, GM, WM), each a Gaussian of one shared width, and two mixtures
(CSF/GM and GM/WM) whose fraction is uniform on [0, 1], convolved with the same noise. The fit
gives the pure intensities, and each voxel's expected grey- and white-matter fraction given its
intensity follows. antspyx has no partial-volume estimate of this kind (Atropos's partial-volume
classes model the mixtures but return no fractions, and left its pure means where they were on
the simulator's T1w), and FAST needs FSL; hence this small fit, with scipy doing the optimising.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

#: Histogram bins for the fit: enough to resolve the tissue peaks; the fit's cost is per bin.
BINS = 256
#: Components in the order of :attr:`MixelModel.weights`.
COMPONENTS = ("CSF", "GM", "WM", "CSF/GM", "GM/WM")
#: Fewer brain voxels than this cannot pin down eight parameters.
MIN_VOXELS = 1000


@dataclass(frozen=True)
class MixelModel:
    """Pure intensities ``csf < gm < wm``, the noise SD and the five components' weights."""

    csf: float
    gm: float
    wm: float
    sigma: float
    weights: tuple[float, float, float, float, float]


def _densities(means, sigma: float, values: np.ndarray) -> np.ndarray:
    """(5, n) density of each component at ``values``."""
    csf, gm, wm = means
    normal = stats.norm
    pure = [normal.pdf(values, mean, sigma) for mean in (csf, gm, wm)]
    mixed = [
        (normal.cdf((values - low) / sigma) - normal.cdf((values - high) / sigma)) / (high - low)
        for low, high in ((csf, gm), (gm, wm))
    ]
    return np.stack(pure + mixed)


def _unpack(params: np.ndarray) -> tuple[tuple[float, float, float], float, np.ndarray]:
    weights = np.exp(params[4:] - params[4:].max())
    return (params[0], params[1], params[2]), float(np.exp(params[3])), weights / weights.sum()


def fit_mixel_model(values: np.ndarray, initial_means: tuple[float, float, float]) -> MixelModel:
    """Fit the mixel model to ``values`` (the brain's intensities), starting at ``initial_means``.

    ``initial_means`` (CSF, GM, WM) are a segmentation's class means (Atropos's posterior-weighted
    means): close enough for the fit to find the pure intensities near them.
    """
    values = np.asarray(values, np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size < MIN_VOXELS:
        raise ValueError(f"{values.size} brain voxels are too few to fit tissue intensities")
    low, high = np.percentile(values, [0.1, 99.9])
    if not high > low:
        raise ValueError("the brain's intensities do not vary: no tissue contrast to fit")
    counts, edges = np.histogram(values, bins=BINS, range=(low, high))
    centres = (edges[1:] + edges[:-1]) / 2

    def negative_log_likelihood(params: np.ndarray) -> float:
        means, sigma, weights = _unpack(params)
        if not means[0] < means[1] < means[2]:
            return 1e30
        density = weights @ _densities(means, sigma, centres)
        return float(-(counts * np.log(density + 1e-300)).sum())

    start = np.sort(np.asarray(initial_means, np.float64))
    sigma0 = (start[2] - start[0]) / 20
    params = np.concatenate([start, [np.log(sigma0)], np.zeros(len(COMPONENTS))])
    result = optimize.minimize(
        negative_log_likelihood,
        params,
        method="Powell",
        options={"maxiter": 50000, "xtol": 1e-4, "ftol": 1e-9},
    )
    means, sigma, weights = _unpack(result.x)
    return MixelModel(*map(float, means), sigma, tuple(float(w) for w in weights))


def expected_fractions(values: np.ndarray, model: MixelModel) -> tuple[np.ndarray, np.ndarray]:
    """(grey, white) fraction expected for each intensity under ``model`` (same shape).

    A voxel's grey fraction is the probability that it is pure grey matter, plus the probability
    that it is a CSF/GM (GM/WM) mixture times the fraction its intensity implies there.
    """
    values = np.asarray(values, np.float64)
    flat = values.ravel()
    means = (model.csf, model.gm, model.wm)
    joint = np.asarray(model.weights)[:, None] * _densities(means, model.sigma, flat)
    posterior = joint / np.maximum(joint.sum(axis=0), 1e-300)
    grey_in_csf_gm = np.clip((flat - model.csf) / (model.gm - model.csf), 0.0, 1.0)
    grey_in_gm_wm = np.clip((model.wm - flat) / (model.wm - model.gm), 0.0, 1.0)
    grey = posterior[1] + posterior[3] * grey_in_csf_gm + posterior[4] * grey_in_gm_wm
    white = posterior[2] + posterior[4] * (1.0 - grey_in_gm_wm)
    return grey.reshape(values.shape), white.reshape(values.shape)


def class_means(image: np.ndarray, probabilities: list[np.ndarray], mask: np.ndarray) -> tuple:
    """Posterior-weighted mean intensity of each class inside ``mask`` (the fit's start)."""
    inside = mask > 0
    return tuple(
        float((p[inside] * image[inside]).sum() / max(p[inside].sum(), 1e-12))
        for p in probabilities
    )


def tissue_fractions(
    image: np.ndarray, mask: np.ndarray, probabilities: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, MixelModel]:
    """(grey fraction, white fraction, fitted model) of a brain-masked T1w; 0 outside ``mask``.

    ``probabilities`` are the (CSF, GM, WM) posteriors of a segmentation of the same image, used
    only to start the fit.
    """
    inside = mask > 0
    model = fit_mixel_model(image[inside], class_means(image, probabilities, mask))
    grey = np.zeros(image.shape, np.float32)
    white = np.zeros(image.shape, np.float32)
    grey[inside], white[inside] = expected_fractions(image[inside], model)
    return grey, white, model
