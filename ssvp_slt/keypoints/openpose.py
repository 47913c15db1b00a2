"""Reading OpenPose's per-frame JSON output (How2Sign's released 2D keypoints).

One folder per clip, one file per frame: ``<NAME>_<12-digit frame>_keypoints.json`` holding
``{"people": [{"pose_keypoints_2d": [x, y, c, ...], "face_keypoints_2d": [...],
"hand_left_keypoints_2d": [...], "hand_right_keypoints_2d": [...]}, ...]}``.

Written here rather than taken from pose-format's ``load_openpose_directory`` (which the ``.pose``
side does use) because a corpus of ~6 M files needs every problem counted and named instead of a
crash or a silent zero: that loader opens every directory entry as JSON (a stray file stops it),
fills gaps in the numbering silently, keeps NaN, and fails on a short array with an IndexError
that names no file. Here a clip is read whatever is wrong with single frames, and each problem
is recorded in :class:`ClipIssues`:

* a gap in the frame numbering -> an all-masked frame (time stays true to the video);
* ``"people": []`` -> an all-masked frame; several people -> ``people[0]`` (as OpenPose
  loaders do), counted;
* a file that is not JSON or not OpenPose's structure -> an all-masked frame, counted;
* a component that is absent or empty (OpenPose run without --face/--hand) -> masked, counted;
* a component of the wrong length or with non-numbers -> masked, counted;
* a point with NaN/inf, negative confidence, or coordinates further than one frame outside the
  frame -> that point masked (0, 0, 0), counted.

Masked means (0, 0, 0), exactly what OpenPose writes for an undetected point: confidence 0 is
the mask (see :mod:`ssvp_slt.keypoints.normalize`).
"""

import json
import re
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from .clip import ClipIssues, KeypointClip, KeypointError
from .layout import COMPONENTS, N_POINTS

FRAME_FILE = re.compile(r"(?:^|_)(\d+)_keypoints\.json$")
# a folder whose numbering implies more frames than this many times its files is not a gap: refuse it
MAX_FRAMES_PER_FILE = 20


def _read_person(person, file: str, frame: int, width: float, height: float, issues: ClipIssues) -> np.ndarray:
    """(137, 3) float32 of one OpenPose person entry; unusable parts masked and recorded."""
    out = np.zeros((N_POINTS, 3), dtype=np.float32)
    start = 0
    for name, n in COMPONENTS:
        stop = start + n
        values = person.get(name) if isinstance(person, dict) else None
        if values is None or (isinstance(values, list) and len(values) == 0):
            issues.absent_components[name] += 1
        elif not isinstance(values, list) or len(values) != 3 * n:
            got = f"{len(values)} values" if isinstance(values, list) else type(values).__name__
            issues.note_bad(frame, file, "wrong length", n, f"{name} has {got}, expected {3 * n}; masked")
        else:
            try:
                arr = np.asarray(values, dtype=np.float64).reshape(n, 3)
            except (TypeError, ValueError):
                arr = None
                issues.note_bad(frame, file, "not numbers", n, f"{name} holds values that are not numbers; masked")
            if arr is not None:
                out[start:stop] = _clean_points(arr, file, frame, name, width, height, issues)
        start = stop
    return out


def _clean_points(arr: np.ndarray, file: str, frame: int, name: str, width: float, height: float, issues: ClipIssues) -> np.ndarray:
    """Mask (set to 0, 0, 0) the points no detector could have written; count them by reason."""
    x, y, c = arr[:, 0], arr[:, 1], arr[:, 2]
    non_finite = ~np.isfinite(arr).all(axis=1)
    with np.errstate(invalid="ignore"):
        negative = ~non_finite & (c < 0)
        # OpenPose may place a point a little outside the frame; further than a whole frame away is garbage
        outside = ~non_finite & ~negative & (c > 0) & ((x < -width) | (x > 2 * width) | (y < -height) | (y > 2 * height))
    for mask, reason, what in (
        (non_finite, "NaN or inf", "NaN/inf value(s)"),
        (negative, "negative confidence", "negative confidence"),
        (outside, "far outside the frame", f"coordinates more than a frame outside {width:g}x{height:g}"),
    ):
        if mask.any():
            points = np.flatnonzero(mask)
            issues.note_bad(frame, file, reason, len(points), f"{name} point(s) {points.tolist()[:6]}: {what}; masked")
    arr = arr.copy()
    arr[non_finite | negative | outside] = 0.0
    return arr.astype(np.float32)


def read_openpose_frame(path: Path, frame: int, width: float, height: float, issues: ClipIssues) -> np.ndarray:
    """One frame file -> (137, 3); problems recorded in ``issues`` (never raises for bad content)."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:  # ValueError covers JSONDecodeError and bad UTF-8
        issues.unreadable.append((path.name, f"not readable JSON ({str(e)[:80]})"))
        return np.zeros((N_POINTS, 3), dtype=np.float32)
    people = data.get("people") if isinstance(data, dict) else None
    if not isinstance(people, list):
        issues.unreadable.append((path.name, "no 'people' list (not OpenPose output?)"))
        return np.zeros((N_POINTS, 3), dtype=np.float32)
    if not people:
        issues.no_person.append(frame)
        return np.zeros((N_POINTS, 3), dtype=np.float32)
    if len(people) > 1:
        issues.multiple_people.append(frame)
    if not isinstance(people[0], dict):
        issues.unreadable.append((path.name, f"people[0] is a {type(people[0]).__name__}, not an object"))
        return np.zeros((N_POINTS, 3), dtype=np.float32)
    return _read_person(people[0], path.name, frame, width, height, issues)


def frame_files(folder: Path, issues: Optional[ClipIssues] = None) -> Dict[int, Path]:
    """Frame number -> file of an OpenPose output folder; other files are recorded as ignored."""
    issues = issues if issues is not None else ClipIssues()
    files: Dict[int, Path] = {}
    for path in sorted(folder.iterdir()):
        m = FRAME_FILE.search(path.name)
        if m is None or not path.is_file():
            issues.ignored_files.append(path.name)
            continue
        frame = int(m.group(1))
        if frame in files:
            issues.duplicate_frames.append(path.name)
            continue
        files[frame] = path
    return files


def read_openpose_folder(folder, frame_size: Tuple[int, int] = (1280, 720)) -> KeypointClip:
    """All frames of one clip's OpenPose JSON folder -> :class:`KeypointClip` (frames 0 .. highest number).

    ``frame_size`` (width, height) of the video the keypoints were computed on: only used to tell
    garbage coordinates from points slightly outside the frame. Raises :class:`KeypointError` for a
    missing folder or one without frame files; problems of single frames are recorded instead."""
    folder = Path(folder)
    if not folder.is_dir():
        raise KeypointError(f"{folder}: keypoint folder not found")
    issues = ClipIssues()
    files = frame_files(folder, issues)
    if not files:
        shown = f" (it holds {', '.join(issues.ignored_files[:3])}{', ...' if len(issues.ignored_files) > 3 else ''})" if issues.ignored_files else ""
        raise KeypointError(f"{folder}: no OpenPose frame files (*_<frame>_keypoints.json){shown}")
    n_frames = max(files) + 1
    if n_frames > MAX_FRAMES_PER_FILE * len(files) + 100:
        raise KeypointError(
            f"{folder}: frame numbers up to {max(files)} for only {len(files)} files: the numbering is broken "
            f"(e.g. {files[max(files)].name})"
        )
    width, height = frame_size
    keypoints = np.zeros((n_frames, N_POINTS, 3), dtype=np.float32)
    for frame, path in sorted(files.items()):
        keypoints[frame] = read_openpose_frame(path, frame, width, height, issues)
    issues.frame_files = len(files)
    issues.missing_frames = sorted(set(range(n_frames)) - set(files))
    return KeypointClip(path=folder, keypoints=keypoints, issues=issues)
