"""A segment of an input -> the model's input, exactly as evaluation reads a clip.

The frames and windows of a segment ``start .. end`` (source frames) are those
``VideoClipDataset`` reads for a clip cut at those frames (evaluation plan: no random phase,
centred crop): :func:`ssvp_slt.corpus.frame_sampling.plan_windows` on the segment's frame count
and rate, the frames decoded at the data config's ``resize_short_side`` and cropped to
``crop_size`` at the centre; with a signer crop (:mod:`.crop`), the signer's square first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ..corpus.frame_sampling import WindowPlan, plan_windows


@dataclass
class ClipJob:
    """One segment of one input to encode and decode."""

    input_index: int
    segment_index: int
    start: int  # first source frame
    end: int  # one past the last
    plan: Optional[WindowPlan]  # None for feature-only models
    encoder_frames: int  # what a batch's frame budget counts (windows x num_frames, or the frames of a short clip)


def plan_segment(n_frames: int, fps: float, data_cfg) -> WindowPlan:
    """The evaluation plan of a clip of ``n_frames`` at ``fps`` (``drop`` plans as ``stretch``, as evaluation does)."""
    s = data_cfg.window_settings()
    policy = "stretch" if s.long_clips == "drop" else s.long_clips
    return plan_windows(n_frames, fps, s, train=False, long_clips=policy)


def encoder_frames(plan: WindowPlan, num_frames: int) -> int:
    return len(plan.source_indices) if plan.num_windows == 1 else plan.num_windows * num_frames


def centre_crop(frames: np.ndarray, crop_size: int) -> np.ndarray:
    """The evaluation crop of ``VideoClipDataset`` (``crop_box`` without jitter), on (T, H, W, C)."""
    height, width = frames.shape[1], frames.shape[2]
    if height < crop_size or width < crop_size:
        raise ValueError(f"frames of {height}x{width} are smaller than the crop size {crop_size}")
    top, left = (height - crop_size) / 2, (width - crop_size) / 2
    top = int(round(min(max(top, 0), height - crop_size)))
    left = int(round(min(max(left, 0), width - crop_size)))
    return frames[:, top : top + crop_size, left : left + crop_size]


def read_clip(source, job: ClipJob, data_cfg, cropper=None) -> Tuple[np.ndarray, np.ndarray, int, Optional[dict]]:
    """(frames (T, crop, crop, 3) uint8, window starts, frames really decoded, signer box or None)."""
    indices = job.start + job.plan.source_indices
    box = None
    if cropper is not None:
        frames, n_decoded, crop = cropper.read(source, indices, job.start, job.end - job.start, data_cfg.resize_short_side)
        box = crop.to_dict()
    else:
        frames, n_decoded = source.read(indices, data_cfg.resize_short_side)
    frames = np.ascontiguousarray(centre_crop(frames, data_cfg.crop_size))
    return frames, job.plan.starts, n_decoded, box
