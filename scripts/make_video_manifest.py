#!/usr/bin/env python
"""Turn any folder of video clips into an unlabelled data root for MAE pretraining.

    python scripts/make_video_manifest.py --videos /data/how2sign/clips --out data/unlabelled \
        --like data/how2sign --val-clips 200

Every video under --videos (mp4, mov, avi, mkv, webm; searched recursively) is
probed; unreadable ones are listed and counted, never written. A random
--val-clips of the clips go to val.tsv (validation loss), the rest to
train.tsv. config.yaml holds the frame settings: copy them from a prepared
translation data root with --like (so pretraining sees frames exactly as
fine-tuning will) or give them as flags. Then:

    fairseq-hydra-train --config-dir configs --config-name pretrain_mae_tiny \
        task.data=$PWD/data/unlabelled common.user_dir=$PWD/ssvp_plugin checkpoint.save_dir=$PWD/ckpt/mae
"""

import argparse
import logging
import random
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ssvp_slt.corpus.data_config import (  # noqa: E402
    VIDEO_SETTINGS,
    DataConfigError,
    VideoDataConfig,
    add_video_setting_arguments,
)
from ssvp_slt.corpus.manifest import PREPARED_UNLABELLED_COLUMNS, probed_fields, write_manifest  # noqa: E402
from ssvp_slt.corpus.video_io import VideoError, probe_video  # noqa: E402

logger = logging.getLogger("make_video_manifest")
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm"}


def find_videos(folder: Path):
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())


def probe_all(paths, workers: int):
    """[(path, VideoInfo)] of the usable videos and [(path, problem)] of the others."""

    def probe(path):
        try:
            return path, probe_video(path), None
        except VideoError as e:
            return path, None, str(e)

    good, bad = [], []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for path, info, problem in pool.map(probe, paths):
            (bad if problem else good).append((path, problem if problem else info))
    return good, bad


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", required=True, type=Path, help="folder of clips (searched recursively)")
    parser.add_argument("--out", required=True, type=Path, help="data root to write (train.tsv, val.tsv, config.yaml)")
    parser.add_argument("--like", type=Path, help="copy the frame settings from this data root's config.yaml")
    parser.add_argument("--val-clips", type=int, default=0, help="clips held out for validation loss (0: no val.tsv)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=8, help="threads probing videos")
    g = parser.add_argument_group("frame settings (override --like, else VideoDataConfig defaults)")
    add_video_setting_arguments(g)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s", stream=sys.stderr)

    try:
        if not args.videos.is_dir():
            raise DataConfigError(f"{args.videos}: folder of videos not found")
        base = VideoDataConfig.load(args.like, check_files=False) if args.like else VideoDataConfig()
        values = {k: getattr(base, k) for k in VIDEO_SETTINGS}
        values.update({k: getattr(args, k) for k in VIDEO_SETTINGS if getattr(args, k) is not None})
        values["mean"], values["std"] = list(values["mean"]), list(values["std"])
        cfg = VideoDataConfig(**values)
        cfg.validate()
    except DataConfigError as e:
        logger.error(str(e))
        return 1

    paths = find_videos(args.videos)
    if not paths:
        logger.error(f"{args.videos}: no video files ({', '.join(sorted(VIDEO_SUFFIXES))}) found")
        return 1
    good, bad = probe_all(paths, args.workers)
    for path, problem in bad:
        logger.warning(f"skipped: {problem}")
    if not good:
        logger.error(f"{args.videos}: none of the {len(paths)} videos is usable")
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    seen = {}
    for path, info in good:
        rel = path.relative_to(args.videos)
        clip_id = "/".join(rel.with_suffix("").parts)
        seen[clip_id] = seen.get(clip_id, 0) + 1
        if seen[clip_id] > 1:  # a.mp4 and a.mov in one folder
            clip_id = f"{clip_id}#{seen[clip_id]}"
        rows.append({"id": clip_id, "video": str(path.resolve()), **probed_fields(path, info)})
    random.Random(args.seed).shuffle(rows)
    n_val = min(max(args.val_clips, 0), len(rows) - 1)
    splits = {"train": rows[n_val:], "val": rows[:n_val]}
    for split, split_rows in splits.items():
        if split_rows:
            write_manifest(args.out / f"{split}.tsv", sorted(split_rows, key=lambda r: r["id"]), columns=PREPARED_UNLABELLED_COLUMNS)
    cfg_path = cfg.save(args.out)
    hours = sum(r["n_frames"] / r["fps"] for r in rows) / 3600
    print(
        f"{len(rows)} clips ({hours:.2f} h) -> {args.out}: train {len(splits['train'])}, val {len(splits['val'])}; "
        f"{len(bad)} unusable video(s) skipped; frame settings in {cfg_path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
