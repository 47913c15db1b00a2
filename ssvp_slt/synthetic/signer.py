"""Rendering a simple synthetic signer, one fixed gesture per word.

The signer is a head (circle) at the top centre and a torso (trapezoid) below
it on a plain background; the dominant hand is a bright yellow shape with a
black outline, so it stands out against background, face and shirt alike.

Every word of :data:`~ssvp_slt.synthetic.grammar.VOCAB` has a fixed
gesture ``(handshape, place, path)`` (:data:`GESTURES`). No two words share a
``(handshape, place)`` pair, so a single frame of a gesture identifies the
word; the path (hold, horizontal swing, vertical swing, circle) is extra
signal.

A clip is: rest pose (hand low at the side, 3-5 frames), then for each word a
transition (2-3 frames, hand moving linearly and already in the next
handshape) and the gesture itself (9-13 frames: speed jitter), then a
transition back to rest and 3-5 rest frames. Per word the place is jittered
by up to +-2 px and the path amplitude by +-20 %; per clip the background,
skin and shirt colours are jittered.

Geometry is defined on a 64x64 canvas and scaled with the frame height, so
any even frame size works. Rendering is pure numpy: the static body is drawn
once per clip and each frame only stamps a precomputed hand sprite.
"""

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .grammar import VOCAB

HANDSHAPES = ("disc", "square", "triangle", "bar", "ring")
# hand centre (x, y) on the 64x64 canvas; x is image left to right
PLACES: Dict[str, Tuple[float, float]] = {
    "forehead": (32.0, 11.0),
    "beside_head": (49.0, 14.0),
    "chin": (32.0, 26.0),
    "chest_left": (23.0, 38.0),
    "chest_right": (41.0, 38.0),
    "belly": (32.0, 50.0),
}
REST_PLACE = (53.0, 56.0)
PATHS = ("hold", "hswing", "vswing", "circle")

# word -> (handshape, place, path); fixed, not seed dependent
GESTURES: Dict[str, Tuple[str, str, str]] = {
    "the": ("disc", "chest_left", "hold"),
    "a": ("triangle", "chest_right", "hold"),
    "big": ("square", "forehead", "hold"),
    "small": ("ring", "chin", "hold"),
    "red": ("triangle", "chin", "hswing"),
    "tall": ("bar", "forehead", "vswing"),
    "happy": ("disc", "beside_head", "circle"),
    "dog": ("disc", "forehead", "hswing"),
    "cat": ("triangle", "forehead", "hswing"),
    "man": ("square", "beside_head", "vswing"),
    "woman": ("ring", "beside_head", "hswing"),
    "bird": ("bar", "beside_head", "circle"),
    "ball": ("ring", "belly", "hswing"),
    "car": ("square", "belly", "circle"),
    "sees": ("disc", "chin", "vswing"),
    "likes": ("square", "chest_left", "circle"),
    "takes": ("bar", "chest_right", "hswing"),
    "wants": ("ring", "chest_left", "vswing"),
    "runs": ("bar", "belly", "vswing"),
    "sleeps": ("square", "chin", "hold"),
}

# timing, in frames (at the nominal 25 fps)
REST_FRAMES = (3, 5)
WORD_FRAMES = (9, 13)
TRANSITION_FRAMES = (2, 3)
# jitter
PLACE_JITTER = 2.0  # +- canvas px per word
AMPLITUDE = 3.0  # path amplitude, canvas px
AMPLITUDE_JITTER = 0.2  # +- fraction per word

# the static body on the 64x64 canvas (render_body draws it, simple_keypoints reads it)
HEAD_CENTRE_Y, HEAD_RADIUS = 15.0, 9.0  # head: a circle on the midline
SHOULDER_Y = 27.0  # top of the torso
TORSO_HALF_TOP, TORSO_WIDENING = 13.0, 6.0  # torso half width at the shoulders, extra at the bottom edge
NECK_TOP_Y, NECK_HALF = 20.0, 3.5

HAND_COLOUR = (250, 222, 40)
OUTLINE_COLOUR = (15, 15, 15)
_REST_SHAPE = len(HANDSHAPES)  # sprite index of the relaxed rest hand


def _check_table():
    assert set(GESTURES) == set(VOCAB), "every vocabulary word needs exactly one gesture"
    pairs = [(h, p) for h, p, _ in GESTURES.values()]
    assert len(set(pairs)) == len(pairs), "two words share a (handshape, place) pair"
    for h, p, m in GESTURES.values():
        assert h in HANDSHAPES and p in PLACES and m in PATHS


_check_table()


# --------------------------------------------------------------------------- sprites


def _shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, s: float) -> np.ndarray:
    """Boolean mask of a handshape, centred at 0, on offset grids in pixels; s = px per canvas unit."""
    if shape == "disc":
        return dx**2 + dy**2 <= (6.0 * s) ** 2
    if shape == "square":
        return (np.abs(dx) <= 6.0 * s) & (np.abs(dy) <= 6.0 * s)
    if shape == "triangle":  # pointing up, base 13, height 13
        top, bottom, half_base = -6.5 * s, 6.5 * s, 6.5 * s
        frac = (dy - top) / (bottom - top)
        return (dy >= top) & (dy <= bottom) & (np.abs(dx) <= half_base * frac)
    if shape == "bar":  # horizontal, 13 x 5
        return (np.abs(dx) <= 6.5 * s) & (np.abs(dy) <= 2.6 * s)
    if shape == "ring":
        r2 = dx**2 + dy**2
        return (r2 <= (6.6 * s) ** 2) & (r2 >= (3.4 * s) ** 2)
    if shape == "rest":
        return dx**2 + dy**2 <= (4.2 * s) ** 2
    raise ValueError(f"unknown handshape {shape!r}")


@lru_cache(maxsize=32)
def _sprites(scale: float) -> Tuple[int, List[np.ndarray], List[np.ndarray]]:
    """(radius, fill masks, outline masks) of every handshape plus the rest hand, as (2r+1)^2 sprites."""
    r = int(np.ceil(8.5 * scale)) + 1
    d = np.arange(-r, r + 1, dtype=np.float64)
    dy, dx = np.meshgrid(d, d, indexing="ij")
    outline = max(1, int(round(scale)))
    fills, outlines = [], []
    for shape in HANDSHAPES + ("rest",):
        fill = _shape_mask(shape, dx, dy, scale)
        # outline: dilation of the fill by `outline` px (square structuring element), minus the fill
        grown = fill.copy()
        for oy in range(-outline, outline + 1):
            for ox in range(-outline, outline + 1):
                grown |= np.roll(np.roll(fill, oy, axis=0), ox, axis=1)
        fills.append(fill)
        outlines.append(grown & ~fill)
    return r, fills, outlines


# --------------------------------------------------------------------------- planning


@dataclass
class ClipPlan:
    """Everything needed to render one clip; rendering is a pure function of it."""

    words: List[str]
    height: int
    width: int
    shape_ids: np.ndarray  # (T,) sprite index per frame
    xy: np.ndarray  # (T, 2) hand centre per frame, pixels
    spans: List[Tuple[str, int, int]]  # (word, first frame, end frame exclusive) of each gesture
    background: Tuple[int, int, int]
    skin: Tuple[int, int, int]
    shirt: Tuple[int, int, int]
    hand: Tuple[int, int, int] = field(default=HAND_COLOUR)

    @property
    def n_frames(self) -> int:
        return int(len(self.shape_ids))


def _jitter_colour(rng, base, brightness, tint):
    b = rng.uniform(-brightness, brightness)
    t = rng.uniform(-tint, tint, size=3)
    return tuple(int(np.clip(round(c + b + dt), 0, 255)) for c, dt in zip(base, t))


def plan_sentence(words: Sequence[str], rng: np.random.Generator, height: int = 64, width: int = 64) -> ClipPlan:
    """Draw the timing and jitter of one clip (cheap; no pixels)."""
    if height % 2 or width % 2 or height < 16 or width < 16:
        raise ValueError(f"frame size must be even and at least 16, got {width}x{height}")
    unknown = [w for w in words if w not in GESTURES]
    if unknown:
        raise ValueError(f"words without a gesture: {unknown}")
    s = height / 64.0

    def to_px(x, y):
        return np.array([width / 2.0 + (x - 32.0) * s, y * s])

    background = _jitter_colour(rng, (100, 108, 116), 25, 10)
    skin = _jitter_colour(rng, (205, 158, 128), 15, 8)
    shirt = _jitter_colour(rng, (40, 58, 125), 12, 8)

    xy: List[np.ndarray] = []
    shapes: List[int] = []
    spans: List[Tuple[str, int, int]] = []

    def segment(points: np.ndarray, shape_id: int):
        xy.extend(points)
        shapes.extend([shape_id] * len(points))

    def transition(a: np.ndarray, b: np.ndarray, shape_id: int):
        n = int(rng.integers(TRANSITION_FRAMES[0], TRANSITION_FRAMES[1] + 1))
        k = np.arange(1, n + 1)[:, None] / (n + 1)
        segment(a + (b - a) * k, shape_id)

    rest = to_px(*REST_PLACE)
    segment(np.repeat(rest[None], int(rng.integers(REST_FRAMES[0], REST_FRAMES[1] + 1)), axis=0), _REST_SHAPE)
    last = rest
    for w in words:
        hand, place, path = GESTURES[w]
        shape_id = HANDSHAPES.index(hand)
        n = int(rng.integers(WORD_FRAMES[0], WORD_FRAMES[1] + 1))
        centre = to_px(*PLACES[place]) + rng.uniform(-PLACE_JITTER, PLACE_JITTER, size=2) * s
        amp = AMPLITUDE * s * rng.uniform(1 - AMPLITUDE_JITTER, 1 + AMPLITUDE_JITTER)
        phase = 2 * np.pi * np.arange(n) / n  # one cycle per gesture
        off = np.zeros((n, 2))
        if path == "hswing":
            off[:, 0] = amp * np.sin(phase)
        elif path == "vswing":
            off[:, 1] = amp * np.sin(phase)
        elif path == "circle":
            off[:, 0] = amp * np.sin(phase)
            off[:, 1] = -amp * np.cos(phase)
        points = centre + off
        transition(last, points[0], shape_id)
        spans.append((w, len(shapes), len(shapes) + n))
        segment(points, shape_id)
        last = points[-1]
    transition(last, rest, _REST_SHAPE)
    segment(np.repeat(rest[None], int(rng.integers(REST_FRAMES[0], REST_FRAMES[1] + 1)), axis=0), _REST_SHAPE)

    return ClipPlan(
        words=list(words),
        height=height,
        width=width,
        shape_ids=np.asarray(shapes, dtype=np.int64),
        xy=np.asarray(xy, dtype=np.float64),
        spans=spans,
        background=background,
        skin=skin,
        shirt=shirt,
    )


# --------------------------------------------------------------------------- rendering


@lru_cache(maxsize=8)
def _grids(height: int, width: int):
    y = np.arange(height, dtype=np.float64)[:, None] + 0.5
    x = np.arange(width, dtype=np.float64)[None, :] + 0.5
    return y, x


def render_body(plan: ClipPlan) -> np.ndarray:
    """The static frame: background, torso and head (H, W, 3) uint8."""
    h, w = plan.height, plan.width
    s = h / 64.0
    y, x = _grids(h, w)
    cx = w / 2.0
    img = np.empty((h, w, 3), dtype=np.uint8)
    img[:] = plan.background
    # torso: trapezoid from the shoulders (y=27, half width 13) to the bottom edge (half width 19)
    top = SHOULDER_Y * s
    frac = np.clip((y - top) / (h - top), 0.0, 1.0)
    half = (TORSO_HALF_TOP + TORSO_WIDENING * frac) * s
    torso = (y >= top) & (np.abs(x - cx) <= half)
    # neck
    neck = (y >= NECK_TOP_Y * s) & (y < top) & (np.abs(x - cx) <= NECK_HALF * s)
    img[torso] = plan.shirt
    img[neck] = plan.skin
    head = (x - cx) ** 2 + (y - HEAD_CENTRE_Y * s) ** 2 <= (HEAD_RADIUS * s) ** 2
    img[head] = plan.skin
    return img


def hand_pixels(plan: ClipPlan) -> np.ndarray:
    """(T, 2) int (column, row) of the pixel each frame's hand sprite is centred on: the pixel
    containing the planned centre (the sprite moves in whole pixels)."""
    return np.floor(plan.xy).astype(np.int64)


def render_plan(plan: ClipPlan) -> np.ndarray:
    """All frames of a planned clip, (T, H, W, 3) uint8 RGB."""
    h, w = plan.height, plan.width
    r, fills, outlines = _sprites(h / 64.0)
    frames = np.empty((plan.n_frames, h, w, 3), dtype=np.uint8)
    frames[:] = render_body(plan)[None]
    hand = np.asarray(plan.hand, dtype=np.uint8)
    edge = np.asarray(OUTLINE_COLOUR, dtype=np.uint8)
    centres = hand_pixels(plan)
    for t in range(plan.n_frames):
        cx, cy = centres[t]
        y0, y1 = cy - r, cy + r + 1
        x0, x1 = cx - r, cx + r + 1
        # clip the sprite window to the frame
        sy0, sx0 = max(0, -y0), max(0, -x0)
        sy1, sx1 = (2 * r + 1) - max(0, y1 - h), (2 * r + 1) - max(0, x1 - w)
        if sy0 >= sy1 or sx0 >= sx1:
            continue
        region = frames[t, max(0, y0) : min(h, y1), max(0, x0) : min(w, x1)]
        k = plan.shape_ids[t]
        region[outlines[k][sy0:sy1, sx0:sx1]] = edge
        region[fills[k][sy0:sy1, sx0:sx1]] = hand
    return frames


def render_sentence(
    words: Sequence[str], rng: np.random.Generator, height: int = 64, width: int = 64
) -> Tuple[np.ndarray, ClipPlan]:
    """Plan and render one sentence: ``(frames (T, H, W, 3) uint8, plan)``."""
    plan = plan_sentence(words, rng, height=height, width=width)
    return render_plan(plan), plan
