"""Reading one split of a data root: manifest rows, the videos they name, and long-clip handling.

Loading happens at every start (each resume, each GPU rank, each
``fairseq-generate``), so it trusts what preparation recorded in the
manifest (frames, fps, frame size, file size) instead of opening every video:
by default it only checks that each file exists and, where the manifest
records one, that its size is unchanged (``check_videos=files``, a stat per
file). ``check_videos=probe`` opens and probes every video as preparation
did; ``none`` checks nothing.
"""

import logging
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ssvp_slt.corpus.data_config import VideoDataConfig
from ssvp_slt.corpus.frame_sampling import clip_layout
from ssvp_slt.corpus.manifest import ManifestError, ManifestRow, read_manifest
from ssvp_slt.corpus.video_checks import check_videos, report_problems

logger = logging.getLogger(__name__)

VIDEO_CHECKS = ("files", "probe", "none")


def _file_problem(row: ManifestRow, path: Path) -> Optional[str]:
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return "video file not found"
    except OSError as e:
        return f"cannot read the video file ({e.strerror or e})"
    if row.file_size is not None and size != row.file_size:
        return (
            f"file is {size} bytes, the manifest recorded {row.file_size} when it was prepared "
            f"(replaced or truncated since? re-run preparation, or check it with task.check_videos=probe)"
        )
    return None


# rows per thread-pool task: a task (future) per row cost several times the stat itself
# (ThreadPoolExecutor.map ignores its chunksize argument)
_STAT_CHUNK = 512


def _file_problems(rows: Sequence[ManifestRow], video_paths: Sequence[Path]) -> List[Optional[str]]:
    return [_file_problem(row, path) for row, path in zip(rows, video_paths)]


def check_files(
    manifest_path, rows: Sequence[ManifestRow], video_paths: Sequence[Path], skip_invalid: bool, workers: int = 8
) -> List[int]:
    """Indices of rows whose file exists with the recorded size; the rest raise (or are skipped and counted)."""
    starts = range(0, len(rows), _STAT_CHUNK)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # stat waits on the file system: threads help on NFS
        chunks = pool.map(
            _file_problems, [rows[i : i + _STAT_CHUNK] for i in starts], [video_paths[i : i + _STAT_CHUNK] for i in starts]
        )
        problems = [p for chunk in chunks for p in chunk]
    return report_problems(manifest_path, rows, video_paths, problems, skip_invalid)


def is_training_load(split: str, train_subset: str, load_kwargs: dict) -> bool:
    """Whether ``task.load_dataset`` is loading the split a training run trains on.

    Only then are frames drawn at random (phase, windows, crop jitter). fairseq-generate and
    fairseq-validate pass the checkpoint's task config (``task_cfg``) and the trainer never does,
    so ``--gen-subset train`` decodes exactly what ``--gen-subset test`` would: deterministically.
    """
    return split == train_subset and "task_cfg" not in load_kwargs


def training_subset(rows: List[ManifestRow], video_paths: List[Path], size: int, seed: int):
    """A random subset of ``size`` rows (in manifest order), the same for a given seed."""
    if not size or size >= len(rows):
        return rows, video_paths
    keep = sorted(np.random.default_rng([seed, size]).choice(len(rows), size=size, replace=False))
    logger.info(f"max_train_clips={size}: training on {size} of {len(rows)} clips (a subset fixed by the seed)")
    return [rows[i] for i in keep], [video_paths[i] for i in keep]


def load_split_rows(
    data_cfg: VideoDataConfig, split: str, need_text: bool, skip_invalid: bool, check: str, workers: int
) -> Tuple[Path, List[ManifestRow], List[Path]]:
    """``(manifest path, rows, absolute video paths)`` of ``<root>/<split>.tsv``.

    Bad rows (captions with no word left after the data config's
    normalisation included) and missing or changed files (``check``: see the
    module doc) stop with an error naming the file and line, or are dropped
    and counted with ``skip_invalid``.
    """
    if check not in VIDEO_CHECKS:
        raise ValueError(f"check_videos must be one of {VIDEO_CHECKS}, got {check!r}")
    manifest_path = data_cfg.resolve(f"{split}.tsv")
    # captions are checked as the task will normalise them: under punctuation=strip "?!..." is empty
    rows = read_manifest(
        manifest_path, need_text=need_text, skip_invalid=skip_invalid, punctuation=data_cfg.punctuation
    ).rows
    video_paths = [data_cfg.resolve(r.video) for r in rows]
    if check != "none":
        checker = check_videos if check == "probe" else check_files
        keep = checker(manifest_path, rows, video_paths, skip_invalid=skip_invalid, workers=workers)
        rows = [rows[i] for i in keep]
        video_paths = [video_paths[i] for i in keep]
    if not rows:
        raise ManifestError(f"{manifest_path}: no usable rows")
    return manifest_path, rows, video_paths


@dataclass
class LongClipSummary:
    """How a split's clips relate to the encoder window, for the load log."""

    clips: int = 0
    window_s: float = 0.0
    windows_needed: Dict[int, int] = field(default_factory=dict)  # windows -> clips
    beyond_max: int = 0
    dropped: int = 0
    policy: str = "stretch"

    @property
    def longer_than_window(self) -> int:
        return sum(n for w, n in self.windows_needed.items() if w > 1)

    def describe(self, split: str, max_windows: int) -> str:
        share = self.longer_than_window / max(self.clips, 1)
        hist = ", ".join(f"{w}: {n}" for w, n in sorted(self.windows_needed.items()))
        text = (
            f"{split}: {self.longer_than_window} of {self.clips} clip(s) ({share:.1%}) are longer than one "
            f"{self.window_s:.2f} s window; windows needed per clip {{{hist}}}"
        )
        if self.policy == "truncate":
            return text + (
                f"; long_clips=truncate: each is read through ONE window (random in training, centred otherwise), "
                f"the rest of its signing is never seen"
            )
        text += f"; up to {max_windows} window(s) encoded per clip"
        if self.beyond_max:
            handling = {
                "stretch": "stretched over the maximum number of windows (frames taken further apart)",
                "drop": f"dropped from training ({self.dropped})" if self.dropped else "stretched (evaluation splits never drop)",
            }[self.policy]
            text += f"; {self.beyond_max} need more: {handling}"
        return text


def apply_long_clip_policy(
    data_cfg: VideoDataConfig, rows: List[ManifestRow], video_paths: List[Path], train: bool, policy: Optional[str] = None
) -> Tuple[List[ManifestRow], List[Path], LongClipSummary]:
    """Count clips by windows needed; under ``drop``, leave those beyond ``max_windows`` out of training."""
    s = data_cfg.window_settings()
    policy = policy or s.long_clips
    layouts = [clip_layout(r.n_frames, r.fps, s) for r in rows]
    summary = LongClipSummary(
        clips=len(rows), window_s=s.window_seconds, windows_needed=dict(Counter(l.windows for l in layouts)),
        beyond_max=sum(l.exceeds(s) for l in layouts), policy=policy,
    )
    if policy == "drop" and train and summary.beyond_max:
        keep = [i for i, l in enumerate(layouts) if not l.exceeds(s)]
        summary.dropped = len(rows) - len(keep)
        rows, video_paths = [rows[i] for i in keep], [video_paths[i] for i in keep]
    return rows, video_paths, summary


def log_split_summary(logger_, split: str, dataset, summary: LongClipSummary, max_windows: int, seconds: float) -> None:
    logger_.info(
        f"{split}: {len(dataset)} clips, {int(dataset.sizes.sum())} encoder frames, "
        f"{int(dataset.num_windows.sum())} windows; loaded in {seconds:.2f} s"
    )
    logger_.info(summary.describe(split, max_windows))



def max_encoder_frames(data_cfg: VideoDataConfig, long_clips: Optional[str] = None) -> int:
    """The most frames the encoder reads for one clip (fairseq's max_positions; --max-tokens must allow it)."""
    one_window = (long_clips or data_cfg.long_clips) == "truncate"
    return data_cfg.num_frames * (1 if one_window else data_cfg.max_windows)


def load_video_split(task_cfg, data_cfg: VideoDataConfig, split: str, train: bool, need_text: bool, long_clips=None):
    """Rows and video paths of a split as a task trains or evaluates on them, with the long-clip summary."""
    manifest_path, rows, video_paths = load_split_rows(
        data_cfg, split, need_text=need_text, skip_invalid=task_cfg.skip_invalid_samples,
        check=str(task_cfg.check_videos), workers=task_cfg.check_videos_workers,
    )
    if train:
        rows, video_paths = training_subset(rows, video_paths, task_cfg.max_train_clips, task_cfg.seed)
    rows, video_paths, summary = apply_long_clip_policy(data_cfg, rows, video_paths, train, long_clips)
    if not rows:
        raise ManifestError(f"{manifest_path}: no clips left after long_clips=drop")
    return manifest_path, rows, video_paths, summary
