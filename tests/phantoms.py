"""A synthetic head-like phantom that registrations can lock onto, moved by known amounts."""

import nibabel as nib
import numpy as np

# (centre mm, semi-axes mm, amplitude): a head-sized ellipsoid with asymmetric inner structure
SHAPES = [
    ((0, 0, 0), (70, 85, 65), 1.0),
    ((0, 5, 5), (55, 70, 50), 1.5),
    ((22, 15, 10), (12, 9, 15), 2.0),
    ((-18, -25, 15), (9, 14, 7), 1.5),
    ((8, 40, -22), (14, 7, 9), 1.2),
    ((-30, 20, -15), (7, 7, 7), 2.5),
    ((0, -50, -25), (20, 12, 10), 1.8),
]


def rotation(degrees) -> np.ndarray:
    ax, ay, az = np.radians(degrees)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def phantom(shift=(0, 0, 0), rot=(0, 0, 0), shape=(64, 64, 64), vox=3.0):
    """Phantom moved by ``rot`` (degrees, about the grid centre) then ``shift`` (mm, RAS)."""
    affine = np.diag([vox, vox, vox, 1.0])
    affine[:3, 3] = -(np.asarray(shape) - 1) / 2 * vox
    xyz = nib.affines.apply_affine(affine, np.indices(shape).reshape(3, -1).T)
    points = (xyz - np.asarray(shift)) @ rotation(rot)
    values = np.zeros(len(points))
    for centre, axes, amplitude in SHAPES:
        radius = np.sqrt((((points - centre) / np.asarray(axes)) ** 2).sum(axis=1))
        values += amplitude / (1 + np.exp((radius - 1) * 12))
    return values.reshape(shape).astype(np.float32), affine
