#!/usr/bin/env python
"""Split load time: How2SignVideoTask.load_dataset on a How2Sign-sized split, per video check.

    python scripts/benchmark_load.py [--rows 31000] [--probe-rows 1000] [--clips 6] \
        [--clip-size 456x256] [--repeats 3] [--work DIR] [--profile]

Builds a data root like preparation leaves it (manifest with n_frames, fps,
width, height and file_size; spm.model, dict.txt and config.yaml from
scripts/build_vocab.py at the recipe's settings: 128 frames, rate 2, 25 fps,
256 -> 224 px, vocabulary 5000) whose ROWS rows point at real mp4 files: hard
links to a few rendered clips of How2Sign-like durations, spread over
clips/<xx>/ folders as preparation does. Captions are How2Sign-like: ~17
words on average (gamma-distributed, 1 to 80), Zipf-distributed over a 16k-word
vocabulary, capitalised, with punctuation.

Then it times load_dataset (a fresh task each time, so the sentencepiece
model load is included, as at every real start) with task.check_videos
= files (the default: one stat per clip), none, and probe (open and decode
every video, the old behaviour). Probing all rows would take minutes, so it
is timed on the first PROBE_ROWS rows and extrapolated linearly (the output
says so). A per-phase breakdown of the default load follows; --profile adds
cProfile's top functions.

The hard links share a few inodes, so stat and probe hit a warm cache: on a
cold network file system both cost more per file.
"""

import argparse
import cProfile
import dataclasses
import io
import json
import logging
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from benchmark_common import (  # noqa: E402
    default_work_dir, ensure_clip, host_line, load_sibling, parse_size, time_interleaved, time_repeats,
)
from ssvp_slt.corpus.manifest import PREPARED_COLUMNS, probed_fields, read_manifest, write_manifest  # noqa: E402
from ssvp_slt.corpus.video_io import probe_video  # noqa: E402

# How2Sign-like clip durations in seconds (median ~5 s, a long tail): the few rendered clips that
# all rows link to, so that the frame planning at load time sees realistic window counts
CLIP_SECONDS = (2.5, 4.0, 5.5, 7.0, 11.0, 19.0, 31.0, 3.2)
FPS = 25
# the recipe's frame settings (README, "Prepare data") and vocabulary size
VOCAB_ARGS = ["--vocab-size", 5000, "--model-type", "unigram", "--target-fps", 25, "--num-frames", 128,
              "--sampling-rate", 2, "--resize-short-side", 256, "--crop-size", 224]
COMMON_WORDS = (
    "the and to you a i of it is that in this your we going so are be on with can just want do be have for "
    "if what they my not one up how there get like about at all me now as out when here over right then "
    "make use little go take know these back also really very some will or them way put see show from"
).split()


# -- captions ---------------------------------------------------------------------------------------

def vocabulary(size: int, rng: np.random.Generator) -> list:
    """Common English words first (the head of the Zipf curve), then pronounceable pseudo-words."""
    consonants, vowels = "bcdfghjklmnprstvwz", "aeiou"
    words, seen = list(dict.fromkeys(COMMON_WORDS)), set(COMMON_WORDS)
    while len(words) < size:
        n_syll = int(rng.integers(1, 4))
        w = "".join(consonants[rng.integers(len(consonants))] + vowels[rng.integers(len(vowels))] for _ in range(n_syll))
        w += consonants[rng.integers(len(consonants))] if rng.random() < 0.5 else ""
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def captions(n: int, mean_words: float, vocab_size: int, seed: int) -> list:
    """``n`` How2Sign-like sentences: lengths from a gamma with the given mean (1..80 words)."""
    rng = np.random.default_rng(seed)
    words = vocabulary(vocab_size, rng)
    ranks = np.arange(1, len(words) + 1)
    p = 1.0 / ranks ** 1.05
    p /= p.sum()
    lengths = np.clip(np.round(rng.gamma(2.5, mean_words / 2.5, size=n)), 1, 80).astype(int)
    out = []
    for length in lengths:
        w = [words[i] for i in rng.choice(len(words), size=length, p=p)]
        if length > 6 and rng.random() < 0.4:
            w[int(rng.integers(2, length - 2))] += ","
        if rng.random() < 0.3:
            w[0] = "I'm" if rng.random() < 0.5 else "Don't"
        w[0] = w[0][0].upper() + w[0][1:]
        out.append(" ".join(w) + ("?" if rng.random() < 0.05 else "."))
    return out


# -- data root ---------------------------------------------------------------------------------------

def render_clips(clip_dir: Path, n_clips: int, size) -> list:
    """The few real mp4s every manifest row links to, with their probed manifest fields."""
    clips = []
    for k in range(n_clips):
        path = clip_dir / f"source_{k:02d}_{size[0]}x{size[1]}.mp4"
        ensure_clip(path, int(CLIP_SECONDS[k % len(CLIP_SECONDS)] * FPS), *size, fps=FPS, seed=k)
        info = probe_video(path)
        clips.append((path, info))
    return clips


def link_rows(data: Path, clips: list, n_rows: int, texts: list) -> list:
    """Manifest rows, each a hard link (copy if linking fails) to one of the clips under clips/<xx>/."""
    rows = []
    for i in range(n_rows):
        src, info = clips[i % len(clips)]
        name = f"vid{i // 5:05d}_{i % 5}-rgb_front"
        rel = Path("clips") / f"{i % 256:02x}" / f"{name}.mp4"
        dst = data / rel
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dst)
            except OSError:
                dst.write_bytes(src.read_bytes())
        rows.append({"id": name, "video": str(rel), **probed_fields(dst, info), "tgt_text": texts[i]})
    return rows


def build_data_root(work: Path, n_rows: int, n_clips: int, size, probe_rows: int) -> Path:
    """Data root with train.tsv (n_rows), probe.tsv (its first probe_rows rows) and the vocabulary;
    reused when a previous run built the same one."""
    data = work / f"data_{n_rows}_{n_clips}_{size[0]}x{size[1]}"
    stamp = data / "benchmark_stamp.json"
    want = {"rows": n_rows, "clips": n_clips, "size": list(size), "probe_rows": probe_rows, "version": 1}
    if stamp.is_file() and json.loads(stamp.read_text()) == want:
        return data
    data.mkdir(parents=True, exist_ok=True)
    clips = render_clips(work / "source_clips", n_clips, size)
    rows = link_rows(data, clips, n_rows, captions(n_rows, mean_words=17.0, vocab_size=16000, seed=1))
    write_manifest(data / "train.tsv", rows, columns=PREPARED_COLUMNS)
    write_manifest(data / "probe.tsv", rows[:probe_rows], columns=PREPARED_COLUMNS)
    build_vocab = load_sibling("build_vocab")
    if build_vocab.main(["--data", str(data), *map(str, VOCAB_ARGS)]) != 0:
        raise SystemExit("build_vocab failed")
    stamp.write_text(json.dumps(want))
    return data


# -- timing -------------------------------------------------------------------------------------------

def new_task(data: Path, check: str):
    """A fresh task, as every training start, resume, rank and fairseq-generate builds one."""
    from ssvp_plugin.tasks.how2sign_video import How2SignVideoConfig, How2SignVideoTask

    cfg = How2SignVideoConfig(data=str(data), seed=1, train_subset="train", check_videos=check)
    return How2SignVideoTask.setup_task(cfg)


def loader(data: Path, split: str, check: str, lengths: list):
    """A load_dataset call with a fresh task; appends the dataset's length to ``lengths``."""

    def load():
        task = new_task(data, check)
        task.load_dataset(split)
        lengths.append(len(task.datasets[split]))

    return load


def encode_line_way(task, text: str):
    """How the task encoded a caption before encode_captions: one sentencepiece call and fairseq's
    Dictionary.encode_line per caption (kept here as the reference the new path is compared with)."""
    from ssvp_slt.corpus.text import normalize_caption

    c = task.data_cfg
    pieces = task.spm.encode(normalize_caption(text, c.lowercase, c.punctuation), out_type=str)
    return task.tgt_dict.encode_line(" ".join(pieces), add_if_not_exist=False, append_eos=True).long()


def phase_breakdown(data: Path, split: str) -> list:
    """The default load's steps, timed one by one with the library functions load_dataset calls."""
    from ssvp_plugin.data.splits import apply_long_clip_policy, check_files
    from ssvp_plugin.data.video_clip_dataset import VideoClipDataset

    phases = []

    def timed(name, fn):
        t = time.perf_counter()
        out = fn()
        phases.append((name, time.perf_counter() - t))
        return out

    task = timed("task setup (config, dictionary)", lambda: new_task(data, "files"))
    c = task.data_cfg
    path = c.resolve(f"{split}.tsv")
    rows = timed("read + validate manifest", lambda: read_manifest(path, need_text=True).rows)
    paths = timed("resolve video paths", lambda: [c.resolve(r.video) for r in rows])
    timed("stat files (check_videos=files)", lambda: check_files(path, rows, paths, skip_invalid=False))
    timed("long-clip layout + summary", lambda: apply_long_clip_policy(c, rows, paths, train=True))
    timed("load sentencepiece model", lambda: task.spm)
    texts = [r.tgt_text for r in rows]
    targets = timed("encode captions (batched spm + dict lookup)", lambda: task.encode_captions(texts))
    timed("  same, per caption with encode_line (before)", lambda: [encode_line_way(task, t) for t in texts])
    timed(f"VideoClipDataset.__init__ ({len({r.n_frames for r in rows})} distinct lengths)", lambda: VideoClipDataset(
        split, rows, paths, c, targets, pad=1, eos=2, train=True, seed=1))
    # the rows link to a few clips, so they have a few distinct frame counts; real splits have many
    # more, and planning costs per distinct (frame count, fps): time that case too
    varied = how2sign_like_lengths(rows)
    timed(f"  same, How2Sign-like lengths ({len({r.n_frames for r in varied})} distinct)", lambda: VideoClipDataset(
        split, varied, paths, c, targets, pad=1, eos=2, train=True, seed=1))
    return phases


def how2sign_like_lengths(rows: list, seed: int = 0) -> list:
    """The rows with frame counts drawn like How2Sign's durations (median ~5 s, 0.3 s to 60 s at 25 fps)."""
    rng = np.random.default_rng(seed)
    seconds = np.clip(rng.lognormal(np.log(5.0), 0.6, size=len(rows)), 0.3, 60.0)
    return [dataclasses.replace(r, n_frames=int(s * FPS), fps=float(FPS)) for r, s in zip(rows, seconds)]


def profile_load(data: Path, split: str, top: int) -> str:
    task = new_task(data, "files")
    prof = cProfile.Profile()
    prof.enable()
    task.load_dataset(split)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--rows", type=int, default=31000, help="rows in the split (How2Sign train: ~31,000)")
    p.add_argument("--probe-rows", type=int, default=1000, help="rows timed with check_videos=probe (extrapolated)")
    p.add_argument("--clips", type=int, default=6, help="distinct mp4 files the rows link to")
    p.add_argument("--clip-size", default="456x256", help="WxH of those clips (How2Sign prepared at short side 256)")
    p.add_argument("--repeats", type=int, default=3, help="timed loads per setting; the best is used")
    p.add_argument("--work", type=Path, help="work directory (default work_dirs/benchmark_load; reused)")
    p.add_argument("--profile", action="store_true", help="also print cProfile's top functions of the default load")
    p.add_argument("--target-s", type=float, default=5.0, help="target seconds for the default load")
    args = p.parse_args(argv)
    try:
        size = parse_size(args.clip_size)
    except ValueError as e:
        p.error(str(e))
    probe_rows = min(args.probe_rows, args.rows)
    plugin_logger = logging.getLogger("ssvp_plugin")
    level = plugin_logger.level
    plugin_logger.setLevel(logging.WARNING)  # the per-load summary lines would drown the table
    try:
        return _run(args, size, probe_rows)
    finally:
        plugin_logger.setLevel(level)  # main() also runs in-process (tests): leave logging as it was


def _run(args, size, probe_rows) -> int:
    t = time.perf_counter()
    data = build_data_root(default_work_dir("benchmark_load", args.work), args.rows, args.clips, size, probe_rows)
    print(f"data root: {data} ({args.rows} rows -> {args.clips} clips of {size[0]}x{size[1]}; "
          f"ready in {time.perf_counter() - t:.1f} s)")
    print(host_line())

    full, sub = [], []
    times = time_interleaved({"files": loader(data, "train", "files", full), "none": loader(data, "train", "none", full),
                              "files_sub": loader(data, "probe", "files", sub)}, args.repeats)
    files, none, files_sub = times["files"], times["none"], times["files_sub"]
    probe_sub = time_repeats(loader(data, "probe", "probe", sub), 1)
    n, n_sub = full[-1], sub[-1]
    probe_est = min(probe_sub) * n / n_sub

    print(f"\nload_dataset, a fresh task each time ({args.repeats} timed loads each; probe on the subset once):")
    print(f"{'check_videos':34s} {'rows':>7s} {'best s':>8s} {'median s':>9s} {'rows/s':>8s}")
    table = [("files (default: stat + size)", n, files), ("none", n, none),
             ("probe (measured on a subset)", n_sub, probe_sub), ("files (same subset)", n_sub, files_sub)]
    for name, rows, times in table:
        print(f"{name:34s} {rows:7d} {min(times):8.2f} {statistics.median(times):9.2f} {rows / min(times):8.0f}")
    print(f"{'probe, EXTRAPOLATED x' + format(n / n_sub, '.1f'):34s} {n:7d} {probe_est:8.1f} {'':9s} {n / probe_est:8.0f}"
          f"   (linear from {n_sub} rows, not measured)")
    print(f"ratio probe/files: {probe_est / min(files):.1f}x on {n} rows (probe extrapolated), "
          f"{min(probe_sub) / min(files_sub):.1f}x measured on {n_sub} rows")
    verdict = "meets" if min(files) < args.target_s else "MISSES"
    print(f"default load of {n} rows: {min(files):.2f} s, {verdict} the {args.target_s:g} s target")

    print("\nwhere the default load's time goes (each step timed alone):")
    phases = phase_breakdown(data, "train")
    for name, sec in phases:
        print(f"  {name:44s} {sec:7.2f} s")
    print(f"  {'sum (without the indented reference lines)':44s} "
          f"{sum(s for name, s in phases if not name.startswith(' ')):7.2f} s")
    if args.profile:
        print("\ncProfile of the default load (cumulative):")
        print(profile_load(data, "train", 25))
    return 0


if __name__ == "__main__":
    sys.exit(main())
