#!/usr/bin/env python
"""Extract frozen video-encoder features for a data root's clips into a feature store.

    python scripts/extract_features.py --data $DATA --encoder ENCODER.pt --out $DATA/features \
        [--splits train val test] [--batch-size 8] [--workers 8] [--dtype fp32|fp16|bf16] \
        [--shard K/N] [--store-dtype float16|float32]

ENCODER.pt: a mae_vit_slt checkpoint, a mae_vit pretraining checkpoint, or an encoder file from
scripts/convert_video_mae_checkpoint.py. Frames, windows, crop and normalisation come from
$DATA/config.yaml, as in evaluation. Re-running the same command resumes (clips already in the
store are skipped); --shard K/N (0 <= K < N) extracts one N-th of every split, so N GPUs or a SLURM
array share the work. Clips that cannot be read are counted, logged and skipped. See docs/two_stage.md.
"""

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ssvp_slt.features.extract import ExtractOptions, parse_shard, run, summarise  # noqa: E402
from ssvp_slt.features.store import DEFAULT_CHUNK_MB, STORE_DTYPES  # noqa: E402

logger = logging.getLogger("extract_features")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, type=Path, help="data root: <split>.tsv manifests and config.yaml")
    p.add_argument("--encoder", required=True, type=Path, help="mae_vit_slt / mae_vit checkpoint or converted encoder file")
    p.add_argument("--out", required=True, type=Path, help="feature store directory (created, or added to)")
    p.add_argument("--splits", nargs="+", help="splits to extract (default: every <split>.tsv of --data)")
    p.add_argument("--batch-size", type=int, default=8, help="clips per forward (each up to max_windows windows)")
    p.add_argument("--window-batch", type=int, default=0, help="windows per encoder call at most (0: the whole batch's)")
    p.add_argument("--workers", type=int, default=4, help="DataLoader worker processes decoding video")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], default="fp32",
                   help="autocast for the encoder (SSVP-SLT extracts in fp32; bf16/fp16 are faster on a GPU)")
    p.add_argument("--store-dtype", choices=STORE_DTYPES, default="float16", help="dtype of the stored features")
    p.add_argument("--shard", default="0/1", help="K/N: extract only the clips whose id hashes to K mod N")
    p.add_argument("--chunk-mb", type=float, default=DEFAULT_CHUNK_MB, help="size of each feature chunk file")
    p.add_argument("--keep-short", action="store_true",
                   help="extract clips whose video ends before their planned frames (last frame repeated) instead of skipping them")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--strict", action="store_true", help="exit status 1 if any clip failed")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s", stream=sys.stderr)
    logging.getLogger("ssvp_slt").setLevel(logging.INFO)
    logging.getLogger("ssvp_plugin").setLevel(logging.INFO)
    try:
        shard = parse_shard(args.shard)
    except ValueError as e:
        build_parser().error(str(e))
    if args.batch_size < 1:
        build_parser().error("--batch-size must be >= 1")
    opts = ExtractOptions(
        data=args.data, out=args.out, encoder=args.encoder, splits=args.splits, batch_size=args.batch_size,
        window_batch=args.window_batch, workers=args.workers, device=args.device, dtype=args.dtype,
        store_dtype=args.store_dtype, shard=shard, chunk_mb=args.chunk_mb, keep_short=args.keep_short,
        progress=not args.no_progress,
    )
    try:
        results = run(opts)
    except (ValueError, FileNotFoundError) as e:  # store, encoder, data config, manifest errors: they name the file
        logger.error(str(e))
        return 2
    print(summarise(results))
    failed = sum(r.failed for r in results)
    if failed:
        print(f"{failed} clip(s) failed; listed in {args.out}/<split>/failures-*.tsv (a re-run retries them)")
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
