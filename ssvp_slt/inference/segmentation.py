"""Cutting a long, unsegmented video into sentence-sized segments.

The model was trained on one sentence per clip; a recording of many sentences has to be cut
before it is translated. Three methods (``SegmentationSettings.method``):

- ``none``: the whole input is one segment (pre-cut clips: what ``fairseq-generate`` reads).
- ``fixed``: windows of ``window`` seconds, ``overlap`` seconds apart from the next; each is
  translated, and the words the next window repeats from the overlap are dropped
  (:mod:`.overlap`). Needs nothing but the clock; cuts through sentences.
- ``pause``: cut where the signer pauses between sentences. A pause is a stretch of at least
  ``min_pause`` seconds in which the signer holds *the rest pose*:

  * from keypoints (when given: OpenPose JSON / ``.pose`` / (T, 137, 3) array of the whole
    input), frames where both hands are low (below ``rest_height`` of the way from the neck to
    the hips, or not detected: How2Sign's resting hands often leave the frame) and slow
    (hand speed below ``rest_speed`` shoulder widths per second);
  * from the video alone, *still* frames (low motion energy: the mean absolute difference of
    consecutive small grey frames, smoothed, under a threshold set between the input's own
    quiet and busy levels) grouped in runs, and among the still runs those that look like the
    input's rest pose: the still runs are compared picture to picture and the pose shared by
    the most still time is taken as the rest pose. Motion energy alone cannot tell a pause
    from a sign held still (the synthetic signer holds some signs for 0.5 s, as long as its
    pauses); the hands' position can.

  Segments are the signing between pauses, widened by ``pad`` seconds into each pause (never
  past its middle: sentence spans include a little rest), segments shorter than
  ``min_segment`` merged into a neighbour, and segments longer than ``max_segment`` split at
  their stillest moment.

``auto`` (the default) reads an input no longer than ``auto_max`` seconds whole (a pre-cut
clip) and cuts longer ones at pauses. The CLI and :class:`SignTranslator` fill ``auto_max``
and ``max_segment`` from what the model was trained on (see ``docs/inference.md``).

Pure numpy: frames come in through :func:`motion_frames`, which reads any source.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import List, Optional, Sequence, Tuple

import numpy as np

METHODS = ("auto", "none", "fixed", "pause")
MOTION_SHORT_SIDE = 32  # grey frames for motion energy: hands still span a few pixels


@dataclass(frozen=True)
class SegmentationSettings:
    method: str = "auto"
    # fixed windows
    window: Optional[float] = None  # seconds (default: the model's sentence length, see resolve())
    overlap: Optional[float] = None  # seconds (default: a quarter of the window)
    # pauses
    min_pause: float = 0.2  # seconds of rest that make a pause
    min_segment: float = 1.0  # shorter segments are merged into a neighbour
    max_segment: Optional[float] = None  # longer segments are split (default: see resolve())
    pad: float = 0.2  # seconds of the pause kept on each side of a segment
    motion_threshold: float = 0.1  # still: smoothed motion below quiet + this x (busy - quiet)
    rest_tolerance: float = 0.04  # same pose: at most this share of the moving pixels differ (video-only rest pose)
    rest_height: float = 0.75  # keypoints: hands lower than this share of neck -> hips (or the hands' lowest) rest
    rest_speed: float = 1.0  # keypoints: ... and slower than this many shoulder widths per second
    # auto
    auto_max: Optional[float] = None  # inputs up to this long are read whole

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"segmentation method must be one of {METHODS}, got {self.method!r}")
        for name in ("min_pause", "min_segment", "pad", "motion_threshold", "rest_tolerance", "rest_speed"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"segmentation {name} must be a number >= 0, got {v!r}")
        for name in ("window", "max_segment", "auto_max"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, (int, float)) or v <= 0):
                raise ValueError(f"segmentation {name} must be a positive number of seconds, got {v!r}")
        if self.overlap is not None and (self.overlap < 0 or (self.window is not None and self.overlap >= self.window)):
            raise ValueError(f"overlap must be >= 0 and shorter than the window ({self.window} s), got {self.overlap}")

    def resolve(self, sentence_seconds: float, reach_seconds: float) -> "SegmentationSettings":
        """Fill the defaults from the model: ``sentence_seconds``, the longest clip it was trained on
        (or its reach when unknown); ``reach_seconds``, the longest clip it reads at the normal frame
        rate (max_windows windows). auto_max = max_segment = 1.5 x the longest training clip (at most
        the reach): longer stretches are more than the model has learnt to read as one sentence."""
        limit = round(min(1.5 * sentence_seconds, reach_seconds), 3)
        window = self.window or round(min(sentence_seconds, reach_seconds), 3)
        return replace(
            self,
            auto_max=self.auto_max or limit,
            max_segment=self.max_segment or limit,
            window=window,
            overlap=self.overlap if self.overlap is not None else round(window / 4, 3),
        )

    def describe(self, method: str) -> dict:
        """The settings that matter for ``method`` (what outputs record)."""
        d = asdict(self)
        keep = {
            "none": ("auto_max",),
            "fixed": ("window", "overlap"),
            "pause": ("min_pause", "min_segment", "max_segment", "pad", "motion_threshold", "rest_tolerance",
                      "rest_height", "rest_speed"),
        }[method]
        return {"method": method, **{k: d[k] for k in keep}}


@dataclass(frozen=True)
class Span:
    """Frames ``start <= t < end`` of the input; ``shown``: the part a subtitle shows (fixed windows
    overlap: each shows up to the middle of its overlaps), default the whole span."""

    start: int
    end: int
    shown: Optional[Tuple[int, int]] = None

    @property
    def n_frames(self) -> int:
        return self.end - self.start


@dataclass
class Segmentation:
    spans: List[Span]
    method: str  # the method used (auto resolved)
    settings: dict  # SegmentationSettings.describe(method), plus what the method found
    pauses: List[Tuple[int, int]] = field(default_factory=list)  # frames of the pauses found (pause method)
    cue: str = ""  # pause method: "keypoints" or "video"


def fixed_spans(n_frames: int, fps: float, window: float, overlap: float) -> List[Span]:
    """Windows of ``window`` s, each starting ``window - overlap`` s after the previous, the last
    one ending at the last frame; each shows the part up to the middle of its overlaps."""
    length = max(1, int(round(window * fps)))
    step = max(1, length - int(round(overlap * fps)))
    if n_frames <= length:
        return [Span(0, n_frames)]
    starts = list(range(0, n_frames - length, step)) + [n_frames - length]
    if len(starts) > 1 and starts[-1] - starts[-2] < step // 4:  # a last window hardly moved: drop the one before
        starts.pop(-2)
    spans = [Span(s, s + length) for s in starts]
    out = []
    for i, s in enumerate(spans):
        lo = 0 if i == 0 else (spans[i - 1].end + s.start) // 2
        hi = n_frames if i == len(spans) - 1 else (s.end + spans[i + 1].start) // 2
        out.append(Span(s.start, s.end, (lo, hi)))
    return out


# ----------------------------------------------------------------------------- motion and rest


def motion_energy(grey: np.ndarray) -> np.ndarray:
    """Per frame, the mean absolute change from the previous frame (0-1 grey levels); frame 0 copies frame 1."""
    g = np.asarray(grey, dtype=np.float32) / 255.0
    if len(g) < 2:
        return np.zeros(len(g), dtype=np.float32)
    d = np.abs(np.diff(g, axis=0)).reshape(len(g) - 1, -1).mean(axis=1)
    return np.concatenate([d[:1], d]).astype(np.float32)


def smooth(x: np.ndarray, n: int) -> np.ndarray:
    """Centred moving average over ``n`` frames (odd; edges use the frames there are)."""
    if n <= 1 or len(x) == 0:
        return np.asarray(x, dtype=np.float32)
    k = np.ones(n, dtype=np.float64)
    num = np.convolve(x, k, mode="same")
    den = np.convolve(np.ones(len(x)), k, mode="same")
    return (num / den).astype(np.float32)


def runs(mask: np.ndarray) -> List[Tuple[int, int]]:
    """(start, end) of each run of True, end exclusive."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(m.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def still_frames(energy: np.ndarray, fps: float, threshold: float) -> Tuple[np.ndarray, float]:
    """Frames whose motion (smoothed over ~0.12 s) is under quiet + threshold x (busy - quiet), with the
    input's own quiet (10th percentile) and busy (90th) levels: no absolute level fits every camera."""
    s = smooth(energy, max(1, int(round(0.12 * fps)) | 1))
    quiet, busy = np.percentile(s, 10), np.percentile(s, 90)
    level = float(quiet + threshold * (busy - quiet))
    return s <= level, level


def active_pixels(grey: np.ndarray, delta: float = 0.1) -> np.ndarray:
    """Pixels whose grey level changes by more than ``delta`` (0-1) somewhere in the input: where the
    hands move. Poses are compared there, so that the hands, a small part of the frame, count."""
    g = np.asarray(grey)
    active = (g.max(axis=0).astype(np.int16) - g.min(axis=0)) > delta * 255
    return active if active.any() else np.ones(g.shape[1:], dtype=bool)


def pose_distance(a: np.ndarray, b: np.ndarray, mask: Optional[np.ndarray] = None, delta: float = 0.1) -> float:
    """Share of (``mask``) pixels whose grey level differs by more than ``delta`` (0-1): ~0 for the same
    pose; on the synthetic videos, 0.07 and more of the active pixels between a held sign and the rest pose."""
    diff = np.abs(a.astype(np.float32) - b.astype(np.float32)) / 255.0 > delta
    return float(diff[mask].mean() if mask is not None else diff.mean())


def video_rest_runs(grey: np.ndarray, fps: float, s: SegmentationSettings, min_frames: int) -> Tuple[List[Tuple[int, int]], dict]:
    """Runs of still frames (at least ``min_frames``) that show the input's rest pose (module docstring).

    The rest pose is chosen among all still runs of at least 3 frames (short rests count too); a
    run at the very start or end of the input counts twice, as recordings tend to begin and end
    with the hands at rest."""
    energy = motion_energy(grey)
    still, level = still_frames(energy, fps, s.motion_threshold)
    candidates = [r for r in runs(still) if r[1] - r[0] >= 3]
    info = {"motion_level": round(level, 6), "still_runs": len(candidates)}
    if len(candidates) < 2:
        return [r for r in candidates if r[1] - r[0] >= min_frames], {**info, "rest_pose": "fewer than 2 still runs"}
    reps = [np.median(grey[a:b], axis=0) for a, b in candidates]
    weight = np.array([(b - a) * (2 if a == 0 or b == len(grey) else 1) for a, b in candidates], dtype=np.float64)
    n, active = len(reps), active_pixels(grey)
    same = np.zeros((n, n), dtype=bool)
    for i in range(n):
        for j in range(i, n):
            same[i, j] = same[j, i] = pose_distance(reps[i], reps[j], active) <= s.rest_tolerance
    support = same.astype(np.float64) @ weight
    rest = int(np.argmax(support))
    chosen = [candidates[j] for j in range(n) if same[rest, j]]
    info.update(rest_runs=len(chosen), rest_share_of_still=round(float(support[rest] / weight.sum()), 3))
    # a rest at the very start or end is trimmed however short; inside, a pause must last min_frames
    return [(a, b) for a, b in chosen if b - a >= min_frames or a == 0 or b == len(grey)], info


def keypoint_rest_mask(keypoints: np.ndarray, fps: float, s: SegmentationSettings) -> np.ndarray:
    """Per keypoint frame, whether both hands rest: low (below ``rest_height`` of the way from the neck
    to the mid-hip, or to the lowest the hands go when the hips are not seen; or undetected) and slow
    (< ``rest_speed`` shoulder widths per second). ``keypoints``: (T, 137, 3)
    OpenPose points (x, y, confidence), y pointing down; (0, 0, 0) for an undetected point."""
    from ..keypoints.layout import BODY_25, L_SHOULDER, NECK, R_SHOULDER, component_slices

    kp = np.asarray(keypoints, dtype=np.float32)
    if kp.ndim != 3 or kp.shape[1:] != (137, 3):
        raise ValueError(f"keypoints for segmentation must be (T, 137, 3) OpenPose points, got {kp.shape}")
    ok = kp[:, :, 2] > 0
    mid_hip = BODY_25.index("MidHip")

    def med(i, axis):  # a body point's median position over the frames that have it (the torso hardly moves)
        v = kp[ok[:, i], i, axis]
        return float(np.median(v)) if len(v) else np.nan

    neck_y, hip_y = med(NECK, 1), med(mid_hip, 1)
    shoulders = np.abs(kp[:, R_SHOULDER, 0] - kp[:, L_SHOULDER, 0])[ok[:, R_SHOULDER] & ok[:, L_SHOULDER]]
    width = float(np.median(shoulders)) if len(shoulders) else np.nan
    if not np.isfinite(width) or width <= 0:  # no shoulders: a third of the points' spread
        xs = kp[:, :, 0][ok]
        width = float(xs.max() - xs.min()) / 3 if len(xs) else 1.0
    sl = component_slices()
    centres = []
    for name in ("hand_left_keypoints_2d", "hand_right_keypoints_2d"):
        pts = kp[:, sl[name]]
        seen = pts[:, :, 2] > 0
        n = seen.sum(axis=1)
        cx = np.where(n > 0, (pts[:, :, 0] * seen).sum(axis=1) / np.maximum(n, 1), np.nan)
        cy = np.where(n > 0, (pts[:, :, 1] * seen).sum(axis=1) / np.maximum(n, 1), np.nan)
        centres.append((cx, cy))
    all_y = np.concatenate([cy[np.isfinite(cy)] for _, cy in centres])
    if not np.isfinite(neck_y):
        neck_y = float(np.nanmin(np.where(ok, kp[:, :, 1], np.nan))) if ok.any() else 0.0
    # the height hands rest at: the hips when they are in the picture, else the lowest the hands go
    # (How2Sign-like framing often ends above the hips; resting hands are the hands' lowest place)
    bottom = hip_y if np.isfinite(hip_y) else (float(np.percentile(all_y, 95)) if len(all_y) else neck_y + 3 * width)
    line = neck_y + s.rest_height * (bottom - neck_y)
    resting = np.ones(len(kp), dtype=bool)
    for cx, cy in centres:
        # hands often vanish when they drop out of the frame to rest: undetected counts as resting
        low = ~np.isfinite(cy) | (cy >= line)
        speed = np.zeros(len(kp), dtype=np.float32)
        if len(kp) > 1:
            v = np.hypot(np.diff(cx), np.diff(cy)) * fps / width
            v = np.concatenate([v[:1], v])
            speed = smooth(np.nan_to_num(v, nan=0.0), max(1, int(round(0.12 * fps)) | 1))
        resting &= low & (speed < s.rest_speed)
    return resting


def rest_runs_from_mask(mask: np.ndarray, min_frames: int) -> List[Tuple[int, int]]:
    return [r for r in runs(mask) if r[1] - r[0] >= min_frames]


# ----------------------------------------------------------------------------- pauses -> segments


def spans_between_pauses(
    n_frames: int, fps: float, pauses: Sequence[Tuple[int, int]], s: SegmentationSettings, still: Optional[np.ndarray] = None
) -> List[Span]:
    """The signing between pauses as segments: widened by ``pad`` into each pause (at most half of
    it), short ones merged, long ones split at their stillest frame."""
    pauses = sorted(pauses)
    # signing stretches: the gaps between pauses (and before the first / after the last)
    gaps, prev = [], 0
    for a, b in pauses:
        if a > prev:
            gaps.append([prev, a])
        prev = max(prev, b)
    if prev < n_frames:
        gaps.append([prev, n_frames])
    if not gaps:
        return []
    pad = int(round(s.pad * fps))

    def widen(a, b):
        lo = a if a == 0 else max(0, a - min(pad, _pause_len_before(pauses, a) // 2))
        hi = b if b == n_frames else min(n_frames, b + min(pad, _pause_len_after(pauses, b) // 2))
        return lo, hi

    spans = [list(widen(a, b)) for a, b in gaps]
    # merge segments shorter than min_segment into the neighbour across the shorter gap
    min_len = int(round(s.min_segment * fps))
    while len(spans) > 1:
        lengths = [b - a for a, b in spans]
        i = int(np.argmin(lengths))
        if lengths[i] >= min_len:
            break
        left_gap = spans[i][0] - spans[i - 1][1] if i > 0 else None
        right_gap = spans[i + 1][0] - spans[i][1] if i + 1 < len(spans) else None
        j = i - 1 if right_gap is None or (left_gap is not None and left_gap <= right_gap) else i + 1
        a, b = min(spans[i][0], spans[j][0]), max(spans[i][1], spans[j][1])
        spans[min(i, j)] = [a, b]
        del spans[max(i, j)]
    out: List[Span] = []
    max_len = int(round(s.max_segment * fps)) if s.max_segment else None
    for a, b in spans:
        out.extend(_split_long(a, b, max_len, min_len, still))
    return out


def _pause_len_before(pauses, t):
    return next((b - a for a, b in pauses if b == t), 0)


def _pause_len_after(pauses, t):
    return next((b - a for a, b in pauses if a == t), 0)


def _split_long(a: int, b: int, max_len: Optional[int], min_len: int, quiet: Optional[np.ndarray]) -> List[Span]:
    """Split [a, b) while longer than ``max_len``: at the quietest frame (lowest ``quiet`` score, e.g.
    smoothed motion) at least ``min_len`` (or a quarter) from both ends, else in the middle."""
    if not max_len or b - a <= max_len:
        return [Span(a, b)]
    margin = max(1, min(min_len, (b - a) // 4))
    lo, hi = a + margin, b - margin
    cut = (a + b) // 2
    if quiet is not None and hi > lo:
        q = quiet[lo:hi]
        quietest = lo + np.flatnonzero(q <= q.min() + 1e-9)
        cut = int(quietest[np.argmin(np.abs(quietest - cut))])  # among equally quiet frames, nearest the middle
    return _split_long(a, cut, max_len, min_len, quiet) + _split_long(cut, b, max_len, min_len, quiet)


def pause_segmentation(
    n_frames: int,
    fps: float,
    s: SegmentationSettings,
    grey: Optional[np.ndarray] = None,
    keypoints: Optional[np.ndarray] = None,
    keypoint_fps: Optional[float] = None,
) -> Segmentation:
    """Segments at pauses, from keypoints if given (``keypoint_fps`` default: ``fps``), else from ``grey``
    frames ((T, h, w) uint8, all frames of the input)."""
    min_frames = max(1, int(round(s.min_pause * fps)))
    info: dict = {}
    if keypoints is not None:
        kfps = keypoint_fps or fps
        mask_k = keypoint_rest_mask(keypoints, kfps, s)
        # keypoint frames -> video frames (nearest earlier keypoint frame)
        idx = np.minimum(len(mask_k) - 1, np.floor(np.arange(n_frames) * kfps / fps + 1e-6).astype(np.int64))
        mask = mask_k[idx]
        pauses = rest_runs_from_mask(mask, min_frames)
        quiet = smooth((~mask).astype(np.float32), max(1, int(round(0.5 * fps)) | 1))
        cue = "keypoints"
        info["rest_frames"] = int(mask.sum())
    else:
        if grey is None:
            raise ValueError("pause segmentation needs the input's frames or keypoints")
        pauses, info = video_rest_runs(grey, fps, s, min_frames)
        quiet = smooth(motion_energy(grey), max(1, int(round(0.5 * fps)) | 1))
        cue = "video"
    spans = spans_between_pauses(n_frames, fps, pauses, s, quiet)
    if not spans:  # the whole input is one pause (nobody signs): still translated, in segments of at most max_segment
        max_len = int(round(s.max_segment * fps)) if s.max_segment else None
        spans = _split_long(0, n_frames, max_len, int(round(s.min_segment * fps)), quiet)
    settings = {**s.describe("pause"), "cue": cue, **info, "pauses": len(pauses)}
    return Segmentation(spans, "pause", settings, pauses=list(pauses), cue=cue)


def segment(
    n_frames: int,
    fps: float,
    s: SegmentationSettings,
    grey_reader=None,
    keypoints: Optional[np.ndarray] = None,
    keypoint_fps: Optional[float] = None,
) -> Segmentation:
    """Segments of one input. ``grey_reader()`` returns its frames as small grey images (read only when
    the pause method needs them); ``s`` must be resolved (:meth:`SegmentationSettings.resolve`)."""
    duration = n_frames / fps
    method, why = s.method, None
    if method == "auto":
        limit = s.auto_max or float("inf")
        method = "none" if duration <= limit else "pause"
        why = f"auto: {duration:.2f} s {'<=' if method == 'none' else '>'} auto_max {limit:.2f} s"
    if method == "none":
        out = Segmentation([Span(0, n_frames)], "none", s.describe("none"))
    elif method == "fixed":
        out = Segmentation(fixed_spans(n_frames, fps, s.window, s.overlap), "fixed", s.describe("fixed"))
    else:
        grey = grey_reader() if keypoints is None and grey_reader is not None else None
        out = pause_segmentation(n_frames, fps, s, grey=grey, keypoints=keypoints, keypoint_fps=keypoint_fps)
    if why:
        out.settings["chosen"] = why
    return out


def motion_frames(source, short_side: int = MOTION_SHORT_SIDE) -> np.ndarray:
    """All frames of a source as small grey images (T, h, w) uint8, for motion energy and rest pose."""
    from av.video.reformatter import Interpolation

    from ..corpus.video_io import resized_shape

    w, h = resized_shape(source.width, source.height, min(short_side, source.width, source.height))
    # area averaging: a plain bilinear shrink by 10-20x aliases, and flickers where nothing moves
    frames, _ = source.read(np.arange(source.n_frames), size=(w, h), pixel_format="gray", interpolation=Interpolation.AREA)
    return frames
