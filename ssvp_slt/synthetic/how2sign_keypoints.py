"""OpenPose keypoints of the How2Sign-like signer (:mod:`.how2sign_style`), read off what is drawn.

Every point comes from the geometry the renderer draws with (:mod:`.person`):
the hands from :func:`~.person.hand_geometry` (the function :func:`~.person.draw_hand`
draws from), wrists and elbows from :func:`~.person.wrist_px` and
:func:`~.person.elbow_px` (what :func:`~.person.draw_arm` draws), shoulders from
:meth:`~.person.Signer.shoulder`, the face from the feature positions of
:data:`~.person.FACE`. So a keypoint lies on the part it names in the video.

Which hand is which: OpenPose names the *person's* left and right. The
signer faces the camera; a right-handed signer (``mirror`` -1) has the
dominant hand on the image's left, which is the person's right hand, so
``hand_right_keypoints_2d`` is the dominant hand of a right-handed signer and
``hand_left_keypoints_2d`` that of a left-handed one. In general the hand
``side`` (+1 dominant, -1 other) is the person's right one when
``mirror * side == -1``.

Hand points (OpenPose's order, :mod:`.openpose`): the wrist; the thumb's CMC
(where the drawn thumb starts), MCP (halfway along its first segment), IP
(its middle joint) and tip; each finger's MCP (knuckle), PIP (middle joint),
DIP (halfway along its outer segment) and tip.

Occlusion: OpenPose still places occluded points, less sure, so they keep
their position and get a low confidence (``hidden``): finger parts folded
behind the back of the hand, a thumb tucked behind it, and every point that a
part drawn later covers (the hand further from the camera under the nearer
arm and hand; face, nose, eyes and ears under either). Coverage is found by
drawing those parts with the renderer's own functions into a small mask, so
it is exactly what the video shows. Points outside the frame are undetected
(0, 0, 0). Legs, hips and feet are below the
frame for every signer placement, so they are undetected too.

Confidences are fixed per point kind (:data:`CONFIDENCE`): deterministic
output; :mod:`.keypoint_noise` adds a detector's unsteadiness on request.
"""

from dataclasses import replace
from typing import List, Tuple

import numpy as np

from . import openpose as op
from .openpose import drop_outside
from .how2sign_style import SignPlan, drawing_order, hand_pose
from .person import (
    FACE,
    FACE_CENTRE_Y,
    FACE_HALF_HEIGHT,
    HEAD_HALF_WIDTH,
    UPPER_ARM_RADIUS,
    draw_arm,
    draw_hand,
    elbow_px,
    hand_geometry,
    segment_folded,
)

# confidence per kind of point: clearly drawn rigid parts highest, small or moving parts lower
CONFIDENCE = dict(
    head=0.9,  # nose, eyes
    ear=0.7,
    neck=0.85,
    shoulder=0.8,
    elbow=0.7,
    wrist=0.8,
    face=0.8,
    jaw=0.7,  # the face outline is a soft edge
    knuckle=0.75,
    finger=0.7,
    hidden=0.35,  # covered: behind the back of its own hand, or under a part drawn later
)
_WHITE = (255, 255, 255)
JAW_INSET = 0.96  # jaw points just inside the drawn face outline (which is blurred)
FINGER_DIP = 0.5  # where on the outer finger segment the DIP joint is placed


def _ellipse_points(cx, cy, ax, ay, degrees) -> np.ndarray:
    """Points of an axis-aligned ellipse at angles in degrees (image axes: 90 = straight down)."""
    a = np.deg2rad(np.asarray(degrees, np.float64))
    return np.stack([cx + ax * np.cos(a), cy + ay * np.sin(a)], 1)


def face_points(cx: float, cy: float, scale: float, head_width: float = 1.0) -> np.ndarray:
    """The 70 face points (x, y) in pixels of the face :func:`~.person.draw_head` draws for a head
    centred at ``(cx, cy)``, ``scale`` pixels high (the face is static and symmetric)."""
    s, F = scale, FACE
    hw = HEAD_HALF_WIDTH * head_width

    def px(p):
        p = np.asarray(p, np.float64)
        return np.stack([cx + p[..., 0] * s, cy + p[..., 1] * s], -1)

    pts = np.zeros((op.N_FACE, 2))
    # jaw: from the image's left, at ear height, down round the chin to the image's right
    pts[0:17] = px(_ellipse_points(0, FACE_CENTRE_Y, hw * JAW_INSET, FACE_HALF_HEIGHT * JAW_INSET, np.linspace(180, 0, 17)))
    # brows: image-left brow outer end to inner end, then the image-right brow inner to outer
    b0, b1 = F["brow_span"]
    u = np.linspace(0, 1, 5)
    inner, outer = F["eye_x"] + b0, F["eye_x"] + b1
    xs = inner + (outer - inner) * u
    ys = F["brow_y"] + F["brow_rise"] * u
    pts[17:22] = px(np.stack([-xs, ys], 1)[::-1])
    pts[22:27] = px(np.stack([xs, ys], 1))
    # nose: bridge top to tip, then the lower end from the image's left to its right
    n0, n1 = F["nose_bridge"]
    ny, nw, nh = F["nose_bottom"]
    pts[27:31] = px(np.stack([np.zeros(4), np.linspace(n0, ny - nh * 0.5, 4)], 1))
    nx = F["nostril"][0]
    pts[31:36] = px([(-nw * 0.9, ny), (-nx, F["nostril"][1]), (0, ny + nh * 0.5), (nx, F["nostril"][1]), (nw * 0.9, ny)])
    # eyes: corner, two upper-lid points, corner, two lower-lid points (clockwise in the image)
    ea, eb = F["eye"]
    for side, part in ((-1, 36), (1, 42)):
        pts[part : part + 6] = px(_ellipse_points(side * F["eye_x"], F["eye_y"], ea, eb, [180, 240, 300, 0, 60, 120]))
    # lips: outer contour clockwise from the image-left corner, inner contour likewise
    my = F["mouth_y"]
    la, lb = F["lips"]
    lo, lw, lh = F["lower_lip"]
    top, bottom = my - lb, my + lo + lh
    oc, oh = (top + bottom) / 2, (bottom - top) / 2
    pts[48:60] = px(_ellipse_points(0, oc, la * 0.97, oh * 0.9, np.arange(180, 540, 30) % 360))
    ml, mo = F["mouth_line"]
    pts[60:68] = px(_ellipse_points(0, my + mo, ml * 0.9, lb * 0.3, [180, 240, 270, 300, 0, 60, 90, 120]))
    # pupils: the image-left eye's, then the image-right eye's
    pts[68:70] = px([(-F["eye_x"], F["eye_y"]), (F["eye_x"], F["eye_y"])])
    return pts


def _static_body(sg) -> Tuple[np.ndarray, np.ndarray]:
    """(25, 2) positions and (25,) confidences of the body points that do not move (head,
    neck, shoulders); the arms are filled in per frame."""
    xy = np.zeros((op.N_BODY, 2))
    conf = np.zeros(op.N_BODY)
    s, F = sg.scale, FACE
    hw = HEAD_HALF_WIDTH * sg.head_width
    right = -sg.mirror  # the hand side (+1 dominant / -1 other) that is the person's right
    B = op.BODY

    def put(name, p, c):
        xy[B[name]] = p
        conf[B[name]] = CONFIDENCE[c]

    ny = F["nose_bottom"][0]
    put("Nose", (sg.cx, sg.cy + ny * s), "head")
    # the person's right eye and ear are on the image's left
    put("REye", (sg.cx - F["eye_x"] * s, sg.cy + F["eye_y"] * s), "head")
    put("LEye", (sg.cx + F["eye_x"] * s, sg.cy + F["eye_y"] * s), "head")
    put("REar", (sg.cx - (hw + F["ear"][0]) * s, sg.cy + F["ear"][1] * s), "ear")
    put("LEar", (sg.cx + (hw + F["ear"][0]) * s, sg.cy + F["ear"][1] * s), "ear")
    rs, ls = sg.shoulder(right), sg.shoulder(-right)
    put("RShoulder", rs, "shoulder")
    put("LShoulder", ls, "shoulder")
    put("Neck", (rs + ls) / 2, "neck")  # OpenPose's neck: between the shoulders
    return xy, conf


def hand_points(g) -> Tuple[np.ndarray, np.ndarray]:
    """(21, 2) positions and (21,) confidences of one drawn hand (a :class:`~.person.HandGeometry`)."""
    xy = np.zeros((op.N_HAND, 2))
    conf = np.full(op.N_HAND, CONFIDENCE["finger"])
    xy[0], conf[0] = g.wrist, CONFIDENCE["wrist"]
    base, mid, tip = g.thumb
    i = op.hand_point("thumb", 0)
    xy[i : i + 4] = [base, (base + mid) / 2, mid, tip]
    if not g.palm_side and g.thumb_across:  # tucked behind the back of the hand
        conf[i + 2 : i + 4] = CONFIDENCE["hidden"]
    for name, (knuckle, joint, ftip, _, _) in zip(op.HAND_FINGERS[1:], g.fingers):
        i = op.hand_point(name, 0)
        xy[i : i + 4] = [knuckle, joint, joint + (ftip - joint) * FINGER_DIP, ftip]
        conf[i] = CONFIDENCE["knuckle"]
        if not g.palm_side:  # folded segments are drawn behind the back of the hand
            if segment_folded(knuckle, joint, g.d):
                conf[i + 1] = CONFIDENCE["hidden"]
            if segment_folded(joint, ftip, g.d):
                conf[i + 2 : i + 4] = CONFIDENCE["hidden"]
    return xy, conf


# a drawn part: (side, HandPose, HandGeometry, elbow) of one arm with its hand
_Arm = Tuple[int, object, object, np.ndarray]


def _arm_box(sg, arm: _Arm) -> Tuple[float, float, float, float]:
    """A box (x0, y0, x1, y1) that holds everything drawn for one arm and its hand."""
    side, _, g, elbow = arm
    pts = np.array([sg.shoulder(side), elbow, g.wrist, *g.palm, *(f[2] for f in g.fingers), g.thumb[2]])
    r = UPPER_ARM_RADIUS * sg.scale + 2.0
    return pts[:, 0].min() - r, pts[:, 1].min() - r, pts[:, 0].max() + r, pts[:, 1].max() + r


def covered(sg, xy: np.ndarray, arms: List[_Arm]) -> np.ndarray:
    """(N,) bool: whether each point's pixel is covered by the given arms and hands, drawn with
    :func:`~.person.draw_arm` and :func:`~.person.draw_hand` (the renderer's functions) in white
    into a mask over just the points' bounding box."""
    out = np.zeros(len(xy), bool)
    if not len(xy):
        return out
    px = np.round(xy).astype(np.int64)
    x0, y0 = px.min(0) - 1
    x1, y1 = px.max(0) + 2
    arms = [a for a in arms if _overlaps(_arm_box(sg, a), (x0, y0, x1, y1))]
    if not arms:
        return out
    mask = np.zeros((int(y1 - y0), int(x1 - x0)), np.uint8)
    # the same signer moved so that the box's corner is the origin, every part in white
    moved = replace(sg, cx=sg.cx - x0, cy=sg.cy - y0, skin=_WHITE, shirt=_WHITE)
    shift = np.array([x0, y0], np.float64)
    for side, pose, g, _ in arms:
        draw_arm(mask, moved, side, g.wrist - shift, pose.depth)
        draw_hand(mask, moved, pose, side)
    return mask[px[:, 1] - y0, px[:, 0] - x0] >= 128  # more than half the pixel covered


def _overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


# the points of the head that a hand can pass in front of: nose, eyes, ears and the whole face
_HEAD_BODY = [op.BODY[n] for n in ("Nose", "REye", "LEye", "REar", "LEar")]
_HEAD = np.r_[_HEAD_BODY, np.arange(op.FACE.start, op.FACE.stop)]


def plan_keypoints(plan: SignPlan) -> np.ndarray:
    """(T, 137, 3) keypoints of every frame of a plan (see :mod:`.openpose` for the layout)."""
    sg = plan.look.signer(plan.width, plan.height)
    right = -sg.mirror
    body_xy, body_c = _static_body(sg)
    face = face_points(sg.cx, sg.cy, sg.scale, sg.head_width)
    B = op.BODY
    out = np.zeros((plan.n_frames, op.N_POINTS, 3))
    out[:, op.FACE, :2] = face
    out[:, op.FACE, 2] = CONFIDENCE["face"]
    out[:, op.FACE.start : op.FACE.start + 17, 2] = CONFIDENCE["jaw"]
    out[:, op.POSE, :2] = body_xy
    out[:, op.POSE, 2] = body_c
    for t in range(plan.n_frames):
        frame = out[t]
        arms: List[_Arm] = []
        for side, v in drawing_order(plan, t):  # the hand further from the camera first
            pose = hand_pose(v)
            g = hand_geometry(sg, pose, side)
            arms.append((side, pose, g, elbow_px(sg, side, g.wrist, pose.depth)))
        for k, (side, pose, g, elbow) in enumerate(arms):
            person = "R" if side == right else "L"
            part = op.HAND_RIGHT if side == right else op.HAND_LEFT
            frame[B[person + "Elbow"]] = (*elbow, CONFIDENCE["elbow"])
            frame[B[person + "Wrist"]] = (*g.wrist, CONFIDENCE["wrist"])
            xy, conf = hand_points(g)
            frame[part, :2] = xy
            frame[part, 2] = conf
            later = arms[k + 1 :]  # drawn over this arm and hand
            if later:
                idx = np.r_[np.arange(part.start, part.stop), B[person + "Elbow"], B[person + "Wrist"]]
                hit = idx[covered(sg, frame[idx, :2], later)]
                frame[hit, 2] = np.minimum(frame[hit, 2], CONFIDENCE["hidden"])
        hit = _HEAD[covered(sg, frame[_HEAD, :2], arms)]
        frame[hit, 2] = CONFIDENCE["hidden"]
    return drop_outside(out, plan.width, plan.height)
