#!/usr/bin/env python
"""Collate and transfer cost per clip: float32 batches normalised in the loader (before) vs uint8 batches
normalised on the model's device (after).

    python scripts/benchmark_collate.py [--frames 128] [--crop 224] [--batch 8] [--batches 6] \
        [--workers 2] [--repeats 3] [--device cpu|cuda]

BEFORE: the collater padded the clips and normalised them on the loader's
CPU to float32 (B, C, T, H, W) (``collate_before`` below re-implements it:
that code no longer exists). AFTER: ``VideoClipDataset.collater`` stacks
uint8 (B, T, H, W, C) and the model's ``FrameNormalizer`` normalises on its
device. Measured, per clip:

  (a) the collate itself, one thread (as in a DataLoader worker);
  (b) a real torch DataLoader with --workers worker processes over
      pre-decoded items (decoding excluded), timed per batch in the main
      process (the batches cross the process boundary in shared memory);
  (c) the bytes of the batch's frames per clip;
  (d) the normalisation where it now runs: FrameNormalizer on CPU here, and
      on CUDA (host-to-device copy included, both ways) when there is one.

Clip lengths are drawn from [3/4, 1] x frames, so padding is exercised.
"""

import argparse
import functools
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from benchmark_common import host_line, ratio, time_interleaved, time_repeats  # noqa: E402
from ssvp_plugin.data.video_clip_dataset import VideoClipDataset  # noqa: E402
from ssvp_plugin.models.frame_input import FrameNormalizer  # noqa: E402
from ssvp_slt.corpus.data_config import VideoDataConfig  # noqa: E402
from ssvp_slt.corpus.manifest import ManifestRow  # noqa: E402

MEAN, STD = [0.45, 0.45, 0.45], [0.225, 0.225, 0.225]
PAD, EOS = 1, 2


def make_dataset(frames: int, crop: int, n_items: int, seed: int = 0) -> VideoClipDataset:
    """A VideoClipDataset whose rows fit one window each (only its collater is used: nothing is decoded)."""
    rng = np.random.default_rng(seed)
    cfg = VideoDataConfig(num_frames=frames, sampling_rate=2, target_fps=25.0,
                          resize_short_side=max(crop, 8), crop_size=crop, mean=MEAN, std=STD)
    lengths = rng.integers(max(1, frames * 3 // 4), frames + 1, size=n_items)
    # a clip of 2 * length frames at 25 fps gives `length` sampled frames at rate 2
    rows = [ManifestRow(id=f"c{i}", video=f"c{i}.mp4", n_frames=int(2 * n), fps=25.0, tgt_text="x", line=i + 2)
            for i, n in enumerate(lengths)]
    targets = [torch.randint(4, 1000, (int(rng.integers(10, 30)),)) for _ in rows]
    for t in targets:
        t[-1] = EOS
    return VideoClipDataset("bench", rows, [Path(r.video) for r in rows], cfg, targets, pad=PAD, eos=EOS, train=False)


def decoded_items(ds: VideoClipDataset, crop: int, seed: int = 0) -> list:
    """What __getitem__ returns for each row, with random pixels instead of decoded ones."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for i in range(len(ds)):
        plan = ds.plan(i, rng=None)
        n = len(plan.source_indices)
        items.append({"id": i, "source": torch.randint(0, 256, (n, crop, crop, 3), dtype=torch.uint8, generator=g),
                      "starts": torch.from_numpy(plan.starts), "target": ds.targets[i]})
    return items


def normalise_before(frames: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
    """The old loader-side normalisation: uint8 (B, T, H, W, C) -> float32 (B, C, T, H, W), padded frames 0."""
    mean = torch.tensor(MEAN).view(1, 3, 1, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1, 1)
    x = frames.permute(0, 4, 1, 2, 3).float().div(255).sub(mean).div(std)
    return x.masked_fill(padding_mask[:, None, :, None, None], 0.0)


def collate_before(ds: VideoClipDataset, samples: list) -> dict:
    """BEFORE: pad and stack (as now), then normalise to float32 on the loader's CPU."""
    batch = ds.collater(samples)
    net = batch["net_input"]
    net["source"] = normalise_before(net["source"], net["padding_mask"])
    return batch


def collate_after(ds: VideoClipDataset, samples: list) -> dict:
    """AFTER: the collater as it is, uint8 out."""
    return ds.collater(samples)


class PreDecoded(Dataset):
    """Items decoded beforehand: the DataLoader measurement then sees only collate + process transfer."""

    def __init__(self, items: list, length: int):
        self.items, self.length = items, length

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        return self.items[i % len(self.items)]


def loader_seconds_per_batch(ds, items, collate, batch: int, batches: int, workers: int) -> list:
    """Seconds between consecutive batches arriving in the main process (the first, start-up, dropped)."""
    loader = DataLoader(PreDecoded(items, batch * (batches + 1)), batch_size=batch, num_workers=workers,
                        collate_fn=functools.partial(collate, ds), persistent_workers=False)
    times, last = [], None
    for b in loader:
        now = time.perf_counter()
        assert b["net_input"]["source"].shape[0] == batch
        if last is not None:
            times.append(now - last)
        last = now
        del b
    return times


def normalise_after_seconds(batch: dict, device: str, repeats: int, dtype: torch.dtype) -> list:
    """FrameNormalizer on ``device`` in ``dtype`` (the model's); on CUDA the host-to-device copy is included."""
    norm = FrameNormalizer(MEAN, STD).to(device=device, dtype=dtype)
    src, mask = batch["net_input"]["source"], batch["net_input"]["padding_mask"]
    if device == "cuda":
        src, mask = src.pin_memory(), mask.pin_memory()

    def run():
        out = norm(src.to(device, non_blocking=True), mask.to(device, non_blocking=True))
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    return time_repeats(run, repeats, warmup=1)


def transfer_before_seconds(batch: dict, repeats: int) -> list:
    """BEFORE on CUDA: the float32 batch's host-to-device copy (its normalisation was in the loader)."""
    src = batch["net_input"]["source"].pin_memory()

    def run():
        src.to("cuda", non_blocking=True)
        torch.cuda.synchronize()

    return time_repeats(run, repeats, warmup=1)


def ms_per_clip(times: list, clips: int) -> float:
    return min(times) / clips * 1000


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--frames", type=int, default=128, help="frames per clip (one encoder window)")
    p.add_argument("--crop", type=int, default=224, help="crop size in pixels")
    p.add_argument("--batch", type=int, default=8, help="clips per batch")
    p.add_argument("--batches", type=int, default=6, help="timed batches through the DataLoader")
    p.add_argument("--workers", type=int, default=2, help="DataLoader worker processes (0: skip (b))")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats of (a) and (d); the best is used")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, help="torch CPU threads for (d) (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available")

    ds = make_dataset(args.frames, args.crop, n_items=args.batch)
    items = decoded_items(ds, args.crop)
    b = args.batch
    print(host_line())
    print(f"batch: {b} clips of {min(len(i['source']) for i in items)}-{args.frames} frames x {args.crop}x{args.crop} "
          f"px (padded to the longest)")

    # (a) collate alone, one thread as in a DataLoader worker
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    a = time_interleaved({"before": lambda: collate_before(ds, items), "after": lambda: collate_after(ds, items)},
                         args.repeats, warmup=1)
    a_before, a_after = a["before"], a["after"]
    torch.set_num_threads(threads)
    before_batch, after_batch = collate_before(ds, items), collate_after(ds, items)

    # (c) bytes per clip
    bytes_before = before_batch["net_input"]["source"].nbytes / b
    bytes_after = after_batch["net_input"]["source"].nbytes / b

    print(f"\n{'per clip':48s} {'before':>10s} {'after':>10s} {'before/after':>13s}")
    ab, aa = ms_per_clip(a_before, b), ms_per_clip(a_after, b)
    print(f"{'(a) collate, 1 thread (ms)':48s} {ab:10.2f} {aa:10.2f} {ratio(ab, aa):>13s}")

    # (b) through a DataLoader with worker processes
    if args.workers > 0:
        b_before = loader_seconds_per_batch(ds, items, collate_before, b, args.batches, args.workers)
        b_after = loader_seconds_per_batch(ds, items, collate_after, b, args.batches, args.workers)
        bb, ba = statistics.median(b_before) / b * 1000, statistics.median(b_after) / b * 1000
        label = f"(b) DataLoader, {args.workers} worker(s), median (ms)"
        print(f"{label:48s} {bb:10.2f} {ba:10.2f} {ratio(bb, ba):>13s}")
    print(f"{'(c) frame bytes (MB)':48s} {bytes_before / 1e6:10.2f} {bytes_after / 1e6:10.2f} "
          f"{ratio(bytes_before, bytes_after):>13s}")

    # (d) the normalisation that moved to the model's device
    cpu_fp32 = normalise_after_seconds(after_batch, "cpu", args.repeats, torch.float32)
    cpu_bf16 = normalise_after_seconds(after_batch, "cpu", args.repeats, torch.bfloat16)
    print(f"{f'(d) FrameNormalizer on CPU, {threads} thread(s), fp32 (ms)':48s} {'-':>10s} "
          f"{ms_per_clip(cpu_fp32, b):10.2f}")
    print(f"{'    same, bf16 (ms)':48s} {'-':>10s} {ms_per_clip(cpu_bf16, b):10.2f}")
    if args.device == "cuda":
        h2d_before = transfer_before_seconds(before_batch, args.repeats)
        gpu = normalise_after_seconds(after_batch, "cuda", args.repeats, torch.bfloat16)
        hb, ga = ms_per_clip(h2d_before, b), ms_per_clip(gpu, b)
        print(f"{'(d) CUDA: float32 copy (before) vs uint8 copy + FrameNormalizer bf16 (after) (ms)':48s} "
              f"{hb:10.2f} {ga:10.2f} {ratio(hb, ga):>13s}")
    else:
        print("    (no CUDA here: the on-device normalisation was timed on the CPU only)")

    total_before = ab
    total_after = aa + ms_per_clip(cpu_fp32, b)
    print(f"\nper clip, loader-side collate: before {ab:.2f} ms, after {aa:.2f} ms, ratio before/after {ratio(ab, aa)}")
    print(f"per clip, collate + normalisation wherever it runs (all on this CPU): before {total_before:.2f} ms, "
          f"after {total_after:.2f} ms, ratio {ratio(total_before, total_after)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
