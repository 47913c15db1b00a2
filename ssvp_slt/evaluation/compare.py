"""``ssvp-slt-compare``: N systems on the same clips in one table (console, markdown, JSON) and one figure.

    ssvp-slt-compare video=checkpoints/video/checkpoint_best.pt landmarks=landmarks_predictions.csv \\
        --data DATA --split test --title "How2Sign test" --out results/comparison

Each SYSTEM is ``[NAME=]PATH`` (the first is the baseline the others are tested against):

- ``model.pt`` (``a.pt:b.pt``: an ensemble, fairseq's separator): decoded here on ``--split`` of ``--data``
  (``NAME=PATH@SPLIT`` for another split of the same data root), timed on this run's device;
- ``eval.json``: an evaluation JSON of ``ssvp-slt-evaluate`` (its predictions CSV is read);
- ``predictions.csv`` / ``.tsv``: id, reference, hypothesis, from any model;
- ``generate-test.txt``: a fairseq-generate output (ids named by clip with ``--data``/``--split``);
- ``hyps.txt``: any other text file, one hypothesis per line in the order of ``--data``'s ``--split``
  manifest (references: its captions after the data config's normalisation).

Systems must have been scored on the same clips with the same references: otherwise the tool stops
and names the ids that differ. Statistics: :mod:`ssvp_slt.evaluation.significance`.
"""

import argparse
import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .metrics import LOWER_IS_BETTER, METRIC_KEYS, METRIC_NAMES, EvaluationError, caption_stats, meteor_status
from .predictions import SHOWN, Prediction, map_to_manifest, read_generate_output, read_predictions
from .significance import BETTER, SAME, WORSE, compare_systems, describe_test

logger = logging.getLogger(__name__)


class CompareError(EvaluationError):
    """The systems cannot be compared; the message says why and names the clips."""


@dataclass
class System:
    name: str
    kind: str
    source: str
    records: List[Prediction]
    split: Optional[str] = None
    checkpoint: Optional[object] = None
    speed: Optional[Dict] = None  # measured in this run
    reported: Optional[Dict] = None  # the evaluation JSON it came with, if any
    files: Dict[str, str] = field(default_factory=dict)


# -- loading systems --


def parse_spec(spec: str) -> Tuple[Optional[str], str, Optional[str]]:
    """``[NAME=]PATH[@SPLIT]`` -> (name, path, split)."""
    name, path = (spec.split("=", 1) if "=" in spec and not Path(spec).exists() else (None, spec))
    split = None
    if "@" in path and not Path(path).exists():
        path, split = path.rsplit("@", 1)
    return name or None, path, split


def _is_generate_output(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as f:
        head = f.read(1 << 20)
    return any(line.startswith(("T-", "D-", "H-")) and "\t" in line for line in head.split("\n"))


def _plain_hypotheses(path: Path, data, split) -> List[Prediction]:
    if not data or not split:
        raise CompareError(f"{path}: a plain hypothesis file needs --data and --split (ids and references come from the manifest)")
    from ssvp_slt.corpus.data_config import VideoDataConfig
    from ssvp_slt.corpus.manifest import read_manifest
    from ssvp_slt.corpus.text import normalize_caption

    cfg = VideoDataConfig.load(data, check_files=False)
    rows = read_manifest(Path(data) / f"{split}.tsv").rows
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines = lines[:-1]  # the final newline
    if len(lines) != len(rows):
        raise CompareError(f"{path}: {len(lines)} lines, but {Path(data) / f'{split}.tsv'} has {len(rows)} clips: one hypothesis per clip, in manifest order")
    return [
        Prediction(r.id, normalize_caption(r.tgt_text, cfg.lowercase, cfg.punctuation), h.rstrip("\r"), r.video)
        for r, h in zip(rows, lines)
    ]


def decode_in_own_process(name: str, paths: Sequence[Path], split: str, args) -> System:
    """Decode with ``ssvp-slt-evaluate`` in a child process, one system after the other on this machine: each
    system's peak memory is then its own (a process keeps memory an earlier decode freed), and none runs warm
    on another's caches. Its evaluation JSON and predictions CSV are kept beside the comparison."""
    json_path, csv_path = Path(f"{args.out}.{name}.eval.json"), Path(f"{args.out}.{name}.predictions.csv")
    cmd = [sys.executable, "-m", "ssvp_slt.evaluation.evaluate", "--checkpoint", *map(str, paths), "--data", str(args.data),
           "--split", split, "--beam", str(args.beam), "--json", str(json_path), "--csv", str(csv_path), "-q"]
    for flag, value in (("--batch-size", args.batch_size), ("--max-tokens", args.max_tokens), ("--features", args.features),
                        ("--ensemble-weights", (args.ensemble_weights or {}).get(name))):
        if value is not None:
            cmd += [flag, str(value)]
    if args.cpu:
        cmd.append("--cpu")
    if args.extra:
        cmd += ["--", *args.extra]
    logger.warning(f"{name}: decoding {split} of {args.data} with {', '.join(map(str, paths))}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    repo = str(Path(__file__).resolve().parents[2])  # importable from a checkout without installing, as scripts/compare.py
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])))
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise CompareError(f"{name}: decoding failed ({' '.join(cmd)}):\n{(res.stderr or res.stdout).strip()[-3000:]}")
    report = json.loads(json_path.read_text(encoding="utf-8"))
    return System(name, "checkpoint decoded in this run", ":".join(map(str, paths)), read_predictions(csv_path), split,
                  report["checkpoint"], speed=report["speed"], reported=report,
                  files={"predictions_csv": str(csv_path), "evaluation_json": str(json_path)})


def load_system(spec: str, args) -> System:
    name, path_str, split = parse_spec(spec)
    split = split or args.split
    paths = [Path(p) for p in path_str.split(":")]
    path = paths[0]
    name = name or (path.parent.name if path.name.startswith("checkpoint") and path.suffix == ".pt" else path.stem)
    if all(p.suffix == ".pt" for p in paths):
        if not args.data or not split:
            raise CompareError(f"{name}: decoding checkpoints needs --data and --split")
        return decode_in_own_process(name, paths, split, args)
    for p in paths:
        if not p.is_file():
            raise CompareError(f"{name}: {p}: file not found")
    if len(paths) > 1:
        raise CompareError(f"{name}: only checkpoints (.pt) can be joined with ':' (an ensemble), got {path_str}")
    if path.suffix == ".json":
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise CompareError(f"{name}: {path}: not an evaluation JSON ({e})") from e
        csv_path = (report.get("generation") or {}).get("predictions_csv")
        if not csv_path:
            raise CompareError(f"{name}: {path} names no predictions CSV (generation.predictions_csv); pass the CSV instead")
        csv_path = Path(csv_path) if Path(csv_path).is_absolute() else path.parent / csv_path
        if not csv_path.is_file() and (path.parent / Path(csv_path).name).is_file():
            csv_path = path.parent / Path(csv_path).name  # the pair was moved together
        return System(name, "evaluation JSON + predictions CSV", str(path), read_predictions(csv_path), report.get("split") or split,
                      report.get("checkpoint"), reported=report, files={"predictions_csv": str(csv_path)})
    if path.suffix.lower() in (".csv", ".tsv"):
        return System(name, "predictions file", str(path), read_predictions(path), split)
    if _is_generate_output(path):
        records = read_generate_output(path)
        if args.data and split:
            records = map_to_manifest(records, args.data, split)
        return System(name, "fairseq-generate output", str(path), records, split)
    return System(name, "hypotheses, one per line in manifest order", str(path), _plain_hypotheses(path, args.data, split), split)


def check_same_clips(systems: Sequence[System]) -> None:
    """Refuse systems scored on other clips or references than the baseline, naming the ids."""
    base = systems[0]
    base_refs = {r.id: r.reference for r in base.records}
    problems = []
    for s in systems[1:]:
        refs = {r.id: r.reference for r in s.records}
        only_base = [i for i in base_refs if i not in refs]
        only_sys = [i for i in refs if i not in base_refs]
        if only_base or only_sys:
            problems.append(
                f"{s.name} ({s.source}) was scored on other clips than {base.name} ({base.source}): "
                f"{len(only_base)} id(s) only in {base.name} {only_base[:SHOWN]}, {len(only_sys)} only in {s.name} {only_sys[:SHOWN]}"
            )
            continue
        differ = [i for i in base_refs if refs[i] != base_refs[i]]
        if differ:
            shown = "; ".join(f"{i}: {base_refs[i]!r} vs {refs[i]!r}" for i in differ[:3])
            problems.append(
                f"{s.name} ({s.source}) has other references than {base.name} for {len(differ)} clip(s) "
                f"{differ[:SHOWN]} (e.g. {shown}): systems must be scored against the same references "
                f"(same data root and normalisation)"
            )
    if problems:
        raise CompareError("cannot compare:\n  " + "\n  ".join(problems))


# -- the comparison --


def run_comparison(systems: Sequence[System], test: str = "bs", n_samples: int = 0, alpha: float = 0.05, title: str = "") -> Dict:
    if len(systems) < 2:
        raise CompareError("give at least two systems (the first is the baseline)")
    names = [s.name for s in systems]
    if len(set(names)) != len(names):
        raise CompareError(f"system names must differ, got {names} (name them NAME=PATH)")
    check_same_clips(systems)
    order = [r.id for r in systems[0].records]
    refs = [r.reference for r in systems[0].records]
    aligned = []
    for s in systems:
        by_id = {r.id: r for r in s.records}
        aligned.append((s.name, [by_id[i].hypothesis for i in order]))
    meteor = meteor_status()
    comparisons = compare_systems(aligned, refs, test=test, n_samples=n_samples, alpha=alpha, meteor=meteor)
    metrics = {}
    for key in METRIC_KEYS:
        if key in comparisons:
            c = comparisons[key]
            metrics[key] = {"signature": c.signature, "lower_is_better": key in LOWER_IS_BETTER,
                            "systems": [r.to_dict() for r in c.systems]}
        else:
            metrics[key] = {"signature": f"not computed: {meteor.reason}", "systems": None}
    speed_devices = sorted({s.speed["device"] for s in systems if s.speed})
    out_systems = []
    for s in systems:
        stats = caption_stats([r.reference for r in s.records], [r.hypothesis for r in s.records])
        entry = {"name": s.name, "kind": s.kind, "source": s.source, "split": s.split, "checkpoint": s.checkpoint,
                 "num_samples": len(s.records), "caption_stats": stats, "speed": s.speed}
        if s.speed is None and s.reported and s.reported.get("speed", {}).get("clips_per_second") is not None:
            entry["speed_reported_in_its_evaluation_json"] = {
                **s.reported["speed"], "note": "measured by the ssvp-slt-evaluate run that wrote the JSON, not in this run"}
        if s.files:
            entry["files"] = s.files
        out_systems.append(entry)
    return {
        "title": title,
        "baseline": systems[0].name,
        "num_samples": len(order),
        "systems": out_systems,
        "metrics": metrics,
        "statistics": describe_test(test, n_samples, alpha),
        "speed_note": (f"measured in this run on {', '.join(speed_devices)}, one system after the other, each in its own process"
                       if speed_devices else "no checkpoint was decoded in this run: no speed measured"),
    }


# -- tables --


def _cell(result: Dict, baseline: bool) -> str:
    text = f"{result['score']:.2f} ± {result['ci95_half_width']:.2f}"
    if baseline:
        return text
    mark = {BETTER: "better", WORSE: "worse", SAME: "n.s."}[result["verdict"]]
    p = result["p_value"]
    return f"{text} ({mark}, p={p:.3f})" if p < 0.9995 else f"{text} ({mark}, p=1)"


def markdown_table(comparison: Dict) -> str:
    keys = [k for k in METRIC_KEYS if comparison["metrics"][k]["systems"] is not None]
    names = [s["name"] for s in comparison["systems"]]
    head = ["system"] + [METRIC_NAMES[k] + (" ↓" if k in LOWER_IS_BETTER else "") for k in keys]
    lines = []
    if comparison.get("title"):
        lines += [f"**{comparison['title']}** ({comparison['num_samples']} clips)", ""]
    lines += ["| " + " | ".join(head) + " |", "|---|" + "---:|" * len(keys)]
    for i, name in enumerate(names):
        label = f"{name} (baseline)" if i == 0 else name
        cells = [_cell(comparison["metrics"][k]["systems"][i], i == 0) for k in keys]
        lines.append("| " + " | ".join([label] + cells) + " |")
    missing = [k for k in METRIC_KEYS if k not in keys]
    st = comparison["statistics"]
    lines += ["", f"score ± 95% CI half-width ({st['samples']} bootstrap resamples, seed {st['seed']}); against the "
                  f"baseline: {st['test']}, verdict at p < {st['alpha']} (n.s.: no significant difference); ↓ lower is better."]
    for k in missing:
        lines.append(f"{METRIC_NAMES[k]}: {comparison['metrics'][k]['signature']}")
    speeds = [s for s in comparison["systems"] if s["speed"]]
    if speeds:
        lines += ["", "| system | device | clips/s | real-time factor | parameters | peak memory (MB) |", "|---|---|---:|---:|---:|---:|"]
        for s in speeds:
            v = s["speed"]
            lines.append(f"| {s['name']} | {v['device']} | {v['clips_per_second']:.2f} | {v['real_time_factor']:.3f} | "
                         f"{v['parameters']:,} | {v['peak_memory_mb']:.0f} |")
        lines += ["", f"Speed {comparison['speed_note']}; real-time factor = decoding wall time / video duration "
                      f"(video reading included); peak memory: {speeds[0]['speed']['peak_memory_kind']}."]
    return "\n".join(lines) + "\n"


def console_table(comparison: Dict) -> str:
    names = [s["name"] for s in comparison["systems"]]
    width = max(12, *(len(n) + 2 for n in names))
    lines = [comparison.get("title") or "comparison", f"{comparison['num_samples']} clips; baseline: {names[0]}"]
    lines.append(f"  {'metric':<10}" + "".join(f"{n:>{width + 26}}" for n in names))
    for key in METRIC_KEYS:
        m = comparison["metrics"][key]
        if m["systems"] is None:
            lines.append(f"  {METRIC_NAMES[key]:<10}n/a: {m['signature']}")
            continue
        cells = [_cell(r, i == 0) for i, r in enumerate(m["systems"])]
        lines.append(f"  {METRIC_NAMES[key]:<10}" + "".join(f"{c:>{width + 26}}" for c in cells))
    for s in comparison["systems"]:
        if s["speed"]:
            v = s["speed"]
            lines.append(f"  speed {s['name']}: {v['clips_per_second']:.2f} clips/s, RTF {v['real_time_factor']:.3f}, "
                         f"{v['parameters']:,} parameters, peak {v['peak_memory_mb']:.0f} MB [{v['device']}]")
    return "\n".join(lines)


# -- command line --


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ssvp-slt-compare", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2] + "\n\nGeneration options of fairseq-generate for the checkpoints go after '--'.",
    )
    p.add_argument("systems", nargs="+", metavar="SYSTEM", help="[NAME=]PATH[@SPLIT]; the first is the baseline")
    p.add_argument("--data", help="data root: for checkpoints, fairseq-generate outputs and plain hypothesis files")
    p.add_argument("--split", help="split of --data (checkpoints are decoded on it)")
    p.add_argument("--features", help="feature store for feature_slt checkpoints")
    p.add_argument("--ensemble-weights", action="append", metavar="NAME=W1,W2",
                   help="weights of an ensemble system (NAME=a.pt:b.pt), e.g. ens=0.7,0.3")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--cpu", action="store_true")
    p.add_argument("--test", choices=("bs", "ar"), default="bs", help="paired bootstrap (default) or approximate randomisation")
    p.add_argument("--n-samples", type=int, default=0, help="resamples / trials (default: sacreBLEU's, 1000 / 10000)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level of the verdicts")
    p.add_argument("--title", default="", help="shown on the table and the figure (say what the data is, e.g. SYNTHETIC)")
    p.add_argument("--out", default="comparison", help="writes OUT.json, OUT.md, OUT.png (default: ./comparison.*)")
    p.add_argument("--no-figure", action="store_true")
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: List[str] = []
    if "--" in argv:  # fairseq-generate options for the checkpoints, as in ssvp-slt-evaluate
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    args = build_parser().parse_args(argv)
    args.extra = extra
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    weights = {}
    for item in args.ensemble_weights or []:
        if "=" not in item:
            print(f"error: --ensemble-weights {item!r}: expected NAME=W1,W2", file=sys.stderr)
            return 2
        k, v = item.split("=", 1)
        weights[k] = v
    args.ensemble_weights = weights
    out = Path(args.out)
    args.out = out
    try:
        systems = [load_system(spec, args) for spec in args.systems]
        comparison = run_comparison(systems, args.test, args.n_samples, args.alpha, args.title)
        out.parent.mkdir(parents=True, exist_ok=True)
        files = [Path(f"{out}.json"), Path(f"{out}.md")]
        if not args.no_figure:
            from .figure import comparison_figure

            files.append(comparison_figure(comparison, Path(f"{out}.png")))
        files[0].write_text(json.dumps(comparison, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        files[1].write_text(markdown_table(comparison), encoding="utf-8")
    except (ValueError, OSError) as e:  # the project's errors (manifest, data config, evaluation, ...) are ValueErrors
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(console_table(comparison))
    print("wrote " + ", ".join(map(str, files)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
