"""Extract a frozen video encoder's features for every clip of a data root into a feature store.

Clips are read exactly as evaluation reads them (``VideoClipDataset`` with ``train=False``: the
data config's frames, windows, centre crop), so a clip's stored sequence equals what the
encoder computes for it in a direct forward. The run:

- skips clips already in the store (resume: re-run the same command after an interruption);
- with ``shard=(k, n)`` takes only the clips whose id hashes to ``k`` modulo ``n`` (several GPUs or
  a SLURM array split a split between them; each writes its own part of the store);
- counts, logs (file and manifest line) and skips a clip that cannot be used: a bad manifest row,
  a missing file, a video that fails to decode, one that ends before its planned frames (unless
  ``keep_short``), or features the store cannot hold. Failed clips are listed in
  ``<store>/<split>/failures-<part>.tsv`` and retried by the next run.
"""

import logging
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm import tqdm

from ssvp_plugin.data.splits import check_files
from ssvp_plugin.data.video_clip_dataset import VideoClipDataset
from ssvp_slt.corpus.data_config import VideoDataConfig
from ssvp_slt.corpus.manifest import read_manifest
from ssvp_slt.features.encoder import AUTOCAST_DTYPES, FrozenVideoEncoder, file_fingerprint
from ssvp_slt.features.store import (
    DEFAULT_CHUNK_MB, FeatureStoreError, SplitWriter, StoreInfo, chunk_rows_for, new_part_name, open_store_for_writing,
    stored_ids,
)

logger = logging.getLogger(__name__)

# the data config's frame settings that decide what a clip's features are (recorded in the store)
FRAME_FACTS = ("target_fps", "num_frames", "sampling_rate", "window_stride", "max_windows", "long_clips",
               "resize_short_side", "crop_size", "mean", "std")


@dataclass
class ExtractOptions:
    data: Path
    out: Path
    encoder: Path
    splits: Optional[List[str]] = None  # None: every <split>.tsv of the data root
    batch_size: int = 8  # clips per forward
    window_batch: int = 0  # windows per backbone call (0: all windows of the batch)
    workers: int = 4
    device: Optional[str] = None  # default: cuda if available
    dtype: str = "fp32"  # autocast: fp32 (SSVP-SLT's), fp16, bf16
    store_dtype: str = "float16"
    shard: Tuple[int, int] = (0, 1)
    chunk_mb: float = DEFAULT_CHUNK_MB
    keep_short: bool = False
    progress: bool = True


@dataclass
class SplitResult:
    split: str
    manifest_rows: int = 0  # valid rows of the manifest
    in_shard: int = 0
    already_done: int = 0
    extracted: int = 0
    failed: int = 0
    time_steps: int = 0
    seconds: float = 0.0
    failures: List[str] = field(default_factory=list)

    @property
    def clips_per_second(self) -> float:
        return self.extracted / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        return (
            f"{self.split}: {self.extracted} clip(s) extracted ({self.time_steps} time steps), "
            f"{self.already_done} already in the store, {self.failed} failed; "
            f"{self.in_shard} of {self.manifest_rows} manifest clip(s) in this shard; "
            f"{self.seconds:.1f} s, {self.clips_per_second:.2f} clips/s"
        )


def parse_shard(text: str) -> Tuple[int, int]:
    """``"K/N"`` (0 <= K < N) -> (K, N)."""
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must be K/N with integers, e.g. 0/4, got {text!r}") from None
    if not (n >= 1 and 0 <= k < n):
        raise ValueError(f"--shard K/N needs 0 <= K < N, got {text!r}")
    return k, n


def in_shard(clip_id: str, shard: Tuple[int, int]) -> bool:
    """Stable over runs and machines, and independent of manifest order: a hash of the id."""
    k, n = shard
    return n == 1 or zlib.crc32(clip_id.encode("utf-8")) % n == k


def find_splits(data_cfg: VideoDataConfig) -> List[str]:
    return sorted(p.stem for p in Path(data_cfg.root).glob("*.tsv"))


def store_info_for(encoder: FrozenVideoEncoder, spec, data_cfg: VideoDataConfig, opts: ExtractOptions) -> StoreInfo:
    c = data_cfg
    fingerprint = file_fingerprint(spec.path)
    facts = {k: getattr(c, k) for k in FRAME_FACTS}
    facts["window_stride"] = c.window_settings().window_stride  # resolved: None means half a window
    return StoreInfo(
        dim=encoder.dim,
        dtype=opts.store_dtype,
        feature_rate=float(c.target_fps) / (c.sampling_rate * encoder.frames_per_step),
        source={
            "kind": "video_encoder",
            "encoder": {"sha256": fingerprint["sha256"], "size": fingerprint["size"], "kind": spec.kind,
                        "arch": spec.arch, "preset": spec.preset},
            "data_config": facts,
            "extraction": {
                "pooling": "spatial mean",
                "windows": "each window encoded alone; time steps of the windows concatenated (overlaps repeat time)",
                "frames_per_step": encoder.frames_per_step,
                "window_steps": -(-c.num_frames // encoder.frames_per_step),
                "autocast": opts.dtype,
            },
            # not compared when a shard or a resumed run adds to the store (store.PROVENANCE_KEY)
            "provenance": {"encoder_path": fingerprint["path"], "encoder_mtime": fingerprint["mtime"],
                           "data_root": str(Path(c.root).resolve())},
        },
    )


class _SafeClips(torch.utils.data.Dataset):
    """A VideoClipDataset whose items never raise: a clip that cannot be read becomes ``{"id", "error"}``."""

    def __init__(self, dataset: VideoClipDataset, keep_short: bool):
        self.dataset, self.keep_short = dataset, keep_short

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        ds = self.dataset
        before = ds.n_short_decodes  # counted in this process by __getitem__
        try:
            item = ds[index]
        except Exception as e:  # a clip must never stop the run: VideoError, PyAV errors, bad frame sizes, ...
            # an unreadable clip's own problem, without the training advice (skip flag) of its message
            return {"id": index, "error": getattr(e, "problem", None) or f"{type(e).__name__}: {e}"}
        if ds.n_short_decodes > before and not self.keep_short:
            return {"id": index, "error": "the video ended before its planned frames (a wrong frame count or a "
                    "truncated file); skipped (--keep-short extracts it with the last frame repeated, as training does)"}
        return item

    def collate(self, samples):
        ok = [s for s in samples if "error" not in s]
        failures = [(s["id"], s["error"]) for s in samples if "error" in s]
        return (self.dataset.collater(ok) if ok else None), failures


def _length_batches(sizes: np.ndarray, batch_size: int) -> List[List[int]]:
    """Clips of similar length together: less padding per forward."""
    order = np.argsort(sizes, kind="stable")
    return [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]


def _split_rows(data_cfg: VideoDataConfig, split: str, opts: ExtractOptions, result: SplitResult, failures_path: Path):
    """This shard's valid manifest rows whose video file exists; the rest are logged (file and line) and
    counted as failed (invalid manifest rows, which have no id to shard by, by shard 0 only)."""
    manifest = read_manifest(data_cfg.resolve(f"{split}.tsv"), need_text=False, skip_invalid=True)
    bad_rows = sum(manifest.skipped.values())
    result.manifest_rows = len(manifest.rows) + bad_rows
    if bad_rows and opts.shard[0] == 0:
        result.failed += bad_rows
        result.failures.append(f"{manifest.path}: {bad_rows} invalid manifest row(s) {manifest.skipped} (see the log)")
    rows = [r for r in manifest.rows if in_shard(r.id, opts.shard)]
    result.in_shard = len(rows)
    paths = [data_cfg.resolve(r.video) for r in rows]
    keep = check_files(manifest.path, rows, paths, skip_invalid=True, workers=opts.workers)  # logs each problem
    for i in sorted(set(range(len(rows))) - set(keep)):
        _record_failure(result, failures_path, rows[i], paths[i], "video file missing, or its size changed since preparation")
    return [rows[i] for i in keep], [paths[i] for i in keep]


def extract_split(
    split: str, data_cfg: VideoDataConfig, encoder: FrozenVideoEncoder, info: StoreInfo, opts: ExtractOptions, part: str
) -> SplitResult:
    result = SplitResult(split)
    failures_path = opts.out / split / f"failures-{part}.tsv"
    rows, paths = _split_rows(data_cfg, split, opts, result, failures_path)
    done = set(stored_ids(opts.out, split))
    todo = [i for i in range(len(rows)) if rows[i].id not in done]
    result.already_done = len(rows) - len(todo)
    logger.info(f"{split}: {result.in_shard} of {result.manifest_rows} clip(s) in shard {opts.shard[0]}/{opts.shard[1]}, "
                f"{result.already_done} already in the store, {len(todo)} to extract")
    if not todo:
        return result
    rows, paths = [rows[i] for i in todo], [paths[i] for i in todo]
    dataset = VideoClipDataset(split, rows, paths, data_cfg, targets=None, pad=1, eos=2, train=False, shuffle=False)
    if dataset.n_stretched:
        logger.info(f"{split}: {dataset.n_stretched} clip(s) need more than max_windows={data_cfg.max_windows} windows "
                    f"and are read stretched (long_clips={data_cfg.long_clips}), as evaluation reads them")
    safe = _SafeClips(dataset, opts.keep_short)
    device = next(encoder.parameters()).device
    loader = torch.utils.data.DataLoader(
        safe, batch_sampler=_length_batches(dataset.sizes, opts.batch_size), collate_fn=safe.collate,
        num_workers=opts.workers, pin_memory=device.type == "cuda",
    )
    autocast = AUTOCAST_DTYPES[opts.dtype]
    tty = sys.stderr.isatty()
    bar = tqdm(total=len(rows), desc=split, unit="clip", disable=not opts.progress, mininterval=1 if tty else 30)
    t0 = time.perf_counter()
    with SplitWriter(opts.out, split, info, part, chunk_rows_for(info.dim, info.dtype, opts.chunk_mb)) as writer:
        for batch, failures in loader:
            bad: Dict[int, str] = dict(failures)
            if batch is not None:
                feats = encoder(batch["net_input"]["source"], batch["net_input"]["padding_mask"],
                                batch["net_input"]["window_starts"], autocast=autocast, window_batch=opts.window_batch)
                for index, x in zip(batch["id"].tolist(), feats):
                    try:
                        writer.add(rows[index].id, x.numpy())
                        result.extracted += 1
                        result.time_steps += len(x)
                    except FeatureStoreError as e:
                        bad[index] = str(e)
            for index, reason in bad.items():
                _record_failure(result, failures_path, rows[index], paths[index], reason)
            bar.update((len(batch["id"]) if batch is not None else 0) + len(failures))
    bar.close()
    result.seconds = time.perf_counter() - t0
    return result


def _record_failure(result: SplitResult, failures_path: Path, row, path: Path, reason: str) -> None:
    result.failed += 1
    message = f"{path} (manifest line {row.line}, id {row.id}): {reason}"
    result.failures.append(message)
    logger.warning(f"skipped: {message}")
    new = not failures_path.exists()
    failures_path.parent.mkdir(parents=True, exist_ok=True)
    with open(failures_path, "a", encoding="utf-8") as f:
        if new:
            f.write("id\tline\tvideo\treason\n")
        f.write(f"{row.id}\t{row.line}\t{path}\t{' '.join(reason.split())}\n")


def resolve_device(name: Optional[str]) -> torch.device:
    return torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))


def run(opts: ExtractOptions) -> List[SplitResult]:
    """Extract every requested split; returns one result per split (see :class:`SplitResult`)."""
    if opts.dtype not in AUTOCAST_DTYPES:
        raise ValueError(f"dtype must be one of {sorted(AUTOCAST_DTYPES)}, got {opts.dtype!r}")
    opts.out = Path(opts.out)
    data_cfg = VideoDataConfig.load(opts.data, check_files=False)  # the vocabulary is not needed here
    splits = opts.splits or find_splits(data_cfg)
    if not splits:
        raise FileNotFoundError(f"{opts.data}: no <split>.tsv manifests")
    missing = [s for s in splits if not data_cfg.resolve(f"{s}.tsv").is_file()]
    if missing:
        raise FileNotFoundError(f"{opts.data}: no manifest for split(s) {missing} (found {find_splits(data_cfg)})")
    device = resolve_device(opts.device)
    if opts.dtype != "fp32" and device.type == "cpu":
        logger.warning(f"--dtype {opts.dtype} on CPU: autocast there is slow and only for checks; use fp32")
    t_load = time.perf_counter()
    encoder, spec = FrozenVideoEncoder.from_file(opts.encoder, data_cfg)
    encoder.to(device)
    info = open_store_for_writing(opts.out, store_info_for(encoder, spec, data_cfg, opts))
    logger.info(f"encoder {spec.path} ({spec.kind}): D={encoder.dim}, one vector per {encoder.frames_per_step} sampled "
                f"frames ({info.feature_rate:g} per second); loaded in {time.perf_counter() - t_load:.1f} s; store {opts.out}")
    k, n = opts.shard
    part = new_part_name(f"s{k}of{n}")
    return [extract_split(s, data_cfg, encoder, info, opts, part) for s in splits]


def summarise(results: Sequence[SplitResult]) -> str:
    lines = [r.describe() for r in results]
    n, seconds = sum(r.extracted for r in results), sum(r.seconds for r in results)
    failed = sum(r.failed for r in results)
    lines.append(
        f"total: {n} clip(s) extracted in {seconds:.1f} s ({n / seconds if seconds > 0 else 0.0:.2f} clips/s), "
        f"{sum(r.already_done for r in results)} already in the store, {failed} failed"
    )
    return "\n".join(lines)
