#!/usr/bin/env python
"""Prepare How2Sign splits: cut the full videos at the realigned timestamps, check every row, report.

    # How2Sign's full videos (recommended): one split, or all of them at once
    python scripts/prepare_how2sign.py --csv how2sign_realigned_train.csv --videos VIDEOS --out DATA [--split train]
    python scripts/prepare_how2sign.py --csv-dir CSV_DIR --videos VIDEOS --out DATA [--splits train val test]
        [--workers 2] [--short-side 256] [--fps 25] [--blur-faces] [--min-duration 0.2]
        [--signer-crop [--signer-crop-every 16] [--signer-crop-expand 1.0 3.0 1.5]]
        [--crf 18] [--preset veryfast] [--no-copy] [--lowercase] [--punctuation keep|strip] [--strict]

    # pre-cut per-sentence clips (CLIPS/<SENTENCE_NAME>.mp4; misaligned timestamps, see below)
    python scripts/prepare_how2sign.py --csv how2sign_realigned_train.csv --clips CLIPS --out DATA --split train
        [--signer-crop [--short-side 256] [--fps 25] [--blur-faces] ...]

CSVs are How2Sign's, tab-separated with the header
VIDEO_ID VIDEO_NAME SENTENCE_ID SENTENCE_NAME START_REALIGNED END_REALIGNED SENTENCE
(--clips needs only SENTENCE_NAME and SENTENCE). --csv may be repeated; the
split name is then taken from each file name (how2sign_realigned_val.csv ->
val). --csv-dir looks for how2sign_realigned_<split>.csv, else how2sign_<split>.csv.

With --videos each sentence is cut from <VIDEOS>/<VIDEO_NAME>.mp4 into
DATA/clips/<xx>/<SENTENCE_NAME>.mp4 (xx: two hex digits of a hash of
VIDEO_NAME), by stream copy when the cut starts on a keyframe and nothing is
resized, resampled or blurred, else by re-encoding (libx264, yuv420p, --crf,
--preset). Clips hold video only. --blur-faces re-encodes every clip with the
faces blurred (ssvp_slt/prep/face_blur.py, needs OpenCV) at the output size.

--signer-crop (needs OpenCV) makes each clip the square around the signer,
resized to --short-side x --short-side (default 256), instead of the whole
frame: a face detector runs on every --signer-crop-every-th frame (16), each
face box is expanded UP face heights above, DOWN below and SIDE face widths
left and right (--signer-crop-expand UP DOWN SIDE, default 1.0 3.0 1.5) and
made square, and the clip gets one fixed box, the median of those squares
(ssvp_slt/prep/signer_crop.py). A clip where no face is found gets the centred
square of the short side; such clips are counted and listed in the report. A
box partly outside the frame is shifted inside, or padded with black where it
is larger than the frame. With --blur-faces, faces are blurred on the whole
frame, then cropped. Signer-cropped clips are always re-encoded; with --clips
they are written to DATA/clips/<xx>/ and the manifest points there. Each
clip's box (source pixels) is in its record and in the report.

Written to DATA:
  <split>.tsv                      the manifest (paths relative to DATA, frame count, rate and
                                   size, file size in bytes, captions cleaned to single-spaced
                                   text, otherwise as written)
  prepare_report_<split>.json      every problem and statistics (incl. clips longer than one
                                   encoder window, under DATA/config.yaml's window settings or
                                   the defaults); a summary is printed
  config.yaml                      created or updated: --lowercase/--punctuation are recorded
                                   for build_vocab.py and the task; other settings are kept

Bad rows never stop the run: each problem is reported with its CSV file and
line, the row is dropped (or repaired, e.g. a caption split over lines, or an
END past the video's end clamped to it) and counted by reason; --strict makes
the exit status 1 when any row was dropped. What stops the run at once (exit
1): a CSV that cannot be read, a missing required column, a missing videos or
clips directory, a broken config.yaml, or a split with no usable row (its
manifest is then not written). --skip-invalid is accepted for compatibility and
changes nothing: skipping invalid rows is the default now.

Re-running is safe and resumes: a clip that exists, probes fine and was made
from the same START/END with the same settings is kept as is; clips are
written under a temporary name and renamed when complete, so an interrupted
run leaves no partial clip.
"""

import argparse
import logging
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from ssvp_slt.corpus.text import PUNCTUATION_CHOICES  # noqa: E402
from ssvp_slt.prep.cutting import CutSettings  # noqa: E402
from ssvp_slt.prep.how2sign_csv import CsvFormatError  # noqa: E402
from ssvp_slt.prep.pipeline import (  # noqa: E402
    PrepareError,
    SplitSource,
    load_data_config,
    prepare_full_videos,
    prepare_precut_clips,
    save_text_settings,
)

logger = logging.getLogger("prepare_how2sign")

DEFAULT_SPLITS = ("train", "val", "test")
CSV_DIR_PATTERNS = ("how2sign_realigned_{}.csv", "how2sign_{}.csv")
PRECUT_WARNING = (
    "this run uses pre-cut per-sentence clips. The clips distributed with How2Sign were cut at the "
    "original, misaligned timestamps; cutting the full videos at START_REALIGNED/END_REALIGNED "
    "(--videos) gives better-aligned clips and better results"
)


def split_of(csv_path: Path) -> str:
    """how2sign_realigned_val.csv -> val; train.csv -> train."""
    return csv_path.stem.rsplit("_", 1)[-1]


def find_sources(args, parser) -> list:
    if args.csv_dir is not None:
        if args.csv or args.split:
            parser.error("--csv-dir cannot be combined with --csv or --split")
        sources = []
        for split in args.splits:
            found = [args.csv_dir / p.format(split) for p in CSV_DIR_PATTERNS if (args.csv_dir / p.format(split)).is_file()]
            if found:
                sources.append(SplitSource(split, found[0]))
            else:
                logger.warning(f"{args.csv_dir}: no CSV for split {split!r} ({' or '.join(p.format(split) for p in CSV_DIR_PATTERNS)}); skipped")
        if not sources:
            raise PrepareError(f"{args.csv_dir}: no How2Sign CSV found for splits {', '.join(args.splits)}")
        return sources
    if not args.csv:
        parser.error("give --csv (repeatable) or --csv-dir")
    if args.split and len(args.csv) > 1:
        parser.error("--split names the split of a single --csv; with several, splits come from the file names")
    sources = [SplitSource(args.split or split_of(p), p) for p in args.csv]
    names = [s.split for s in sources]
    if len(set(names)) != len(names):
        raise PrepareError(f"two CSVs map to the same split ({names}); run them separately with --split")
    return sources


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    src = parser.add_argument_group("input")
    src.add_argument("--csv", type=Path, action="append", default=[], help="How2Sign sentence CSV (repeatable)")
    src.add_argument("--csv-dir", type=Path, help="folder with how2sign_realigned_<split>.csv files")
    src.add_argument("--splits", nargs="+", default=list(DEFAULT_SPLITS), help="splits looked for with --csv-dir")
    src.add_argument("--split", help="split name for a single --csv (default: from the file name)")
    mode = src.add_mutually_exclusive_group(required=True)
    mode.add_argument("--videos", type=Path, help="folder of full videos <VIDEO_NAME>.mp4: cut them")
    mode.add_argument("--clips", type=Path, help="folder of pre-cut clips <SENTENCE_NAME>.mp4: only probe them")
    parser.add_argument("--out", required=True, type=Path, help="data root to write manifests, clips and reports into")
    parser.add_argument("--workers", type=int, default=2, help="worker processes cutting videos (threads probing clips); default 2")
    cut = parser.add_argument_group("cutting (--videos)")
    cut.add_argument("--short-side", type=int, help="resize so the shorter side is this many pixels (aspect kept, even sizes)")
    cut.add_argument("--fps", type=float, help="resample clips to this frame rate")
    cut.add_argument("--blur-faces", action="store_true", help="blur faces in every frame (re-encodes every clip)")
    cut.add_argument("--min-duration", type=float, default=0.2, help="drop clips shorter than this, in seconds (default 0.2)")
    cut.add_argument("--crf", type=int, default=18, help="libx264 quality for re-encoded clips (default 18)")
    cut.add_argument("--preset", default="veryfast", help="libx264 preset (default veryfast)")
    cut.add_argument("--no-copy", action="store_true", help="always re-encode, never stream-copy")
    cut.add_argument("--chunk-size", type=int, default=32, help="most sentences of one video per worker task (default 32)")
    crop = parser.add_argument_group("signer crop (--videos, or --clips re-encoded)")
    crop.add_argument("--signer-crop", action="store_true",
                      help="crop a square around the signer (from face detections), resized to --short-side (default 256)")
    crop.add_argument("--signer-crop-every", type=int, metavar="N", help="run the face detector on every N-th frame (default 16)")
    crop.add_argument("--signer-crop-expand", type=float, nargs=3, metavar=("UP", "DOWN", "SIDE"),
                      help="box around the face: UP/DOWN face heights above/below, SIDE face widths to each side (default 1 3 1.5)")
    text = parser.add_argument_group("caption normalisation, recorded in config.yaml (default: keep the existing value)")
    text.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=None)
    text.add_argument("--punctuation", choices=PUNCTUATION_CHOICES, default=None)
    parser.add_argument("--strict", action="store_true", help="exit with status 1 if any row was dropped")
    parser.add_argument("--skip-invalid", action="store_true", help="accepted for compatibility; skipping is the default")
    parser.add_argument("--max-print", type=int, default=30, help="most problems printed per split (the JSON report has all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s", stream=sys.stderr)

    if args.clips is not None and not args.signer_crop:
        given = [f for f, v in (("--short-side", args.short_side), ("--fps", args.fps), ("--blur-faces", args.blur_faces), ("--no-copy", args.no_copy)) if v]
        if given:
            parser.error(
                f"{', '.join(given)}: only for cutting full videos (--videos), not with --clips "
                "(unless the clips are re-encoded with --signer-crop)"
            )
    if not args.signer_crop:
        given = [f for f, v in (("--signer-crop-every", args.signer_crop_every), ("--signer-crop-expand", args.signer_crop_expand)) if v is not None]
        if given:
            parser.error(f"{', '.join(given)}: only with --signer-crop")
    if args.short_side is not None and args.short_side < 2:
        parser.error("--short-side must be at least 2")
    if args.fps is not None and args.fps <= 0:
        parser.error("--fps must be positive")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    signer_crop = None
    if args.signer_crop:
        try:
            from ssvp_slt.prep.signer_crop import DEFAULT_CROP_SIZE, SignerCropSettings
        except ImportError as e:
            parser.error(f"--signer-crop: {e}")
        default = SignerCropSettings()
        up, down, side = args.signer_crop_expand or (default.up, default.down, default.side)
        every = default.detect_every if args.signer_crop_every is None else args.signer_crop_every
        try:
            signer_crop = SignerCropSettings(detect_every=every, up=up, down=down, side=side)
        except ValueError as e:
            parser.error(f"--signer-crop: {e}")
        if args.short_side is None:
            args.short_side = DEFAULT_CROP_SIZE

    t0 = time.perf_counter()
    try:
        sources = find_sources(args, parser)
        cfg = load_data_config(args.out)  # a broken config.yaml stops us before any work
        settings = CutSettings(
            short_side=args.short_side,
            fps=args.fps,
            blur_faces=args.blur_faces,
            crf=args.crf,
            preset=args.preset,
            allow_copy=not args.no_copy,
            min_duration=args.min_duration,
            threads=max(1, (os.cpu_count() or 1) // args.workers),
            signer_crop=signer_crop,
        )
        if args.clips is not None:
            logger.warning(PRECUT_WARNING)
            recode = settings if signer_crop is not None else None
            reports = prepare_precut_clips(
                sources, args.clips, args.out, workers=args.workers, recode=recode, punctuation=args.punctuation
            )
        else:
            reports = prepare_full_videos(
                sources, args.videos, args.out, settings, workers=args.workers, chunk_size=args.chunk_size,
                punctuation=args.punctuation,  # captions it would empty are dropped (None: config.yaml's)
            )
    except (CsvFormatError, PrepareError) as e:
        logger.error(str(e))
        return 1

    for r in reports:
        print(r.summary(max_problems=args.max_print, report_path=args.out / f"prepare_report_{r.split}.json"))
    if any(r.manifest for r in reports):
        # recorded for inference on uncut video, which has to crop as the clips were cut (ssvp_slt.inference)
        cfg.signer_crop = settings.content_key().get("signer_crop")
        cfg_path = save_text_settings(cfg, args.out, args.lowercase, args.punctuation)
        crop = f", signer_crop size {cfg.signer_crop['size']}" if cfg.signer_crop else ""
        print(f"config: {cfg_path} (lowercase={cfg.lowercase}, punctuation={cfg.punctuation}{crop})")
    elapsed = time.perf_counter() - t0
    n_rows = sum(r.kept + r.dropped for r in reports)
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
