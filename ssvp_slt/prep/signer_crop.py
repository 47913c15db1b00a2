"""Signer crop (``--signer-crop``): one square box around the signer per clip, found from the face.

How2Sign's frames are 16:9 (1280x720) with the signer near, not exactly at, the
middle; a centred square crop of the short side can cut off a hand. SSVP-SLT
crops a square around the signer instead: a face detector runs every 16th
frame, each face box is expanded 1 face-height up, 3 face-heights down and 1.5
face-widths to each side, made square, and the square is resized. This module
does the same with the Haar detector of ``face_blur.py`` (:class:`FaceDetector`):

* **Detection** runs on every ``detect_every``-th frame of the clip only
  (frames 0, N, 2N, ...), on a frame downscaled as far as keeps the smallest
  wanted face at the cascade's window (:meth:`FaceDetector.detection_scale`;
  callers may convert frames straight to that size). On each such frame the
  largest face counts (the signer is the person nearest the camera); its box is expanded by ``up``/``down``/``side`` and made square
  around the expanded box's centre (the longer side wins).
* **One fixed box per clip**: the clip's box is the per-coordinate *median*
  of the detections' squares (centre x, centre y, side). A fixed box, not one
  that follows the detections frame by frame, means no virtual camera moving
  or zooming with detector jitter, which the model would have to tell apart
  from signing; How2Sign signers hardly move within a sentence. The median,
  rather than the mean or the union, ignores a minority of bad detections (a
  false positive in the background, a face box shrunk by a hand in front of
  the face) instead of being dragged or inflated by them.
* **Fallback**: a clip where no checked frame shows a face (or fewer than
  ``min_detection_share`` of them, 1/4: isolated detections are more often
  Haar false positives than the signer) gets the centred square of the
  frame's short side (what a centre crop would have used) and
  ``fallback=True``; preparation counts and lists these clips in its report,
  never silently.
* **Edges**: the box is *shifted* inside the frame along each axis where it
  fits (the signer stays in the crop, the crop never shows made-up pixels);
  along an axis where it is longer than the frame it covers the whole frame and
  the rest is *padded* with black (:func:`crop_and_resize`), the box kept as
  close to the signer's position as that allows. The recorded box is then
  partly outside the frame (negative or beyond width/height).

Usage::

    box = signer_crop_box(frames)                 # frames: HxWx3 uint8 RGB of one clip
    out = [crop_and_resize(f, box, 256) for f in frames]

or, streaming (what ``cutting.py`` does, converting only the frames it needs)::

    finder = SignerBoxFinder(settings); finder.reset()
    for k, frame in enumerate(frames):
        if finder.wants(k):
            finder.add(small_grey_frame, scale)   # scale = small frame px / source px
    box = finder.box(width, height)
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Iterable, List, Optional, Tuple

import numpy as np

from .face_blur import Box, FaceDetector  # first: without OpenCV, its ImportError says what to install

import cv2  # noqa: E402

DEFAULT_CROP_SIZE = 256  # output side when --signer-crop is given without --short-side


@dataclass(frozen=True)
class SignerCropSettings:
    """How the signer box is found (all part of what a finished clip must match to be reused).

    Args:
        detect_every: run the face detector on every N-th frame of a clip only.
        up, down: the box extends this many face heights above / below the face box.
        side: ... and this many face widths to the left and to the right of it.
        min_face_fraction: smallest face searched, as a fraction of the frame's short side
            (frames are downscaled for detection as far as this allows).
        min_detections, min_detection_share: a clip falls back to the centred square when
            fewer of its checked frames than ``min_detections``, or than this share of them,
            show a face. Haar cascades find "faces" in textured clothing and backgrounds now and
            then: on synthetic signers without a face, 14 of 60 clips got a box from such
            isolated false positives (1 of ~5 checked frames) before the share was required,
            while a real signer's face is found on most checked frames (a hand in front of the
            face or a turned head loses some).
    """

    detect_every: int = 16
    up: float = 1.0
    down: float = 3.0
    side: float = 1.5
    # How2Sign faces are ~100 px of 720 (0.14); 0.08 lets detection run on a 300-px-high copy,
    # 2.4x faster than face blurring's 0.05 (measured: 37 vs 91 ms per 1280x720 frame)
    min_face_fraction: float = 0.08
    min_detections: int = 1
    min_detection_share: float = 0.25

    def __post_init__(self):
        if isinstance(self.detect_every, bool) or not isinstance(self.detect_every, int) or self.detect_every < 1:
            raise ValueError(f"detect_every must be an integer >= 1, got {self.detect_every!r}")
        for name in ("up", "down", "side"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a number >= 0, got {v!r}")
        if not 0 < self.min_face_fraction < 1:
            raise ValueError(f"min_face_fraction must be in (0, 1), got {self.min_face_fraction!r}")
        if self.min_detections < 1:
            raise ValueError(f"min_detections must be >= 1, got {self.min_detections!r}")
        if not 0 <= self.min_detection_share <= 1:
            raise ValueError(f"min_detection_share must be in [0, 1], got {self.min_detection_share!r}")

    def content_key(self) -> dict:
        floats = ("up", "down", "side", "min_face_fraction", "min_detection_share")
        return {k: (float(v) if k in floats else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class CropBox:
    """A clip's square crop box in source pixels: columns x0..x0+side-1, rows y0..y0+side-1.

    The box may extend past the frame (then :attr:`padded`); ``detections`` of the
    ``detector_runs`` checked frames showed a face; ``fallback``: no (or too few) face was
    found and the box is the centred square of the short side."""

    x0: int
    y0: int
    side: int
    frame_width: int
    frame_height: int
    detections: int = 0
    detector_runs: int = 0
    fallback: bool = False

    @property
    def x1(self) -> int:
        return self.x0 + self.side

    @property
    def y1(self) -> int:
        return self.y0 + self.side

    @property
    def padded(self) -> bool:
        return self.x0 < 0 or self.y0 < 0 or self.x1 > self.frame_width or self.y1 > self.frame_height

    @property
    def detection_share(self) -> float:
        return self.detections / self.detector_runs if self.detector_runs else 0.0

    def contains(self, box: Box) -> bool:
        """Whether ``box`` (x0, y0, x1, y1) lies inside this crop."""
        return self.x0 <= box[0] and self.y0 <= box[1] and box[2] <= self.x1 and box[3] <= self.y1

    def to_dict(self) -> dict:
        """What the clip's record and the preparation report keep (box: x0, y0, x1, y1, x1/y1 exclusive)."""
        return {
            "box": [self.x0, self.y0, self.x1, self.y1],
            "frame": [self.frame_width, self.frame_height],
            "detections": self.detections,
            "detector_runs": self.detector_runs,
            "detection_share": round(self.detection_share, 4),
            "fallback": self.fallback,
            "padded": self.padded,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "CropBox":
        x0, y0, x1, _ = d["box"]
        w, h = d["frame"]
        return cls(int(x0), int(y0), int(x1 - x0), int(w), int(h), int(d["detections"]), int(d["detector_runs"]), bool(d["fallback"]))


def expand_face(face: Box, settings: SignerCropSettings) -> Tuple[float, float, float]:
    """The signer square of one face box: (centre x, centre y, side), in the face box's pixels.

    The face box (x0, y0, x1, y1) of width fw and height fh becomes
    [x0 - side*fw, x1 + side*fw] x [y0 - up*fh, y1 + down*fh]; the square has that
    rectangle's centre and its longer side."""
    x0, y0, x1, y1 = face
    fw, fh = x1 - x0, y1 - y0
    ex0, ex1 = x0 - settings.side * fw, x1 + settings.side * fw
    ey0, ey1 = y0 - settings.up * fh, y1 + settings.down * fh
    return (ex0 + ex1) / 2, (ey0 + ey1) / 2, max(ex1 - ex0, ey1 - ey0)


def _place(lo: int, side: int, size: int) -> int:
    """Start of a span of ``side`` along an axis of ``size``, moved as little as possible so that
    it lies inside [0, size) when it fits (shift), or covers all of it when it does not (pad)."""
    return min(max(lo, min(0, size - side)), max(0, size - side))


def place_box(cx: float, cy: float, side: float, width: int, height: int, **counts) -> CropBox:
    """Integer square box of ``side`` centred on (cx, cy), shifted inside a width x height frame
    along each axis where it fits; along an axis where it does not, it covers the whole frame
    (the excess is padded when cropping)."""
    s = max(2, int(round(side)))
    x0 = _place(int(round(cx - s / 2)), s, width)
    y0 = _place(int(round(cy - s / 2)), s, height)
    return CropBox(x0, y0, s, int(width), int(height), **counts)


def centre_square(width: int, height: int, **counts) -> CropBox:
    """The fallback box: the centred square of the short side."""
    s = min(width, height)
    return CropBox((width - s) // 2, (height - s) // 2, s, int(width), int(height), **counts)


class SignerBoxFinder:
    """Collects face detections over one clip and turns them into the clip's box (stateful:
    :meth:`reset` per clip). Loading the cascades is not free: keep one per process."""

    def __init__(self, settings: Optional[SignerCropSettings] = None, detector: Optional[FaceDetector] = None):
        self.settings = settings or SignerCropSettings()
        self.detector = detector or FaceDetector(self.settings.min_face_fraction)
        self.reset()

    def reset(self) -> None:
        self._squares: List[Tuple[float, float, float]] = []  # (cx, cy, side) in source pixels
        self.detector_runs = 0

    def wants(self, index: int) -> bool:
        """Whether frame ``index`` (0-based, in the clip) is one the detector runs on."""
        return index % self.settings.detect_every == 0

    def add(self, frame: np.ndarray, scale: float = 1.0) -> Optional[Box]:
        """Run the detector on one frame (HxWx3 RGB or HxW grey) that is the source frame resized
        by ``scale``; returns the face used (source pixels), or None."""
        faces = self.detector.detect(frame)
        self.detector_runs += 1
        if not faces:
            return None
        x0, y0, x1, y1 = max(faces, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
        face = (x0 / scale, y0 / scale, x1 / scale, y1 / scale)
        self._squares.append(expand_face(face, self.settings))
        return face

    def box(self, width: int, height: int) -> CropBox:
        """The clip's box in a width x height source frame (the fallback when too few faces)."""
        found, s = len(self._squares), self.settings
        counts = dict(detections=found, detector_runs=self.detector_runs)
        if found < s.min_detections or found < s.min_detection_share * self.detector_runs:
            return centre_square(width, height, fallback=True, **counts)
        cx, cy, side = (statistics.median(v) for v in zip(*self._squares))
        return place_box(cx, cy, side, width, height, **counts)


def signer_crop_box(
    frames: Iterable[np.ndarray], settings: Optional[SignerCropSettings] = None, finder: Optional[SignerBoxFinder] = None
) -> CropBox:
    """The crop box of one clip (frames: HxWx3 uint8 RGB, all the same size), detecting on every
    ``detect_every``-th frame (downscaled for detection as the detector allows)."""
    finder = finder or SignerBoxFinder(settings)
    finder.reset()
    size = None
    for k, frame in enumerate(frames):
        if size is None:
            size = frame.shape[1], frame.shape[0]
        if finder.wants(k):
            finder.add(frame)
    if size is None:
        raise ValueError("a clip without frames has no crop box")
    return finder.box(*size)


def crop_and_resize(frame: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """Crop ``box`` out of ``frame`` and resize it to size x size (HxWxC uint8).

    ``frame`` may be the source frame or the source frame resized by any factor (the box is
    scaled to it: cheaper than converting the full-size frame when the crop is downscaled).
    Parts of the box outside the frame are padded with black."""
    fh, fw = frame.shape[:2]
    sx, sy = fw / box.frame_width, fh / box.frame_height
    x0, x1 = int(round(box.x0 * sx)), int(round(box.x1 * sx))
    y0, y1 = int(round(box.y0 * sy)), int(round(box.y1 * sy))
    ix0, iy0, ix1, iy1 = max(0, x0), max(0, y0), min(fw, x1), min(fh, y1)
    region = frame[iy0:iy1, ix0:ix1]
    if (ix0, iy0, ix1, iy1) != (x0, y0, x1, y1):
        region = cv2.copyMakeBorder(
            np.ascontiguousarray(region), iy0 - y0, y1 - iy1, ix0 - x0, x1 - ix1, cv2.BORDER_CONSTANT, value=(0, 0, 0)
        )
    if region.shape[0] != size or region.shape[1] != size:
        shrink = region.shape[0] > size or region.shape[1] > size
        region = cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return np.ascontiguousarray(region)


__all__ = [
    "DEFAULT_CROP_SIZE",
    "CropBox",
    "SignerBoxFinder",
    "SignerCropSettings",
    "centre_square",
    "crop_and_resize",
    "expand_face",
    "place_box",
    "signer_crop_box",
]
