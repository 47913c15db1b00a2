"""Reading one split of a data root: manifest rows plus the videos they name, checked up front."""

from pathlib import Path
from typing import List, Tuple

from ssvp_slt.corpus.data_config import VideoDataConfig
from ssvp_slt.corpus.manifest import ManifestError, ManifestRow, read_manifest
from ssvp_slt.corpus.video_checks import check_videos


def load_split_rows(
    data_cfg: VideoDataConfig, split: str, need_text: bool, skip_invalid: bool, check: bool, workers: int
) -> Tuple[Path, List[ManifestRow], List[Path]]:
    """``(manifest path, rows, absolute video paths)`` of ``<root>/<split>.tsv``.

    Bad rows and (with ``check``) unreadable videos stop with an error naming
    the file and line, or are dropped and counted with ``skip_invalid``.
    """
    manifest_path = data_cfg.resolve(f"{split}.tsv")
    rows = read_manifest(manifest_path, need_text=need_text, skip_invalid=skip_invalid).rows
    video_paths = [data_cfg.resolve(r.video) for r in rows]
    if check:
        keep = check_videos(manifest_path, rows, video_paths, skip_invalid=skip_invalid, workers=workers)
        rows = [rows[i] for i in keep]
        video_paths = [video_paths[i] for i in keep]
    if not rows:
        raise ManifestError(f"{manifest_path}: no usable rows")
    return manifest_path, rows, video_paths


def log_split_summary(logger, split: str, data_cfg: VideoDataConfig, dataset) -> None:
    span_s = (data_cfg.num_frames * data_cfg.sampling_rate) / data_cfg.target_fps
    n_long = sum(r.n_frames / r.fps > span_s for r in dataset.rows)
    logger.info(
        f"{split}: {len(dataset)} clips, {int(dataset.sizes.sum())} sampled frames, "
        f"{n_long} clip(s) longer than the {span_s:.1f} s window"
    )
