"""``.pose`` files (the pose-format package's binary format) holding OpenPose's 137-point layout.

The format's parsing is pose-format's own (``Pose.read`` / ``Pose.write``), not rewritten here;
this module maps its components onto :mod:`ssvp_slt.keypoints.layout` by name and applies the
same per-point checks as the JSON reader. pose-format is imported on first use.
"""

from pathlib import Path
from typing import Tuple

import numpy as np

from .clip import ClipIssues, KeypointClip, KeypointError
from .layout import COMPONENTS, N_POINTS


def _pose_format():
    try:
        from pose_format import Pose
        from pose_format.numpy import NumPyPoseBody
        from pose_format.pose_header import PoseHeader, PoseHeaderDimensions
        from pose_format.utils.openpose import OpenPose_Components
    except ImportError as e:  # pragma: no cover - installed with the project
        raise KeypointError(f"reading .pose files needs the pose-format package (pip install pose-format): {e}") from e
    return Pose, NumPyPoseBody, PoseHeader, PoseHeaderDimensions, OpenPose_Components


def mask_bad_points(keypoints: np.ndarray, width: float, height: float, issues: ClipIssues, where: str) -> np.ndarray:
    """(T, 137, 3) -> the same with NaN/inf, negative-confidence and far-outside points set to (0, 0, 0), counted."""
    kp = keypoints.astype(np.float64, copy=True)
    x, y, c = kp[..., 0], kp[..., 1], kp[..., 2]
    non_finite = ~np.isfinite(kp).all(axis=-1)
    with np.errstate(invalid="ignore"):
        negative = ~non_finite & (c < 0)
        outside = ~non_finite & ~negative & (c > 0) & ((x < -width) | (x > 2 * width) | (y < -height) | (y > 2 * height))
    for mask, reason in ((non_finite, "NaN or inf"), (negative, "negative confidence"), (outside, "far outside the frame")):
        for frame in np.flatnonzero(mask.any(axis=1)):
            points = np.flatnonzero(mask[frame])
            issues.note_bad(int(frame), where, reason, len(points), f"frame {frame}, point(s) {points.tolist()[:6]}: {reason}; masked")
    issues.bad_point_frames[:] = sorted(set(issues.bad_point_frames))  # frames were noted reason by reason
    kp[non_finite | negative | outside] = 0.0
    return kp.astype(np.float32)


def read_pose_file(path) -> KeypointClip:
    """A ``.pose`` file of OpenPose's layout -> :class:`KeypointClip` (person 0; fps and frame size from its header).

    Raises :class:`KeypointError` naming the file if it cannot be read or holds another layout
    (e.g. MediaPipe Holistic's 543 landmarks)."""
    path = Path(path)
    Pose, *_ = _pose_format()
    try:
        pose = Pose.read(path.read_bytes())
    except FileNotFoundError:
        raise KeypointError(f"{path}: .pose file not found") from None
    except Exception as e:  # pose-format raises struct/Value/Index/Unicode errors on a broken file
        raise KeypointError(f"{path}: not a readable .pose file ({type(e).__name__}: {e})") from e
    header, body = pose.header, pose.body
    offsets, start = {}, 0
    for comp in header.components:
        offsets[comp.name] = (start, len(comp.points))
        start += len(comp.points)
    wanted = {name: n for name, n in COMPONENTS}
    have = {name: n for name, (_, n) in offsets.items()}
    if any(have.get(name) != n for name, n in wanted.items()):
        raise KeypointError(
            f"{path}: components {have} are not OpenPose's 137-point layout {wanted} "
            f"(MediaPipe Holistic and other layouts are not read: the model is trained on OpenPose keypoints)"
        )
    data = np.asarray(np.ma.getdata(body.data), dtype=np.float32)
    conf = np.asarray(body.confidence, dtype=np.float32)
    if data.ndim != 4 or data.shape[-1] < 2 or conf.shape != data.shape[:3]:
        raise KeypointError(f"{path}: body of shape {data.shape} (confidence {conf.shape}); expected (frames, people, points, 2)")
    if data.shape[0] == 0:
        raise KeypointError(f"{path}: no frames")
    index = np.concatenate([np.arange(offsets[name][0], offsets[name][0] + n) for name, n in COMPONENTS])
    issues = ClipIssues(frame_files=int(data.shape[0]))
    if data.shape[1] == 0:
        keypoints = np.zeros((data.shape[0], N_POINTS, 3), dtype=np.float32)
    else:
        keypoints = np.concatenate([data[:, 0][:, index, :2], conf[:, 0][:, index, None]], axis=-1)
        if data.shape[1] > 1:
            issues.multiple_people = np.flatnonzero((conf[:, 1:] > 0).any(axis=(1, 2))).tolist()
    width, height = int(header.dimensions.width), int(header.dimensions.height)
    keypoints = mask_bad_points(keypoints, width or 1280, height or 720, issues, path.name)
    keypoints[keypoints[..., 2] == 0] = 0.0  # pose-format keeps coordinates under its mask; we store (0, 0, 0)
    issues.no_person = np.flatnonzero(~(keypoints[..., 2] > 0).any(axis=1)).tolist()
    frame_size = (width, height) if width > 0 and height > 0 else None
    return KeypointClip(path=path, keypoints=keypoints, issues=issues, fps=float(body.fps), frame_size=frame_size)


def write_pose_file(path, keypoints: np.ndarray, fps: float, frame_size: Tuple[int, int]) -> Path:
    """(T, 137, 3) keypoints -> a ``.pose`` file with pose-format's OpenPose header (one person)."""
    path = Path(path)
    Pose, NumPyPoseBody, PoseHeader, PoseHeaderDimensions, OpenPose_Components = _pose_format()
    kp = np.asarray(keypoints, dtype=np.float32)
    if kp.ndim != 3 or kp.shape[1:] != (N_POINTS, 3):
        raise KeypointError(f"{path}: keypoints of shape {kp.shape}, expected (frames, {N_POINTS}, 3)")
    header = PoseHeader(version=0.2, dimensions=PoseHeaderDimensions(width=int(frame_size[0]), height=int(frame_size[1]), depth=0),
                        components=OpenPose_Components)
    body = NumPyPoseBody(fps=float(fps), data=kp[:, None, :, :2].copy(), confidence=kp[:, None, :, 2].copy())
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        Pose(header, body).write(f)
    return path
