#!/usr/bin/env python
"""Render the synthetic sign-language corpus (real H.264 mp4s, How2Sign layout).

    python scripts/render_synthetic_corpus.py --out data/synthetic [--layout clips|full] \
        [--train 1500] [--val 100] [--test 200] [--seed 1] [--fps 25] [--workers 2] \
        [--style simple|how2sign] [--size 64] [--frame-size 640x360] [--words-per-sentence 1 30] \
        [--sentences-per-video 3 6] [--no-broken-rows] [--keypoints | --keypoints-only] [--keypoint-noise]

--layout clips (default): one mp4 per sentence, <out>/raw/clips/<SENTENCE_NAME>.mp4 and
<out>/raw/how2sign_{train,val,test}.csv (START 0, END the clip's duration).

--layout full: How2Sign's official layout, full multi-sentence videos
<out>/raw/videos/<VIDEO_NAME>.mp4 and <out>/raw/how2sign_realigned_{train,val,test}.csv
with each sentence's START_REALIGNED/END_REALIGNED inside its video, and the
original timestamps <out>/raw/how2sign_{train,val,test}.csv (START/END). By default
a few deliberately broken rows are added (END past the video's end, missing
video, empty caption), listed in <out>/raw/broken_rows.json; --no-broken-rows
leaves them out. --train/--val/--test count the good sentences.

--style simple (default): a bright yellow hand on --size x --size frames (64),
3-6 word sentences; fast to render and to learn (make demo).

--style how2sign: a realistic-looking signer (face, hair, clothes, two arms,
hands with fingers in skin tones), off-centre in 16:9 --frame-size frames
(default 640x360), with varied signers, backgrounds, lighting and camera
noise; sentences of --words-per-sentence words (default 1 30: about 1 s to
25 s of video, ~6 s on average), clauses joined by "and", "but", "then".

--keypoints: also write OpenPose keypoints (BODY_25, face, both hands) of every clip in
How2Sign's layout, <out>/keypoints/<split>/json/<SENTENCE_NAME>/<SENTENCE_NAME>_<frame:012d>_keypoints.json,
read off the geometry the frames are drawn from. With --layout full they follow
each sentence's ORIGINAL timestamps (<out>/raw/how2sign_<split>.csv), like How2Sign's.
--keypoints-only: only the keypoints (and the original-timestamp CSVs) of a corpus
already rendered into --out with the same arguments and seed; no frame is rendered
(the CSVs on disk are checked against the plan). --keypoint-noise: a detector's
imperfections (jitter, missed hands, frames without a person), seeded; off by default.

Existing mp4s and keypoint folders are kept, so re-running is cheap.
"""

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ssvp_slt.synthetic.corpus import render_corpus  # noqa: E402
from ssvp_slt.synthetic.full_videos import SENTENCES_PER_VIDEO, render_full_videos  # noqa: E402
from ssvp_slt.synthetic.keypoint_corpus import KeypointCorpusError, keypoints_only  # noqa: E402
from ssvp_slt.synthetic.keypoint_noise import OFF, REALISTIC  # noqa: E402
from ssvp_slt.synthetic.styles import parse_frame_size  # noqa: E402


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
    p.add_argument(
        "--style",
        choices=("simple", "how2sign"),
        default="simple",
        help="simple: yellow-hand signer on square frames; how2sign: realistic signer on 16:9 frames (default: simple)",
    )
    p.add_argument("--size", type=int, default=None, help="--style simple: frame height and width in pixels (even; default 64)")
    p.add_argument(
        "--frame-size",
        default=None,
        metavar="WxH",
        help="--style how2sign: frame width x height in pixels (even; default 640x360)",
    )
    p.add_argument(
        "--words-per-sentence",
        type=int,
        nargs=2,
        metavar=("MIN", "MAX"),
        default=None,
        help="--style how2sign: sentence length range in words (default: 1 30)",
    )
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
    kp = p.add_mutually_exclusive_group()
    kp.add_argument("--keypoints", action="store_true", help="also write OpenPose keypoints (How2Sign's layout)")
    kp.add_argument(
        "--keypoints-only",
        action="store_true",
        help="only write the keypoints of a corpus already rendered into --out with the same arguments and seed",
    )
    p.add_argument(
        "--keypoint-noise",
        action="store_true",
        help="keypoints with a detector's jitter, missed hands and empty frames (seeded; default: exact)",
    )
    args = p.parse_args(argv)
    if args.keypoint_noise and not (args.keypoints or args.keypoints_only):
        p.error("--keypoint-noise needs --keypoints or --keypoints-only")
    if args.layout == "clips":
        if args.broken_rows is not None:
            p.error("--broken-rows/--no-broken-rows only apply to --layout full")
        if args.sentences_per_video is not None:
            p.error("--sentences-per-video only applies to --layout full")
    frame_size = None
    if args.style == "simple":
        if args.frame_size is not None:
            p.error("--frame-size only applies to --style how2sign (use --size for square frames)")
        if args.words_per_sentence is not None:
            p.error("--words-per-sentence only applies to --style how2sign")
    else:
        if args.size is not None:
            p.error("--size only applies to --style simple (use --frame-size WxH)")
        if args.frame_size is not None:
            try:
                frame_size = parse_frame_size(args.frame_size)
            except ValueError as e:
                p.error(str(e))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    common = dict(
        n_train=args.train,
        n_val=args.val,
        n_test=args.test,
        seed=args.seed,
        size=64 if args.size is None else args.size,
        fps=args.fps,
        workers=args.workers,
        crf=args.crf,
        progress=True,
        style=args.style,
        frame_size=frame_size,
        words_per_sentence=None if args.words_per_sentence is None else tuple(args.words_per_sentence),
    )
    noise = REALISTIC if args.keypoint_noise else OFF
    try:
        if args.keypoints_only:
            common.pop("crf")
            summary = keypoints_only(
                args.out,
                layout=args.layout,
                sentences_per_video=None if args.sentences_per_video is None else tuple(args.sentences_per_video),
                broken_rows=True if args.broken_rows is None else args.broken_rows,
                noise=noise,
                **common,
            )
        elif args.layout == "full":
            summary = render_full_videos(
                args.out,
                sentences_per_video=tuple(args.sentences_per_video or SENTENCES_PER_VIDEO),
                broken_rows=True if args.broken_rows is None else args.broken_rows,
                keypoints=args.keypoints,
                keypoint_noise=noise,
                **common,
            )
        else:
            summary = render_corpus(args.out, keypoints=args.keypoints, keypoint_noise=noise, **common)
    except (ValueError, KeypointCorpusError) as e:
        p.error(str(e))
    print(summary)
    return summary


if __name__ == "__main__":
    main()
