#!/usr/bin/env python
"""Score one system on one split: ``ssvp-slt-evaluate`` (ssvp_slt/evaluation/evaluate.py), runnable from a checkout.

    python scripts/evaluate.py --checkpoint checkpoints/checkpoint_best.pt --data DATA --split test
    python scripts/evaluate.py --generate-output results/test/generate-test.txt --data DATA
    python scripts/evaluate.py --predictions predictions.csv

See docs/evaluation.md for the outputs and the definition of every number.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ssvp_slt.evaluation.evaluate import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
