"""The keypoint preparation report of one split: every dropped row and every problem, counted.

A row is either kept (its keypoints in the store, a manifest line) or dropped for a named reason.
Problems in kept clips (frames without a person, gaps in the numbering, masked garbage values,
unreadable frame files, a frame count that differs from the video, ...) are listed per clip with
the keypoint folder or file, how many frames or points, and example file names; the totals count
frames (or points) and clips. The JSON file holds everything; the printed summary caps the list.
"""

import json
import os
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import List, Optional

DROPPED, KEPT = "dropped", "kept"

# reasons a row is dropped (besides the CSV reader's own: empty caption, duplicate name, ...)
NO_KEYPOINTS = "no keypoints"
UNREADABLE = "unreadable keypoints"
NO_PERSON_ANYWHERE = "no person in any frame"
TOO_MANY_MISSING = "too many missing frames"
INVALID_MANIFEST_ROW = "invalid manifest row"

# problems of kept clips: key -> (what is counted, text)
NO_PERSON = "frames_no_person"
MISSING = "missing_frames"
BAD_POINTS = "bad_points_masked"
UNREADABLE_FILES = "unreadable_frame_files"
MULTIPLE_PEOPLE = "frames_multiple_people"
ABSENT_COMPONENT = "frames_absent_component"
IGNORED_FILES = "ignored_files"
DUPLICATE_FILES = "duplicate_frame_files"
FRAME_MISMATCH = "frame_count_mismatch"
NO_VIDEO = "no_video_to_compare"
VIDEO_FPS = "video_fps_differs"
NO_SHOULDERS = "no_shoulders"
RESAMPLED = "resampled"
KEPT_PROBLEMS = {
    NO_PERSON: "frames with no person (all points masked)",
    MISSING: "missing frames (gaps in the frame numbering; all points masked)",
    BAD_POINTS: "points with NaN/inf, negative confidence or far outside the frame (masked)",
    UNREADABLE_FILES: "frame files that are not OpenPose JSON (frame masked)",
    MULTIPLE_PEOPLE: "frames with more than one person (people[0] used)",
    ABSENT_COMPONENT: "frames missing a whole component (face or hands not computed; masked)",
    IGNORED_FILES: "files in keypoint folders that are not frame files (ignored)",
    DUPLICATE_FILES: "second files for one frame number (ignored)",
    FRAME_MISMATCH: "clips whose keypoint frame count differs from the video's",
    NO_VIDEO: "clips without a video to compare the frame count with",
    VIDEO_FPS: "clips whose video frame rate differs from --fps",
    NO_SHOULDERS: "clips with no frame showing both shoulders (normalised with the fallback anchor)",
    RESAMPLED: "clips resampled to --fps (a .pose file at another frame rate)",
}


@dataclass
class Problem:
    file: str  # the CSV/manifest (dropped rows) or the keypoint folder / .pose file
    line: Optional[int]  # CSV or manifest line of the row, where known
    sentence: Optional[str]
    reason: str
    message: str
    action: str = DROPPED
    count: int = 1  # frames, points, files or clips concerned
    examples: List[str] = field(default_factory=list)

    def format(self) -> str:
        where = f"{self.file}, line {self.line}" if self.line is not None else self.file
        return f"{where}: {self.message} [{self.action}]"


class KeypointReport:
    def __init__(self, split: str, sources, keypoint_dirs, settings: dict):
        self.split = split
        self.sources = [str(s) for s in sources]
        self.keypoint_dirs = [str(d) for d in keypoint_dirs]
        self.settings = dict(settings)
        self.rows_read = 0
        self.kept = 0
        self.dropped_by_reason: Counter = Counter()
        self.totals: Counter = Counter()  # problem key -> frames / points / files / clips
        self.clips_with: Counter = Counter()  # problem key -> clips
        self.problems: List[Problem] = []
        self.notes: List[str] = []
        self.frames: List[int] = []
        self.manifest: Optional[str] = None
        self.store: Optional[str] = None
        self.error: Optional[str] = None
        self.elapsed_s: Optional[float] = None

    @property
    def dropped(self) -> int:
        return sum(self.dropped_by_reason.values())

    def drop(self, problem: Problem) -> None:
        problem.action = DROPPED
        self.dropped_by_reason[problem.reason] += 1
        self.problems.append(problem)

    def drop_counted(self, reason: str, n: int) -> None:
        """Rows dropped by a reader that counts but does not list them (e.g. invalid manifest rows, logged there)."""
        self.dropped_by_reason[reason] += n

    def note(self, key: str, count: int, problem: Problem) -> None:
        problem.action, problem.count = KEPT, count
        self.totals[key] += count
        self.clips_with[key] += 1
        self.problems.append(problem)

    def keep(self, n_frames: int) -> None:
        self.kept += 1
        self.frames.append(n_frames)

    def to_dict(self) -> dict:
        fps = self.settings.get("fps") or 0
        return {
            "split": self.split,
            "sources": self.sources,
            "keypoint_dirs": self.keypoint_dirs,
            "settings": self.settings,
            "rows_read": self.rows_read,
            "kept": self.kept,
            "dropped": self.dropped,
            "dropped_by_reason": dict(self.dropped_by_reason),
            "frames": sum(self.frames),
            "hours": round(sum(self.frames) / fps / 3600, 4) if fps else None,
            "frames_per_clip": _stats(self.frames),
            "problem_totals": {k: {"count": self.totals[k], "clips": self.clips_with[k], "what": KEPT_PROBLEMS[k]}
                               for k in KEPT_PROBLEMS if self.clips_with[k]},
            "notes": self.notes,
            "manifest": self.manifest,
            "store": self.store,
            "error": self.error,
            "elapsed_s": self.elapsed_s,
            "problems": [asdict(p) for p in self.problems],
        }

    def write(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path

    def summary(self, max_problems: int = 30, report_path=None) -> str:
        reasons = ", ".join(f"{r}: {n}" for r, n in self.dropped_by_reason.most_common())
        lines = [f"{self.split}: read {self.rows_read} rows, kept {self.kept}, dropped {self.dropped}" + (f" ({reasons})" if reasons else "")]
        if self.frames:
            s = _stats(self.frames)
            fps = self.settings.get("fps")
            lines.append(f"  frames: {sum(self.frames)} at {fps:g} fps ({sum(self.frames) / fps / 3600:.3f} hours); per clip "
                         f"min {s['min']:g}, mean {s['mean']:g}, median {s['median']:g}, max {s['max']:g}")
        for key, what in KEPT_PROBLEMS.items():
            if self.clips_with[key]:
                lines.append(f"  {what}: {self.totals[key]} in {self.clips_with[key]} clip(s)")
        for note in self.notes:
            lines.append(f"  note: {note}")
        if self.error:
            lines.append(f"  ERROR: {self.error}")
        if self.problems:
            shown = self.problems[:max_problems]
            where = f" (all of them in {report_path})" if report_path else ""
            lines.append(f"  problems: {len(self.problems)}, showing {len(shown)}{where}:")
            lines += [f"    {p.format()}" for p in shown]
        return "\n".join(lines)


def _stats(values):
    if not values:
        return None
    return {"min": min(values), "mean": round(statistics.fmean(values), 2), "median": statistics.median(values), "max": max(values)}
