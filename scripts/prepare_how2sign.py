#!/usr/bin/env python
"""Build a split manifest from a How2Sign-style CSV and a directory of per-sentence clips.

    python scripts/prepare_how2sign.py --csv how2sign_realigned_train.csv \\
        --clips DIR --out DATA_ROOT --split train [--skip-invalid] [--workers 8]

The CSV is tab-separated with the header

    VIDEO_ID VIDEO_NAME SENTENCE_ID SENTENCE_NAME START_REALIGNED END_REALIGNED SENTENCE

(only SENTENCE_NAME and SENTENCE are used) and each clip is DIR/<SENTENCE_NAME>.mp4.
Every row is checked (field count, empty name, duplicate name, empty caption,
missing clip, clip that cannot be opened, has no video stream or no frames).
By default all problems are reported with the CSV line numbers and the script
exits non-zero; with --skip-invalid the bad rows are reported, left out and
counted, and the manifest of the good rows is written. No row is dropped
without a message.

Writes DATA_ROOT/<split>.tsv (see ssvp_plugin/data/manifest.py). Video paths
are written relative to DATA_ROOT.
"""

import argparse
import csv
import io
import logging
import os
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Tuple

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tqdm import tqdm  # noqa: E402

from ssvp_plugin.data.manifest import write_manifest  # noqa: E402
from ssvp_plugin.data.text import normalize_caption  # noqa: E402
from ssvp_plugin.data.video_io import VideoError, probe_video  # noqa: E402

logger = logging.getLogger("prepare_how2sign")

NAME_COLUMN = "SENTENCE_NAME"
TEXT_COLUMN = "SENTENCE"
REQUIRED_COLUMNS = (NAME_COLUMN, TEXT_COLUMN)
EXPECTED_HEADER = ("VIDEO_ID", "VIDEO_NAME", "SENTENCE_ID", "SENTENCE_NAME", "START_REALIGNED", "END_REALIGNED", "SENTENCE")
CLIP_EXTENSION = ".mp4"

# problem reasons (the keys of the counts in the summary)
WRONG_FIELDS = "wrong number of fields"
EMPTY_NAME = "empty SENTENCE_NAME"
DUPLICATE = "duplicate SENTENCE_NAME"
EMPTY_CAPTION = "empty caption"
MISSING_CLIP = "missing clip"
UNREADABLE = "unreadable clip"
NO_VIDEO_STREAM = "no video stream"
ZERO_FRAMES = "zero frames"


class PrepareError(Exception):
    """A problem that stops preparation; the message is meant for the user."""


def read_csv_rows(csv_path: Path) -> Tuple[List[str], List[Tuple[int, List[str]]]]:
    """Return (header, [(line_number, fields), ...]) of a tab-separated How2Sign CSV.

    Raises PrepareError for unreadable / non-UTF-8 files and for a header
    without the required columns.
    """
    try:
        raw = csv_path.read_bytes()
    except FileNotFoundError:
        raise PrepareError(f"{csv_path}: CSV file not found")
    except OSError as e:
        raise PrepareError(f"{csv_path}: cannot read CSV file ({e})")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise PrepareError(
            f"{csv_path}: not valid UTF-8 (line {line}, byte offset {e.start}: {e.reason}); "
            f"re-encode the file as UTF-8"
        )
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    header: Optional[List[str]] = None
    rows: List[Tuple[int, List[str]]] = []
    for fields in reader:
        lineno = reader.line_num
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # blank line, not a row
        if header is None:
            header = [h.strip() for h in fields]
            continue
        rows.append((lineno, fields))
    if header is None:
        raise PrepareError(f"{csv_path}: empty CSV (no header row)")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        msg = (
            f"{csv_path}: missing required column(s) {', '.join(missing)}; the header row is {header}. "
            f"Expected a tab-separated header like: {' '.join(EXPECTED_HEADER)}"
        )
        if len(header) == 1 and header[0].count(",") >= 1:
            msg += ". The header contains commas and no tabs: the file looks comma-separated, but How2Sign CSVs are tab-separated"
        elif len(header) == 1 and header[0].count(";") >= 1:
            msg += ". The header contains semicolons and no tabs: the file looks semicolon-separated, but How2Sign CSVs are tab-separated"
        raise PrepareError(msg)
    duplicated = sorted(c for c, n in Counter(header).items() if n > 1 and c in REQUIRED_COLUMNS)
    if duplicated:
        raise PrepareError(f"{csv_path}: column(s) {', '.join(duplicated)} appear more than once in the header {header}")
    return header, rows


def classify_video_error(message: str) -> str:
    if "not found" in message:
        return MISSING_CLIP
    if "no video stream" in message:
        return NO_VIDEO_STREAM
    if "zero frames" in message:
        return ZERO_FRAMES
    return UNREADABLE


def probe_clip(path: Path):
    """(VideoInfo, None) or (None, (reason, message))."""
    try:
        return probe_video(path), None
    except VideoError as e:
        return None, (classify_video_error(str(e)), str(e))
    except Exception as e:  # anything else from the decoder: report it, never crash the whole run
        return None, (UNREADABLE, f"{path}: cannot probe ({type(e).__name__}: {e})")


def prepare(
    csv_path: Path,
    clips_dir: Path,
    out_dir: Path,
    split: str,
    skip_invalid: bool = False,
    workers: int = 8,
) -> Dict[str, object]:
    """Validate all rows, write the manifest, return a summary dict. Raises PrepareError."""
    header, rows = read_csv_rows(csv_path)
    if not clips_dir.is_dir():
        raise PrepareError(f"{clips_dir}: clips directory not found")
    col = {name: header.index(name) for name in REQUIRED_COLUMNS}

    problems: Dict[int, List[Tuple[str, str]]] = {}  # line -> [(reason, message)]
    candidates = []  # (line, name, caption, clip path) rows whose fields are usable
    first_line_of: Dict[str, int] = {}
    for lineno, fields in rows:
        row_problems = problems.setdefault(lineno, [])
        if len(fields) != len(header):
            hint = ""
            if len(fields) > len(header):
                hint = " (a tab inside the caption?)"
            elif len(fields) == 1 and "," in fields[0]:
                hint = " (the line looks comma-separated)"
            row_problems.append((WRONG_FIELDS, f"expected {len(header)} tab-separated fields, found {len(fields)}{hint}"))
            continue
        name = fields[col[NAME_COLUMN]].strip()
        caption = normalize_caption(fields[col[TEXT_COLUMN]], lowercase=False)
        if not name:
            row_problems.append((EMPTY_NAME, "empty SENTENCE_NAME"))
            continue
        if name in first_line_of:
            row_problems.append((DUPLICATE, f"duplicate SENTENCE_NAME {name!r} (first on line {first_line_of[name]})"))
            continue
        first_line_of[name] = lineno
        if not caption:
            row_problems.append((EMPTY_CAPTION, f"empty caption for {name!r}"))
        clip = clips_dir / f"{name}{CLIP_EXTENSION}"
        if not clip.is_file():
            row_problems.append((MISSING_CLIP, f"clip not found: {clip}"))
        candidates.append((lineno, name, caption, clip))

    to_probe = [c for c in candidates if not problems[c[0]]]
    infos = {}
    if to_probe:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            results = pool.map(probe_clip, [c[3] for c in to_probe])
            for (lineno, _, _, _), (info, problem) in tqdm(
                zip(to_probe, results), total=len(to_probe), desc=f"probing {split} clips", unit="clip", disable=None
            ):
                if problem is not None:
                    problems[lineno].append(problem)
                else:
                    infos[lineno] = info

    bad_lines = sorted(line for line, p in problems.items() if p)
    reason_counts = Counter(reason for line in bad_lines for reason, _ in problems[line])
    for line in bad_lines:
        for _, message in problems[line]:
            if skip_invalid:
                logger.warning(f"{csv_path}, line {line}: {message}; row skipped")
            else:
                logger.error(f"{csv_path}, line {line}: {message}")

    counts_str = ", ".join(f"{reason}: {n}" for reason, n in reason_counts.most_common())
    if bad_lines and not skip_invalid:
        raise PrepareError(
            f"{csv_path}: {len(bad_lines)} of {len(rows)} row(s) are invalid ({counts_str}); see the messages above. "
            f"Fix them, or rerun with --skip-invalid to leave those rows out"
        )

    out_abs = os.path.abspath(out_dir)
    manifest_rows = []
    for lineno, name, caption, clip in candidates:
        if problems[lineno]:
            continue
        info = infos[lineno]
        manifest_rows.append(
            {
                "id": name,
                "video": Path(os.path.relpath(os.path.abspath(clip), out_abs)).as_posix(),
                "n_frames": info.n_frames,
                "fps": info.fps,
                "tgt_text": caption,
            }
        )
    if not manifest_rows:
        raise PrepareError(f"{csv_path}: no valid rows left ({counts_str or 'the CSV has no data rows'}); nothing written")
    out_path = write_manifest(Path(out_dir) / f"{split}.tsv", manifest_rows)
    hours = sum(r["n_frames"] / r["fps"] for r in manifest_rows) / 3600
    if bad_lines:
        logger.warning(f"skipped {len(bad_lines)} invalid row(s) of {csv_path}: {counts_str}")
    summary = {
        "manifest": str(out_path),
        "rows_read": len(rows),
        "rows_written": len(manifest_rows),
        "rows_skipped": len(bad_lines),
        "skipped_by_reason": dict(reason_counts.most_common()),
        "hours": hours,
    }
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", required=True, type=Path, help="How2Sign sentence CSV (tab-separated)")
    parser.add_argument("--clips", required=True, type=Path, help="directory holding <SENTENCE_NAME>.mp4 clips")
    parser.add_argument("--out", required=True, type=Path, help="data root to write <split>.tsv into")
    parser.add_argument("--split", required=True, help="split name, e.g. train, val, test")
    parser.add_argument("--skip-invalid", action="store_true", help="report invalid rows and leave them out instead of failing")
    parser.add_argument("--workers", type=int, default=8, help="threads probing clips in parallel (default 8)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s", stream=sys.stderr)

    logger.warning(
        "this script uses pre-cut per-sentence clips. The clips distributed with How2Sign were cut at the "
        "original, misaligned timestamps; cutting the full videos at START_REALIGNED/END_REALIGNED gives "
        "better-aligned clips and better results"
    )
    try:
        s = prepare(args.csv, args.clips, args.out, args.split, skip_invalid=args.skip_invalid, workers=args.workers)
    except PrepareError as e:
        logger.error(str(e))
        return 1
    print(
        f"{args.split}: read {s['rows_read']} rows, wrote {s['rows_written']}, skipped {s['rows_skipped']}"
        + (f" (problems: {', '.join(f'{k}: {v}' for k, v in s['skipped_by_reason'].items())})" if s["rows_skipped"] else "")
        + f", {s['hours']:.2f} hours -> {s['manifest']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
