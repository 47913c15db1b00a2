#!/usr/bin/env python
"""Score fairseq-generate output: BLEU-1..4, chrF, WER, exact match and lengths.

    fairseq-generate DATA --user-dir ssvp_plugin --task how2sign_video --gen-subset test \\
        --path checkpoint_best.pt --beam 5 --results-path results/test
    python scripts/score_generate.py results/test/generate-test.txt [--json scores.json] [--lowercase]

References are the T-<id> lines, hypotheses the D-<id> lines (H-<id> if there
are none). The task detokenises both with the data config's sentencepiece
model; do not add ``--post-process sentencepiece``, which decodes the text a
second time and joins every word (the script warns when it sees that). See
ssvp_slt/scoring.py for the definitions. For the full report (ROUGE-L, METEOR, CER, speed, a
predictions CSV) and comparisons with confidence intervals: ssvp-slt-evaluate / ssvp-slt-compare
(docs/evaluation.md).
"""

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from ssvp_slt.scoring import ScoringError, parse_generate_output, score, warnings_for  # noqa: E402

ROWS = [
    ("BLEU-1", "bleu_1", "{:.2f}"),
    ("BLEU-2", "bleu_2", "{:.2f}"),
    ("BLEU-3", "bleu_3", "{:.2f}"),
    ("BLEU-4", "bleu_4", "{:.2f}"),
    ("chrF", "chrf", "{:.2f}"),
    ("WER %", "wer", "{:.2f}"),
    ("exact match %", "exact_match", "{:.2f}"),
    ("avg hyp words", "avg_hyp_len", "{:.2f}"),
    ("avg ref words", "avg_ref_len", "{:.2f}"),
    ("length ratio", "length_ratio", "{:.3f}"),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("generate_output", type=Path, help="file holding fairseq-generate's stdout")
    parser.add_argument("--json", type=Path, help="also write the scores to this JSON file")
    parser.add_argument("--lowercase", action="store_true", help="case-insensitive scores")
    args = parser.parse_args(argv)

    if not args.generate_output.is_file():
        print(f"error: {args.generate_output}: file not found", file=sys.stderr)
        return 1
    try:
        samples = parse_generate_output(args.generate_output)
        refs = [r for _, r, _ in samples]
        hyps = [h for _, _, h in samples]
        result = score(refs, hyps, lowercase=args.lowercase)
    except ScoringError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for w in warnings_for(refs, hyps):
        print(f"warning: {w}", file=sys.stderr)
    result = {"source": str(args.generate_output), **result}

    m = result["metrics"]
    print(f"{args.generate_output}: {result['num_samples']} sentences" + (" (lowercased)" if args.lowercase else ""))
    width = max(len(name) for name, _, _ in ROWS)
    for name, key, fmt in ROWS:
        value = m.get(key)
        print(f"  {name:<{width}}  {'n/a' if value is None else fmt.format(value)}")
    print(f"  sacrebleu: {result['sacrebleu_signature']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
