#!/usr/bin/env python
"""Data-loading throughput: the how2sign_video dataset next to plain PyAV decoding of the same frames.

    python scripts/benchmark_data.py                       # demo settings: renders a synthetic corpus first
    python scripts/benchmark_data.py --real [--clips 24] [--clip-size 256x256] [--batch 4]
    python scripts/benchmark_data.py --data DATA_ROOT --split train

Both sides decode the same clips and return the same frames (same indices,
same resize: the frames the dataset's epoch-1 plan asks for, at its decode
size); the dataset additionally crops, and the collater pads and stacks
(uint8). Prints clips/s and frames/s for each and their ratio, measured in
one run, in one process.

Settings:

  default  the demo's synthetic corpus (render_synthetic_corpus +
           prepare_how2sign + build_vocab, 64x64 clips, 36 frames at rate 3,
           crop 48): quick, what `make benchmark` runs.
  --real   the recipe's settings (README: 128 frames at sampling rate 2 on a
           25 fps grid, short side 256, crop 224) on --clips rendered clips of
           --clip-size (256x256, or 16:9 456x256 as How2Sign prepared at short
           side 256), each longer than one 10.24 s window (10.5-16 s), so
           every item holds two overlapping windows' frames. The clips are
           kept in work_dirs/benchmark_data (--work) and reused.
  --data   any prepared data root, at its own config.yaml settings.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import av  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmark_common import default_work_dir, ensure_clip, host_line, load_sibling, parse_size, time_interleaved  # noqa: E402
from ssvp_slt.corpus.manifest import PREPARED_COLUMNS, probed_fields, write_manifest  # noqa: E402
from ssvp_slt.corpus.video_io import probe_video, resized_shape  # noqa: E402

# the recipe's frame settings (README, "Prepare data")
REAL_SETTINGS = ["--target-fps", 25, "--num-frames", 128, "--sampling-rate", 2, "--resize-short-side", 256,
                 "--crop-size", 224]
DEMO_SETTINGS = ["--target-fps", 25, "--num-frames", 36, "--sampling-rate", 3, "--resize-short-side", 52,
                 "--crop-size", 48]


def plain_pyav(path, indices, short_side):
    """The straightforward way: decode in order, convert each kept frame with to_ndarray."""
    wanted = list(indices)
    out, i = [], 0
    with av.open(str(path)) as container:
        for n, frame in enumerate(container.decode(video=0)):
            if i == len(wanted):
                break
            if n < wanted[i]:
                continue
            w, h = resized_shape(frame.width, frame.height, short_side)
            rgb = frame.to_ndarray(format="rgb24", width=w, height=h)
            while i < len(wanted) and wanted[i] <= n:
                out.append(rgb)
                i += 1
    return np.stack(out)


def script(name, *args):
    """Run scripts/<name>.py as the recipe does (its own process, output hidden)."""
    subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / f"{name}.py"), *map(str, args)],
                   check=True, stdout=subprocess.DEVNULL)


# the renderer needs enough training sentences to use every word of its grammar
MIN_SYNTHETIC_TRAIN = 24


def prepare_synthetic(work: Path, n_clips: int) -> Path:
    """Render and prepare a synthetic data root with the recipe's own scripts and demo settings."""
    raw = work / "corpus" / "raw"
    n_train = max(n_clips, MIN_SYNTHETIC_TRAIN)  # only the first n_clips are timed
    script("render_synthetic_corpus", "--out", work / "corpus", "--train", n_train, "--val", 6, "--test", 6, "--seed", 7)
    data = work / "data"
    for split in ("train", "val", "test"):
        script("prepare_how2sign", "--csv", raw / f"how2sign_{split}.csv", "--clips", raw / "clips",
               "--out", data, "--split", split)
    script("build_vocab", "--data", data, "--vocab-size", 100, "--lowercase", *DEMO_SETTINGS)
    return data


def prepare_real(work: Path, n_clips: int, size, seconds=(10.5, 16.0)) -> Path:
    """A data root at the recipe's settings over rendered clips longer than one window.

    The manifest holds what preparation records (probed frames, fps, size, file size)."""
    rng = np.random.default_rng(0)
    durations = rng.uniform(*seconds, size=n_clips)
    data = work / f"real_{size[0]}x{size[1]}"
    rows = []
    for k, sec in enumerate(durations):
        path = ensure_clip(data / "clips" / f"clip{k:03d}.mp4", int(sec * 25), *size, fps=25, seed=k)
        rows.append({"id": f"clip{k:03d}", "video": f"clips/{path.name}", **probed_fields(path, probe_video(path)),
                     "tgt_text": f"the signer shows clip number {k} of {n_clips}"})
    write_manifest(data / "train.tsv", rows, columns=PREPARED_COLUMNS)
    if load_sibling("build_vocab").main(["--data", str(data), "--vocab-size", "60", "--lowercase",
                                         *map(str, REAL_SETTINGS)]) != 0:
        raise SystemExit("build_vocab failed")
    return data


def epoch_plans(ds, n: int):
    """(frame indices, decode short side) of the first n items exactly as __getitem__ draws them in this epoch."""
    plans = []
    for i in range(n):
        rng = ds._rng(i) if ds.train else None
        plan = ds.plan(i, rng)  # same order of draws as __getitem__: plan, then decode size
        plans.append((plan.source_indices, ds.decode_size(rng)))
    return plans


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data", type=Path, help="prepared data root (default: render a synthetic one)")
    source.add_argument("--real", action="store_true", help="the recipe's frame settings on rendered long clips")
    p.add_argument("--split", default="train")
    p.add_argument("--clips", type=int, help="clips to time (and to render if no --data; default 300, --real 24)")
    p.add_argument("--clip-size", default="256x256", help="--real: WxH of the rendered clips (e.g. 456x256 for 16:9)")
    p.add_argument("--batch", type=int, default=16, help="clips per collated batch")
    p.add_argument("--repeats", type=int, default=3, help="timed passes; the best is reported")
    p.add_argument("--work", type=Path, help="--real: where clips are kept (default work_dirs/benchmark_data)")
    args = p.parse_args(argv)
    n_clips = args.clips or (24 if args.real else 300)
    try:
        size = parse_size(args.clip_size)
    except ValueError as e:
        p.error(str(e))
    torch.set_num_threads(1)  # as in a DataLoader worker

    with tempfile.TemporaryDirectory() as tmp:
        if args.data:
            data = args.data
        elif args.real:
            data = prepare_real(default_work_dir("benchmark_data", args.work), n_clips, size)
        else:
            data = prepare_synthetic(Path(tmp), n_clips)
        from ssvp_plugin.tasks.how2sign_video import How2SignVideoConfig, How2SignVideoTask

        task = How2SignVideoTask.setup_task(How2SignVideoConfig(data=str(data), seed=1, train_subset=args.split))
        task.load_dataset(args.split)
        ds = task.datasets[args.split]
        ds.set_epoch(1)
        n = min(n_clips, len(ds))
        c = task.data_cfg
        plans = epoch_plans(ds, n)  # the exact frames (and decode size) the dataset uses in epoch 1
        frames = int(sum(len(idx) for idx, _ in plans))
        windows = int(sum(ds.num_windows[:n]))

        bs = args.batch
        times = time_interleaved({
            "plain": lambda: [plain_pyav(ds.video_paths[i], *plans[i]) for i in range(n)],
            "dataset": lambda: [ds[i] for i in range(n)],
            "collate": lambda: [ds.collater([ds[j] for j in range(i, min(i + bs, n))]) for i in range(0, n, bs)],
        }, args.repeats)
        t_plain, t_ds, t_collate = (min(times[k]) for k in ("plain", "dataset", "collate"))

    print(host_line())
    print(f"data: {data} split {args.split}: {n} clips, {windows} encoder windows, {frames} sampled frames "
          f"({c.num_frames} frames per window at rate {c.sampling_rate}, {c.target_fps:g} fps, short side "
          f"{c.resize_short_side}, crop {c.crop_size}); one process, one thread, best of {args.repeats} interleaved passes")
    print(f"{'':36s} {'clips/s':>9s} {'frames/s':>10s}")
    print(f"{'plain PyAV (to_ndarray)':36s} {n / t_plain:9.2f} {frames / t_plain:10.0f}")
    print(f"{'dataset __getitem__':36s} {n / t_ds:9.2f} {frames / t_ds:10.0f}")
    print(f"{f'dataset + collater (batch {bs})':36s} {n / t_collate:9.2f} {frames / t_collate:10.0f}")
    print(f"ratio dataset / plain PyAV: {t_plain / t_ds:.2f}x")


if __name__ == "__main__":
    main()
