"""Open every video of a split before training so a broken file fails at load time.

Each video is probed (opened, stream found, first frame decoded, frame count
read); its frame count must agree with the manifest. Problems are reported
all at once, naming the manifest line and the file.
"""

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Optional, Sequence

from .manifest import ManifestError, ManifestRow
from .skip_flag import SKIP_INVALID_HINT
from .video_io import VideoError, probe_video

logger = logging.getLogger(__name__)

MAX_PROBLEMS_SHOWN = 20


def _frame_count_mismatch(manifest_frames: int, actual_frames: int) -> bool:
    # containers may count a frame more or less than the decoder delivers
    return abs(manifest_frames - actual_frames) > max(2, 0.05 * actual_frames)


def _check_one(row: ManifestRow, path: Path):
    try:
        info = probe_video(path)
    except VideoError as e:
        return str(e).split(": ", 1)[-1]
    if _frame_count_mismatch(row.n_frames, info.n_frames):
        return f"manifest says {row.n_frames} frames, the file has {info.n_frames}"
    return None


def check_videos(
    manifest_path, rows: Sequence[ManifestRow], video_paths: Sequence[Path], skip_invalid: bool, workers: int = 8
) -> List[int]:
    """Indices of rows whose video is usable; raise (or with skip_invalid, log and drop) the rest."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        problems = list(pool.map(_check_one, rows, video_paths))
    return report_problems(manifest_path, rows, video_paths, problems, skip_invalid)


def report_problems(
    manifest_path, rows: Sequence[ManifestRow], video_paths: Sequence[Path], problems: Sequence[Optional[str]],
    skip_invalid: bool,
) -> List[int]:
    """Indices of rows without a problem; the problems raise at once (or with skip_invalid are logged and counted)."""
    bad = [(row, path, p) for row, path, p in zip(rows, video_paths, problems) if p is not None]
    if not bad:
        return list(range(len(rows)))
    lines = [f"  {manifest_path}, line {row.line} (id {row.id}): {path}: {p}" for row, path, p in bad]
    shown = "\n".join(lines[:MAX_PROBLEMS_SHOWN]) + (
        f"\n  ... and {len(lines) - MAX_PROBLEMS_SHOWN} more" if len(lines) > MAX_PROBLEMS_SHOWN else ""
    )
    if not skip_invalid:
        raise ManifestError(
            f"{manifest_path}: {len(bad)} of {len(rows)} video(s) are unusable:\n{shown}\n"
            f"Fix them, or set {SKIP_INVALID_HINT} to skip them with a logged count."
        )
    logger.warning(f"{manifest_path}: skipping {len(bad)} of {len(rows)} row(s) with unusable videos:\n{shown}")
    return [i for i, p in enumerate(problems) if p is None]
