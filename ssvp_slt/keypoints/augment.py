"""Training augmentation of normalised keypoints (see :class:`ssvp_slt.keypoints.config.AugmentConfig`)."""

import math
from typing import Tuple

import numpy as np

from .config import AugmentConfig


def stretched_length(length: int, factor: float) -> int:
    return max(1, int(math.floor(length * factor + 0.5)))


def max_length(length: int, aug: AugmentConfig) -> int:
    """The longest a clip of ``length`` frames can come out of :func:`augment` (dropping only shortens)."""
    return stretched_length(length, 1.0 + aug.time_stretch)


def augment(xy: np.ndarray, visible: np.ndarray, aug: AugmentConfig,
            rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T, P, 2) normalised coordinates and (T, P) visibility -> augmented copies (T' frames) and, for
    each output frame, the input frame it came from (to carry other per-frame values along)."""
    n = len(xy)
    index = np.arange(n)
    # every draw is made whatever the settings, so one option's change leaves the others' draws alone
    stretch = rng.uniform(1.0 - aug.time_stretch, 1.0 + aug.time_stretch)
    angle = math.radians(rng.uniform(-aug.rotate_deg, aug.rotate_deg))
    scale = rng.uniform(1.0 - aug.scale, 1.0 + aug.scale)
    shift = rng.uniform(-aug.shift, aug.shift, size=2)
    if aug.time_stretch > 0:
        # nearest frame, not interpolation: between a visible and a masked point there is nothing to interpolate
        index = np.rint(np.linspace(0, n - 1, stretched_length(n, stretch))).astype(np.int64)
    if aug.drop_frames > 0 and len(index) > 1:
        keep = rng.random(len(index)) >= aug.drop_frames
        if not keep.any():
            keep[rng.integers(len(index))] = True
        index = index[keep]
    xy, visible = xy[index], visible[index]
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    matrix = np.array([[cos, -sin], [sin, cos]], dtype=np.float64)
    out = xy.astype(np.float64) @ matrix.T + shift
    out[~visible] = 0.0  # masked points stay (0, 0): the mask, not a position
    return out.astype(np.float32), visible, index
