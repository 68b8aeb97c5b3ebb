"""Frame selection and time-weighted averaging of dynamic PET.

SUVR is computed on the late window (e.g. 80-100 min for flortaucipir): the workflow picks the
frame indices from the sidecar and these functions cut and average them. Averages are weighted
by frame duration so that a 10-min frame counts twice as much as a 5-min one, matching the
counts a static acquisition over the same window would have recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def as_4d(data: np.ndarray) -> np.ndarray:
    """View a 3D volume as a one-frame 4D series."""
    return data[..., np.newaxis] if data.ndim == 3 else data


def select_frames(data: np.ndarray, indices: Sequence[int]) -> np.ndarray:
    """Frames ``indices`` of a 3D/4D array; a single frame comes back 3D."""
    series = as_4d(data)
    n_frames = series.shape[3]
    if not indices:
        raise ValueError("no frame indices given")
    bad = [i for i in indices if not 0 <= int(i) < n_frames]
    if bad:
        raise ValueError(f"frame indices {bad} out of range for {n_frames} frames")
    picked = series[..., [int(i) for i in indices]]
    return picked[..., 0] if picked.shape[3] == 1 else picked


def time_weighted_average(data: np.ndarray, durations: Sequence[float]) -> np.ndarray:
    """Duration-weighted mean over the last axis; 3D input is returned unchanged."""
    if data.ndim == 3:
        return data.astype(np.float32)
    weights = np.asarray(durations, dtype=float)
    if weights.shape != (data.shape[3],):
        raise ValueError(f"{weights.size} frame durations for {data.shape[3]} frames")
    if np.any(weights <= 0):
        raise ValueError("frame durations must be positive")
    mean = np.tensordot(data.astype(np.float64), weights / weights.sum(), axes=([3], [0]))
    return mean.astype(np.float32)
