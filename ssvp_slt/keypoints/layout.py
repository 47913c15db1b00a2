"""The OpenPose 137-point layout How2Sign's 2D keypoints use: what each stored value is.

One frame is BODY_25 (25 points), the face (70), the left hand (21) and the right hand (21), in
that order (OpenPose's JSON keys and pose-format's component order), each point (x, y,
confidence): 137 x 3 = 411 values. x and y are pixels of the source frame (origin top left, y
down); a point OpenPose did not detect is (0, 0, 0).
"""

from typing import Dict, List, Tuple

import numpy as np

LAYOUT = "openpose_137"
# (OpenPose JSON key, number of points), in storage order
COMPONENTS: Tuple[Tuple[str, int], ...] = (
    ("pose_keypoints_2d", 25),
    ("face_keypoints_2d", 70),
    ("hand_left_keypoints_2d", 21),
    ("hand_right_keypoints_2d", 21),
)
VALUES = ("x", "y", "confidence")
N_POINTS = sum(n for _, n in COMPONENTS)  # 137
VALUES_PER_POINT = len(VALUES)
RAW_DIM = N_POINTS * VALUES_PER_POINT  # 411: one stored vector per frame

BODY_25 = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip", "RHip", "RKnee",
    "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar", "LBigToe", "LSmallToe", "LHeel", "RBigToe",
    "RSmallToe", "RHeel",
)
NECK = BODY_25.index("Neck")
R_SHOULDER = BODY_25.index("RShoulder")  # the signer's right shoulder (image left for a signer facing the camera)
L_SHOULDER = BODY_25.index("LShoulder")
# knees, ankles and feet: below the frame or hidden in How2Sign's studio shots, so mostly noise; hips stay (torso)
LEG_POINTS = tuple(BODY_25.index(n) for n in (
    "RKnee", "RAnkle", "LKnee", "LAnkle", "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel"))


def component_slices() -> Dict[str, slice]:
    """Point index range of each component in the 137-point layout."""
    out, start = {}, 0
    for name, n in COMPONENTS:
        out[name] = slice(start, start + n)
        start += n
    return out


FACE_POINTS = tuple(range(component_slices()["face_keypoints_2d"].start, component_slices()["face_keypoints_2d"].stop))


def kept_points(drop_face: bool = False, drop_legs: bool = False) -> np.ndarray:
    """Indices (into the 137 points) of the points the model reads, in layout order."""
    dropped: List[int] = []
    if drop_face:
        dropped += FACE_POINTS
    if drop_legs:
        dropped += LEG_POINTS
    return np.setdiff1d(np.arange(N_POINTS), np.asarray(dropped, dtype=np.int64))
