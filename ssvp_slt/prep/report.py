"""The validation report of one prepared split: counts, statistics and every problem found.

Every row that is read ends up either kept (in the manifest) or dropped with a
reason; rows that were kept after a repair (a caption joined across lines, an
END clamped to the video's end) are listed too. The JSON file holds the full
list; the printed summary caps it, so a CSV with thousands of bad rows does not
flood the terminal.

Two optional sections: ``signer_crop`` (``--signer-crop``: clips cropped, clips
that fell back to the centred square, detection counts and every clip's box in
source pixels) and ``windows`` (how the kept clips split into the encoder's
windows under the data config's window settings, and what the ``long_clips``
policy does to the clips needing more than ``max_windows``).
"""

import json
import os
import statistics
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..corpus.frame_sampling import WindowSettings

# what happened to the row a problem was found in
DROPPED = "dropped"
REPAIRED = "repaired"
CLAMPED = "clamped"
CENTRE_CROP = "centre crop"  # --signer-crop found no face: the clip got the centred square

# clip counters (how each kept clip came to be)
COPIED = "copied"  # stream copy, no re-encoding
ENCODED = "re-encoded"
EXISTING = "already done"  # finished by an earlier run and skipped
PROBED = "pre-cut"  # --clips mode: an existing clip was only probed

# duration histogram bin edges, seconds (How2Sign sentences: mostly 2-15 s)
DURATION_BINS = (0, 2, 5, 10, 20, 30)


@dataclass
class Problem:
    file: str
    line: Optional[int]  # 1-based line in ``file`` where the row starts; None for file-level notes
    reason: str  # short key, counted in the report
    message: str  # for the user: what is wrong and, where useful, what to do
    action: str = DROPPED
    sentence: Optional[str] = None

    def format(self) -> str:
        where = f"{self.file}, line {self.line}" if self.line is not None else self.file
        return f"{where}: {self.message} [{self.action}]"


def _stats(values: Sequence[float], digits: int = 2) -> Optional[Dict[str, float]]:
    if not values:
        return None
    return {
        "min": round(min(values), digits),
        "mean": round(statistics.fmean(values), digits),
        "median": round(statistics.median(values), digits),
        "max": round(max(values), digits),
    }


def _bin_label(i: int) -> str:
    lo = DURATION_BINS[i]
    return f"{lo}-{DURATION_BINS[i + 1]} s" if i + 1 < len(DURATION_BINS) else f">={lo} s"


class SplitReport:
    """Accumulates what happened to the rows of one split."""

    def __init__(
        self,
        split: str,
        mode: str,
        sources: Sequence[str],
        settings: Optional[dict] = None,
        windows: Optional[WindowSettings] = None,
        windows_from: Optional[str] = None,
    ):
        self.split = split
        self.mode = mode
        self.sources = [str(s) for s in sources]
        self.settings = dict(settings or {})
        self.rows_read = 0
        self.problems: List[Problem] = []
        self.notes: List[str] = []  # file-level remarks (e.g. the delimiter that was detected)
        self.dropped_by_reason: Counter = Counter()
        self.clips: Counter = Counter()
        self.faces: Counter = Counter()
        # per kept row; a few numbers each, so memory stays small even for How2Sign's 31k rows
        self.durations: List[float] = []
        self.caption_words: List[int] = []
        self.manifest: Optional[str] = None
        self.error: Optional[str] = None  # set when the split could not be written at all
        self.elapsed_s: Optional[float] = None
        # encoder windows per kept clip (see windows_summary); None: not computed
        self.window_settings = windows
        self.windows_from = windows_from
        self.windows_needed: Counter = Counter()
        # --signer-crop: SENTENCE_NAME -> CropBox.to_dict()
        self.crops: Dict[str, dict] = {}

    def drop(self, problems: Sequence[Problem]) -> None:
        """One dropped row: counted once, by its first problem's reason; all problems listed."""
        assert problems, "a dropped row needs at least one problem"
        self.dropped_by_reason[problems[0].reason] += 1
        self.problems.extend(problems)

    def note(self, problem: Problem) -> None:
        """A problem in a row that was kept (repaired or clamped)."""
        self.problems.append(problem)

    def keep(
        self,
        duration_s: float,
        caption: str,
        clip_status: str,
        faces: Optional[dict] = None,
        *,
        windows: Optional[int] = None,
        name: Optional[str] = None,
        crop: Optional[dict] = None,
    ) -> None:
        """One kept row; ``windows``: encoder windows its clip needs; ``crop``: its signer crop box."""
        self.durations.append(float(duration_s))
        self.caption_words.append(len(caption.split()))
        self.clips[clip_status] += 1
        if faces:
            self.faces.update({k: int(v) for k, v in faces.items()})
        if windows is not None:
            self.windows_needed[int(windows)] += 1
        if crop is not None:
            self.crops[name if name is not None else str(len(self.crops))] = crop

    @property
    def kept(self) -> int:
        return len(self.durations)

    @property
    def dropped(self) -> int:
        return sum(self.dropped_by_reason.values())

    def sorted_problems(self) -> List[Problem]:
        # by file and line, whichever stage (CSV check, worker) found them
        return sorted(self.problems, key=lambda p: (p.file, p.line if p.line is not None else 0))

    def _count(self, action: str) -> Counter:
        return Counter(p.reason for p in self.problems if p.action == action)

    def duration_histogram(self) -> List[dict]:
        counts = [0] * len(DURATION_BINS)
        for d in self.durations:
            i = max(j for j, lo in enumerate(DURATION_BINS) if d >= lo) if d >= 0 else 0
            counts[i] += 1
        return [{"range": _bin_label(i), "count": c} for i, c in enumerate(counts)]

    def windows_summary(self) -> Optional[dict]:
        """Clips longer than one encoder window: how many windows they need, and what the
        ``long_clips`` policy does to those needing more than ``max_windows``."""
        s = self.window_settings
        if s is None:
            return None
        n = sum(self.windows_needed.values())
        longer = sum(c for w, c in self.windows_needed.items() if w > 1)
        over = sum(c for w, c in self.windows_needed.items() if w > s.max_windows)
        histogram = {str(w): self.windows_needed.get(w, 0) for w in range(1, s.max_windows + 1)}
        histogram[f">{s.max_windows}"] = over
        if s.long_clips == "truncate":
            affected = longer
            effect = (
                f"every clip longer than one window is cut to one window of {s.window_seconds:g} s "
                "(max_windows is ignored): the rest of its sentence is never seen"
            )
        elif s.long_clips == "drop":
            affected = over
            effect = (
                f"clips needing more than {s.max_windows} windows are left out when this split is trained on; "
                f"evaluated, they are stretched over {s.max_windows} windows"
            )
        else:
            affected = over
            effect = (
                f"clips needing more than {s.max_windows} windows are stretched: {s.max_windows} windows spread "
                "over the whole clip (frames further apart, faster apparent signing)"
            )
        return {
            "settings_from": self.windows_from,
            "window_seconds": round(s.window_seconds, 4),
            "target_fps": s.target_fps,
            "num_frames": s.num_frames,
            "sampling_rate": s.sampling_rate,
            "window_stride": s.window_stride,
            "max_windows": s.max_windows,
            "long_clips": s.long_clips,
            "clips": n,
            "longer_than_one_window": longer,
            "share_longer_than_one_window": round(longer / n, 4) if n else 0.0,
            "windows_needed": histogram,
            "over_max_windows": over,
            "affected_by_long_clips": affected,
            "long_clips_effect": effect,
        }

    def crop_summary(self) -> Optional[dict]:
        if not self.crops:
            return None
        boxes = self.crops.values()
        runs = sum(b.get("detector_runs", 0) for b in boxes)
        found = sum(b.get("detections", 0) for b in boxes)
        return {
            "clips": len(self.crops),
            "fallback": sum(1 for b in boxes if b.get("fallback")),
            "padded": sum(1 for b in boxes if b.get("padded")),
            "detector_runs": runs,
            "detections": found,
            "share_with_detection": round(found / runs, 4) if runs else 0.0,
            "boxes": dict(self.crops),
        }

    def to_dict(self) -> dict:
        faces = dict(self.faces)
        if faces.get("frames"):
            faces["share_with_detection"] = round(faces.get("frames_with_detection", 0) / faces["frames"], 4)
        return {
            "split": self.split,
            "mode": self.mode,
            "sources": self.sources,
            "settings": self.settings,
            "rows_read": self.rows_read,
            "kept": self.kept,
            "dropped": self.dropped,
            "dropped_by_reason": dict(self.dropped_by_reason.most_common()),
            "repaired_by_reason": dict(self._count(REPAIRED).most_common()),
            "clamped": sum(self._count(CLAMPED).values()),
            "clips": dict(self.clips),
            "hours": round(sum(self.durations) / 3600, 4),
            "duration_histogram": self.duration_histogram(),
            "duration_seconds": _stats(self.durations),
            "caption_words": _stats(self.caption_words),
            "faces": faces or None,
            "signer_crop": self.crop_summary(),
            "windows": self.windows_summary(),
            "notes": self.notes,
            "manifest": self.manifest,
            "error": self.error,
            "elapsed_seconds": None if self.elapsed_s is None else round(self.elapsed_s, 2),
            "problems": [asdict(p) for p in self.sorted_problems()],
        }

    def write_json(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)  # a reader never sees half a report
        return path

    def summary(self, max_problems: int = 30, report_path=None) -> str:
        d = self.to_dict()
        lines = []
        head = f"{self.split}: read {self.rows_read} rows, kept {self.kept}, dropped {self.dropped}"
        if self.dropped:
            head += " (" + ", ".join(f"{k}: {v}" for k, v in d["dropped_by_reason"].items()) + ")"
        if d["clamped"]:
            head += f"; {d['clamped']} END clamped to the video's end"
        if d["repaired_by_reason"]:
            head += "; repaired: " + ", ".join(f"{k}: {v}" for k, v in d["repaired_by_reason"].items())
        lines.append(head)
        lines.extend(f"  note: {n}" for n in self.notes)
        if self.kept:
            clips = ", ".join(f"{k}: {v}" for k, v in sorted(self.clips.items()))
            lines.append(f"  clips: {clips}; {d['hours']:.3f} hours")
            lines.append("  durations: " + ", ".join(f"{b['range']}: {b['count']}" for b in d["duration_histogram"]))
            s, w = d["duration_seconds"], d["caption_words"]
            lines.append(f"  seconds per clip: min {s['min']}, mean {s['mean']}, median {s['median']}, max {s['max']}")
            lines.append(f"  words per caption: min {w['min']}, mean {w['mean']}, median {w['median']}, max {w['max']}")
        if d["faces"]:
            f = d["faces"]
            share = f.get("share_with_detection", 0.0)
            lines.append(
                f"  faces: detected on {100 * share:.1f}% of {f.get('frames', 0)} frames "
                f"({f.get('frames_blurred', 0)} frames blurred)"
            )
        if d["signer_crop"]:
            c = d["signer_crop"]
            lines.append(
                f"  signer crop: {c['clips']} clips cropped, {c['fallback']} fell back to the centred square "
                f"(no or too few faces found), {c['padded']} padded at the frame edge; a face on "
                f"{100 * c['share_with_detection']:.1f}% of {c['detector_runs']} checked frames"
            )
        if d["windows"] and d["windows"]["clips"]:
            w = d["windows"]
            hist = ", ".join(f"{k}: {v}" for k, v in w["windows_needed"].items() if v)
            lines.append(
                f"  windows of {w['window_seconds']:g} s ({w['settings_from']}): {w['longer_than_one_window']} of "
                f"{w['clips']} clips ({100 * w['share_longer_than_one_window']:.1f}%) longer than one; "
                f"windows needed: {hist}"
            )
            lines.append(
                f"  {w['over_max_windows']} clips need more than max_windows={w['max_windows']}; "
                f"long_clips={w['long_clips']}: {w['long_clips_effect']} ({w['affected_by_long_clips']} clips)"
            )
        if self.problems:
            shown = self.sorted_problems()[:max_problems]
            where = f" (all of them in {report_path})" if report_path else ""
            lines.append(f"  problems: {len(self.problems)}, showing {len(shown)}{where}:")
            lines.extend("    " + p.format() for p in shown)
            if len(self.problems) > len(shown):
                lines.append(f"    ... {len(self.problems) - len(shown)} more")
        if self.error:
            lines.append(f"  ERROR: {self.error}")
        elif self.manifest:
            lines.append(f"  -> {self.manifest}")
        return "\n".join(lines)
