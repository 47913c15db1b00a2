#!/usr/bin/env python
"""Write a degraded copy of a split: the same rows and captions, the videos blurred or with frames lost.

    python scripts/make_degraded_split.py --data DATA_ROOT --split test --out-split test_blurred --blur 3.0
    python scripts/make_degraded_split.py --data DATA_ROOT --split test --out-split test_dropped --drop 0.5 \\
        [--features DATA_KP/features]

``--blur SIGMA``: a Gaussian blur of SIGMA pixels on every frame (an out-of-focus or low-resolution
camera); ``--drop P``: each frame is lost with probability P and replaced by the last frame kept (a
stalling stream; the frame count stays, so windows and timing are unchanged). Clips are re-encoded
into DATA_ROOT/clips_<out-split>/ (libx264, CRF 18) and listed in DATA_ROOT/<out-split>.tsv with the
same ids. ``--features STORE`` copies the rows' sequences of another modality unchanged into the
store's <out-split> (a landmark model of an ensemble then reads its usual input). Degradations are
seeded (``--seed``). Used by the robustness measurement of ensembles (docs/ensembles.md).
"""

import argparse
import sys
from pathlib import Path

import av
import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from ssvp_slt.corpus.data_config import VideoDataConfig  # noqa: E402
from ssvp_slt.corpus.manifest import PREPARED_COLUMNS, ManifestError, read_manifest, write_manifest  # noqa: E402


def degrade_frames(frames, blur: float, drop: float, rng: np.random.Generator):
    """RGB frames (iterable of H x W x 3 uint8) -> degraded frames, one out per frame in."""
    last = None
    for frame in frames:
        if drop > 0 and last is not None and rng.random() < drop:
            yield last
            continue
        if blur > 0:
            frame = cv2.GaussianBlur(frame, (0, 0), sigmaX=blur)
        last = frame
        yield frame


def degrade_clip(src: Path, dst: Path, blur: float, drop: float, rng: np.random.Generator) -> int:
    """Re-encode ``src`` into ``dst`` degraded; returns the number of frames written."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = inp.streams.video[0]
        rate = stream.average_rate or 25
        enc = out.add_stream("libx264", rate=rate)
        enc.width, enc.height, enc.pix_fmt = stream.codec_context.width, stream.codec_context.height, "yuv420p"
        enc.options = {"crf": "18", "preset": "veryfast"}
        enc.codec_context.thread_count = 1
        decoded = (f.to_ndarray(format="rgb24") for f in inp.decode(stream))
        n = 0
        for frame in degrade_frames(decoded, blur, drop, rng):
            for packet in enc.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                out.mux(packet)
            n += 1
        for packet in enc.encode():
            out.mux(packet)
    return n


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="data root")
    parser.add_argument("--split", default="test", help="split to degrade (default: test)")
    parser.add_argument("--out-split", required=True, help="name of the degraded split to write")
    parser.add_argument("--blur", type=float, default=0.0, help="Gaussian blur sigma in pixels (0: none)")
    parser.add_argument("--drop", type=float, default=0.0, help="probability that a frame is lost (0: none)")
    parser.add_argument("--features", type=Path, help="feature store of another modality: copy the rows' sequences unchanged")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.out_split == args.split:
        parser.error(f"--out-split must differ from --split ({args.split})")
    if args.blur <= 0 and not 0 < args.drop < 1:
        parser.error("give --blur SIGMA > 0 and/or --drop P in (0, 1)")
    try:
        data_cfg = VideoDataConfig.load(args.data)
        manifest = read_manifest(args.data / f"{args.split}.tsv", need_text=True)
    except (ManifestError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    rng = np.random.default_rng(args.seed)
    out_rows, failed = [], 0
    for row in manifest.rows:
        src = data_cfg.resolve(row.video)
        rel = Path(f"clips_{args.out_split}") / Path(row.video).name
        try:
            n = degrade_clip(src, args.data / rel, args.blur, args.drop, rng)
        except (av.error.FFmpegError, OSError) as e:
            print(f"{manifest.path}, line {row.line}: {src}: cannot degrade ({e}); row left out", file=sys.stderr)
            failed += 1
            continue
        out_rows.append({
            "id": row.id, "video": str(rel), "n_frames": n, "fps": row.fps,
            "width": row.width or "", "height": row.height or "", "file_size": (args.data / rel).stat().st_size,
            "tgt_text": row.tgt_text,
        })
    out_path = write_manifest(args.data / f"{args.out_split}.tsv", out_rows, columns=PREPARED_COLUMNS)
    what = ", ".join(x for x in (f"blur sigma {args.blur}" if args.blur > 0 else "", f"frames lost with p={args.drop}" if args.drop > 0 else "") if x)
    print(f"{out_path}: {len(out_rows)} rows of {manifest.path} ({what}); {failed} failed")
    if args.features:
        from ssvp_slt.features.store import FeatureStoreError, copy_clips

        try:
            n = copy_clips(args.features, args.split, args.out_split, [(r["id"], r["id"]) for r in out_rows], tag="degraded")
        except FeatureStoreError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(f"{args.features / args.out_split}: {n} clips, features unchanged")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
