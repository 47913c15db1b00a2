#!/usr/bin/env python
"""Feature store load time at How2Sign's size: a synthetic store of CLIPS clips, then open and read it.

    python scripts/benchmark_feature_store.py [--clips 31000] [--dim 768] [--min-steps 64] [--max-steps 400] \
        [--dtype float16] [--chunk-mb 256] [--reads 2000] [--repeats 3] [--work DIR] [--keep]

Writes the store with the extraction's own writer (SplitWriter: chunk files + index), clip lengths
drawn uniformly from MIN..MAX time steps (SSVP-SLT's features: 64 per 128-frame window, up to 6
windows), then times:

- open: what every training start, resume, rank and fairseq-generate pays: parse the index, check
  every chunk's header and size and every row's range (``FeatureStore(root).split(...)``), plus
  matching the manifest's ids to the store (what the task adds);
- reads: ``--reads`` random clips read and cast to float32, as the dataset's ``__getitem__`` does
  (first pass: what the page cache holds decides it; the figure says which).

The values are a repeated random block (the load does not depend on them). The store is deleted
afterwards unless ``--keep``. ~31,000 x 232 x 768 x 2 bytes = ~11 GB at the defaults: check the disk.
"""

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from benchmark_common import default_work_dir  # noqa: E402
from ssvp_slt.features.store import (  # noqa: E402
    DEFAULT_CHUNK_MB, FeatureStore, SplitWriter, StoreInfo, chunk_rows_for, open_store_for_writing,
)


def build(root: Path, clips: int, dim: int, lengths: np.ndarray, dtype: str, chunk_mb: float) -> float:
    info = open_store_for_writing(root, StoreInfo(dim=dim, dtype=dtype, feature_rate=6.25, source={"kind": "benchmark"}))
    block = np.random.default_rng(0).normal(size=(int(lengths.max()) + 997, dim)).astype(dtype)
    t = time.perf_counter()
    with SplitWriter(root, "train", info, "bench", chunk_rows_for(dim, dtype, chunk_mb)) as w:
        for i in range(clips):
            start = (i * 131) % 997  # a different slice of the block per clip
            w.add(f"clip{i:06d}", block[start : start + lengths[i]])
    return time.perf_counter() - t


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", type=int, default=31000)
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--min-steps", type=int, default=64)
    p.add_argument("--max-steps", type=int, default=400)
    p.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    p.add_argument("--chunk-mb", type=float, default=DEFAULT_CHUNK_MB)
    p.add_argument("--reads", type=int, default=2000, help="random clips read after opening")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--work", type=Path)
    p.add_argument("--keep", action="store_true", help="keep the store")
    args = p.parse_args(argv)

    root = default_work_dir("feature_store_benchmark", args.work) / f"store_{args.clips}x{args.dim}"
    if root.exists():
        shutil.rmtree(root)
    rng = np.random.default_rng(1)
    lengths = rng.integers(args.min_steps, args.max_steps + 1, size=args.clips)
    nbytes = int(lengths.sum()) * args.dim * np.dtype(args.dtype).itemsize
    print(f"store: {args.clips} clips, {int(lengths.sum())} time steps ({args.min_steps}-{args.max_steps} per clip), "
          f"D={args.dim}, {args.dtype}: {nbytes / 2**30:.2f} GiB in chunks of {args.chunk_mb:g} MB; at {root}")
    try:
        seconds = build(root, args.clips, args.dim, lengths, args.dtype, args.chunk_mb)
        print(f"write (SplitWriter, fsync per chunk): {seconds:.1f} s, {nbytes / 2**20 / seconds:.0f} MB/s")
        manifest_ids = [f"clip{i:06d}" for i in rng.permutation(args.clips)]
        opens, matches = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            feats = FeatureStore(root).split("train")
            opens.append(time.perf_counter() - t)
            t = time.perf_counter()
            index = [feats.index_of(i) for i in manifest_ids]
            matches.append(time.perf_counter() - t)
        assert None not in index and len(feats) == args.clips
        print(f"load (index + chunk headers) of {args.clips} clips in {len(feats.chunk_paths)} chunk files: "
              f"median {statistics.median(opens) * 1000:.0f} ms over {args.repeats} (min {min(opens) * 1000:.0f} ms); "
              f"matching {args.clips} manifest ids: {statistics.median(matches) * 1000:.0f} ms")
        picks = rng.integers(0, args.clips, size=args.reads)
        t = time.perf_counter()
        steps = 0
        for i in picks:
            steps += len(np.asarray(feats.read(int(i)), dtype=np.float32))
        seconds = time.perf_counter() - t
        print(f"reads: {args.reads} random clips ({steps} time steps) read and cast to float32 in {seconds:.2f} s: "
              f"{seconds / max(args.reads, 1) * 1000:.2f} ms per clip (just written: mostly from the page cache)")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
