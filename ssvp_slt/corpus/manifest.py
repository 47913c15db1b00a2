"""Split manifests: one tab-separated file per split in the data root.

Columns (a header row names them; extra columns are kept and ignored):

    id        unique sample id
    video     path of the clip, relative to the data root (absolute also works)
    n_frames  number of frames in the clip as stored
    fps       frame rate of the clip as stored
    tgt_text  the English caption (absent or ignored for unlabelled data)

Optional columns written by preparation (older manifests lack them):

    width, height  frame size of the clip as stored, in pixels
    file_size      size of the clip file in bytes when it was probed; loading
                   compares it with the file on disk instead of opening every
                   video (a changed size means the clip was replaced or
                   truncated after preparation)

Manifests are UTF-8 (a byte-order mark is accepted). Reading validates every
row, its encoding included, and raises :class:`ManifestError` naming the file
and line, unless ``skip_invalid`` is set, in which case bad rows are dropped
and counted by reason, the first few of each reason logged with their line.
"""

import codecs
import csv
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .text import empty_caption_problem

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("id", "video", "n_frames", "fps")
TEXT_COLUMN = "tgt_text"
MANIFEST_COLUMNS = REQUIRED_COLUMNS + (TEXT_COLUMN,)
VIDEO_INFO_COLUMNS = ("width", "height", "file_size")
# what preparation writes: the probe's facts, so that loading a split never has to open the videos
PREPARED_COLUMNS = REQUIRED_COLUMNS + VIDEO_INFO_COLUMNS + (TEXT_COLUMN,)
PREPARED_UNLABELLED_COLUMNS = REQUIRED_COLUMNS + VIDEO_INFO_COLUMNS
NOT_UTF8 = "not valid UTF-8"


class ManifestError(ValueError):
    """A manifest file or one of its rows is unusable."""


class ManifestRowError(ManifestError):
    """One row is unusable: what ``skip_invalid`` drops and counts instead of raising."""


@dataclass(frozen=True)
class ManifestRow:
    id: str
    video: str  # as written in the manifest
    n_frames: int
    fps: float
    tgt_text: Optional[str]
    line: int  # 1-based line number in the manifest, for error messages
    width: Optional[int] = None
    height: Optional[int] = None
    file_size: Optional[int] = None  # bytes, as recorded by preparation


@dataclass
class Manifest:
    path: Path
    rows: List[ManifestRow]
    skipped: Dict[str, int]  # reason -> count of rows dropped with skip_invalid
    skipped_lines: Dict[str, List[int]] = field(default_factory=dict)  # reason -> their line numbers

    def __len__(self):
        return len(self.rows)


def probed_fields(path, info) -> Dict[str, object]:
    """The manifest columns that describe a probed clip (``info``: a video_io.VideoInfo)."""
    return {
        "n_frames": info.n_frames,
        "fps": info.fps,
        "width": info.width,
        "height": info.height,
        "file_size": os.path.getsize(path),
    }


def _sanitise_text(text: str) -> str:
    # tabs and newlines would break the TSV format itself
    return " ".join(text.split())


def write_manifest(path, rows: Iterable[Dict[str, object]], columns: Sequence[str] = MANIFEST_COLUMNS):
    """Write rows (dicts keyed by column name) as a manifest TSV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, quotechar=None, escapechar=None, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            values = []
            for c in columns:
                v = row[c]
                v = f"{v:.6g}" if isinstance(v, float) else str(v)
                if c == TEXT_COLUMN:
                    v = _sanitise_text(v)
                elif any(ch in v for ch in "\t\n\r"):
                    raise ManifestError(f"{path}: column {c} value {v!r} contains a tab or newline")
                values.append(v)
            writer.writerow(values)
    tmp.replace(path)
    return path


# a reason's first few line numbers are logged, so that users can find its rows
MAX_LINES_SHOWN = 5


def _parse_row(
    fields: List[str], header: List[str], need_text: bool, punctuation: str
) -> Tuple[Optional[dict], Optional[Tuple[str, str]]]:
    """Returns (values, None) or (None, (reason, message)); rows are counted by reason, which leaves
    out the offending value ("n_frames must be positive", not "... got 0" and "... got -5")."""
    if len(fields) != len(header):
        return None, (
            "wrong number of fields",
            f"wrong number of fields: expected {len(header)} tab-separated fields, found {len(fields)}",
        )
    values = dict(zip(header, fields))
    if not values["id"].strip():
        return None, ("empty id", "empty id")
    if not values["video"].strip():
        return None, ("empty video path", "empty video path")
    try:
        n_frames = int(values["n_frames"])
    except ValueError:
        return None, ("n_frames is not an integer", f"n_frames is not an integer: {values['n_frames']!r}")
    if n_frames <= 0:
        return None, ("n_frames must be positive", f"n_frames must be positive, got {n_frames}")
    try:
        fps = float(values["fps"])
    except ValueError:
        return None, ("fps is not a number", f"fps is not a number: {values['fps']!r}")
    if not math.isfinite(fps) or fps <= 0:
        return None, ("fps must be a positive number", f"fps must be a positive number, got {values['fps']!r}")
    text = values.get(TEXT_COLUMN)
    if need_text:
        problem = empty_caption_problem(text, punctuation)
        if problem is not None:
            return None, problem
    info = {}
    for column in VIDEO_INFO_COLUMNS:
        raw = values.get(column, "").strip()
        if not raw:
            continue  # older manifests, or a clip that was never probed
        try:
            info[column] = int(raw)
        except ValueError:
            return None, (f"{column} is not an integer", f"{column} is not an integer: {raw!r}")
        if info[column] <= 0:
            return None, (f"{column} must be positive", f"{column} must be positive, got {info[column]}")
    return {
        "id": values["id"].strip(),
        "video": values["video"].strip(),
        "n_frames": n_frames,
        "fps": fps,
        "tgt_text": text.strip() if text is not None else None,
        **info,
    }, None


def _decode_line(raw: bytes) -> Tuple[Optional[str], Optional[Tuple[str, str]]]:
    """(text, None), or (None, (reason, message)) naming the first byte that is not UTF-8."""
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as e:
        bad = raw[e.start : e.end]
        column = len(raw[: e.start].decode("utf-8")) + 1  # what precedes the first bad byte is valid
        # the text around it, read as the likeliest other encoding, so the user can find the spot
        around = raw[max(0, e.start - 20) : e.end + 20].decode("cp1252", "replace").strip()
        return None, (
            NOT_UTF8,
            f"{NOT_UTF8}: byte {bad!r} at character {column} (as Windows-1252 the text around it would read "
            f"{around!r}); re-save the manifest as UTF-8",
        )


def _read_lines(path: Path) -> List[bytes]:
    """The manifest's lines as bytes, decoded one by one later so that a bad byte costs only its row.
    A UTF-8 byte-order mark (Excel and Notepad write one) is dropped; UTF-16 is refused by name."""
    raw = path.read_bytes()
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ManifestError(f"{path}: the file is UTF-16 encoded; save it as UTF-8 (tab-separated text)")
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


class _Skips:
    """Rows dropped under skip_invalid: counted by reason, the first few of each logged with their line."""

    def __init__(self, path: Path):
        self.path = path
        self.lines: Dict[str, List[int]] = {}

    def add(self, lineno: int, reason: str, message: str) -> None:
        lines = self.lines.setdefault(reason, [])
        lines.append(lineno)
        if len(lines) <= MAX_LINES_SHOWN:
            logger.warning(f"{self.path}, line {lineno}: {message}; skipped")

    def counts(self) -> Dict[str, int]:
        return {reason: len(lines) for reason, lines in self.lines.items()}

    def log_summary(self) -> None:
        if not self.lines:
            return
        parts = []
        for reason, lines in sorted(self.lines.items(), key=lambda kv: -len(kv[1])):
            shown = ", ".join(map(str, lines[:MAX_LINES_SHOWN])) + (", ..." if len(lines) > MAX_LINES_SHOWN else "")
            parts.append(f"{reason!r}: {len(lines)} (line{'s' if len(lines) > 1 else ''} {shown})")
        total = sum(len(lines) for lines in self.lines.values())
        logger.warning(f"{self.path}: skipped {total} invalid row(s): {'; '.join(parts)}")


def read_manifest(path, need_text: bool = True, skip_invalid: bool = False, punctuation: str = "keep") -> Manifest:
    """Read and validate a manifest.

    Missing columns always raise. A malformed row raises naming the file and
    line, or with ``skip_invalid`` is dropped and counted by reason. With
    ``need_text``, a caption must keep a word after normalisation with
    ``punctuation`` (the data config's setting: under ``strip``, ``"?!..."``
    would train as an empty target).
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    lines = _read_lines(path)
    if not lines:
        raise ManifestError(f"{path}: empty manifest (no header row)")
    header_text, problem = _decode_line(lines[0])
    if problem is not None:
        raise ManifestError(f"{path}, line 1 (the header): {problem[1]}")
    header = [h.strip() for h in header_text.split("\t")]
    required = REQUIRED_COLUMNS + ((TEXT_COLUMN,) if need_text else ())
    missing = [c for c in required if c not in header]
    if missing:
        raise ManifestError(
            f"{path}: missing column(s) {', '.join(missing)}; header has {header}. "
            f"A manifest is tab-separated with columns {', '.join(MANIFEST_COLUMNS)}"
        )
    if len(set(header)) != len(header):
        raise ManifestError(f"{path}: duplicate column names in header {header}")

    rows: List[ManifestRow] = []
    skips = _Skips(path)
    seen_ids = {}
    for lineno, raw in enumerate(lines[1:], start=2):
        line, problem = _decode_line(raw)
        if problem is None:
            if not line.strip():
                continue
            values, problem = _parse_row(line.rstrip("\r").split("\t"), header, need_text, punctuation)
        if problem is None and values["id"] in seen_ids:
            problem = ("duplicate id", f"duplicate id: {values['id']!r} (first on line {seen_ids[values['id']]})")
        if problem is not None:
            if not skip_invalid:
                raise ManifestRowError(f"{path}, line {lineno}: {problem[1]}")
            skips.add(lineno, *problem)
            continue
        seen_ids[values["id"]] = lineno
        rows.append(ManifestRow(line=lineno, **values))
    skips.log_summary()
    return Manifest(path=path, rows=rows, skipped=skips.counts(), skipped_lines=skips.lines)
