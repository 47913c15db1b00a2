"""Drawing a procedural person (upper body, face, arms and hands) with OpenCV.

This module only draws: it knows nothing about words, timing or corpora
(:mod:`.how2sign_style` plans what the hands do, :mod:`.scene` draws the
background, lighting and camera noise).

Coordinates
-----------
Geometry is written in *body units*: one unit is the signer's head height
(crown to chin). A point is given in a hand's own frame: ``x`` grows towards
that hand's side of the body (the dominant hand's x points to the signer's
dominant side, the non-dominant hand's x to the other side), ``y`` grows
downwards, and the origin is the centre of the head. So one sign description
serves both hands (the non-dominant hand of a symmetric sign uses the same
numbers) and left-handed signers are a mirror image, as in real signing.
:meth:`Signer.to_px` maps body units to pixels for one signer.

Why the face looks the way it does
----------------------------------
Preparation crops the signer from a face box found by OpenCV's frontal Haar
cascade (:mod:`ssvp_slt.prep.face_blur`). Haar features compare the mean
brightness of neighbouring rectangles: the eye band darker than the cheeks
below and the forehead above, the bridge of the nose lighter than the eyes
beside it, a dark mouth line. The face is therefore drawn with shaded eye
sockets, dark brows and irises, a lit nose bridge with a shadow beside it,
lighter cheeks and forehead, and a soft blur (the cascade was trained on
camera images, not on hard-edged drawings).

Drawing uses fixed-point coordinates (``shift``) and anti-aliased primitives,
so hands move smoothly by sub-pixel amounts even on small frames.
"""

import math
from dataclasses import dataclass
from typing import Sequence, Tuple

import cv2
import numpy as np

Colour = Tuple[int, int, int]

_SHIFT = 4  # fixed-point bits of every coordinate passed to OpenCV
_ONE = 1 << _SHIFT
_AA = cv2.LINE_AA

# --------------------------------------------------------------------------- body geometry (body units)

HEAD_HALF_WIDTH = 0.36  # face ellipse half width (scaled per signer by Signer.head_width)
FACE_CENTRE_Y = 0.05  # the face ellipse is slightly below the head centre (hair above)
FACE_HALF_HEIGHT = 0.47
SHOULDER_Y = 0.98
NECK_HALF_WIDTH = 0.15
UPPER_ARM, FOREARM = 1.4, 1.12  # shoulder->elbow and elbow->wrist lengths (adult proportions)
UPPER_ARM_RADIUS, FOREARM_RADIUS, WRIST_RADIUS = 0.15, 0.12, 0.085

# hand (scaled per signer by Signer.hand_scale); the hand's reference point is the palm centre
PALM_HALF_LENGTH = 0.16  # palm centre to wrist, and palm centre to the knuckle line
PALM_HALF_WIDTH_WRIST, PALM_HALF_WIDTH_KNUCKLES = 0.115, 0.15
FINGER_OFFSETS = (0.112, 0.038, -0.038, -0.11)  # index, middle, ring, pinky across the knuckle line (+ = thumb side)
FINGER_LENGTHS = (0.27, 0.30, 0.28, 0.22)
FINGER_RADII = (0.036, 0.037, 0.035, 0.03)
FINGER_FAN = (1.5, 0.5, -0.5, -1.5)  # how much each finger turns per unit of spread
SPREAD_DEGREES = 9.0
THUMB_LENGTH, THUMB_RADIUS = 0.24, 0.042
# thumb angle from the finger direction, towards the thumb side: across the palm .. along the side .. out
THUMB_ACROSS, THUMB_ALONG, THUMB_OUT = -80.0, 8.0, 60.0


def _fx(v: float) -> int:
    return int(round(v * _ONE))


def _pt(p) -> Tuple[int, int]:
    return int(round(p[0] * _ONE)), int(round(p[1] * _ONE))


def _scaled(colour, k: float) -> Colour:
    return tuple(min(255, max(0, int(round(c * k)))) for c in colour)


def _mix(a, b, t: float) -> Colour:
    return tuple(min(255, max(0, int(round(x * (1 - t) + y * t)))) for x, y in zip(a, b))


def capsule(img: np.ndarray, p0, p1, r0: float, r1: float, colour) -> None:
    """A filled capsule (a tapered limb or finger) from p0 to p1 with end radii r0, r1 (pixels).

    Plain-float arithmetic: this is called ~60 times per frame, numpy's per-call overhead would dominate."""
    colour = (int(colour[0]), int(colour[1]), int(colour[2]))
    x0, y0, x1, y1 = float(p0[0]), float(p0[1]), float(p1[0]), float(p1[1])
    cv2.circle(img, (int(round(x0 * _ONE)), int(round(y0 * _ONE))), max(1, int(round(r0 * _ONE))), colour, -1, _AA, _SHIFT)
    cv2.circle(img, (int(round(x1 * _ONE)), int(round(y1 * _ONE))), max(1, int(round(r1 * _ONE))), colour, -1, _AA, _SHIFT)
    dx, dy = x1 - x0, y1 - y0
    n = math.hypot(dx, dy)
    if n < 1e-6:
        return
    px, py = -dy / n, dx / n
    quad = np.array(
        [
            (x0 + px * r0, y0 + py * r0),
            (x1 + px * r1, y1 + py * r1),
            (x1 - px * r1, y1 - py * r1),
            (x0 - px * r0, y0 - py * r0),
        ]
    )
    cv2.fillConvexPoly(img, np.round(quad * _ONE).astype(np.int32), colour, _AA, _SHIFT)


def ellipse(img, centre, axes, colour, angle: float = 0.0, thickness: int = -1, arc=(0, 360)) -> None:
    cv2.ellipse(
        img,
        _pt(centre),
        (max(1, _fx(axes[0])), max(1, _fx(axes[1]))),
        angle,
        arc[0],
        arc[1],
        tuple(int(c) for c in colour),
        thickness,
        _AA,
        _SHIFT,
    )


def polygon(img, points, colour) -> None:
    pts = np.round(np.asarray(points, float) * _ONE).astype(np.int32)
    cv2.fillPoly(img, [pts], tuple(int(c) for c in colour), _AA, _SHIFT)


# --------------------------------------------------------------------------- the signer


@dataclass(frozen=True)
class Signer:
    """One person's look and placement in the frame (pixels and RGB colours).

    ``cx, cy`` is the head centre in pixels, ``scale`` the head height in
    pixels (pixels per body unit). ``mirror`` is -1 for a right-handed signer
    (the dominant hand appears on the image's left) and +1 for a left-handed one.
    """

    cx: float
    cy: float
    scale: float
    mirror: int
    head_width: float  # factor on HEAD_HALF_WIDTH
    shoulder_half: float  # shoulder joint distance from the body's midline (body units)
    hand_scale: float
    skin: Colour
    hair: Colour
    hair_style: str  # "short", "long", "bun"
    shirt: Colour
    short_sleeves: bool
    lips: Colour
    iris: Colour

    def to_px(self, p, side: int = 1) -> np.ndarray:
        """Body-unit point(s) ``(..., 2)`` in the frame of hand ``side`` (+1 dominant, -1 other) -> pixels."""
        p = np.asarray(p, dtype=np.float64)
        out = np.empty_like(p)
        out[..., 0] = self.cx + self.mirror * side * p[..., 0] * self.scale
        out[..., 1] = self.cy + p[..., 1] * self.scale
        return out

    def vec_px(self, v, side: int = 1) -> np.ndarray:
        """A body-unit direction in hand ``side``'s frame -> a pixel direction (not scaled)."""
        return np.array([self.mirror * side * v[0], v[1]], dtype=np.float64)

    def shoulder(self, side: int) -> np.ndarray:
        return self.to_px((self.shoulder_half, SHOULDER_Y), side)


def face_box(signer: Signer) -> Tuple[float, float, float, float]:
    """The drawn face (brows to chin, cheek to cheek) in pixels: ``(x0, y0, x1, y1)``.

    Used by tests to check that a detected box is the face, not something else."""
    s = signer.scale
    hw = HEAD_HALF_WIDTH * signer.head_width * s
    return (signer.cx - hw, signer.cy - 0.25 * s, signer.cx + hw, signer.cy + (FACE_CENTRE_Y + FACE_HALF_HEIGHT) * s)


# --------------------------------------------------------------------------- static body


def draw_body(img: np.ndarray, sg: Signer) -> None:
    """Torso, neck, head, hair and face, drawn once per video onto ``img`` (in place)."""
    s = sg.scale
    h, w = img.shape[:2]

    def P(x, y):  # body units, mirrored by the signer only (static parts are symmetric)
        return (sg.cx + x * s, sg.cy + y * s)

    skin, shirt, hair = sg.skin, sg.shirt, sg.hair
    hw = HEAD_HALF_WIDTH * sg.head_width
    sh = sg.shoulder_half

    # long hair falls behind the neck and shoulders: drawn first
    if sg.hair_style == "long":
        polygon(img, [P(-hw - 0.06, -0.1), P(hw + 0.06, -0.1), P(hw + 0.14, 1.05), P(-hw - 0.14, 1.05)], _scaled(hair, 0.85))
        ellipse(img, P(0, 1.02), (hw + 0.14) * s * np.array([1.0, 0.3]), _scaled(hair, 0.85))

    # neck, with the shadow the chin casts on it
    polygon(img, [P(-NECK_HALF_WIDTH, 0.3), P(NECK_HALF_WIDTH, 0.3), P(NECK_HALF_WIDTH + 0.03, 0.95), P(-NECK_HALF_WIDTH - 0.03, 0.95)], _scaled(skin, 0.86))
    ellipse(img, P(0, 0.52), (NECK_HALF_WIDTH * s, 0.1 * s), _scaled(skin, 0.66))

    # torso: shoulders sloping from the neck, rounded by ellipses at the joints, narrowing to the waist
    half = [
        (NECK_HALF_WIDTH + 0.05, 0.76),
        (sh * 0.55, 0.8),
        (sh - 0.05, 0.86),
        (sh + 0.17, SHOULDER_Y + 0.12),
        (sh + 0.1, 1.6),
        (sh - 0.08, 2.6),
        (sh - 0.1, 8.0),  # hips and below: past the frame bottom for every placement
    ]
    torso = [P(-x, y) for x, y in half] + [P(x, y) for x, y in reversed(half)]
    polygon(img, torso, shirt)
    for side in (-1, 1):
        ellipse(img, P(side * (sh - 0.01), SHOULDER_Y + 0.03), (0.19 * s, 0.17 * s), shirt)
    # shading: the shirt darkens towards the body's sides (a lit, rounded chest)
    y0 = int(max(0, np.floor(sg.cy + 0.7 * s)))
    if y0 < h:
        x = (np.arange(w, dtype=np.float32) + 0.5 - sg.cx) / ((sh + 0.2) * s)
        shade = np.clip(1.0 - 0.28 * x**2, 0.6, 1.0)[None, :, None]
        band = img[y0:].astype(np.float32)
        shirt_like = (np.abs(band - np.asarray(shirt, np.float32)).sum(-1, keepdims=True) < 6).astype(np.float32)
        img[y0:] = np.clip(band * (1 - shirt_like) + band * shade * shirt_like, 0, 255).astype(np.uint8)
    # neckline: a round collar opening showing skin, with a darker collar edge
    ellipse(img, P(0, 0.8), (0.19 * s, 0.11 * s), _scaled(shirt, 0.7), arc=(0, 180))
    ellipse(img, P(0, 0.79), (0.16 * s, 0.09 * s), _scaled(skin, 0.82), arc=(0, 180))

    draw_head(img, sg)


# face proportions and shading strengths (body units / colour factors); tuned so that OpenCV's
# frontal cascade finds the face over the whole range of skin tones, hair colours and backgrounds
FACE = dict(
    ear=(0.005, 0.03),  # ear centre: this far outside the face's half width, and its y
    eye_x=0.17,  # half the distance between the eyes
    eye_y=0.01,
    socket=(0.11, 0.065),  # half axes of the shaded eye socket
    socket_dark=0.5,  # socket colour = skin * (socket_dark - socket_dark_extra * darkness)
    socket_dark_extra=0.17,
    eye=(0.068, 0.028),
    brow_y=-0.12,
    brow_width=0.022,
    brow_span=(-0.08, 0.055),  # the brow runs from eye_x + span[0] (inner end) to eye_x + span[1]
    brow_rise=-0.005,  # the outer end is this much higher
    highlight=0.12,  # lit forehead, cheeks, nose bridge: skin mixed towards white by this much
    highlight_extra=0.16,  # ... plus this much for the darkest skin
    nose_side_dark=0.72,
    nose_bridge=(-0.05, 0.12),  # top and bottom of the lit bridge on the midline
    nose_bottom=(0.185, 0.07, 0.03),  # y, half width, half height of the nose's lower end
    nostril=(0.035, 0.19),  # x (each side), y
    mouth_y=0.305,
    lips=(0.1, 0.03),  # half axes of the upper lip
    lower_lip=(0.025, 0.085, 0.03),  # lower lip: offset below mouth_y, half axes
    mouth_line=(0.09, 0.005),  # half length and offset below mouth_y of the dark line between the lips
    blur=0.012,  # Gaussian sigma in body units
)


def draw_head(img: np.ndarray, sg: Signer) -> None:
    """Hair, ears and a shaded frontal face, then a soft blur of the head region."""
    s = sg.scale
    skin, hair = sg.skin, sg.hair
    hw = HEAD_HALF_WIDTH * sg.head_width
    fy, fh = FACE_CENTRE_Y, FACE_HALF_HEIGHT
    F = FACE

    def P(x, y):
        return (sg.cx + x * s, sg.cy + y * s)

    def A(ax, ay):
        return (ax * s, ay * s)

    # hair volume behind the head
    ellipse(img, P(0, -0.08), A(hw + 0.06, 0.45), hair)
    if sg.hair_style == "bun":
        ellipse(img, P(0, -0.55), A(0.15, 0.12), _scaled(hair, 0.9))
    # ears
    for side in (-1, 1):
        ellipse(img, P(side * (hw + F["ear"][0]), F["ear"][1]), A(0.06, 0.1), _scaled(skin, 0.85))
    # face: base skin, then darker towards the jaw and the temples (a rounded face)
    ellipse(img, P(0, fy), A(hw, fh), _scaled(skin, 0.9))
    ellipse(img, P(0, fy - 0.03), A(hw * 0.88, fh * 0.9), skin)
    # lit forehead and cheeks (Haar: brighter bands above and below the eyes); darker skin gets
    # relatively stronger highlights (as on camera), so the bands keep their contrast
    dark = float(np.clip((200.0 - float(np.mean(skin))) / 120.0, 0.0, 1.0))
    light = _mix(skin, (255, 255, 255), F["highlight"] + F["highlight_extra"] * dark)
    ellipse(img, P(0, -0.2), A(hw * 0.7, 0.1), light)
    for side in (-1, 1):
        ellipse(img, P(side * 0.17, 0.17), A(0.1, 0.07), light)
    # hairline: hair covers the top of the face
    ellipse(img, P(0, -0.3), A(hw + 0.02, 0.17), hair, arc=(180, 360))
    polygon(img, [P(-hw - 0.02, -0.3), P(hw + 0.02, -0.3), P(hw * 0.85, -0.26), P(-hw * 0.85, -0.26)], hair)

    # eyes: dark sockets, white sclera, dark iris, dark upper lid (Haar: the dark eye band)
    socket = _scaled(skin, F["socket_dark"] - F["socket_dark_extra"] * dark)
    lid = _scaled(skin, 0.3)
    white = _mix(skin, (240, 238, 232), 0.75)
    ey = F["eye_y"]
    for side in (-1, 1):
        ex = side * F["eye_x"]
        ellipse(img, P(ex, ey - 0.02), A(*F["socket"]), socket)
        ellipse(img, P(ex, ey), A(*F["eye"]), white)
        ellipse(img, P(ex, ey), A(F["eye"][1], F["eye"][1]), sg.iris)
        ellipse(img, P(ex, ey - 0.015), A(F["eye"][0] * 1.03, F["eye"][1] * 0.8), lid, thickness=max(1, int(round(0.018 * s))), arc=(180, 360))
    # eyebrows: at least as dark as a shadowed skin, whatever the hair colour
    brow = tuple(min(a, b) for a, b in zip(_scaled(hair, 0.8), _scaled(skin, 0.45)))
    by, bw = F["brow_y"], F["brow_width"]
    b0, b1 = F["brow_span"]
    for side in (-1, 1):
        capsule(img, P(side * (F["eye_x"] + b0), by), P(side * (F["eye_x"] + b1), by + F["brow_rise"]), bw * s, bw * 0.65 * s, brow)
    # nose: lit bridge between the eyes, a shadow along one side, dark nostrils
    capsule(img, P(0.0, F["nose_bridge"][0]), P(0.0, F["nose_bridge"][1]), 0.03 * s, 0.04 * s, light)
    capsule(img, P(0.045, 0.0), P(0.055, 0.15), 0.012 * s, 0.018 * s, _scaled(skin, F["nose_side_dark"]))
    ny, nw, nh = F["nose_bottom"]
    ellipse(img, P(0, ny), A(nw, nh), _scaled(skin, 0.8))
    for side in (-1, 1):
        ellipse(img, P(side * F["nostril"][0], F["nostril"][1]), A(0.017, 0.011), _scaled(skin, 0.45))
    # mouth: lips and the dark line between them, a shadow under the lower lip
    my = F["mouth_y"]
    lo, lw, lh = F["lower_lip"]
    ml, mo = F["mouth_line"]
    ellipse(img, P(0, my), A(*F["lips"]), sg.lips)
    ellipse(img, P(0, my + lo), A(lw, lh), _mix(sg.lips, skin, 0.25))
    capsule(img, P(-ml, my + mo), P(ml, my + mo), 0.008 * s, 0.008 * s, _scaled(sg.lips, 0.45))
    ellipse(img, P(0, my + 0.08), A(0.06, 0.018), _scaled(skin, 0.85))

    # soften the head like a camera would (the cascade was trained on photos)
    sigma = F["blur"] * s
    if sigma >= 0.4:
        x0 = int(max(0, sg.cx - (hw + 0.2) * s))
        x1 = int(min(img.shape[1], sg.cx + (hw + 0.2) * s + 1))
        y0 = int(max(0, sg.cy - 0.7 * s))
        y1 = int(min(img.shape[0], sg.cy + 0.7 * s + 1))
        if x1 > x0 and y1 > y0:
            roi = np.ascontiguousarray(img[y0:y1, x0:x1])
            img[y0:y1, x0:x1] = cv2.GaussianBlur(roi, (0, 0), sigma)


# --------------------------------------------------------------------------- hands and arms


@dataclass
class HandPose:
    """One hand in one frame, in its own body-unit frame (see the module docstring).

    ``fingers``: thumb, index, middle, ring, pinky. The thumb value places the
    thumb (0 across the palm, 0.5 along the side of the hand, 1 out); the
    other four are extension (1 straight, 0.5 hooked, 0 curled into the palm).
    ``angle``: direction from the wrist to the fingers, degrees (0 = towards
    the hand's own side, -90 = up). ``facing``: +1 palm towards the camera,
    -1 back of the hand towards it. ``spread``: 0 fingers together, 1 fanned.
    ``depth``: how far in front of the shoulders the hand is (body units; it
    places the elbow).
    """

    pos: Tuple[float, float]
    angle: float
    facing: float
    spread: float
    fingers: Tuple[float, float, float, float, float]
    depth: float = 0.4


def _rot(d: np.ndarray, t: np.ndarray, degrees: float) -> np.ndarray:
    """Turn direction d towards t (both unit, perpendicular) by an angle."""
    a = np.deg2rad(degrees)
    return d * np.cos(a) + t * np.sin(a)


def hand_frame(sg: Signer, pose: HandPose, side: int):
    """(palm centre px, finger direction px, thumb-side direction px, pixels per body unit of this hand)."""
    a = np.deg2rad(pose.angle)
    d_body = np.array([np.cos(a), np.sin(a)])
    # thumb side: for a palm facing the camera with fingers up the thumb points to the body's midline
    facing = 1.0 if pose.facing >= 0 else -1.0
    t_body = facing * np.array([d_body[1], -d_body[0]])
    d = sg.vec_px(d_body, side)
    t = sg.vec_px(t_body, side)
    return sg.to_px(pose.pos, side), d, t, sg.scale * sg.hand_scale


def wrist_px(sg: Signer, pose: HandPose, side: int) -> np.ndarray:
    c, d, _, k = hand_frame(sg, pose, side)
    return c - d * PALM_HALF_LENGTH * k


def elbow_px(sg: Signer, side: int, wrist: np.ndarray, depth: float = 0.4) -> np.ndarray:
    """Two-bone inverse kinematics in 3D, seen from the front: where the elbow appears.

    The wrist is ``depth`` body units in front of the shoulders' plane (signs
    are made in front of the body). The elbow lies on the circle of points
    at upper-arm length from the shoulder and forearm length from the wrist;
    it hangs, so the lowest point of that circle is taken (turned outwards,
    the more so the higher the hand). Solving in 2D instead would stretch the elbow sideways, up to
    shoulder height, whenever the hand comes near the face.
    """
    S = np.array([*sg.shoulder(side), 0.0])
    W = np.array([wrist[0], wrist[1], depth * sg.scale])
    lu, lf = UPPER_ARM * sg.scale, FOREARM * sg.scale
    v = W - S
    d = float(np.linalg.norm(v))
    if d < 1e-6:
        return S[:2] + np.array([0.0, lu])
    u = v / d
    d_clamped = min(max(d, abs(lu - lf) + 1e-3), lu + lf - 1e-3)
    a = (lu**2 - lf**2 + d_clamped**2) / (2 * d_clamped)
    radius = np.sqrt(max(lu**2 - a**2, 0.0))
    centre = S + u * a
    # "down and a little outwards", projected onto the circle's plane; the higher the hand, the more
    # the elbow swings out to the side (a hand at the forehead is reached with the elbow out, which
    # also keeps the forearm off the face)
    out = 0.25 + 0.9 * float(np.clip((S[1] - W[1]) / sg.scale, 0.0, 1.0))
    g = np.array([out * sg.mirror * side, 1.0, 0.0])
    g = g - np.dot(g, u) * u
    n = float(np.linalg.norm(g))
    if n < 1e-6:  # the arm points straight down: any direction in the plane will do
        g, n = np.array([sg.mirror * side, 0.0, 0.0]), 1.0
    return (centre + g / n * radius)[:2]


def draw_arm(
    img: np.ndarray, sg: Signer, side: int, wrist: np.ndarray, depth: float = 0.4, light: Sequence[float] = (1.0, 1.0, 1.0)
) -> None:
    """Upper arm and forearm (sleeve or skin) from the shoulder to ``wrist`` (``depth`` in front of
    the body); ``light`` scales the colours."""
    s = sg.scale
    S = sg.shoulder(side)
    E = elbow_px(sg, side, wrist, depth)
    sleeve = tuple(c * l for c, l in zip(_scaled(sg.shirt, 0.93), light))
    edge = tuple(c * l for c, l in zip(_scaled(sg.shirt, 0.62), light))
    skin = tuple(c * l for c, l in zip(sg.skin, light))
    skin_edge = tuple(c * l for c, l in zip(_scaled(sg.skin, 0.7), light))
    ru, rf, rw = UPPER_ARM_RADIUS * s, FOREARM_RADIUS * s, WRIST_RADIUS * s
    px = max(1.0, 0.02 * s)  # width of the darker edge that separates the arm from the torso
    if sg.short_sleeves:
        mid = S + (E - S) * 0.55
        capsule(img, mid, E, rf + px, rf + px, skin_edge)
        capsule(img, E, wrist, rf + px, rw + px, skin_edge)
        capsule(img, mid, E, rf, rf, skin)
        capsule(img, E, wrist, rf, rw, skin)
        capsule(img, S, mid, ru + px, ru + px, edge)
        capsule(img, S, mid, ru, ru * 0.98, sleeve)
    else:
        capsule(img, S, E, ru + px, rf + px, edge)
        capsule(img, E, wrist, rf + px, rw + px, edge)
        capsule(img, S, E, ru, rf, sleeve)
        capsule(img, E, wrist, rf, rw, sleeve)
        capsule(img, wrist - (wrist - E) * 0.02, wrist, rw * 0.9, rw * 0.9, skin)


def _finger_points(base, d, length, extension):
    """Knuckle, middle joint and tip of a finger seen from the front: bending folds it towards the palm."""
    t1 = (1.0 - extension) * np.deg2rad(85.0)
    t2 = t1 + (1.0 - extension) * np.deg2rad(100.0)
    joint = base + d * (0.48 * length * np.cos(t1))
    tip = joint + d * (0.52 * length * np.cos(t2))
    return joint, tip


@dataclass
class HandGeometry:
    """Where the parts of one drawn hand are, in pixels: the one description that both
    :func:`draw_hand` draws and the keypoint writer (:mod:`.how2sign_keypoints`) reads, so
    keypoints always lie on the drawn hand.

    ``fingers``: index, middle, ring, pinky, each ``(knuckle, middle joint, tip, radius,
    extension)``; the finger is drawn as two capsules, knuckle -> joint -> tip.
    ``thumb``: ``(base, middle, tip)``, drawn as two capsules.
    """

    centre: np.ndarray  # palm centre
    d: np.ndarray  # unit direction wrist -> fingers
    t: np.ndarray  # unit direction towards the thumb side
    k: float  # pixels per body unit of this hand
    wrist: np.ndarray
    knuckles: np.ndarray  # middle of the knuckle line
    palm: list  # the palm's 4 corners
    fingers: list
    thumb: Tuple[np.ndarray, np.ndarray, np.ndarray]
    thumb_radius: float
    palm_side: bool  # the palm faces the camera
    thumb_across: bool  # the thumb lies across the palm (drawn in front of the fingers)


def hand_geometry(sg: Signer, pose: HandPose, side: int) -> HandGeometry:
    """The pixel geometry of hand ``side`` (+1 dominant, -1 other) in ``pose``."""
    c, d, t, k = hand_frame(sg, pose, side)
    wrist = c - d * PALM_HALF_LENGTH * k
    knuckles = c + d * PALM_HALF_LENGTH * k
    palm = [
        wrist + t * PALM_HALF_WIDTH_WRIST * k,
        knuckles + t * PALM_HALF_WIDTH_KNUCKLES * k,
        knuckles - t * PALM_HALF_WIDTH_KNUCKLES * k * 0.92,
        wrist - t * PALM_HALF_WIDTH_WRIST * k,
    ]

    fingers = []
    for i in range(4):
        e = float(np.clip(pose.fingers[i + 1], 0.0, 1.0))
        fd = _rot(d, t, FINGER_FAN[i] * SPREAD_DEGREES * pose.spread)
        base = knuckles + t * FINGER_OFFSETS[i] * k - d * 0.02 * k
        joint, tip = _finger_points(base, fd, FINGER_LENGTHS[i] * k, e)
        fingers.append((base, joint, tip, FINGER_RADII[i] * k, e))

    thumb_angle = np.interp(pose.fingers[0], [0.0, 0.5, 1.0], [THUMB_ACROSS, THUMB_ALONG, THUMB_OUT])
    thumb_dir = _rot(d, t, float(thumb_angle))
    thumb_base = wrist + d * 0.07 * k + t * 0.1 * k
    thumb_len = THUMB_LENGTH * k * (0.8 if pose.fingers[0] < 0.25 else 1.0)
    thumb_mid = thumb_base + thumb_dir * thumb_len * 0.5
    thumb_tip = thumb_base + thumb_dir * thumb_len
    return HandGeometry(
        centre=c,
        d=d,
        t=t,
        k=k,
        wrist=wrist,
        knuckles=knuckles,
        palm=palm,
        fingers=fingers,
        thumb=(thumb_base, thumb_mid, thumb_tip),
        thumb_radius=THUMB_RADIUS * k,
        palm_side=pose.facing >= 0,
        thumb_across=pose.fingers[0] < 0.3,
    )


def segment_folded(a: np.ndarray, b: np.ndarray, d: np.ndarray) -> bool:
    """Whether a finger segment a -> b points back towards the wrist (folded over the palm)."""
    return float(np.dot(b - a, d)) < 0


def draw_hand(img: np.ndarray, sg: Signer, pose: HandPose, side: int, light: Sequence[float] = (1.0, 1.0, 1.0)) -> None:
    """A skin-toned hand: palm, four fingers and a thumb as capsules, shaded so fingers stay separable."""
    g = hand_geometry(sg, pose, side)
    c, d, t, k = g.centre, g.d, g.t, g.k
    skin = np.asarray(sg.skin, float) * np.asarray(light, float)
    palm_side = g.palm_side
    base_col = tuple(np.clip(skin * (1.05 if palm_side else 1.0) + (6 if palm_side else 0), 0, 255))
    finger_col = tuple(np.clip(skin, 0, 255))
    edge_col = tuple(np.clip(skin * 0.68, 0, 255))
    fold_col = tuple(np.clip(skin * 0.82, 0, 255))
    ex = max(0.8, 0.012 * k)  # darker rim around each part

    wrist, palm, fingers = g.wrist, g.palm, g.fingers
    thumb_base, thumb_mid, thumb_tip = g.thumb

    def draw_finger(base, joint, tip, r, e, folded_only=None):
        # folded_only: None -> whole finger; True -> only segments folded back over the palm; False -> the rest
        segs = [(base, joint, r, r * 0.95), (joint, tip, r * 0.95, r * 0.85)]
        for a, b, ra, rb in segs:
            folded = segment_folded(a, b, d)
            if folded_only is not None and folded != folded_only:
                continue
            capsule(img, a, b, ra + ex, rb + ex, edge_col)
            capsule(img, a, b, ra, rb, fold_col if folded else finger_col)

    def draw_palm():
        polygon(img, palm, edge_col)
        inner = [c + (p - c) * 0.9 for p in palm]
        polygon(img, inner, base_col)
        capsule(img, wrist + t * 0.02 * k, c + t * 0.02 * k, 0.1 * k, 0.13 * k, base_col)

    def draw_thumb():
        capsule(img, thumb_base, thumb_mid, THUMB_RADIUS * k + ex, THUMB_RADIUS * k * 0.95 + ex, edge_col)
        capsule(img, thumb_mid, thumb_tip, THUMB_RADIUS * k * 0.95 + ex, THUMB_RADIUS * k * 0.8 + ex, edge_col)
        capsule(img, thumb_base, thumb_mid, THUMB_RADIUS * k, THUMB_RADIUS * k * 0.95, finger_col)
        capsule(img, thumb_mid, thumb_tip, THUMB_RADIUS * k * 0.95, THUMB_RADIUS * k * 0.8, finger_col)

    across = g.thumb_across
    if palm_side:
        # palm towards the camera: curled fingers and a tucked thumb lie in front of the palm
        if not across:
            draw_thumb()
        draw_palm()
        for f in fingers:
            draw_finger(*f)
        if across:
            draw_thumb()
    else:
        # back of the hand towards the camera: folded finger parts are hidden behind it
        for f in fingers:
            draw_finger(*f, folded_only=True)
        draw_thumb()
        draw_palm()
        for f in fingers:
            draw_finger(*f, folded_only=False)
        for base, _, _, r, e in fingers:  # knuckles
            capsule(img, base - d * r * 0.3, base, r * 1.05, r * 1.05, finger_col)
