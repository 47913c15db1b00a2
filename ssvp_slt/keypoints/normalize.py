"""Normalisation: pixel keypoints -> coordinates in shoulder widths around the shoulder midpoint.

For a (T, 137, 3) clip of (x, y, confidence):

* a point is *visible* when its confidence is above ``min_confidence`` (OpenPose writes
  (0, 0, 0) for an undetected point: without the mask it would read as a real point at the
  frame's top-left corner);
* the anchor is the midpoint of the two shoulders (BODY_25 RShoulder, LShoulder), the scale
  their distance, both averaged over the frames where both shoulders are visible
  (``anchor: clip``: the definition of pose-format's ``Pose.normalize()``, so whole-body motion
  such as leaning stays in the data), or with the centre taken per frame (``anchor: frame``;
  frames without both shoulders use the clip's; the scale stays the clip's, since a per-frame
  shoulder width only adds the detector's jitter);
* a clip where no frame shows both shoulders is centred on the mean neck point if there is one,
  else on the frame centre, with scale ``fallback_scale`` x frame height (reported by the
  preparation as "no shoulders");
* visible points become ((x, y) - centre) / scale; masked points are (0, 0) with visibility 0.

x grows to the image right, y downwards (image coordinates, not flipped).
"""

from typing import Optional, Tuple

import numpy as np

from .config import KeypointConfig
from .layout import L_SHOULDER, NECK, R_SHOULDER

ANCHOR_SHOULDERS, ANCHOR_NECK, ANCHOR_FRAME_CENTRE = "shoulders", "neck", "frame centre"


def visibility(raw: np.ndarray, min_confidence: float) -> np.ndarray:
    """(T, P) bool: confidence above the threshold and every value finite."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(raw).all(axis=-1) & (raw[..., 2] > min_confidence)


def anchor(raw: np.ndarray, visible: np.ndarray, cfg: KeypointConfig,
           frame_size: Optional[Tuple[int, int]] = None) -> Tuple[np.ndarray, float, str]:
    """(centre per frame (T, 2), scale, how it was found) for a (T, 137, 3) clip."""
    width, height = frame_size or (cfg.frame_width, cfg.frame_height)
    xy = raw[..., :2].astype(np.float64)
    right, left = xy[:, R_SHOULDER], xy[:, L_SHOULDER]
    shoulder_width = np.linalg.norm(right - left, axis=-1)
    both = visible[:, R_SHOULDER] & visible[:, L_SHOULDER] & (shoulder_width > 1e-6)
    mid = (right + left) / 2
    if both.any():
        centre, scale, kind = mid[both].mean(axis=0), float(shoulder_width[both].mean()), ANCHOR_SHOULDERS
    elif visible[:, NECK].any():
        centre, scale, kind = xy[visible[:, NECK], NECK].mean(axis=0), cfg.fallback_scale * height, ANCHOR_NECK
    else:
        centre, scale, kind = np.array([width / 2, height / 2]), cfg.fallback_scale * height, ANCHOR_FRAME_CENTRE
    centres = np.repeat(centre[None], len(raw), axis=0)
    if cfg.anchor == "frame" and kind == ANCHOR_SHOULDERS:
        centres[both] = mid[both]
    return centres, scale, kind


def normalize(raw: np.ndarray, cfg: KeypointConfig, frame_size: Optional[Tuple[int, int]] = None):
    """(T, 137, 3) pixels -> (xy (T, 137, 2) float32 in shoulder widths, visible (T, 137) bool, anchor kind)."""
    raw = np.asarray(raw)
    if raw.ndim != 3 or raw.shape[-1] != 3:
        raise ValueError(f"keypoints of shape {raw.shape}, expected (frames, points, 3)")
    visible = visibility(raw, cfg.min_confidence)
    centres, scale, kind = anchor(raw, visible, cfg, frame_size)
    xy = (raw[..., :2].astype(np.float64) - centres[:, None, :]) / scale
    xy[~visible] = 0.0
    return xy.astype(np.float32), visible, kind
