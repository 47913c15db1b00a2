#!/usr/bin/env python
"""Translation speed: ssvp-slt-translate against plain fairseq-generate on the same clips, and the
Python API's latency per clip.

    python scripts/benchmark_translate.py --checkpoint CKPT --data DATA [--subset test] [--limit N]
        [--repeats 3] [--device cpu|cuda] [--json results.json]

Per repeat, in one run (so that both meet the same load on a shared machine), each as a fresh
process and timed from start to exit, start-up and model loading included:

- ``cli``: ``ssvp-slt-translate --format jsonl`` on the clips (a list on stdin), its own defaults
  (threads: 1 for a small model on the CPU);
- ``fairseq_generate``: ``fairseq-generate --task how2sign_video`` on the same clips (a manifest
  of them), ``--max-tokens 4096``, torch's default threads;
- ``fairseq_generate_1thread``: the same with ``OMP_NUM_THREADS=1``, the CLI's thread setting.

Both decode with the same beam and length limit; the hypotheses are compared. Reported: wall
seconds, clips/s, real-time factor (seconds of video per second), and for the CLI the split of
its time into decode (probe, read, crop), encoder and beam search, summed over clips (from its
JSON timings). Then ``latency``: one SignTranslator loaded once, ``translate_one(clip)`` per clip,
the wall time of each call (a pipeline stage's latency), with its split.

The machine is recorded (cores, load average before and after): on a shared machine the
ratios of one run are what to compare, and the spread over repeats says how noisy they are.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent

from ssvp_slt.corpus.data_config import VideoDataConfig  # noqa: E402
from ssvp_slt.corpus.manifest import read_manifest  # noqa: E402


def subset_root(data: Path, subset: str, limit, work: Path):
    """A data root holding only the first ``limit`` clips of ``subset`` (absolute video paths), and the clips."""
    cfg = VideoDataConfig.load(data)
    manifest = read_manifest(data / f"{subset}.tsv")
    rows = manifest.rows[:limit] if limit else manifest.rows
    root = work / "data"
    root.mkdir()
    for name in ("config.yaml", cfg.sentencepiece_model, cfg.dictionary, "prepare_report_train.json"):
        if (data / name).is_file():  # the report gives the CLI the training clips' length (its segmentation default)
            shutil.copy(data / name, root / Path(name).name)
    lines = (data / f"{subset}.tsv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    col = header.index("video")
    out = [lines[0]]
    for line in lines[1 : len(rows) + 1]:
        fields = line.split("\t")
        fields[col] = str(cfg.resolve(fields[col]).resolve())
        out.append("\t".join(fields))
    (root / f"{subset}.tsv").write_text("\n".join(out) + "\n", encoding="utf-8")
    clips = [str(cfg.resolve(r.video).resolve()) for r in rows]
    seconds = sum(r.n_frames / r.fps for r in rows)
    return root, clips, seconds


def timed(cmd, env=None, stdin=None):
    t0 = time.perf_counter()
    res = subprocess.run([str(c) for c in cmd], env=env, input=stdin, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({res.returncode}):\n{(res.stdout + res.stderr)[-3000:]}")
    return wall, res


def rates(wall: float, clips: int, seconds: float) -> dict:
    return {
        "wall_seconds": round(wall, 3),
        "clips": clips,
        "clips_per_second": round(clips / wall, 2),
        "real_time_factor": round(seconds / wall, 1),
        "seconds_per_clip": round(wall / clips, 4),
    }


def run_cli(args, root, clips, seconds, work: Path) -> dict:
    out = work / "cli.jsonl"
    cmd = [BIN / "ssvp-slt-translate", "--checkpoint", args.checkpoint, "--data", root, "--beam", args.beam,
           "--max-len-b", args.max_len_b, "--device", args.device, "--format", "jsonl", "--output", out, "-q", "-"]
    if args.threads:
        cmd += ["--threads", args.threads]
    wall, _ = timed(cmd, env=dict(os.environ, PYTHONWARNINGS="ignore"), stdin="\n".join(clips) + "\n")
    results = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    split = {k: round(sum(r["timings"].get(k, 0.0) for r in results), 3) for k in ("decode", "segmentation", "encoder", "search")}
    return {**rates(wall, len(results), seconds), "split_seconds": split, "texts": [r["text"] for r in results],
            "failed": sum(1 for r in results if r["error"])}


def run_generate(args, root, clips, seconds, work: Path, threads=None) -> dict:
    out = work / f"gen{threads or ''}"
    cmd = [BIN / "fairseq-generate", root, "--user-dir", REPO / "ssvp_plugin", "--task", "how2sign_video",
           "--path", args.checkpoint, "--gen-subset", args.subset, "--beam", args.beam, "--max-len-b", args.max_len_b,
           "--max-tokens", 4096, "--results-path", out]
    if args.device == "cpu":
        cmd.append("--cpu")
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    wall, _ = timed(cmd, env=env)
    hyps = {}
    for line in (out / f"generate-{args.subset}.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("D-"):
            key, _, text = line.split("\t", 2)
            hyps[int(key[2:])] = text
    return {**rates(wall, len(hyps), seconds), "texts": [hyps.get(i, "") for i in range(len(clips))]}


def latency(args, root, clips) -> dict:
    import torch

    from ssvp_slt.inference.cli import choose_threads
    from ssvp_slt.translate import SignTranslator

    t0 = time.perf_counter()
    translator = SignTranslator.from_checkpoint(args.checkpoint, root, beam=int(args.beam), max_len_b=int(args.max_len_b),
                                                device=args.device)
    threads = choose_threads(args.threads, translator)
    load = time.perf_counter() - t0
    translator.translate_one(clips[0])  # the first call pays one-off costs (allocations, lazy imports)
    walls, splits, seconds = [], [], []
    for clip in clips[: args.latency_clips]:
        t = time.perf_counter()
        r = translator.translate_one(clip)
        walls.append(time.perf_counter() - t)
        splits.append(r.timings)
        seconds.append(r.duration)
    walls_sorted = sorted(walls)

    def pct(p):
        return round(walls_sorted[min(len(walls) - 1, int(round(p / 100 * (len(walls) - 1))))], 4)

    return {
        "clips": len(walls), "threads": threads, "torch_threads": torch.get_num_threads(), "load_seconds": round(load, 2),
        "mean_seconds": round(statistics.mean(walls), 4), "p50_seconds": pct(50), "p90_seconds": pct(90),
        "max_seconds": round(max(walls), 4),
        "mean_clip_seconds": round(statistics.mean(seconds), 2),
        "split_mean_seconds": {k: round(statistics.mean(s[k] for s in splits), 4) for k in splits[0]},
    }


def summarise(values):
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True, help="the data root the clips' manifest is in")
    p.add_argument("--subset", default="test")
    p.add_argument("--limit", type=int, help="first N clips only")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--max-len-b", type=int, default=127)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, help="the CLI's --threads (default: its own choice)")
    p.add_argument("--latency-clips", type=int, default=50, help="clips for the API latency (0: skip)")
    p.add_argument("--skip-generate-1thread", action="store_true")
    p.add_argument("--json", help="write the report here")
    args = p.parse_args([str(a) for a in argv] if argv is not None else None)
    args.checkpoint, args.data = str(Path(args.checkpoint).resolve()), Path(args.data).resolve()

    report = {"machine": {"cpu_count": os.cpu_count(), "load_before": [round(x, 2) for x in os.getloadavg()]},
              "device": args.device, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root, clips, seconds = subset_root(args.data, args.subset, args.limit, work)
        report.update(clips=len(clips), video_seconds=round(seconds, 1))
        for k in range(args.repeats):
            run = {"load_at_start": [round(x, 2) for x in os.getloadavg()]}
            run["cli"] = run_cli(args, root, clips, seconds, work)
            run["fairseq_generate"] = run_generate(args, root, clips, seconds, work)
            if not args.skip_generate_1thread:
                run["fairseq_generate_1thread"] = run_generate(args, root, clips, seconds, work, threads=1)
            texts = run["fairseq_generate"]["texts"]
            run["cli"]["same_hypotheses_as_fairseq_generate"] = run["cli"]["texts"] == texts
            run["cli"]["differing_hypotheses"] = sum(a != b for a, b in zip(run["cli"]["texts"], texts))
            for r in run.values():
                if isinstance(r, dict):
                    r.pop("texts", None)
            report["runs"].append(run)
            print(f"repeat {k + 1}: cli {run['cli']['wall_seconds']} s, fairseq-generate {run['fairseq_generate']['wall_seconds']} s"
                  + (f", fairseq-generate 1 thread {run['fairseq_generate_1thread']['wall_seconds']} s"
                     if "fairseq_generate_1thread" in run else ""), file=sys.stderr)
        if args.latency_clips:
            report["latency"] = latency(args, root, clips)
    runs = report["runs"]
    report["summary"] = {
        "cli_real_time_factor": summarise([r["cli"]["real_time_factor"] for r in runs]),
        "fairseq_generate_real_time_factor": summarise([r["fairseq_generate"]["real_time_factor"] for r in runs]),
        "cli_over_fairseq_generate_wall": summarise([r["cli"]["wall_seconds"] / r["fairseq_generate"]["wall_seconds"] for r in runs]),
    }
    if not args.skip_generate_1thread:
        report["summary"]["fairseq_generate_1thread_real_time_factor"] = summarise(
            [r["fairseq_generate_1thread"]["real_time_factor"] for r in runs])
        report["summary"]["cli_over_fairseq_generate_1thread_wall"] = summarise(
            [r["cli"]["wall_seconds"] / r["fairseq_generate_1thread"]["wall_seconds"] for r in runs])
    report["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
