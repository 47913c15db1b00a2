"""OpenPose's keypoint format and How2Sign's layout of keypoint files (the writing side).

How2Sign released OpenPose output (BODY_25 + face + hands, 2D) for its pre-cut
sentence clips, one JSON file per frame::

    <root>/keypoints/<split>/json/<SENTENCE_NAME>/<SENTENCE_NAME>_<frame:012d>_keypoints.json

and each file is OpenPose's ``--write_json`` document::

    {"version": 1.3, "people": [{"person_id": [-1],
        "pose_keypoints_2d": [x, y, c, ...],        # BODY_25: 25 points, 75 values
        "face_keypoints_2d": [...],                 # 70 points, 210 values
        "hand_left_keypoints_2d": [...],            # 21 points, 63 values
        "hand_right_keypoints_2d": [...],           # 21 points, 63 values
        "pose_keypoints_3d": [], "face_keypoints_3d": [],
        "hand_left_keypoints_3d": [], "hand_right_keypoints_3d": []}]}

Inside this package a frame's keypoints are one ``(137, 3)`` array ``(x, y,
confidence)`` in the order pose 25, face 70, left hand 21, right hand 21 (the
order ``pose-format`` reads them in); a point OpenPose did not detect is
``0, 0, 0``, as OpenPose writes it. "Left" and "right" are OpenPose's: the
*person's* left and right (for a signer facing the camera, the left hand
appears on the image's right). Coordinates are pixels of the frame with pixel
centres at integer coordinates (OpenCV's convention): the pixel holding a
keypoint is ``(round(y), round(x))``.
"""

import json
import os
import shutil
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

OPENPOSE_VERSION = 1.3

BODY_25 = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
    "MidHip", "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle",
    "REye", "LEye", "REar", "LEar", "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)  # fmt: skip
BODY = {name: i for i, name in enumerate(BODY_25)}

# OpenPose's hand model: the wrist, then thumb, index, middle, ring, pinky, 4 points each from
# the palm outwards (thumb: CMC, MCP, IP, tip; fingers: MCP, PIP, DIP, tip)
HAND_FINGERS = ("thumb", "index", "middle", "ring", "pinky")


def hand_point(finger: str, joint: int) -> int:
    """Index of a finger's ``joint`` (0 = nearest the palm .. 3 = tip) among the 21 hand points."""
    return 1 + 4 * HAND_FINGERS.index(finger) + joint


# OpenPose's face model: the 68 points of the iBUG 300-W markup in image order (0-16 jaw from the
# image's left to its right, 17-21 / 22-26 brows, 27-30 nose bridge, 31-35 nostrils, 36-41 / 42-47
# eyes, 48-59 outer lips, 60-67 inner lips) plus the pupils (68 on the image's left, 69 right)
FACE_PARTS = {
    "jaw": range(0, 17),
    "brow_image_left": range(17, 22),
    "brow_image_right": range(22, 27),
    "nose_bridge": range(27, 31),
    "nostrils": range(31, 36),
    "eye_image_left": range(36, 42),
    "eye_image_right": range(42, 48),
    "lips_outer": range(48, 60),
    "lips_inner": range(60, 68),
    "pupils": range(68, 70),
}

N_BODY, N_FACE, N_HAND = 25, 70, 21
N_POINTS = N_BODY + N_FACE + 2 * N_HAND  # 137
POSE = slice(0, N_BODY)
FACE = slice(N_BODY, N_BODY + N_FACE)
HAND_LEFT = slice(N_BODY + N_FACE, N_BODY + N_FACE + N_HAND)
HAND_RIGHT = slice(N_BODY + N_FACE + N_HAND, N_POINTS)
COMPONENTS = (
    ("pose_keypoints_2d", POSE),
    ("face_keypoints_2d", FACE),
    ("hand_left_keypoints_2d", HAND_LEFT),
    ("hand_right_keypoints_2d", HAND_RIGHT),
)
EMPTY_3D = ("pose_keypoints_3d", "face_keypoints_3d", "hand_left_keypoints_3d", "hand_right_keypoints_3d")

KEYPOINT_DIR = "keypoints"
JSON_DIR = "json"


def sentence_dir(root, split: str, sentence_name: str) -> Path:
    """The folder of one sentence's frames: ``<root>/keypoints/<split>/json/<SENTENCE_NAME>``."""
    return Path(root) / KEYPOINT_DIR / split / JSON_DIR / sentence_name


def frame_file_name(sentence_name: str, frame: int) -> str:
    """OpenPose's file name of frame ``frame`` (from 0) of a clip."""
    return f"{sentence_name}_{int(frame):012d}_keypoints.json"


def drop_outside(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """Points outside the frame become undetected (0, 0, 0), in place. Inside means between the
    first and the last pixel centre (``0 <= x <= width - 1``), so a kept point's pixel exists
    however its coordinates are rounded."""
    x, y = points[..., 0], points[..., 1]
    outside = (x < 0) | (y < 0) | (x > width - 1) | (y > height - 1)
    points[outside] = 0.0
    return points


def _values(points: np.ndarray) -> list:
    """Flat ``[x, y, c, ...]`` as plain numbers: pixels to 3 decimals, confidences to 4 (OpenPose
    writes about as many digits); an undetected point is written ``0, 0, 0``."""
    rounded = np.empty_like(points)
    rounded[:, :2] = np.round(points[:, :2], 3)
    rounded[:, 2] = np.round(points[:, 2], 4)
    out = rounded.reshape(-1).tolist()
    for i in np.flatnonzero(points[:, 2] <= 0.0).tolist():
        out[3 * i : 3 * i + 3] = (0, 0, 0)
    return out


def frame_document(points: Optional[np.ndarray]) -> dict:
    """OpenPose's JSON document of one frame: one person with ``points`` (137, 3), or nobody
    (``points`` None: ``"people": []``, what OpenPose writes when it finds no one)."""
    people = []
    if points is not None:
        if points.shape != (N_POINTS, 3):
            raise ValueError(f"expected ({N_POINTS}, 3) keypoints, got {points.shape}")
        person = {"person_id": [-1]}
        for key, part in COMPONENTS:
            person[key] = _values(points[part])
        for key in EMPTY_3D:
            person[key] = []
        people.append(person)
    return {"version": OPENPOSE_VERSION, "people": people}


def write_sentence(root, split: str, sentence_name: str, points: np.ndarray, person: Sequence[bool]) -> Path:
    """Write one clip's frames (``points`` (T, 137, 3); ``person[t]`` False: no one found in frame
    t) as OpenPose JSON files; returns the folder.

    The folder is written under a temporary name and renamed, so a folder that exists is
    complete (an interrupted run leaves only a temporary folder, removed on the next try).
    """
    final = sentence_dir(root, split, sentence_name)
    tmp = final.with_name(f".{sentence_name}.{os.getpid()}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        for t in range(len(points)):
            doc = frame_document(points[t] if person[t] else None)
            (tmp / frame_file_name(sentence_name, t)).write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
        if final.exists():  # a stale folder (rewritten on request): replace it whole
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return final


def read_frame(path) -> Optional[np.ndarray]:
    """One frame file back as a (137, 3) array (None when nobody was found): for checks and tests;
    the project's keypoint reader lives in :mod:`ssvp_slt.keypoints`."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if not doc["people"]:
        return None
    person = doc["people"][0]
    out = np.zeros((N_POINTS, 3))
    for key, part in COMPONENTS:
        out[part] = np.asarray(person[key], dtype=np.float64).reshape(-1, 3)
    return out
