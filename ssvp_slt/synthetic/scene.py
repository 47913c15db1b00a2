"""The camera side of a synthetic video: background, lighting and sensor noise.

Real sign-language video differs from video to video in ways that have
nothing to do with the signs: the wall behind the signer, the brightness and
colour of the light, light falling off towards the corners, sensor noise. A
model must learn to ignore them, so the How2Sign-like style draws a different
:class:`Scene` for every video (:func:`sample_scene`).

Everything here is a pure function of the :class:`Scene` (which carries its
own seed for textures and noise) and the frame size, so rendering is
deterministic and independent of the process that does it.

Cost matters (hundreds of thousands of frames): the background and the
lighting of the static parts are computed once per video; per frame only the
moving parts are lit (by the light at their position, :meth:`Lighting.at`)
and noise is added from a small bank of precomputed noise images, taken at a
random offset (:class:`NoiseBank`).
"""

from dataclasses import dataclass
from typing import Tuple

import cv2
import numpy as np

Colour = Tuple[int, int, int]

BACKGROUND_KINDS = ("gradient", "spotlight", "plaster", "panels", "tiles", "greenscreen")


@dataclass(frozen=True)
class Scene:
    """Background, lighting and noise of one video (frame-size independent)."""

    background: str  # one of BACKGROUND_KINDS
    colour_a: Colour
    colour_b: Colour
    angle: float  # direction of gradients / panels, degrees
    period: float  # panel / tile size as a fraction of the frame height
    gain: float  # overall brightness
    cast: Tuple[float, float, float]  # per-channel colour cast
    light_angle: float  # direction the light comes from, degrees
    light_slope: float  # brightness change across the frame along light_angle (fraction)
    vignette: float  # darkening at the corners (fraction)
    noise_sigma: float  # camera noise, in 8-bit levels
    seed: int  # textures and noise


def hsv_colour(rng: np.random.Generator, h_range, s_range, v_range) -> Colour:
    """A colour drawn in HSV (hue in OpenCV's 0..180, saturation and value in 0..1)."""
    hsv = np.array([[[rng.uniform(*h_range), rng.uniform(*s_range) * 255, rng.uniform(*v_range) * 255]]], np.float32)
    rgb = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0]
    return tuple(int(c) for c in rgb)


def sample_scene(rng: np.random.Generator) -> Scene:
    """A random scene: studio-like backgrounds in varied colours, moderate lighting changes."""
    kind = BACKGROUND_KINDS[int(rng.integers(len(BACKGROUND_KINDS)))]
    if kind == "greenscreen":  # How2Sign was filmed in front of a green screen
        a = hsv_colour(rng, (50, 70), (0.45, 0.8), (0.4, 0.75))
    else:
        a = hsv_colour(rng, (0, 180), (0.05, 0.55), (0.25, 0.85))
    # the second colour is a darker or lighter, slightly tinted version of the first
    shift = rng.uniform(-20, 20, size=3) + rng.uniform(-50, 50)
    b = tuple(int(np.clip(c + d, 0, 255)) for c, d in zip(a, shift))
    return Scene(
        background=kind,
        colour_a=a,
        colour_b=b,
        angle=float(rng.uniform(0, 360)),
        period=float(rng.uniform(0.12, 0.4)),
        gain=float(rng.uniform(0.78, 1.15)),
        cast=tuple(float(c) for c in 1.0 + rng.uniform(-0.07, 0.07, size=3)),
        light_angle=float(rng.uniform(0, 360)),
        light_slope=float(rng.uniform(0.0, 0.3)),
        vignette=float(rng.uniform(0.0, 0.35)),
        noise_sigma=float(rng.uniform(1.0, 3.5)),
        seed=int(rng.integers(2**31)),
    )


def _coords(h: int, w: int):
    """Pixel centres normalised by the frame height, centred: x in [-w/2h, w/2h], y in [-0.5, 0.5]."""
    y = (np.arange(h, dtype=np.float32)[:, None] + 0.5) / h - 0.5
    x = (np.arange(w, dtype=np.float32)[None, :] + 0.5 - w / 2.0) / h
    return x, y


def draw_background(scene: Scene, h: int, w: int) -> np.ndarray:
    """The empty set behind the signer, (h, w, 3) uint8 RGB, before lighting."""
    x, y = _coords(h, w)
    a = np.asarray(scene.colour_a, np.float32)
    b = np.asarray(scene.colour_b, np.float32)
    rng = np.random.default_rng([scene.seed, 1])
    th = np.deg2rad(scene.angle)
    along = x * np.cos(th) + y * np.sin(th)  # coordinate along the gradient / across the panels
    kind = scene.background
    if kind == "gradient":
        t = np.clip(along / max(1e-6, float(np.abs(along).max())) * 0.5 + 0.5, 0, 1)
    elif kind == "spotlight":  # a lit patch behind the signer, darker around it
        cx, cy = rng.uniform(-0.4, 0.4), rng.uniform(-0.3, 0.1)
        t = np.clip(np.sqrt((x - cx) ** 2 + (y - cy) ** 2) / 0.9, 0, 1)
    elif kind == "plaster":  # a wall with soft, blotchy unevenness
        small = rng.random((6, max(2, int(6 * w / h)))).astype(np.float32)
        t = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        t = np.clip(0.5 + (t - 0.5) * 0.6, 0, 1)
    elif kind == "panels":  # vertical boards / curtain folds with dark seams
        u = x / scene.period
        t = 0.5 + 0.35 * np.sin(2 * np.pi * u) * (rng.uniform(0.3, 1.0))
        seams = (np.abs(u - np.round(u)) < 0.03).astype(np.float32)
        t = np.clip(t - 0.6 * seams, 0, 1) * np.ones_like(y)
    elif kind == "tiles":  # a faint grid
        u, v = x / scene.period, y / scene.period
        grid = ((np.abs(u - np.round(u)) < 0.04) | (np.abs(v - np.round(v)) < 0.04)).astype(np.float32)
        t = 0.25 * np.ones_like(x * y) + 0.75 * grid
    else:  # greenscreen: nearly uniform, slightly uneven
        small = rng.random((3, 5)).astype(np.float32)
        t = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) * 0.25
    t = np.broadcast_to(t, (h, w))[..., None]
    img = a * (1 - t) + b * t
    # fine texture, fixed in the video (cloth, paint): a little per-pixel variation
    img += rng.normal(0.0, 2.0, size=(h, w, 1)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


class Lighting:
    """Multiplicative lighting: gain x colour cast x a linear slope x a vignette."""

    def __init__(self, scene: Scene, h: int, w: int):
        self.scene, self.h, self.w = scene, h, w
        self._cast = np.asarray(scene.cast, np.float32) * scene.gain
        th = np.deg2rad(scene.light_angle)
        self._dir = (float(np.cos(th)), float(np.sin(th)))
        self._rmax2 = float((w / (2.0 * h)) ** 2 + 0.25)

    def _factor(self, x, y):
        """Brightness factor at normalised coordinates (see _coords)."""
        s = self.scene
        slope = 1.0 + s.light_slope * (x * self._dir[0] + y * self._dir[1])
        vig = 1.0 - s.vignette * (x * x + y * y) / self._rmax2
        return slope * vig

    def map(self) -> np.ndarray:
        x, y = _coords(self.h, self.w)
        return self._factor(x, y)[..., None] * self._cast  # (h, w, 3) float32

    def apply(self, img: np.ndarray) -> np.ndarray:
        """Light a whole image (used once per video for the static parts)."""
        return np.clip(img.astype(np.float32) * self.map(), 0, 255).astype(np.uint8)

    def at(self, px: float, py: float) -> Tuple[float, float, float]:
        """Per-channel light at one pixel position, for colouring a moving part."""
        x = (px - self.w / 2.0) / self.h
        y = py / self.h - 0.5
        f = float(self._factor(x, y))
        return tuple(float(c) * f for c in self._cast)


class NoiseBank:
    """Per-frame camera noise: a few Gaussian noise images, used at a random offset each frame.

    Drawing fresh Gaussian noise for every pixel of every frame would cost more
    than drawing the person; a bank of ``size`` images larger than the frame by
    ``pad`` pixels, read at a per-frame offset, gives ``size * pad**2``
    different noise frames for the price of a few.
    """

    def __init__(self, scene: Scene, h: int, w: int, size: int = 4, pad: int = 16):
        rng = np.random.default_rng([scene.seed, 2])
        self.h, self.w, self.pad = h, w, pad
        noise = rng.standard_normal((size, h + pad, w + pad, 3), dtype=np.float32) * scene.noise_sigma
        noise = np.round(noise).clip(-127, 127).astype(np.int16)
        # split into positive and negative parts: two saturating uint8 operations per frame
        self._pos = np.clip(noise, 0, 255).astype(np.uint8)
        self._neg = np.clip(-noise, 0, 255).astype(np.uint8)

    def choice(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n, 3) int: bank index and offsets for n frames."""
        return np.stack(
            [rng.integers(len(self._pos), size=n), rng.integers(self.pad, size=n), rng.integers(self.pad, size=n)], 1
        )

    def add(self, img: np.ndarray, choice) -> np.ndarray:
        k, oy, ox = (int(v) for v in choice)
        pos = self._pos[k, oy : oy + self.h, ox : ox + self.w]
        neg = self._neg[k, oy : oy + self.h, ox : ox + self.w]
        cv2.add(img, pos, dst=img)
        cv2.subtract(img, neg, dst=img)
        return img
