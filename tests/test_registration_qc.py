"""The T1w-to-template QC: the alignment margin sees a miss whatever the image's contrast."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from taupet_bids.core import qc
from taupet_bids.core.grids import linear_coordinates, rigid_matrix, sample
from taupet_bids.core.registration import alignment_margin, template_scores

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
AFFINE[:3, 3] = -40.0


@pytest.fixture(scope="module")
def images() -> tuple[np.ndarray, np.ndarray]:
    """A textured 'brain' (smooth random blobs in a ball) and its mask."""
    rng = np.random.default_rng(0)
    shape = (40, 40, 40)
    texture = ndimage.gaussian_filter(rng.standard_normal(shape), 2.0).astype(np.float32)
    grid = np.indices(shape) - 19.5
    ball = (grid**2).sum(axis=0) < 14**2
    return np.where(ball, 10 + 10 * texture, 0).astype(np.float32), ball


def _moved(image: np.ndarray, shift_mm: float) -> np.ndarray:
    points = linear_coordinates(AFFINE, image.shape)
    move = rigid_matrix(np.zeros(3), np.array([shift_mm, 0.0, 0.0]))
    moved = move[:3, :3] @ points.reshape(3, -1) + move[:3, 3:4]
    return sample(image, AFFINE, moved.reshape(points.shape))


def test_margin_is_positive_when_aligned_and_negative_when_missed(images):
    image, ball = images
    assert alignment_margin(image, image, ball, AFFINE) > 0.02
    assert alignment_margin(image, _moved(image, 4.0), ball, AFFINE) < 0
    # another (monotone) contrast of the same alignment keeps a positive margin
    other = np.where(ball, 7 + 3 * np.sqrt(np.clip(image, 0, None) + 5), 0).astype(np.float32)
    assert alignment_margin(image, other, ball, AFFINE) > 0


def test_template_scores_grow_the_brain_and_report_all_three(images):
    image, ball = images
    scores = template_scores(image, _moved(image, 4.0), ball, AFFINE)
    assert set(scores) == {"correlation", "nmi", "alignment_margin"}
    assert scores["correlation"] < template_scores(image, image, ball, AFFINE)["correlation"]
    assert math.isnan(alignment_margin(image, image, np.zeros_like(ball), AFFINE))


def test_a_negative_margin_is_flagged(tmp_path):
    motion = tmp_path / "motion.tsv"
    pd.DataFrame(
        {
            "framewise_displacement": [0.0, 0.3],
            "trans_x": [0, 0.1],
            "trans_y": [0, 0],
            "trans_z": [0, 0],
        }  # fmt: skip
    ).to_csv(motion, sep="\t", index=False)
    good = qc.scan_qc(motion, {"Method": "MR-based"}, coreg_nmi=1.06, t1w2std_correlation=0.9,
                      t1w2std_alignment_margin=0.03)  # fmt: skip
    assert good["flags"] == []
    missed = qc.scan_qc(motion, {"Method": "MR-based"}, coreg_nmi=1.06,
                        t1w2std_correlation=0.9, t1w2std_alignment_margin=-0.02)  # fmt: skip
    assert any("aligns it better" in flag for flag in missed["flags"])
    failed = qc.scan_qc(motion, {"Method": "MR-based"}, coreg_nmi=1.06, t1w2std_correlation=0.3)
    assert any("r 0.300" in flag for flag in failed["flags"])
