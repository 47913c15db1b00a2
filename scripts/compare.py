#!/usr/bin/env python
"""Compare systems on the same clips: ``ssvp-slt-compare`` (ssvp_slt/evaluation/compare.py), runnable from a checkout.

    python scripts/compare.py video=checkpoints/video/checkpoint_best.pt landmarks=landmarks.csv \\
        --data DATA --split test --title "How2Sign test" --out results/comparison

See docs/evaluation.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ssvp_slt.evaluation.compare import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
