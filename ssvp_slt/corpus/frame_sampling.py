"""Which frames of a clip the model sees, and how they split into encoder windows.

A clip of ``n_frames`` at ``source_fps`` is first put on a ``target_fps``
grid (each grid point maps to the source frame shown at that time), then
every ``sampling_rate``-th grid point is taken: the clip's *sampled frames*.
The video encoder reads ``num_frames`` sampled frames at a time (one
*window*). A clip with more sampled frames than one window is covered by
overlapping windows, ``window_stride`` sampled frames apart, the last one
ending at the clip's last sampled frame; each window is encoded on its own
and the windows' features are concatenated in time (as SSVP-SLT does). No
sampled frame is left out.

A clip needing more than ``max_windows`` windows is handled by
``long_clips``:

- ``stretch``: the ``max_windows`` windows are spread over the whole clip
  (frames taken further apart than ``sampling_rate``: faster apparent
  signing, but every part of the sentence is seen);
- ``drop``: the clip is left out of *training* (counted in the log);
  evaluation splits stretch instead, so that scores stay comparable;
- ``truncate``: one window only (``max_windows`` is ignored): a random window
  in training and the centred one otherwise. The rest of the sentence is
  never seen; kept for comparisons and for MAE pretraining, whose samples are
  single windows.

A clip shorter than one window yields fewer frames; the collater pads them
and marks the padding. Training draws a random phase in ``[0, sampling_rate)``
for the sampled grid, so every frame of the clip is used across epochs.
"""

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

LONG_CLIP_POLICIES = ("stretch", "drop", "truncate")

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


def windows_needed(n_sampled: int, num_frames: int, window_stride: int) -> int:
    """Windows of ``num_frames`` frames, ``window_stride`` apart, needed to cover ``n_sampled`` frames."""
    if n_sampled <= num_frames:
        return 1
    return 1 + math.ceil((n_sampled - num_frames) / window_stride)


@dataclass(frozen=True)
class WindowSettings:
    """The data config's temporal settings (see :class:`~ssvp_slt.corpus.data_config.VideoDataConfig`)."""

    target_fps: float
    num_frames: int
    sampling_rate: int
    window_stride: int
    max_windows: int
    long_clips: str = "stretch"

    def __post_init__(self):
        if self.long_clips not in LONG_CLIP_POLICIES:
            raise ValueError(f"long_clips must be one of {LONG_CLIP_POLICIES}, got {self.long_clips!r}")

    @property
    def window_seconds(self) -> float:
        """Time one window spans at the normal sampling rate."""
        return self.num_frames * self.sampling_rate / self.target_fps


@dataclass(frozen=True)
class ClipLayout:
    """How one clip is read at its normal sampling rate, before any long-clip policy."""

    n_sampled: int  # sampled frames of the whole clip
    windows: int  # windows needed to cover them

    def exceeds(self, s: WindowSettings) -> bool:
        return self.windows > s.max_windows


def clip_layout(n_frames: int, source_fps: float, s: WindowSettings) -> ClipLayout:
    n_sampled = math.ceil(resampled_length(n_frames, source_fps, s.target_fps) / s.sampling_rate)
    return ClipLayout(n_sampled, windows_needed(n_sampled, s.num_frames, s.window_stride))


@dataclass(frozen=True)
class WindowPlan:
    """The frames to decode for one clip and the windows over them.

    ``source_indices`` (non-decreasing) are the clip's frames in the order the
    encoder reads them, each once; window ``k`` is
    ``source_indices[starts[k] : starts[k] + num_frames]`` (fewer frames for a
    clip shorter than one window).
    """

    source_indices: np.ndarray
    starts: np.ndarray
    stretched: bool = False
    truncated: bool = False

    @property
    def num_windows(self) -> int:
        return len(self.starts)


def window_starts(n_sampled: int, num_frames: int, window_stride: int, n_windows: int) -> np.ndarray:
    """First frame of each window: ``window_stride`` apart, the last ending at the last frame."""
    if n_windows == 1:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(n_windows, dtype=np.int64) * window_stride
    starts[-1] = n_sampled - num_frames
    return starts


def encoder_frames(n_sampled: int, n_windows: int, num_frames: int) -> int:
    """Frames the video encoder processes for a clip: what ``--max-tokens`` counts."""
    return n_sampled if n_windows == 1 else n_windows * num_frames


def plan_windows(
    n_frames: int,
    source_fps: float,
    s: WindowSettings,
    train: bool,
    rng: Optional[np.random.Generator] = None,
    long_clips: Optional[str] = None,
) -> WindowPlan:
    """Frames and windows for one clip; ``train`` draws a random phase (and a random window under
    ``truncate``) from ``rng``. ``long_clips`` overrides the settings' policy (``drop`` plans as
    ``stretch``: dropping is the dataset's decision, made when a split loads)."""
    policy = long_clips or s.long_clips
    if train and rng is None:
        raise ValueError("a training plan needs an rng")
    m = resampled_length(n_frames, source_fps, s.target_fps)
    r, n = s.sampling_rate, s.num_frames
    phase = int(rng.integers(0, min(r, m))) if train else 0
    grid = np.arange(phase, m, r, dtype=np.int64)
    n_sampled = len(grid)
    stretched = truncated = False
    if n_sampled <= n:
        starts = np.zeros(1, dtype=np.int64)
    elif policy == "truncate":
        first = int(rng.integers(0, n_sampled - n + 1)) if train else (n_sampled - n) // 2
        grid, starts, truncated = grid[first : first + n], np.zeros(1, dtype=np.int64), True
    else:
        n_windows = windows_needed(n_sampled, n, s.window_stride)
        if n_windows > s.max_windows:
            # spread exactly max_windows windows over the whole clip
            n_windows, stretched = s.max_windows, True
            n_sampled = n + (n_windows - 1) * s.window_stride
            grid = np.round(np.linspace(0, m - 1, n_sampled)).astype(np.int64)
        starts = window_starts(n_sampled, n, s.window_stride, n_windows)
    return WindowPlan(to_source_indices(grid, n_frames, source_fps, s.target_fps), starts, stretched, truncated)
