"""Face blurring for sign-language clips (privacy-aware preparation, ``--blur-faces``).

SSVP-SLT trains on face-blurred video; its authors did not release their
blurring code, so this is our own, built only on what installed packages ship:

* **Detector** (:class:`FaceDetector`, shared with ``signer_crop.py``): OpenCV's
  Haar cascades from the ``opencv-python-headless``
  wheel (``cv2.data.haarcascades``): frontal face, plus the profile cascade on
  the frame and on its mirror image (the cascade only knows one facing
  direction), so a signer turning the head is still found. Nothing is
  downloaded at run time. OpenCV 5.x wheels ship neither the cascade files nor
  ``CascadeClassifier``, hence the ``<5`` bound in ``setup.py``. The profile
  cascades cost 3/4 of the detector's time, so they run only when the frontal
  one found nothing or lost a tracked face, and on every 4th detector run.
  Frames are downscaled for detection only as far as keeps the smallest wanted
  face (``min_face_fraction``) at the cascades' 24 px window, and their
  contrast is equalised locally (CLAHE), not globally: a global histogram
  equalisation is dominated by a large flat background such as a green screen.
* **Anonymisation**: each face box, enlarged by ``margin`` on every side, is
  pixelated (cells of ``blur_strength`` x face size) and then Gaussian-blurred
  (sigma of half a cell) so no facial detail survives; only pixels of the
  boxes' own crop are read, and every pixel outside the boxes is returned
  bit-identical.
* **Temporal smoothing** (one blurrer per clip, :meth:`FaceBlurrer.reset`
  between clips): detections are matched to tracks; a track's box is an
  exponential moving average (``smoothing`` = weight of the past) of its
  detections, so the blurred area does not jitter; a detection that matches no
  track starts a new one at once (a face that re-appears elsewhere is blurred
  there from its first frame); a track the detector misses keeps being blurred
  for ``hold_frames`` frames. So the smoothed box never lags behind a moving
  face, the region blurred also covers the last raw detection whenever that
  pokes out of the smoothed (margin-enlarged) box.

Usage::

    blurrer = FaceBlurrer()
    for clip in clips:
        blurrer.reset()
        out = [blurrer(f) for f in frames_of(clip)]   # HxWx3 uint8 RGB
        print(blurrer.stats)

or ``frames, stats = blur_faces(frames)`` for one clip.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable, Iterable, List, Sequence, Tuple, Union

import numpy as np

try:  # imported lazily by the preparation script only when --blur-faces is given
    import cv2
except ImportError as e:  # pragma: no cover - exercised only without OpenCV
    raise ImportError(
        "face blurring needs OpenCV: pip install 'opencv-python-headless>=4.5,<5' "
        "(the 4.x wheels ship the Haar cascades used here)"
    ) from e

Box = Tuple[float, float, float, float]  # x0, y0, x1, y1 in frame pixels (x1, y1 exclusive)

FRONTAL_CASCADE = "haarcascade_frontalface_default.xml"
PROFILE_CASCADE = "haarcascade_profileface.xml"
# smallest window the cascades scan (frontal 24x24, profile 20x20): frames are
# downscaled for detection only as far as keeps a min_face_fraction face >= this
_CASCADE_WINDOW = 24
_SCALE_FACTOR = 1.1
_MIN_NEIGHBORS = 5


def cascade_path(name: str) -> str:
    """Path of a Haar cascade shipped inside the installed ``cv2`` package (no download)."""
    data = getattr(getattr(cv2, "data", None), "haarcascades", None)
    path = os.path.join(data, name) if data else None
    if path is None or not os.path.isfile(path) or not hasattr(cv2, "CascadeClassifier"):
        raise RuntimeError(
            f"OpenCV {cv2.__version__} does not ship the Haar cascade {name!r} "
            "(OpenCV 5.x wheels dropped them): install opencv-python-headless>=4.5,<5"
        )
    return path


def _load_cascade(name: str) -> "cv2.CascadeClassifier":
    clf = cv2.CascadeClassifier(cascade_path(name))
    if clf.empty():
        raise RuntimeError(f"could not load the Haar cascade {cascade_path(name)}")
    return clf


def _iou(a: Box, b: Box) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _overlap_of_smaller(a: Box, b: Box) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    return iw * ih / min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))


def _centre_distance(ref: Box, b: Box) -> float:
    """Distance between the boxes' centres, in units of ref's larger side."""
    size = max(ref[2] - ref[0], ref[3] - ref[1], 1.0)
    return math.hypot((b[0] + b[2] - ref[0] - ref[2]) / 2, (b[1] + b[3] - ref[1] - ref[3]) / 2) / size


def _union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _contains(outer: Box, inner: Box) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and outer[2] >= inner[2] and outer[3] >= inner[3]


def _merge_boxes(boxes: List[Box]) -> List[Box]:
    """Union boxes that are the same face seen by several cascades (privacy: never shrink)."""
    boxes = list(boxes)
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                if _iou(boxes[i], boxes[j]) > 0.3 or _overlap_of_smaller(boxes[i], boxes[j]) > 0.5:
                    boxes[i] = _union(boxes[i], boxes[j])
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


class FaceDetector:
    """OpenCV Haar face detector (frontal, plus profile in both directions), used by the face
    blurrer and the signer crop (``signer_crop.py``).

    Args:
        min_face_fraction: smallest face searched, as a fraction of the frame's shorter side
            (``detectMultiScale``'s ``minSize``). Being a fraction, it means the same on a
            frame the caller has already downscaled.
        use_profile: whether the profile cascades may run at all (see :meth:`detect`).

    One detector per user: ``CascadeClassifier`` is not documented thread-safe.
    """

    def __init__(self, min_face_fraction: float = 0.05, *, use_profile: bool = True):
        if not 0 < min_face_fraction < 1:
            raise ValueError(f"min_face_fraction must be in (0, 1), got {min_face_fraction}")
        self.min_face_fraction = float(min_face_fraction)
        self.frontal = _load_cascade(FRONTAL_CASCADE)
        self.profile = _load_cascade(PROFILE_CASCADE) if use_profile else None
        # local (tile-wise) contrast equalisation: a global equalizeHist lets a large flat
        # background (How2Sign's green screen) dominate the histogram, which hid the face or
        # produced frame-sized false positives in tests with a face pasted on flat backgrounds
        self._clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))

    def detection_scale(self, width: int, height: int) -> float:
        """Factor (<= 1) by which a width x height frame can be downscaled before detection
        while the smallest wanted face stays at least the cascades' window. A caller that
        converts frames itself can convert straight to this size (cheaper than full size)."""
        target_short = math.ceil(_CASCADE_WINDOW / self.min_face_fraction)
        return min(1.0, target_short / min(width, height))

    def detect(self, frame: np.ndarray, profile: Union[None, bool, Callable[[List[Box]], bool]] = None) -> List[Box]:
        """Face boxes (x0, y0, x1, y1) in ``frame``'s pixel coordinates.

        ``frame``: HxWx3 uint8 RGB or HxW uint8 grey. ``profile``: whether to also run the
        profile cascades (frame and mirrored frame; 3/4 of the time): None = only when the
        frontal cascade found nothing; a bool; or a function of the frontal boxes. Boxes
        that several cascades found for the same face are merged (their union)."""
        h, w = frame.shape[:2]
        short = min(h, w)
        frame = np.ascontiguousarray(frame)  # PyAV's arrays may have padded rows
        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        # detect on a smaller copy when the smallest wanted face stays above the cascade window
        scale = self.detection_scale(w, h)
        if scale < 1.0:
            gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        gray = self._clahe.apply(gray)
        gw = gray.shape[1]
        min_px = max(1, int(round(self.min_face_fraction * short * scale)))
        kw = dict(scaleFactor=_SCALE_FACTOR, minNeighbors=_MIN_NEIGHBORS, minSize=(min_px, min_px))
        inv = 1.0 / scale
        found: List[Box] = [
            (x * inv, y * inv, (x + bw) * inv, (y + bh) * inv) for x, y, bw, bh in self.frontal.detectMultiScale(gray, **kw)
        ]
        if profile is None:
            want_profile = not found
        elif callable(profile):
            want_profile = bool(profile(found))
        else:
            want_profile = bool(profile)
        if self.profile is not None and want_profile:
            for x, y, bw, bh in self.profile.detectMultiScale(gray, **kw):
                found.append((x * inv, y * inv, (x + bw) * inv, (y + bh) * inv))
            for x, y, bw, bh in self.profile.detectMultiScale(cv2.flip(gray, 1), **kw):
                found.append(((gw - x - bw) * inv, y * inv, (gw - x) * inv, (y + bh) * inv))
        return _merge_boxes([tuple(float(v) for v in b) for b in found])


@dataclass
class _Track:
    smooth: np.ndarray  # EMA of the detected boxes, float [x0, y0, x1, y1]
    last_raw: Box  # the latest detection matched to this track
    last_seen: int  # frame index of that detection


def _refs(tr: _Track) -> Tuple[Box, Box]:
    return tuple(float(v) for v in tr.smooth), tr.last_raw


def _matches(tr: _Track, d: Box) -> bool:
    """Whether detection d can be the face of track tr (near or overlapping its smoothed or last raw box)."""
    return any(_centre_distance(t, d) < 0.5 or _iou(t, d) > 0.1 for t in _refs(tr))


class FaceBlurrer:
    """Blur faces in the frames of one clip, frame by frame (stateful: call :meth:`reset` per clip).

    Args:
        margin: the blurred box is the face box enlarged by this fraction of its
            width/height on each side (hair, ears, chin).
        hold_frames: keep blurring a face's last box for up to this many frames
            after the detector stopped finding it.
        smoothing: weight of the past in the exponential moving average of a
            face's box (0 = follow the detector exactly, closer to 1 = steadier).
        detect_every: run the detector on every N-th frame only (frames 0, N,
            2N, ...), blurring the held boxes in between.
        min_face_fraction: smallest face searched, as a fraction of the frame's
            shorter side (``detectMultiScale``'s ``minSize``).
        blur_strength: pixelation cell (and Gaussian sigma = half a cell) as a
            fraction of the face box size; 0.15 leaves ~7 cells across a face.
        use_profile: also run the profile-face cascade (both directions) when the
            frontal one found nothing or lost a tracked face, and on every
            ``PROFILE_EVERY``-th detector run.
    """

    PROFILE_EVERY = 4

    def __init__(
        self,
        margin: float = 0.25,
        hold_frames: int = 12,
        smoothing: float = 0.6,
        detect_every: int = 1,
        min_face_fraction: float = 0.05,
        blur_strength: float = 0.15,
        *,
        use_profile: bool = True,
    ):
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        if hold_frames < 0:
            raise ValueError(f"hold_frames must be >= 0, got {hold_frames}")
        if not 0 <= smoothing < 1:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        if detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {detect_every}")
        if blur_strength <= 0:
            raise ValueError(f"blur_strength must be > 0, got {blur_strength}")
        self.margin = float(margin)
        self.hold_frames = int(hold_frames)
        self.smoothing = float(smoothing)
        self.detect_every = int(detect_every)
        self.min_face_fraction = float(min_face_fraction)
        self.blur_strength = float(blur_strength)
        self.use_profile = bool(use_profile)
        # one detector per blurrer: CascadeClassifier is not documented thread-safe
        self.detector = FaceDetector(min_face_fraction, use_profile=self.use_profile)
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget all faces and counts: the next frame starts a new clip."""
        self._tracks: List[_Track] = []
        self._index = 0
        self._detector_runs = 0
        self._frames = 0
        self._frames_with_detection = 0
        self._frames_blurred = 0
        self.last_regions: List[Tuple[int, int, int, int]] = []

    @property
    def stats(self) -> dict:
        """Counts for the current clip. ``frames_with_detection`` counts frames on which
        the detector ran and found a face (with ``detect_every`` > 1 only every N-th frame
        can count); ``frames_blurred`` counts frames with any blurred region, held boxes included."""
        return {
            "frames": self._frames,
            "frames_with_detection": self._frames_with_detection,
            "frames_blurred": self._frames_blurred,
        }

    # -------------------------------------------------------------- detection
    def _detect(self, frame: np.ndarray) -> List[Box]:
        """Face boxes (x0, y0, x1, y1) in ``frame``'s pixel coordinates."""
        found = self.detector.detect(frame, profile=self._need_profile)
        self._detector_runs += 1
        return found

    def _need_profile(self, frontal: List[Box]) -> bool:
        """The profile cascades (3/4 of the detector's time) run only when they can add something:
        the frontal cascade found nothing, or missed a face being tracked (a head turning away),
        and on every PROFILE_EVERY-th detector run (a new face seen only in profile)."""
        if not frontal or self._detector_runs % self.PROFILE_EVERY == 0:
            return True
        return any(not any(_matches(tr, d) for d in frontal) for tr in self._tracks)

    # --------------------------------------------------------------- tracking
    def _update_tracks(self, detections: Sequence[Box]) -> None:
        """Match detections to tracks (greedy, nearest centre first), smooth, start and drop tracks.

        A detection belongs to a track when its centre is within half a face of the track's
        box (smoothed or last raw) or overlaps it (IoU > 0.1)."""
        candidates = []
        for ti, tr in enumerate(self._tracks):
            # compare with the smoothed box and with the last raw detection (the smoothed box
            # lags a fast-moving face; the raw one is where the face was last seen)
            for di, d in enumerate(detections):
                if _matches(tr, d):
                    candidates.append((min(_centre_distance(t, d) for t in _refs(tr)), ti, di))
        candidates.sort()
        used_t, used_d = set(), set()
        a = self.smoothing
        for _, ti, di in candidates:
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            tr = self._tracks[ti]
            tr.smooth = a * tr.smooth + (1.0 - a) * np.asarray(detections[di], dtype=np.float64)
            tr.last_raw = tuple(detections[di])
            tr.last_seen = self._index
        for di, d in enumerate(detections):
            if di not in used_d:  # a new face, or one that re-appeared elsewhere: blur it right away
                self._tracks.append(_Track(np.asarray(d, dtype=np.float64), tuple(d), self._index))
        self._tracks = [tr for tr in self._tracks if self._index - tr.last_seen <= self.hold_frames]

    def _expand(self, box: Box) -> Box:
        bw, bh = box[2] - box[0], box[3] - box[1]
        return (box[0] - self.margin * bw, box[1] - self.margin * bh, box[2] + self.margin * bw, box[3] + self.margin * bh)

    def _region(self, tr: _Track) -> Tuple[Box, float]:
        """Box to blur for a track (margin included) and the face size that sets the blur."""
        smooth = tuple(float(v) for v in tr.smooth)
        region = self._expand(smooth)
        if not _contains(region, tr.last_raw):  # the smoothed box lags a moving face: cover the face too
            region = _union(region, self._expand(tr.last_raw))
        size = max(smooth[2] - smooth[0], smooth[3] - smooth[1], tr.last_raw[2] - tr.last_raw[0], tr.last_raw[3] - tr.last_raw[1])
        return region, size

    # ------------------------------------------------------------------ blur
    def _anonymise(self, roi: np.ndarray, face_size: float) -> np.ndarray:
        """Pixelate then Gaussian-blur a crop, reading only the crop's own pixels."""
        h, w = roi.shape[:2]
        cell = max(2.0, self.blur_strength * face_size)
        small = cv2.resize(roi, (max(1, round(w / cell)), max(1, round(h / cell))), interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        sigma = cell / 2.0
        k = 2 * int(math.ceil(2.0 * sigma)) + 1
        return cv2.GaussianBlur(out, (k, k), sigma, borderType=cv2.BORDER_REPLICATE)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """Blur the faces of the next frame of the clip: HxWx3 uint8 RGB in, a new array of the same shape/dtype out."""
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB frame, got shape {frame.shape} dtype {frame.dtype}")
        frame = np.ascontiguousarray(frame)
        h, w = frame.shape[:2]
        if self._index % self.detect_every == 0:
            detections = self._detect(frame)
            if detections:
                self._frames_with_detection += 1
            self._update_tracks(detections)

        out = frame.copy()
        regions: List[Tuple[int, int, int, int]] = []
        for tr in self._tracks:
            (x0, y0, x1, y1), size = self._region(tr)
            x0, y0 = max(0, int(math.floor(x0))), max(0, int(math.floor(y0)))
            x1, y1 = min(w, int(math.ceil(x1))), min(h, int(math.ceil(y1)))
            if x1 - x0 < 1 or y1 - y0 < 1:
                continue
            # crop from `out` so overlapping regions compound instead of un-blurring each other
            out[y0:y1, x0:x1] = self._anonymise(out[y0:y1, x0:x1], size)
            regions.append((x0, y0, x1, y1))
        self.last_regions = regions
        self._frames += 1
        if regions:
            self._frames_blurred += 1
        self._index += 1
        return out


def blur_faces(frames: Iterable[np.ndarray], **kwargs) -> Tuple[List[np.ndarray], dict]:
    """Blur the faces of one clip; ``kwargs`` go to :class:`FaceBlurrer`. Returns (frames, stats)."""
    blurrer = FaceBlurrer(**kwargs)
    out = [blurrer(f) for f in frames]
    return out, blurrer.stats


__all__ = ["FaceBlurrer", "FaceDetector", "blur_faces", "cascade_path", "FRONTAL_CASCADE", "PROFILE_CASCADE"]
