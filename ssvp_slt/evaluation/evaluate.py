"""``ssvp-slt-evaluate``: score one system on one split; write the evaluation JSON and the predictions CSV.

    ssvp-slt-evaluate --checkpoint ckpt.pt [ckpt2.pt ...] --data DATA --split test [--beam 5] [-- <fairseq-generate options>]
    ssvp-slt-evaluate --generate-output results/test/generate-test.txt [--data DATA --split test]
    ssvp-slt-evaluate --predictions predictions.csv            # id, reference, hypothesis (+ video): any model's output

Outputs (``--json``, ``--csv``; default beside the input): the evaluation JSON (metrics, caption
statistics, signatures/definitions, speed, generation settings), the predictions CSV (id, video,
reference, hypothesis, sentence BLEU, sentence WER) and a printed table. Metric definitions:
:mod:`ssvp_slt.evaluation.metrics`; docs/evaluation.md.
"""

import argparse
import json
import logging
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .metrics import LOWER_IS_BETTER, METRIC_KEYS, METRIC_NAMES, SENTENCE_DEFINITIONS, EvaluationError, score_corpus, sentence_scores
from .predictions import Prediction, map_to_manifest, read_generate_output, read_predictions, write_predictions_csv

logger = logging.getLogger(__name__)

SCALE = (
    "BLEU-1..4, ROUGE-L, METEOR, chrF: x100; WER, CER: percent; avg_pred_length / avg_ref_length: whitespace-separated "
    "words; exact_match_rate: percent of clips"
)


def reference_normalisation(data=None, decoded: Optional[Dict] = None) -> Dict:
    """What happened to the references before scoring, for the JSON."""
    if decoded is not None:
        return decoded
    if data is None:
        return {"lowercase": None, "punctuation": None, "source": None,
                "references": "scored exactly as given in the input; the data config that produced them is unknown "
                              "(pass --data to state it)"}
    from ssvp_slt.corpus.data_config import VideoDataConfig

    cfg = VideoDataConfig.load(data, check_files=False)
    return {"lowercase": cfg.lowercase, "punctuation": cfg.punctuation, "source": str(cfg.path),
            "references": "scored exactly as given in the input; the data config above says how the data root's "
                          "captions were normalised before training and generation"}


def build_report(
    records: Sequence[Prediction], checkpoint=None, split: Optional[str] = None, speed: Optional[Dict] = None,
    generation: Optional[Dict] = None, normalisation: Optional[Dict] = None, meteor=None,
) -> Tuple[Dict, List[Dict]]:
    """The evaluation JSON for ``records`` and the per-clip scores of the predictions CSV."""
    refs = [r.reference for r in records]
    hyps = [r.hypothesis for r in records]
    scores = score_corpus(refs, hyps, meteor)
    signatures = dict(scores["signatures"])
    signatures["scale"] = SCALE
    signatures["text"] = "hypotheses and references are scored exactly as given: no case, punctuation or whitespace change"
    signatures["normalisation"] = normalisation or reference_normalisation()
    signatures.update(SENTENCE_DEFINITIONS)
    report = {
        "checkpoint": checkpoint,
        "split": split,
        "num_samples": len(records),
        "metrics": scores["metrics"],
        "caption_stats": scores["caption_stats"],
        "signatures": signatures,
        "speed": speed or {"measured": False, "reason": "no model was run: the hypotheses were read from a file"},
        "generation": generation or {},
    }
    return report, sentence_scores(refs, hyps)


def format_table(report: Dict, title: str = "") -> str:
    m, c = report["metrics"], report["caption_stats"]
    what = report.get("checkpoint") or report["generation"].get("input", "")
    split = f" on {report['split']}" if report.get("split") else ""
    lines = [title or f"{what}{split}: {report['num_samples']} clips"]
    width = 22
    for key in METRIC_KEYS:
        value = m[key]
        note = " (lower is better)" if key in LOWER_IS_BETTER else ""
        shown = "n/a: " + report["signatures"]["meteor"] if value is None else f"{value:.2f}"
        lines.append(f"  {METRIC_NAMES[key]:<{width}}{shown}{note}")
    lines.append(f"  {'avg words hyp / ref':<{width}}{c['avg_pred_length']:.2f} / {c['avg_ref_length']:.2f}")
    lines.append(f"  {'exact match %':<{width}}{c['exact_match_rate']:.2f}")
    s = report["speed"]
    if s.get("clips_per_second") is not None:
        lines.append(
            f"  {'speed':<{width}}{s['clips_per_second']:.2f} clips/s, {s['video_seconds_per_second']:.2f} video-s/s "
            f"(RTF {s['real_time_factor']:.3f}), {s['parameters']:,} parameters, peak {s['peak_memory_mb']:.0f} MB "
            f"[{s['device']}]"
        )
    lines.append(f"  sacreBLEU: {report['signatures']['bleu_4']}")
    return "\n".join(lines)


_GENERATE_LAST = re.compile(r"^Generate (\S+) with beam=(\d+):", re.MULTILINE)


def _generate_settings(path: Path) -> Dict:
    """Split and beam from fairseq-generate's closing line, where present."""
    m = _GENERATE_LAST.search(path.read_text(encoding="utf-8", errors="replace"))
    return {"split": m.group(1), "beam": int(m.group(2))} if m else {}


def _default_paths(args) -> Tuple[Path, Path]:
    if args.checkpoint:
        first = Path(args.checkpoint[0])
        stem = first.with_name(f"{first.stem}.{args.split}")
        if len(args.checkpoint) > 1:
            stem = first.with_name(f"{first.stem}.ensemble{len(args.checkpoint)}.{args.split}")
    else:
        source = Path(args.generate_output or args.predictions)
        stem = source.with_suffix("")
    json_path = Path(args.json) if args.json else Path(f"{stem}.eval.json")
    csv_path = Path(args.csv) if args.csv else Path(f"{stem}.predictions.csv")  # never the input's own name
    return json_path, csv_path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ssvp-slt-evaluate", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Generation options of fairseq-generate go after '--', e.g. -- --lenpen 1.2 --max-len-b 60. "
               "Definitions of every number: docs/evaluation.md.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", nargs="+", help="checkpoint(s) to decode with fairseq's generator (several: an ensemble)")
    src.add_argument("--generate-output", help="a fairseq-generate output file (T-/D- lines)")
    src.add_argument("--predictions", help="a CSV (or .tsv) with id, reference, hypothesis columns (e.g. this tool's own CSV)")
    p.add_argument("--data", help="data root (config.yaml, spm.model, dict.txt, <split>.tsv); required with --checkpoint")
    p.add_argument("--split", help="split to decode (with --checkpoint), or that the file holds")
    p.add_argument("--json", help="evaluation JSON to write (default: beside the input, *.eval.json)")
    p.add_argument("--csv", help="predictions CSV to write (default: beside the input, *.predictions.csv)")
    g = p.add_argument_group("decoding (--checkpoint)")
    g.add_argument("--task", help="fairseq task (default: the checkpoint's own; several checkpoints: sign_multimodal)")
    g.add_argument("--features", help="feature store of feature_slt checkpoints (default: <data>/features)")
    g.add_argument("--ensemble-weights", help="one weight per checkpoint, e.g. 0.7,0.3 (sign_multimodal)")
    g.add_argument("--beam", type=int, default=5)
    g.add_argument("--batch-size", type=int, help="clips per batch (default: fairseq's, --max-tokens 12000)")
    g.add_argument("--max-tokens", type=int, help="encoder frames (or feature steps) per batch")
    g.add_argument("--cpu", action="store_true", help="decode on the CPU even if a GPU is present")
    p.add_argument("-q", "--quiet", action="store_true", help="no table")
    return p


def run(args, extra: Sequence[str] = ()) -> Dict:
    """Evaluate as the command line asks; returns the report (written to args.json / args.csv)."""
    checkpoint, split, speed, generation, normalisation = None, args.split, None, None, None
    if args.checkpoint:
        if not args.data or not args.split:
            raise EvaluationError("--checkpoint needs --data (the data root) and --split")
        from .decode import decode

        result = decode(
            args.checkpoint, args.data, args.split, task=args.task, beam=args.beam, batch_size=args.batch_size,
            max_tokens=args.max_tokens, features=args.features, ensemble_weights=args.ensemble_weights, cpu=args.cpu,
            extra=extra,
        )
        records, speed, generation, normalisation = result.records, result.speed, result.generation, result.normalisation
        checkpoint = args.checkpoint[0] if len(args.checkpoint) == 1 else list(args.checkpoint)
    else:
        if extra:
            raise EvaluationError(f"generation options {list(extra)} apply only to --checkpoint")
        if args.generate_output:
            path = Path(args.generate_output)
            records = read_generate_output(path)
            settings = _generate_settings(path)
            split = split or settings.get("split")
            if args.data and split:
                records = map_to_manifest(records, args.data, split)
            generation = {"source": "fairseq-generate output", "input": str(path), **{k: v for k, v in settings.items() if k != "split"}}
        else:
            path = Path(args.predictions)
            records = read_predictions(path)
            generation = {"source": "predictions file", "input": str(path)}
        normalisation = reference_normalisation(args.data)
    json_path, csv_path = _default_paths(args)
    generation["predictions_csv"] = str(csv_path.resolve())  # absolute: ssvp-slt-compare finds it from anywhere
    generation["evaluated_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    report, per_sentence = build_report(records, checkpoint, split, speed, generation, normalisation)
    write_predictions_csv(csv_path, records, per_sentence)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if not args.quiet:
        print(format_table(report))
        print(f"wrote {json_path} and {csv_path}")
    return report


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: List[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        run(args, extra)
    except (ValueError, OSError) as e:  # the project's errors (manifest, data config, ensemble, evaluation) are ValueErrors
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
