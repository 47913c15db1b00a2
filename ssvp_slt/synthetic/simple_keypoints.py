"""OpenPose keypoints of the simple synthetic signer (:mod:`.signer`), read off what is drawn.

The simple signer is a head (a circle), a neck and a torso, and one yellow hand
*shape* that moves (no arm, no fingers). What OpenPose would make of it:

- **Body**: nose, eyes and ears on the drawn head, the neck and shoulders on
  the drawn torso (all from :mod:`.signer`'s body constants), the wrist of the
  drawn hand; no arm is drawn, so both elbows and the other wrist are
  undetected, as are hips, legs and feet (below the frame).
- **Face**: the face model of the How2Sign-like signer
  (:func:`~.how2sign_keypoints.face_points`) fitted inside the drawn head; no
  features are drawn, so it gets a lower confidence.
- **Hand**: the shape stands for a handshape (:data:`HAND_TEMPLATES`): the
  disc an open hand with spread fingers (ASL "5"), the square a flat hand
  ("B"), the triangle fingertips bunched at its apex (flat "O"), the bar a flat
  hand pointing sideways, the ring an "O" (fingers and thumb round the ring),
  the small rest disc a relaxed, curled hand. Its 21 points are placed inside
  the drawn shape: they move with the sprite exactly as it is drawn (whole
  pixels, :func:`~.signer.hand_pixels`) and every one lies on a filled
  pixel of the shape (tested for several frame sizes).

Which hand: the hand is drawn on the image's right (its rest place is low on
the right), which for a signer facing the camera is the *person's left*:
OpenPose's ``hand_left_keypoints_2d`` and ``LWrist``. The person's right hand
is not drawn and is undetected (zeros).

Coordinates: :mod:`.signer` draws with pixel ``i`` covering ``[i, i + 1)``;
OpenPose (and :mod:`.openpose`) put pixel centres at integers, so body points
are shifted by half a pixel.
"""

from typing import Dict

import numpy as np

from . import openpose as op
from .how2sign_keypoints import face_points
from .openpose import drop_outside
from .signer import (
    _REST_SHAPE,
    HANDSHAPES,
    HEAD_CENTRE_Y,
    HEAD_RADIUS,
    SHOULDER_Y,
    TORSO_HALF_TOP,
    ClipPlan,
    _sprites,
    hand_pixels,
)

CONFIDENCE = dict(head=0.85, ear=0.6, neck=0.8, shoulder=0.8, wrist=0.8, face=0.5, hidden=0.3, knuckle=0.7, finger=0.6)
FACE_HEIGHT = 16.0  # canvas units: the face model's "head height", so its chin stays inside the drawn circle


def _fingers(mcp, tips, pip=0.45, dip=0.75):
    """Four straight fingers: MCP, PIP, DIP and tip on the line from each knuckle to its tip."""
    out = []
    for m, t in zip(mcp, tips):
        m, t = np.asarray(m, float), np.asarray(t, float)
        out += [m, m + (t - m) * pip, m + (t - m) * dip, t]
    return out


def _ring(radius, degrees):
    """Points on a circle round the hand centre (image axes: 90 degrees = straight down)."""
    a = np.deg2rad(degrees)
    return [np.array([radius * np.cos(x), radius * np.sin(x)]) for x in a]


# handshape -> (21, 2) points in canvas units around the sprite centre (x right, y down), OpenPose's
# hand order: wrist, thumb CMC/MCP/IP/tip, then index, middle, ring, pinky MCP/PIP/DIP/tip. The
# hand is the person's left, palm to the camera: with the fingers up its thumb is on the image's
# left (towards the body's midline). Points keep ~0.8 canvas units inside each shape's edge, so
# they stay inside after rounding to whole pixels at any frame size.
HAND_TEMPLATES: Dict[str, np.ndarray] = {
    # open hand, fingers spread upwards inside the disc (radius 6)
    "disc": np.array(
        [(0, 4.6), (-1.6, 3.2), (-2.8, 2.0), (-3.8, 0.9), (-4.6, -0.2)]
        + _fingers(
            [(-1.5, 0.6), (-0.5, 0.6), (0.5, 0.6), (1.5, 0.6)],
            [(-2.98, -3.96), (-1.04, -4.57), (1.02, -4.37), (2.8, -3.39)],
        )
    ),
    # flat hand, fingers together upwards, thumb along the side (square, half side 6)
    "square": np.array(
        [(0, 5.0), (-1.8, 3.8), (-3.0, 2.6), (-3.8, 1.2), (-4.3, -0.2)]
        + _fingers([(-1.8, 0.8), (-0.6, 0.8), (0.6, 0.8), (1.8, 0.8)], [(-1.8, -4.8), (-0.6, -5.0), (0.6, -4.8), (1.8, -4.2)])
    ),
    # fingertips bunched at the apex of the triangle (apex up at -6.5, base at +6.5)
    "triangle": np.array(
        [(0, 5.0), (-1.5, 3.6), (-1.8, 2.0), (-1.2, 0.2), (-0.4, -2.2)]
        + _fingers([(-1.8, 1.8), (-0.6, 1.8), (0.6, 1.8), (1.8, 1.8)], [(-0.3, -2.6), (0.0, -2.9), (0.3, -2.6), (0.5, -2.2)])
    ),
    # flat hand pointing sideways to the midline (bar, half size 6.5 x 2.6): the thumb points down
    "bar": np.array(
        [(5.4, 0), (4.0, 0.9), (2.8, 1.5), (1.4, 1.7), (0.0, 1.8)]
        + _fingers([(1.6, 0.9), (1.6, 0.3), (1.6, -0.3), (1.6, -0.9)], [(-5.4, 0.9), (-5.6, 0.3), (-5.4, -0.3), (-4.6, -0.9)])
    ),
    # "O": thumb up the left of the ring, the fingers round its right and over the top to meet it
    "ring": np.array(
        [(0, 5.0)]
        + _ring(5.0, [125, 155, 185, 220])
        + [p for r, a0 in ((5.6, 40), (5.2, 50), (4.8, 60), (4.4, 70)) for p in _ring(r, [a0, a0 - 60, a0 - 125, a0 - 185])]
    ),
    # relaxed, curled hand (the small rest disc, radius 4.2)
    "rest": np.array(
        [(0, 3.2), (-1.0, 2.2), (-1.8, 1.2), (-2.1, 0.1), (-1.7, -0.8)]
        + [p for x in (-1.2, -0.4, 0.4, 1.2) for p in [(x, -1.0), (x * 1.1, -2.6), (x * 1.1, -1.6), (x, -0.4)]]
    ),
}
SPRITE_SHAPES = HANDSHAPES + ("rest",)  # sprite index -> shape name (signer._sprites' order)
assert SPRITE_SHAPES[_REST_SHAPE] == "rest"
assert all(t.shape == (op.N_HAND, 2) for t in HAND_TEMPLATES.values())

# the wrist, then per digit (thumb, 4 fingers) its joint nearest the palm and three further points
_DIGIT_CONF = [CONFIDENCE["knuckle"]] + [CONFIDENCE["finger"]] * 3
_HAND_CONF = np.array([CONFIDENCE["wrist"]] + _DIGIT_CONF * 5)
_HEAD_BODY = [op.BODY[n] for n in ("Nose", "REye", "LEye", "REar", "LEar")]
_HEAD = np.r_[_HEAD_BODY, np.arange(op.FACE.start, op.FACE.stop)]


def _static(plan: ClipPlan) -> np.ndarray:
    """(137, 3) points that do not move: head, face, neck, shoulders (integer-centred pixels)."""
    s = plan.height / 64.0
    cx = plan.width / 2.0 - 0.5  # the drawing's midline, moved to integer-centred pixels
    hy = HEAD_CENTRE_Y * s - 0.5
    out = np.zeros((op.N_POINTS, 3))
    B = op.BODY
    face = face_points(cx, hy, FACE_HEIGHT * s)
    out[op.FACE, :2] = face
    out[op.FACE, 2] = CONFIDENCE["face"]
    # nose, eyes and ears from the same face model; the ears on the head's outline
    out[B["Nose"]] = (*face[30], CONFIDENCE["head"])  # nose tip
    out[B["REye"]] = (*face[68], CONFIDENCE["head"])  # the person's right eye: image left
    out[B["LEye"]] = (*face[69], CONFIDENCE["head"])
    ear = (HEAD_RADIUS - 0.6) * s
    out[B["REar"]] = (cx - ear, hy, CONFIDENCE["ear"])
    out[B["LEar"]] = (cx + ear, hy, CONFIDENCE["ear"])
    sy = (SHOULDER_Y + 1.5) * s - 0.5
    sx = (TORSO_HALF_TOP - 2.0) * s
    out[B["RShoulder"]] = (cx - sx, sy, CONFIDENCE["shoulder"])
    out[B["LShoulder"]] = (cx + sx, sy, CONFIDENCE["shoulder"])
    out[B["Neck"]] = (cx, SHOULDER_Y * s - 0.5, CONFIDENCE["neck"])
    return out


def plan_keypoints(plan: ClipPlan) -> np.ndarray:
    """(T, 137, 3) keypoints of every frame of a simple-style plan (see :mod:`.openpose`)."""
    s = plan.height / 64.0
    r, fills, outlines = _sprites(s)
    centres = hand_pixels(plan)
    out = np.repeat(_static(plan)[None], plan.n_frames, axis=0)
    templates = np.stack([HAND_TEMPLATES[name] for name in SPRITE_SHAPES]) * s
    hand = templates[plan.shape_ids] + centres[:, None, :]  # (T, 21, 2)
    out[:, op.HAND_LEFT, :2] = hand
    out[:, op.HAND_LEFT, 2] = _HAND_CONF
    out[:, op.BODY["LWrist"]] = np.concatenate([hand[:, 0], np.full((plan.n_frames, 1), CONFIDENCE["wrist"])], 1)
    # head points under the hand sprite (fill or outline, exactly as stamped) are covered
    head = np.round(out[0, _HEAD, :2]).astype(np.int64)
    for t in range(plan.n_frames):
        k = plan.shape_ids[t]
        dx = head[:, 0] - centres[t, 0] + r
        dy = head[:, 1] - centres[t, 1] + r
        inside = (dx >= 0) & (dy >= 0) & (dx <= 2 * r) & (dy <= 2 * r)
        if inside.any():
            sprite = fills[k] | outlines[k]
            hit = np.zeros(len(head), bool)
            hit[inside] = sprite[dy[inside], dx[inside]]
            out[t, _HEAD[hit], 2] = CONFIDENCE["hidden"]
    return drop_outside(out, plan.width, plan.height)
