#!/usr/bin/env python
"""Data-loading throughput: the how2sign_video dataset next to plain PyAV decoding of the same frames.

Both sides decode the same clips and return the same frames (same indices, same
resize); the dataset additionally crops, and the collater pads and normalises.
Prints clips/s and frames/s for each and their ratio, measured in one run.

    python scripts/benchmark_data.py                       # renders a synthetic corpus first
    python scripts/benchmark_data.py --data DATA_ROOT --split train
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import av  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ssvp_slt.corpus.frame_sampling import sample_frame_indices  # noqa: E402
from ssvp_slt.corpus.video_io import resized_shape  # noqa: E402


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


def prepare_synthetic(work: Path, n_clips: int) -> Path:
    """Render and prepare a synthetic data root with the recipe's own scripts and demo settings."""

    def script(name, *args):
        subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / f"{name}.py"), *map(str, args)],
                       check=True, stdout=subprocess.DEVNULL)

    raw = work / "corpus" / "raw"
    script("render_synthetic_corpus", "--out", work / "corpus", "--train", n_clips, "--val", 6, "--test", 6, "--seed", 7)
    data = work / "data"
    for split in ("train", "val", "test"):
        script("prepare_how2sign", "--csv", raw / f"how2sign_{split}.csv", "--clips", raw / "clips",
               "--out", data, "--split", split)
    script("build_vocab", "--data", data, "--vocab-size", 100, "--lowercase", "--target-fps", 25,
           "--num-frames", 36, "--sampling-rate", 3, "--resize-short-side", 52, "--crop-size", 48)
    return data


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, help="prepared data root (default: render a synthetic one)")
    p.add_argument("--split", default="train")
    p.add_argument("--clips", type=int, default=300, help="clips to time (and to render if no --data)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes; the best is reported")
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or prepare_synthetic(Path(tmp), args.clips)
        from ssvp_plugin.tasks.how2sign_video import How2SignVideoConfig, How2SignVideoTask

        task = How2SignVideoTask.setup_task(How2SignVideoConfig(data=str(data), seed=1, train_subset=args.split))
        task.load_dataset(args.split)
        ds = task.datasets[args.split]
        n = min(args.clips, len(ds))
        c = task.data_cfg
        # the exact frames the dataset decodes in epoch 1
        plans = []
        for i in range(n):
            r = ds.rows[i]
            plans.append(sample_frame_indices(r.n_frames, r.fps, c.target_fps, c.num_frames, c.sampling_rate,
                                              "random", ds._rng(i)))
        frames = int(sum(len(x) for x in plans))

        def time_best(fn):
            best = float("inf")
            for _ in range(args.repeats):
                t = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - t)
            return best

        t_plain = time_best(lambda: [plain_pyav(ds.video_paths[i], plans[i], c.resize_short_side) for i in range(n)])
        ds.set_epoch(1)
        t_ds = time_best(lambda: [ds[i] for i in range(n)])
        batch_size = 16
        t_collate = time_best(
            lambda: [ds.collater([ds[j] for j in range(i, min(i + batch_size, n))]) for i in range(0, n, batch_size)]
        )

    print(f"data: {data} split {args.split}: {n} clips, {frames} sampled frames "
          f"({c.num_frames} frames at rate {c.sampling_rate}, {c.target_fps} fps, short side {c.resize_short_side}, "
          f"crop {c.crop_size}); one process, best of {args.repeats}")
    print(f"{'':32s} {'clips/s':>9s} {'frames/s':>10s}")
    print(f"{'plain PyAV (to_ndarray)':32s} {n / t_plain:9.1f} {frames / t_plain:10.0f}")
    print(f"{'dataset __getitem__':32s} {n / t_ds:9.1f} {frames / t_ds:10.0f}")
    print(f"{'dataset + collater (batch 16)':32s} {n / t_collate:9.1f} {frames / t_collate:10.0f}")
    print(f"ratio dataset / plain PyAV: {t_plain / t_ds:.2f}x")


if __name__ == "__main__":
    main()
