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

Reading validates every row and raises :class:`ManifestError` naming the
file and line, unless ``skip_invalid`` is set, in which case bad rows are
dropped, logged and counted.
"""

import csv
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("id", "video", "n_frames", "fps")
TEXT_COLUMN = "tgt_text"
MANIFEST_COLUMNS = REQUIRED_COLUMNS + (TEXT_COLUMN,)
VIDEO_INFO_COLUMNS = ("width", "height", "file_size")
# what preparation writes: the probe's facts, so that loading a split never has to open the videos
PREPARED_COLUMNS = REQUIRED_COLUMNS + VIDEO_INFO_COLUMNS + (TEXT_COLUMN,)
PREPARED_UNLABELLED_COLUMNS = REQUIRED_COLUMNS + VIDEO_INFO_COLUMNS


class ManifestError(ValueError):
    """A manifest file or one of its rows is unusable."""


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


def _parse_row(fields: List[str], header: List[str], need_text: bool) -> Tuple[Optional[dict], Optional[str]]:
    """Returns (values, None) or (None, problem); the problem's text before ':' is its reason."""
    if len(fields) != len(header):
        return None, f"wrong number of fields: expected {len(header)} tab-separated fields, found {len(fields)}"
    values = dict(zip(header, fields))
    if not values["id"].strip():
        return None, "empty id"
    if not values["video"].strip():
        return None, "empty video path"
    try:
        n_frames = int(values["n_frames"])
    except ValueError:
        return None, f"n_frames is not an integer: {values['n_frames']!r}"
    if n_frames <= 0:
        return None, f"n_frames must be positive, got {n_frames}"
    try:
        fps = float(values["fps"])
    except ValueError:
        return None, f"fps is not a number: {values['fps']!r}"
    if not math.isfinite(fps) or fps <= 0:
        return None, f"fps must be a positive number, got {values['fps']!r}"
    text = values.get(TEXT_COLUMN)
    if need_text and (text is None or not text.strip()):
        return None, "empty caption"
    info = {}
    for column in VIDEO_INFO_COLUMNS:
        raw = values.get(column, "").strip()
        if not raw:
            continue  # older manifests, or a clip that was never probed
        try:
            info[column] = int(raw)
        except ValueError:
            return None, f"{column} is not an integer: {raw!r}"
        if info[column] <= 0:
            return None, f"{column} must be positive, got {info[column]}"
    return {
        "id": values["id"].strip(),
        "video": values["video"].strip(),
        "n_frames": n_frames,
        "fps": fps,
        "tgt_text": text.strip() if text is not None else None,
        **info,
    }, None


def read_manifest(path, need_text: bool = True, skip_invalid: bool = False) -> Manifest:
    """Read and validate a manifest.

    Missing columns always raise. A malformed row raises naming the file and
    line, or with ``skip_invalid`` is dropped and counted by reason.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    try:
        with open(path, encoding="utf-8", newline="") as f:
            lines = f.read().split("\n")
    except UnicodeDecodeError as e:
        raise ManifestError(f"{path}: not valid UTF-8 ({e})") from e
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise ManifestError(f"{path}: empty manifest (no header row)")
    header = [h.strip() for h in lines[0].split("\t")]
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
    skipped: Dict[str, int] = {}
    seen_ids = {}
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        values, problem = _parse_row(line.rstrip("\r").split("\t"), header, need_text)
        if values is not None and values["id"] in seen_ids:
            problem = f"duplicate id: {values['id']!r} (first on line {seen_ids[values['id']]})"
            values = None
        if values is None:
            if not skip_invalid:
                raise ManifestError(f"{path}, line {lineno}: {problem}")
            reason = problem.split(":")[0]
            skipped[reason] = skipped.get(reason, 0) + 1
            logger.warning(f"{path}, line {lineno}: {problem}; skipped")
            continue
        seen_ids[values["id"]] = lineno
        rows.append(ManifestRow(line=lineno, **values))
    if skipped:
        logger.warning(f"{path}: skipped {sum(skipped.values())} invalid row(s): {skipped}")
    return Manifest(path=path, rows=rows, skipped=skipped)
