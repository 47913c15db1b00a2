#!/usr/bin/env python
"""Render the synthetic sign-language corpus (real H.264 mp4s, How2Sign layout).

    python scripts/render_synthetic_corpus.py --out data/synthetic \
        [--train 1500] [--val 100] [--test 200] [--seed 1] [--size 64] [--fps 25] [--workers 2]

Writes <out>/raw/clips/*.mp4 and <out>/raw/how2sign_{train,val,test}.csv.
Existing clips are kept, so re-running is cheap.
"""

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ssvp_plugin.synthetic.corpus import render_corpus  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output directory (raw/ is written inside)")
    p.add_argument("--train", type=int, default=1500, help="number of train clips")
    p.add_argument("--val", type=int, default=100, help="number of val clips")
    p.add_argument("--test", type=int, default=200, help="number of test clips")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--size", type=int, default=64, help="frame height and width in pixels (even)")
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--crf", type=int, default=20, help="libx264 constant rate factor")
    p.add_argument("--workers", type=int, default=2, help="rendering processes")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        summary = render_corpus(
            args.out,
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
    except ValueError as e:
        p.error(str(e))
    print(summary)
    return summary


if __name__ == "__main__":
    main()
