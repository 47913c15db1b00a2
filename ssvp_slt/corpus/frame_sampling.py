"""Which frames of a clip the model sees.

A clip of ``n_frames`` at ``source_fps`` is first put on a ``target_fps``
grid (each grid point maps to the source frame shown at that time), then
``num_frames`` grid points are taken every ``sampling_rate`` points:

- ``random``: a random window (training),
- ``center``: the centred window (evaluation; same speed as training),
- ``cover``: ``num_frames`` points spread evenly over the whole clip
  (evaluation of clips longer than the window; sees every part of the
  sentence at the cost of a faster apparent signing speed).

A clip shorter than the window yields fewer frames; the collater pads them
and marks the padding in the mask.
"""

import math
from typing import Optional

import numpy as np

WINDOW_MODES = ("random", "center", "cover")

# guards floor() against 2.9999999 when the fps ratio is not exact in binary
_EPS = 1e-6


def resampled_length(n_frames: int, source_fps: float, target_fps: float) -> int:
    """Number of frames of the clip on the target_fps grid (at least 1)."""
    return max(1, math.floor(n_frames * target_fps / source_fps + _EPS))


def to_source_indices(grid_indices: np.ndarray, n_frames: int, source_fps: float, target_fps: float) -> np.ndarray:
    """Source frame shown at each target-grid time."""
    idx = np.floor(np.asarray(grid_indices, dtype=np.float64) * source_fps / target_fps + _EPS).astype(np.int64)
    return np.minimum(idx, n_frames - 1)


def window_span(num_frames: int, sampling_rate: int) -> int:
    """Grid frames covered by a full window."""
    return (num_frames - 1) * sampling_rate + 1


def num_sampled_frames(n_frames: int, source_fps: float, target_fps: float, num_frames: int, sampling_rate: int) -> int:
    """How many frames the model sees for a clip (the same in every mode)."""
    m = resampled_length(n_frames, source_fps, target_fps)
    return min(num_frames, math.ceil(m / sampling_rate))


def grid_window(m: int, num_frames: int, sampling_rate: int, mode: str, rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """Indices into a target-fps grid of length ``m``."""
    if mode not in WINDOW_MODES:
        raise ValueError(f"unknown window mode {mode!r}; expected one of {WINDOW_MODES}")
    span = window_span(num_frames, sampling_rate)
    if m <= span:
        # shorter than (or exactly) one window: every sampling_rate-th frame, padded later
        return np.arange(0, m, sampling_rate, dtype=np.int64)[:num_frames]
    if mode == "cover":
        return np.round(np.linspace(0, m - 1, num_frames)).astype(np.int64)
    if mode == "random":
        if rng is None:
            raise ValueError("mode 'random' needs an rng")
        start = int(rng.integers(0, m - span + 1))
    else:
        start = (m - span) // 2
    return start + np.arange(num_frames, dtype=np.int64) * sampling_rate


def sample_frame_indices(
    n_frames: int,
    source_fps: float,
    target_fps: float,
    num_frames: int,
    sampling_rate: int,
    mode: str,
    rng: Optional[np.random.Generator] = None,
) -> np.ndarray:
    """Source frame indices (non-decreasing) to decode for one clip."""
    m = resampled_length(n_frames, source_fps, target_fps)
    return to_source_indices(grid_window(m, num_frames, sampling_rate, mode, rng), n_frames, source_fps, target_fps)
