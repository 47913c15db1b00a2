"""A pose detector's imperfections, added to exact synthetic keypoints on request.

The keypoints read off the drawing (:mod:`.how2sign_keypoints`,
:mod:`.simple_keypoints`) are exact; OpenPose's on real video are not. With
:class:`DetectorNoise` a clip's keypoints get what a landmark model must cope
with on How2Sign:

- **jitter**: Gaussian noise on every detected point, in fractions of the
  person's shoulder width (body and face ``jitter``, hands ``hand_jitter``:
  fingers are small and fast, so they shake more), and a little noise on the
  confidences;
- **missed hands**: a hand's 21 points undetected (0, 0, 0) in a frame, with
  probability ``missed_hand`` per hand and frame (the body's wrist stays: the
  hand detector works from it and fails on its own);
- **nobody found**: with probability ``no_person`` a frame has no person at
  all (``"people": []``).

It is off by default (:data:`OFF`). It is seeded: the noise of a clip is a
function of (corpus seed, split, sentence name) only, so a corpus written
twice, with any number of workers, or with ``--keypoints-only``, is the same.
"""

import zlib
from dataclasses import dataclass
from typing import Tuple

import numpy as np

from . import openpose as op
from .openpose import drop_outside

_NOISE_SALT = 7919
_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


@dataclass(frozen=True)
class DetectorNoise:
    jitter: float = 0.0  # sigma of body and face points, fraction of the shoulder width
    hand_jitter: float = 0.0  # sigma of hand points, fraction of the shoulder width
    confidence_jitter: float = 0.0  # sigma of a multiplicative change of the confidences
    missed_hand: float = 0.0  # probability per hand and frame
    no_person: float = 0.0  # probability per frame

    @property
    def enabled(self) -> bool:
        return any(v > 0 for v in (self.jitter, self.hand_jitter, self.confidence_jitter, self.missed_hand, self.no_person))

    def as_dict(self) -> dict:
        return dict(
            jitter=self.jitter,
            hand_jitter=self.hand_jitter,
            confidence_jitter=self.confidence_jitter,
            missed_hand=self.missed_hand,
            no_person=self.no_person,
        )


OFF = DetectorNoise()
# --keypoint-noise: about what OpenPose shows on How2Sign-like studio video (a few pixels of
# shake on 720p hands, where the shoulders are ~210 px apart; a hand lost now and then, rarely a
# frame without anyone)
REALISTIC = DetectorNoise(jitter=0.006, hand_jitter=0.02, confidence_jitter=0.08, missed_hand=0.03, no_person=0.005)


def noise_rng(seed: int, split: str, sentence_name: str) -> np.random.Generator:
    """The generator of one clip's noise: a function of (seed, split, sentence name) only."""
    return np.random.default_rng([int(seed), _SPLIT_IDS[split], zlib.crc32(sentence_name.encode()), _NOISE_SALT])


def shoulder_width(points: np.ndarray) -> float:
    """The median distance between the shoulders over a clip's frames (pixels); 1 if never seen."""
    rs, ls = points[:, op.BODY["RShoulder"]], points[:, op.BODY["LShoulder"]]
    seen = (rs[:, 2] > 0) & (ls[:, 2] > 0)
    if not seen.any():
        return 1.0
    return float(np.median(np.hypot(*(rs[seen, :2] - ls[seen, :2]).T)))


def apply(
    noise: DetectorNoise, points: np.ndarray, rng: np.random.Generator, width: int, height: int
) -> Tuple[np.ndarray, np.ndarray]:
    """``(points, person)``: a noisy copy of a clip's (T, 137, 3) keypoints and the (T,) frames
    where someone is found, on ``width`` x ``height`` frames (a point shaken out of the frame is
    undetected). With noise off: the points unchanged and a person in every frame.

    The draws do not depend on which points are detected (the same number of draws every
    time), so a clip's noise does not change when a point enters or leaves the frame."""
    points = points.copy()
    n = len(points)
    person = np.ones(n, bool)
    if not noise.enabled or n == 0:
        return points, person
    detected = points[..., 2] > 0
    scale = shoulder_width(points)
    sigma = np.full(op.N_POINTS, noise.jitter)
    sigma[op.HAND_LEFT] = sigma[op.HAND_RIGHT] = noise.hand_jitter
    points[..., :2] += rng.standard_normal((n, op.N_POINTS, 2)) * (sigma * scale)[None, :, None]
    conf = points[..., 2] * np.exp(rng.standard_normal((n, op.N_POINTS)) * noise.confidence_jitter)
    points[..., 2] = np.clip(conf, 0.05, 1.0)
    points[~detected] = 0.0
    drop_outside(points, width, height)
    for part in (op.HAND_LEFT, op.HAND_RIGHT):
        missed = rng.random(n) < noise.missed_hand
        points[missed, part] = 0.0
    person = rng.random(n) >= noise.no_person
    return points, person
