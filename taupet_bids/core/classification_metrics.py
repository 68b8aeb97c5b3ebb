"""AD-vs-CN metrics of a classifier's predictions, with participant-bootstrap confidence intervals.

Plain NumPy. Every metric is computed from per-scan weights, so one vectorised formula gives the
point estimate (every weight 1) and all bootstrap resamples at once (a participant drawn k times
weighs k on each of their scans). Resampling participants, not scans, keeps a participant's
visits together: their scans are not independent, and resampling scans would make the
intervals too narrow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The metrics, in the order they are reported.
METRICS = ("accuracy", "sensitivity", "specificity", "roc_auc")
#: Bootstrap resamples and their seed (docs/models.md, seeds table).
RESAMPLES = 2000
SEED = 1818
LEVEL = 0.95


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0 (a class absent from a sample)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def weighted_metrics(
    probability: np.ndarray, called_ad: np.ndarray, is_ad: np.ndarray, weights: np.ndarray
) -> dict[str, np.ndarray]:
    """Each metric for each row of ``weights`` (resamples x scans).

    Sensitivity: AD scans labelled AD; specificity: CN scans labelled CN; ROC AUC: the chance
    that an AD scan has a higher P(AD) than a CN scan, ties counted half (Mann-Whitney).
    """
    probability = np.asarray(probability, dtype=float)
    called_ad, is_ad = np.asarray(called_ad, dtype=bool), np.asarray(is_ad, dtype=bool)
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    ad, cn = weights[:, is_ad], weights[:, ~is_ad]
    higher = probability[is_ad][:, None] - probability[~is_ad][None, :]
    pairs = (higher > 0) + 0.5 * (higher == 0)
    return {
        "accuracy": _ratio(weights @ (called_ad == is_ad), weights.sum(1)),
        "sensitivity": _ratio(ad @ called_ad[is_ad], ad.sum(1)),
        "specificity": _ratio(cn @ ~called_ad[~is_ad], cn.sum(1)),
        "roc_auc": _ratio(np.einsum("bi,ij,bj->b", ad, pairs, cn), ad.sum(1) * cn.sum(1)),
    }


def participant_resamples(
    participants: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED
) -> np.ndarray:
    """Weights (resamples x scans): participants drawn with replacement, each scan weighted by
    how often its participant was drawn."""
    labels, index = np.unique(np.asarray(participants), return_inverse=True)
    draws = np.random.default_rng(seed).integers(len(labels), size=(resamples, len(labels)))
    counts = np.zeros((resamples, len(labels)))
    np.add.at(counts, (np.arange(resamples)[:, None], draws), 1.0)
    return counts[:, index]


@dataclass(frozen=True)
class Estimate:
    """A metric on the AD and CN scans, its bootstrap interval and how many resamples had it."""

    value: float
    low: float
    high: float
    resamples: int


def ad_cn_metrics(
    probability: np.ndarray,
    called_ad: np.ndarray,
    is_ad: np.ndarray,
    participants: np.ndarray,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> dict[str, Estimate]:
    """Every metric of :data:`METRICS` with its percentile bootstrap interval.

    Only AD and CN scans may be passed (``is_ad`` False means CN). A resample in which a metric
    is undefined (no AD or no CN participant drawn) is left out of that metric's interval;
    ``Estimate.resamples`` says how many were used.
    """
    point = weighted_metrics(probability, called_ad, is_ad, np.ones(len(probability)))
    boot = weighted_metrics(
        probability, called_ad, is_ad, participant_resamples(participants, resamples, seed)
    )
    tails = [100 * (1 - level) / 2, 100 * (1 + level) / 2]
    found = {}
    for name in METRICS:
        values = boot[name][np.isfinite(boot[name])]
        low, high = np.percentile(values, tails) if values.size else (np.nan, np.nan)
        found[name] = Estimate(float(point[name][0]), float(low), float(high), int(values.size))
    return found
