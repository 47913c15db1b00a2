#!/usr/bin/env python
"""Prepare a keypoint data root for sign_features: OpenPose keypoints + captions -> manifests, feature store, report.

    # How2Sign: keypoints (train/val/test_2D_keypoints.tar.gz extracted into KP/<split>/) + the realigned CSVs,
    # with the vocabulary of the video data root (same spm.model, dict.txt and caption settings)
    python scripts/prepare_keypoints.py --keypoints KP --csv-dir CSV_DIR --out DATA_KP --vocab-from DATA_VIDEO

    # ids and captions from an existing data root's manifests instead of CSVs
    python scripts/prepare_keypoints.py --keypoints KP --manifests DATA_VIDEO --out DATA_KP --vocab-from DATA_VIDEO

    # one CSV; a vocabulary of its own (scripts/build_vocab.py's logic, on the train split)
    python scripts/prepare_keypoints.py --keypoints KP --csv how2sign_realigned_train.csv --out DATA_KP --vocab-size 5000 --lowercase

Keypoints: one folder per sentence clip, named SENTENCE_NAME, holding OpenPose's per-frame
<SENTENCE_NAME>_<12-digit frame>_keypoints.json files, or a SENTENCE_NAME.pose file (pose-format,
OpenPose layout). Under each --keypoints root a split's clips are looked for in
<split>/openpose_output/json/ (How2Sign's tar layout), <split>/json/, openpose_output/json/, json/,
<split>/ and the root itself, in that order. How2Sign's keypoints were computed on its pre-cut
clips (original timestamps), not on clips cut at the realigned timestamps: rows are matched by
SENTENCE_NAME only; --clips PRECUT_VIDEOS compares every clip's frame count with its pre-cut
video's (and shows whether --fps is the videos' rate).

The store (default DATA_KP/features) holds the raw 137 x (x, y, confidence) pixel values per
frame (411-d); its config.yaml records --fps, --frame-size, the layout and the normalisation
and augmentation options below, which the task sign_features applies when it reads a clip
(docs/landmarks.md). Every dropped row and every problem is in DATA_KP/prepare_report_<split>.json,
with a summary printed. Exit status 1: a split could not be prepared (no usable row, a CSV or
manifest that cannot be read) or, with --strict, any row was dropped.
"""

import argparse
import importlib.util
import logging
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from ssvp_slt.corpus.data_config import DATA_CONFIG_NAME, DataConfigError, VideoDataConfig  # noqa: E402
from ssvp_slt.corpus.text import PUNCTUATION_CHOICES  # noqa: E402
from ssvp_slt.features.store import FeatureStoreError  # noqa: E402
from ssvp_slt.keypoints.config import ANCHORS, CHANNELS, AugmentConfig, KeypointConfig, KeypointConfigError  # noqa: E402
from ssvp_slt.keypoints.prepare import (  # noqa: E402
    PrepareError,
    PrepareSettings,
    copy_vocabulary,
    prepare_split,
    rows_from_csv,
    rows_from_manifest,
)
from ssvp_slt.prep.how2sign_csv import CsvFormatError  # noqa: E402

logger = logging.getLogger("prepare_keypoints")

DEFAULT_SPLITS = ("train", "val", "test")
CSV_DIR_PATTERNS = ("how2sign_realigned_{}.csv", "how2sign_{}.csv")
DEFAULT_VOCAB_SIZE = 5000


def split_of(csv_path: Path) -> str:
    """how2sign_realigned_val.csv -> val."""
    return csv_path.stem.rsplit("_", 1)[-1]


def row_sources(args, parser):
    given = [f for f, v in (("--csv", args.csv), ("--csv-dir", args.csv_dir), ("--manifests", args.manifests)) if v]
    if len(given) != 1:
        parser.error("give exactly one of --csv (repeatable), --csv-dir or --manifests")
    if args.manifests:
        sources = []
        for split in args.splits:
            if (args.manifests / f"{split}.tsv").is_file():
                sources.append(rows_from_manifest(split, args.manifests, args.fps))
            else:
                logger.warning(f"{args.manifests / f'{split}.tsv'}: no manifest for split {split!r}; skipped")
        return sources
    if args.csv_dir:
        sources, seen = [], {}
        for split in args.splits:
            found = [args.csv_dir / p.format(split) for p in CSV_DIR_PATTERNS if (args.csv_dir / p.format(split)).is_file()]
            if found:
                sources.append(rows_from_csv(split, [found[0]], seen))
            else:
                logger.warning(f"{args.csv_dir}: no CSV for split {split!r} ({' or '.join(p.format(split) for p in CSV_DIR_PATTERNS)}); skipped")
        if not sources:
            raise PrepareError(f"{args.csv_dir}: no How2Sign CSV found for splits {', '.join(args.splits)}")
        return sources
    if args.split and len(args.csv) > 1:
        parser.error("--split names the split of a single --csv; with several, splits come from the file names")
    names = [args.split or split_of(p) for p in args.csv]
    if len(set(names)) != len(names):
        raise PrepareError(f"two CSVs map to the same split ({names}); run them separately with --split")
    seen = {}
    return [rows_from_csv(name, [p], seen) for name, p in zip(names, args.csv)]


def keypoint_config(args) -> KeypointConfig:
    augment = AugmentConfig(0.0, 0.0, 0.0, 0.0, 0.0) if args.no_augment else AugmentConfig(
        rotate_deg=args.rotate_deg, scale=args.scale, shift=args.shift, time_stretch=args.time_stretch, drop_frames=args.drop_frames)
    return KeypointConfig(
        fps=args.fps, frame_width=args.frame_size[0], frame_height=args.frame_size[1], stored_dtype=args.store_dtype,
        anchor=args.anchor, min_confidence=args.min_confidence, channels=args.channels, drop_face=args.drop_face,
        drop_legs=args.drop_legs, fallback_scale=args.fallback_scale, augment=augment,
    ).validate("command line")


def vocabulary(args) -> str:
    """Copy the video root's vocabulary, keep an existing one, or build one on the prepared train split."""
    if args.vocab_from:
        path = copy_vocabulary(args.vocab_from, args.out)
        return f"vocabulary: spm.model and dict.txt copied from {args.vocab_from} (caption settings too) -> {path}"
    existing = args.out / DATA_CONFIG_NAME
    if args.vocab_size is None and existing.is_file():
        try:
            VideoDataConfig.load(args.out)
            return f"vocabulary: keeping the existing one of {existing} (--vocab-size N or --vocab-from DIR to replace it)"
        except DataConfigError:
            pass
    if not (args.out / f"{args.train_split}.tsv").is_file():
        logger.warning(f"{args.out}: no {args.train_split}.tsv to build a vocabulary on and no --vocab-from: prepare the "
                       f"{args.train_split} split (or pass --vocab-from) before training")
        return "vocabulary: none yet"
    spec = importlib.util.spec_from_file_location("build_vocab", REPO_ROOT / "scripts" / "build_vocab.py")
    build_vocab = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_vocab)
    argv = ["--data", str(args.out), "--train-split", args.train_split, "--vocab-size", str(args.vocab_size or DEFAULT_VOCAB_SIZE),
            "--model-type", args.model_type]
    if args.lowercase is not None:
        argv.append("--lowercase" if args.lowercase else "--no-lowercase")
    if args.punctuation is not None:
        argv += ["--punctuation", args.punctuation]
    if build_vocab.main(argv) != 0:
        raise PrepareError(f"{args.out}: building the vocabulary failed (see the errors above)")
    return f"vocabulary: built on {args.out / (args.train_split + '.tsv')}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    src = parser.add_argument_group("input")
    src.add_argument("--keypoints", type=Path, action="append", required=True, help="keypoint root (repeatable; see above)")
    src.add_argument("--csv", type=Path, action="append", default=[], help="How2Sign sentence CSV (repeatable)")
    src.add_argument("--csv-dir", type=Path, help="folder with how2sign_realigned_<split>.csv (or how2sign_<split>.csv) files")
    src.add_argument("--manifests", type=Path, help="a data root whose <split>.tsv manifests give the ids and captions")
    src.add_argument("--splits", nargs="+", default=list(DEFAULT_SPLITS), help="splits looked for with --csv-dir / --manifests")
    src.add_argument("--split", help="split name for a single --csv (default: from the file name)")
    src.add_argument("--clips", type=Path, help="How2Sign's pre-cut videos <SENTENCE_NAME>.mp4: compare each clip's frame count")
    parser.add_argument("--out", required=True, type=Path, help="data root to write manifests, reports and config.yaml into")
    parser.add_argument("--features", type=Path, help="feature store directory (default: OUT/features, where the task looks)")
    kp = parser.add_argument_group("keypoints")
    kp.add_argument("--fps", type=float, default=24.0, help="frame rate of the keypoint sequences (default 24, as How2Sign loaders read them)")
    kp.add_argument("--frame-size", type=int, nargs=2, default=[1280, 720], metavar=("W", "H"), help="source video size in pixels (default 1280 720)")
    kp.add_argument("--store-dtype", choices=["float16", "float32"], default="float16",
                    help="float16 (default) keeps pixels to within 0.5 px at How2Sign's sizes; float32 exactly")
    kp.add_argument("--max-missing", type=float, default=0.5, help="drop clips missing more than this share of their frames (default 0.5)")
    kp.add_argument("--frame-tolerance", type=int, default=2, help="report clips whose frame count differs from the video's by more (default 2)")
    kp.add_argument("--workers", type=int, default=1, help="processes reading keypoint folders (default 1)")
    norm = parser.add_argument_group("normalisation, recorded in the store's config.yaml and applied when clips are read")
    d = KeypointConfig()
    norm.add_argument("--anchor", choices=ANCHORS, default=d.anchor, help="clip: mean shoulder midpoint and width of the clip; frame: centre per frame")
    norm.add_argument("--min-confidence", type=float, default=d.min_confidence, help="mask points with confidence <= this (default 0)")
    norm.add_argument("--channels", choices=CHANNELS, default=d.channels, help="per point x, y + visibility flag (xyv) or + confidence (xyc)")
    norm.add_argument("--drop-face", action="store_true", help="leave out the 70 face points")
    norm.add_argument("--drop-legs", action="store_true", help="leave out knees, ankles and feet")
    norm.add_argument("--fallback-scale", type=float, default=d.fallback_scale, help="scale (x frame height) for clips without shoulders")
    aug = parser.add_argument_group("training augmentation (training only, per epoch and clip)")
    a = AugmentConfig()
    aug.add_argument("--rotate-deg", type=float, default=a.rotate_deg)
    aug.add_argument("--scale", type=float, default=a.scale)
    aug.add_argument("--shift", type=float, default=a.shift, help="in shoulder widths")
    aug.add_argument("--time-stretch", type=float, default=a.time_stretch)
    aug.add_argument("--drop-frames", type=float, default=a.drop_frames)
    aug.add_argument("--no-augment", action="store_true", help="no augmentation")
    voc = parser.add_argument_group("vocabulary")
    voc.add_argument("--vocab-from", type=Path, help="data root whose spm.model, dict.txt and caption settings to use (the video model's)")
    voc.add_argument("--vocab-size", type=int, help=f"build a vocabulary on the train split (default {DEFAULT_VOCAB_SIZE} when there is none yet)")
    voc.add_argument("--model-type", choices=["unigram", "bpe"], default="unigram")
    voc.add_argument("--train-split", default="train")
    voc.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=None)
    voc.add_argument("--punctuation", choices=PUNCTUATION_CHOICES, default=None)
    parser.add_argument("--overwrite", action="store_true", help="replace splits the store holds already")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 if any row was dropped")
    parser.add_argument("--max-print", type=int, default=30, help="most problems printed per split (the JSON report has all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s", stream=sys.stderr)
    if args.vocab_from and (args.vocab_size is not None or args.lowercase is not None or args.punctuation is not None):
        parser.error("--vocab-from takes the vocabulary and caption settings from that data root: drop --vocab-size/--lowercase/--punctuation")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if not 0 <= args.max_missing <= 1:
        parser.error("--max-missing must be in [0, 1]")
    for root in args.keypoints:
        if not root.is_dir():
            parser.error(f"--keypoints {root}: not a directory")
    if args.clips is not None and not args.clips.is_dir():
        parser.error(f"--clips {args.clips}: not a directory")

    t0 = time.perf_counter()
    try:
        cfg = keypoint_config(args)
        sources = row_sources(args, parser)
        if not sources:
            raise PrepareError("no split to prepare")
        settings = PrepareSettings(keypoint_roots=args.keypoints, out=args.out, features=args.features, cfg=cfg,
                                   max_missing=args.max_missing, frame_tolerance=args.frame_tolerance, clips_dir=args.clips,
                                   workers=args.workers, overwrite=args.overwrite)
        args.out.mkdir(parents=True, exist_ok=True)
        reports = []
        for source in sources:
            report = prepare_split(source, settings)
            reports.append(report)
            print(report.summary(args.max_print, args.out / f"prepare_report_{report.split}.json"))
        print(vocabulary(args))
    except (CsvFormatError, PrepareError, FeatureStoreError, KeypointConfigError) as e:
        logger.error(str(e))
        return 1
    n_rows = sum(r.rows_read for r in reports)
    elapsed = time.perf_counter() - t0
    print(f"store: {settings.store} ({cfg.fps:g} fps, {cfg.frame_width}x{cfg.frame_height}, raw 411-d {cfg.stored_dtype})")
    print(f"done: {n_rows} rows in {elapsed:.1f} s ({n_rows / max(elapsed, 1e-9):.1f} rows/s)")
    failed = [r for r in reports if r.error]
    for r in failed:
        logger.error(f"{r.split}: {r.error}")
    dropped = sum(r.dropped for r in reports)
    if args.strict and dropped:
        logger.error(f"--strict: {dropped} row(s) dropped (see the problems above)")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
