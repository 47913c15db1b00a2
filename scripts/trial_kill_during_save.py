#!/usr/bin/env python
"""Kill -9 a training run while it saves a checkpoint, run the same command again, count what happens.

    python scripts/trial_kill_during_save.py --trials 10 --work /tmp/kill_trial [--moment save|copy] \
        [--data <data root>] [--json out.json]

Each trial trains the quick_synthetic recipe (tiny model, a checkpoint every update, saves of
~18 MB) in a fresh save_dir and kills the trainer's process group with SIGKILL at a random moment
of a save, then runs the same command again. ``--moment save``: a random delay after the save
starts (fairseq's ``checkpoint_1_<n>.pt.tmp`` appears), spread over the length of a save as
measured in an uninterrupted calibration run. ``--moment copy``: a random delay after fairseq
renamed ``checkpoint_1_<n>.pt`` into place, spread over the time a plain copy of it takes here:
the copies to ``checkpoint_last.pt`` are where fairseq tears files. Recorded per trial: whether ``checkpoint_last.pt`` was torn (size, and whether
its zip directory is whole), whether the rerun succeeded, which checkpoint it restored at how many
updates, and whether it went on to the last update.

Every trial runs three times with the same delay:

  unprotected  ``SSVP_UNPROTECTED_CHECKPOINT_SAVES=1`` for both runs: fairseq 0.12's own saving and
               restoring, the baseline (that variable exists for this measurement only);
  protected    as the plugin normally runs: atomic copies, torn files detected on start (see
               ssvp_plugin/runtime/checkpoint_files.py);
  torn, then   killed unprotected, rerun protected: a file torn before the fix (or by a full disk)
  protected    is detected on start and the newest intact checkpoint is restored.

Without ``--data`` a tiny synthetic corpus is rendered into ``--work`` first (~30 s).
"""

import argparse
import importlib.util
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent

from ssvp_plugin.runtime.checkpoint_files import UNPROTECTED_ENV, checkpoint_problem  # noqa: E402

UNPROTECTED = {UNPROTECTED_ENV: "1"}
# mode: (environment of the killed run, environment of the rerun)
MODES = {"unprotected": (UNPROTECTED, UNPROTECTED), "protected": ({}, {}), "torn, then protected": (UNPROTECTED, {})}


def _script_main(name):
    spec = importlib.util.spec_from_file_location(f"script_{name}", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def render_data(work: Path) -> Path:
    """The tests' tiny corpus: 24 training clips of 64x64 pixels, 16-frame windows at 32 px."""
    from ssvp_slt.synthetic.corpus import render_corpus

    corpus, data = work / "corpus", work / "data"
    if (data / "config.yaml").is_file():
        return data
    render_corpus(corpus, n_train=24, n_val=6, n_test=6, seed=3, size=64, workers=2)
    prepare = _script_main("prepare_how2sign")
    for split in ("train", "val", "test"):
        argv = ["--csv", corpus / "raw" / f"how2sign_{split}.csv", "--clips", corpus / "raw" / "clips", "--out", data, "--split", split]
        if prepare([str(a) for a in argv]):
            raise SystemExit(f"prepare_how2sign failed for {split}")
    video = ["--target-fps", "25", "--num-frames", "16", "--sampling-rate", "4", "--resize-short-side", "36", "--crop-size", "32"]
    if _script_main("build_vocab")(["--data", str(data), "--vocab-size", "60", "--lowercase", *video]):
        raise SystemExit("build_vocab failed")
    return data


def train_command(data: Path, save_dir: Path, max_update: int):
    return [
        str(BIN / "fairseq-hydra-train"), "--config-dir", str(REPO / "configs"), "--config-name", "quick_synthetic",
        f"task.data={data}", f"common.user_dir={REPO / 'ssvp_plugin'}", f"checkpoint.save_dir={save_dir}",
        "dataset.num_workers=0", "common.log_interval=1", f"optimization.max_update={max_update}",
        "optimizer.groups.default.lr_scheduler.warmup_updates=2", "dataset.batch_size=4",
        "dataset.disable_validation=true", "task.eval_bleu=false",
        "checkpoint.save_interval_updates=1", "checkpoint.keep_interval_updates=2",  # a save every update
        "hydra.run.dir=" + str(save_dir.parent / "hydra"),
    ]


def _env(mode_env):
    env = {k: v for k, v in os.environ.items() if k != UNPROTECTED_ENV}
    return dict(env, **mode_env, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")


def calibrate(data: Path, work: Path, max_update: int, env) -> Tuple[float, float]:
    """Seconds one save takes here (median of fairseq's 'writing took': the write and the copies),
    and seconds a plain copy of one checkpoint takes (median of 5)."""
    save_dir = work / "calibration" / "ckpt"
    shutil.rmtree(save_dir.parent, ignore_errors=True)
    res = subprocess.run(train_command(data, save_dir, max_update), env=_env(env), capture_output=True, text=True, timeout=900)
    if res.returncode:
        raise SystemExit(f"calibration run failed:\n{(res.stdout + res.stderr)[-3000:]}")
    took = [float(x) for x in re.findall(r"writing took ([0-9.]+) seconds", res.stdout + res.stderr)]
    if not took:
        raise SystemExit("calibration run logged no 'writing took' figure")
    copies = []
    for _ in range(5):
        t = time.perf_counter()
        shutil.copyfile(save_dir / "checkpoint_last.pt", save_dir / "copy.pt")  # fairseq's copy without iopath
        copies.append(time.perf_counter() - t)
    return statistics.median(took), statistics.median(copies)


def _save_started(names, save_index: int) -> bool:
    """fairseq writes the first file of a save as <name>.tmp."""
    return any((m := re.match(r"checkpoint_\d+_(\d+)\.pt\.tmp$", n)) and int(m.group(1)) >= save_index for n in names)


def _copy_started(names, save_index: int) -> bool:
    """The first file of a save is renamed into place; the copies to the other names follow."""
    return any(
        (m := re.match(r"checkpoint_\d+_(\d+)\.pt$", n)) and int(m.group(1)) >= save_index and n + ".tmp" not in names
        for n in names
    )


def kill_during_save(cmd, env, save_dir: Path, moment: str, save_index: int, delay: float, timeout: float = 600):
    """Start ``cmd``; when the save (or the copies) of update ``save_index`` start, wait ``delay`` s and
    SIGKILL it. Returns whether it was killed (False: it finished first)."""
    started = _copy_started if moment == "copy" else _save_started
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            names = set(os.listdir(save_dir)) if save_dir.is_dir() else set()
            if started(names, save_index):
                time.sleep(delay)
                if proc.poll() is not None:
                    return False
                os.killpg(proc.pid, signal.SIGKILL)  # the trainer's own session: only what this script started
                proc.wait()
                return True
            time.sleep(0.0005)
        return False
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def one_trial(data: Path, trial_dir: Path, kill_env, rerun_env, max_update: int, moment: str, save_index: int, delay: float) -> dict:
    save_dir = trial_dir / "ckpt"
    shutil.rmtree(trial_dir, ignore_errors=True)
    save_dir.mkdir(parents=True)
    cmd = train_command(data, save_dir, max_update)
    killed = kill_during_save(cmd, _env(kill_env), save_dir, moment, save_index, delay)
    last = save_dir / "checkpoint_last.pt"
    row = {"save_index": save_index, "delay_ms": round(delay * 1000, 1), "killed": killed}
    row["last_bytes"] = last.stat().st_size if last.exists() else None
    row["last_problem"] = checkpoint_problem(str(last)) if last.exists() else "absent"
    row["torn_last"] = last.exists() and row["last_problem"] is not None
    res = subprocess.run(cmd, env=_env(rerun_env), capture_output=True, text=True, timeout=900)  # the same command again
    out = res.stdout + res.stderr
    row["rerun_ok"] = res.returncode == 0
    loaded = re.findall(r"Loaded checkpoint (\S+) \(epoch \d+ @ (\d+) updates\)", out)
    row["restored"] = (Path(loaded[-1][0]).name, int(loaded[-1][1])) if loaded else None
    row["fallback_warning"] = "Restoring the newest intact checkpoint instead" in out
    finals = [int(x) for x in re.findall(r"num_updates[ =](\d+)", out)]
    row["final_updates"] = max(finals) if finals else None
    # resumed: restored a checkpoint with progress and went on to the last update
    row["resumed"] = bool(row["rerun_ok"] and row["restored"] and row["restored"][1] > 0 and row["final_updates"] == max_update)
    if not row["rerun_ok"]:
        errors = re.findall(r"^\w*(?:Error|Exception)\b.*$", out, flags=re.M)
        row["error"] = (errors[-1] if errors else out.strip().splitlines()[-1])[:160]
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--trials", type=int, default=10, help="trials per mode")
    parser.add_argument("--work", type=Path, required=True, help="scratch folder (data, save dirs)")
    parser.add_argument("--data", type=Path, help="a prepared data root (default: render a tiny synthetic one)")
    parser.add_argument("--moment", choices=["save", "copy"], default="save", help="what the random kill delay is spread over")
    parser.add_argument("--max-update", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write every trial's record here")
    args = parser.parse_args(argv)

    args.work.mkdir(parents=True, exist_ok=True)
    data = args.data or render_data(args.work)
    save_s, copy_s = calibrate(data, args.work, args.max_update, {})
    unprotected_s, _ = calibrate(data, args.work, args.max_update, UNPROTECTED)
    print(
        f"one save takes {save_s * 1000:.0f} ms here with the plugin's atomic copies, {unprotected_s * 1000:.0f} ms with "
        f"fairseq's plain ones (median 'writing took'); a plain copy of checkpoint_last.pt: {copy_s * 1000:.1f} ms"
    )
    window = 1.25 * save_s if args.moment == "save" else copy_s
    print(f"kills land 0-{window * 1000:.1f} ms after {'a save starts' if args.moment == 'save' else 'the copies start'}")
    rng = random.Random(args.seed)
    rows = {mode: [] for mode in MODES}
    for i in range(args.trials):
        # the same moment for both modes: a paired comparison
        save_index, delay = rng.randint(2, args.max_update - 1), rng.uniform(0, window)
        for mode, (kill_env, rerun_env) in MODES.items():
            row = one_trial(data, args.work / "trial", kill_env, rerun_env, args.max_update, args.moment, save_index, delay)
            rows[mode].append(row)
            print(f"trial {i + 1} {mode}: " + json.dumps(row), flush=True)
    print()
    print(f"{'mode':24} {'trials':>6} {'killed':>6} {'torn last':>9} {'rerun ok':>8} {'resumed':>7} {'fallback':>8}")
    for mode, rs in rows.items():
        n = len(rs)
        counts = [sum(r[k] for r in rs) for k in ("killed", "torn_last", "rerun_ok", "resumed", "fallback_warning")]
        print(f"{mode:24} {n:>6} " + " ".join(f"{c:>{w}}" for c, w in zip(counts, (6, 9, 8, 7, 8))))
    if args.json:
        record = {"moment": args.moment, "save_seconds": save_s, "unprotected_save_seconds": unprotected_s, "copy_seconds": copy_s}
        args.json.write_text(json.dumps({**record, "trials": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
