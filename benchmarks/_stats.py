"""Agreement statistics for the benchmarks: plain NumPy functions, tested on textbook values.

The benchmarks compare a measured SUVR with a known truth per subject. ICC(2,1) answers "would
the pipeline and the truth give the same number for this subject" (absolute agreement, so a
constant bias lowers it, unlike a correlation); the percentage errors say by how much they differ.
"""

from __future__ import annotations

import numpy as np


def icc_2_1(ratings: np.ndarray) -> float:
    """ICC(2,1): two-way random effects, absolute agreement, single measures.

    ``ratings`` is an (n targets x k raters) array; here the raters are the pipeline and the
    truth. Shrout & Fleiss (1979) case 2 / McGraw & Wong (1996) ICC(A,1)::

        ICC = (MSR - MSE) / (MSR + (k - 1) MSE + k (MSC - MSE) / n)

    with MSR, MSC and MSE the mean squares of rows (targets), columns (raters) and the residual
    of the two-way ANOVA without replication. Returns NaN when there are fewer than two targets
    or the denominator is zero (every rating identical).
    """
    x = np.asarray(ratings, dtype=float)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"ratings must be (n targets x k>=2 raters), got shape {x.shape}")
    n, k = x.shape
    if n < 2:
        return float("nan")
    grand = x.mean()
    ss_rows = k * np.sum((x.mean(axis=1) - grand) ** 2)
    ss_cols = n * np.sum((x.mean(axis=0) - grand) ** 2)
    ss_err = np.sum((x - grand) ** 2) - ss_rows - ss_cols
    msr = ss_rows / (n - 1)
    msc = ss_cols / (k - 1)
    mse = ss_err / ((n - 1) * (k - 1))
    denominator = msr + (k - 1) * mse + k * (msc - mse) / n
    if denominator == 0:
        return float("nan")
    return float((msr - mse) / denominator)


def percent_errors(measured: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Signed error of each measurement in percent of its truth: 100 (measured - truth) / truth."""
    measured = np.asarray(measured, dtype=float)
    truth = np.asarray(truth, dtype=float)
    return 100.0 * (measured - truth) / truth


def agreement(measured: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """ICC(2,1), mean absolute % error, mean signed bias % and max absolute % error of one region.

    One entry per subject in each array; the summary is what the benchmark tables print.
    """
    errors = percent_errors(measured, truth)
    return {
        "n": int(errors.size),
        "icc": icc_2_1(np.column_stack([measured, truth])),
        "mape_pct": float(np.mean(np.abs(errors))),
        "bias_pct": float(np.mean(errors)),
        "max_abs_pct": float(np.max(np.abs(errors))),
    }
