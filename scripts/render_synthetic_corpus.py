#!/usr/bin/env python
"""Render the synthetic sign-language corpus (real H.264 mp4s, How2Sign layout).

    python scripts/render_synthetic_corpus.py --out data/synthetic [--layout clips|full] \
        [--train 1500] [--val 100] [--test 200] [--seed 1] [--size 64] [--fps 25] [--workers 2] \
        [--sentences-per-video 3 6] [--no-broken-rows]

--layout clips (default): one mp4 per sentence, <out>/raw/clips/<SENTENCE_NAME>.mp4 and
<out>/raw/how2sign_{train,val,test}.csv (START 0, END the clip's duration).

--layout full: How2Sign's official layout, full multi-sentence videos
<out>/raw/videos/<VIDEO_NAME>.mp4 and <out>/raw/how2sign_realigned_{train,val,test}.csv
with each sentence's START_REALIGNED/END_REALIGNED inside its video. By default
a few deliberately broken rows are added (END past the video's end, missing
video, empty caption), listed in <out>/raw/broken_rows.json; --no-broken-rows
leaves them out. --train/--val/--test count the good sentences.

Existing mp4s are kept, so re-running is cheap.
"""

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ssvp_slt.synthetic.corpus import render_corpus  # noqa: E402
from ssvp_slt.synthetic.full_videos import SENTENCES_PER_VIDEO, render_full_videos  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, help="output directory (raw/ is written inside)")
    p.add_argument(
        "--layout",
        choices=("clips", "full"),
        default="clips",
        help="clips: one mp4 per sentence; full: How2Sign's full videos + realigned CSVs (default: clips)",
    )
    p.add_argument("--train", type=int, default=1500, help="number of train sentences")
    p.add_argument("--val", type=int, default=100, help="number of val sentences")
    p.add_argument("--test", type=int, default=200, help="number of test sentences")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--size", type=int, default=64, help="frame height and width in pixels (even)")
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--crf", type=int, default=20, help="libx264 constant rate factor")
    p.add_argument("--workers", type=int, default=2, help="rendering processes")
    p.add_argument(
        "--sentences-per-video",
        type=int,
        nargs=2,
        metavar=("MIN", "MAX"),
        default=None,
        help=f"--layout full: sentences per video (default: {SENTENCES_PER_VIDEO[0]} {SENTENCES_PER_VIDEO[1]})",
    )
    p.add_argument(
        "--broken-rows",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="--layout full: add deliberately broken rows (default: on)",
    )
    args = p.parse_args(argv)
    if args.layout == "clips":
        if args.broken_rows is not None:
            p.error("--broken-rows/--no-broken-rows only apply to --layout full")
        if args.sentences_per_video is not None:
            p.error("--sentences-per-video only applies to --layout full")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    common = dict(
        n_train=args.train,
        n_val=args.val,
        n_test=args.test,
        seed=args.seed,
        size=args.size,
        fps=args.fps,
        workers=args.workers,
        crf=args.crf,
        progress=True,
    )
    try:
        if args.layout == "full":
            summary = render_full_videos(
                args.out,
                sentences_per_video=tuple(args.sentences_per_video or SENTENCES_PER_VIDEO),
                broken_rows=True if args.broken_rows is None else args.broken_rows,
                **common,
            )
        else:
            summary = render_corpus(args.out, **common)
    except ValueError as e:
        p.error(str(e))
    print(summary)
    return summary


if __name__ == "__main__":
    main()
