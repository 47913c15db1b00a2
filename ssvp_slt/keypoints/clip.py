"""One clip's keypoints as read from disk, and what was wrong with them (counted, with example files)."""

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

MAX_EXAMPLES = 5  # example files kept per kind of problem (the counts are complete)


class KeypointError(ValueError):
    """A keypoint file or folder is unusable as a whole; the message names it."""


@dataclass
class ClipIssues:
    """Problems found while reading one clip's keypoints. Frames are 0-based frame numbers."""

    frame_files: int = 0  # per-frame JSON files read (or frames in a .pose file)
    missing_frames: List[int] = field(default_factory=list)  # gaps in the numbering: all points masked
    no_person: List[int] = field(default_factory=list)  # "people": []: all points masked
    multiple_people: List[int] = field(default_factory=list)  # people[0] was used
    unreadable: List[Tuple[str, str]] = field(default_factory=list)  # (file, why): frame masked
    bad_points: Counter = field(default_factory=Counter)  # reason -> points masked (NaN, out of the frame, ...)
    bad_point_frames: List[int] = field(default_factory=list)  # frames holding at least one such point
    bad_examples: List[str] = field(default_factory=list)  # "file: what"
    absent_components: Counter = field(default_factory=Counter)  # component -> frames where it was absent/empty
    ignored_files: List[str] = field(default_factory=list)  # files in the folder that are not frame files
    duplicate_frames: List[str] = field(default_factory=list)  # a second file for one frame number: ignored

    def note_bad(self, frame: int, file: str, reason: str, count: int, detail: str) -> None:
        self.bad_points[reason] += count
        if not self.bad_point_frames or self.bad_point_frames[-1] != frame:
            self.bad_point_frames.append(frame)
        if len(self.bad_examples) < MAX_EXAMPLES:
            self.bad_examples.append(f"{file}: {detail}")


@dataclass
class KeypointClip:
    """``keypoints``: (T, 137, 3) float32, (x, y, confidence) in pixels; masked points are (0, 0, 0).

    ``fps`` and ``frame_size`` (width, height) are known for a ``.pose`` file (its header), None for an
    OpenPose JSON folder (OpenPose writes neither)."""

    path: Path
    keypoints: np.ndarray
    issues: ClipIssues
    fps: Optional[float] = None
    frame_size: Optional[Tuple[int, int]] = None

    @property
    def n_frames(self) -> int:
        return int(self.keypoints.shape[0])

    def frames_with_person(self) -> int:
        return int((self.keypoints[:, :, 2] > 0).any(axis=1).sum())


def frame_ranges(frames: List[int], limit: int = 8) -> str:
    """[3, 4, 5, 9] -> '3-5, 9' (at most ``limit`` ranges, then '...')."""
    if not frames:
        return ""
    frames = sorted(frames)
    ranges, start, prev = [], frames[0], frames[0]
    for f in frames[1:]:
        if f != prev + 1:
            ranges.append((start, prev))
            start = f
        prev = f
    ranges.append((start, prev))
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges[:limit])
    return text + (", ..." if len(ranges) > limit else "")


def issue_counts(issues: ClipIssues) -> Dict[str, int]:
    return {
        "missing_frames": len(issues.missing_frames),
        "frames_no_person": len(issues.no_person),
        "frames_multiple_people": len(issues.multiple_people),
        "unreadable_frame_files": len(issues.unreadable),
        "bad_points_masked": int(sum(issues.bad_points.values())),
        "frames_with_bad_points": len(issues.bad_point_frames),
        "ignored_files": len(issues.ignored_files),
        "duplicate_frame_files": len(issues.duplicate_frames),
    }
