"""``ssvp-slt-translate``: translate sign-language videos from the command line.

    ssvp-slt-translate --checkpoint ckpt.pt clips/ recording.mp4 'more/**/*.mov' [--format srt --output subs/]
    find . -name '*.mp4' | ssvp-slt-translate --checkpoint ckpt.pt - --format jsonl

Every input that cannot be translated (missing, unreadable, no video stream, too short) is
reported on stderr with its reason; the others are translated, and the exit status is 1 if any
input failed (2 for a usage or model error before anything was translated).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import List, Optional

from .formats import FORMATS, Writer
from .inputs import VIDEO_EXTENSIONS, expand_inputs
from .results import Translation
from .segmentation import METHODS, SegmentationSettings

logger = logging.getLogger("ssvp_slt.translate")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ssvp-slt-translate",
        description="Translate sign-language videos (and landmark features) to English text.",
        epilog="Details: docs/inference.md",
    )
    p.add_argument(
        "videos", nargs="*",
        help="video files, folders (searched recursively), glob patterns, URLs / webcam[:N], or - for a list on stdin",
    )
    m = p.add_argument_group("model")
    m.add_argument("--checkpoint", required=True, action="append", help="a checkpoint; repeat it for an ensemble")
    m.add_argument("--weights", help="ensemble weights, one per --checkpoint in order, e.g. 0.7,0.3 (default: equal)")
    m.add_argument(
        "--features", nargs="+",
        help="for landmark/feature models, one per input in order: a (T, D) .npy of the rows its store holds, or (keypoint "
        "models) an OpenPose JSON folder or .pose file",
    )
    m.add_argument("--data", help="data root with config.yaml/spm.model/dict.txt (default: the first checkpoint's)")
    m.add_argument("--beam", type=int, default=5)
    m.add_argument("--max-len-b", type=int, default=127, help="longest output in tokens (fairseq's --max-len-b)")
    o = p.add_argument_group("output")
    o.add_argument("--format", choices=FORMATS, default="tsv",
                   help="txt: one line per input; tsv: input<TAB>text (default); json: one document; jsonl: one result per "
                        "line; srt / vtt: subtitles, one file per input")
    o.add_argument("--output", "-o", help="a file, or a folder (ending in / or existing) for one file per input (default: stdout)")
    o.add_argument("--quiet", "-q", action="store_true", help="no summary line on stderr")
    o.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal and there are several inputs)")
    s = p.add_argument_group("segmentation of long inputs (docs/inference.md)")
    s.add_argument("--segment", choices=METHODS, default="auto",
                   help="auto (default): inputs longer than the model's sentences are cut at pauses, shorter ones read whole; "
                        "none: read whole; fixed: overlapping windows; pause: cut at pauses")
    s.add_argument("--window", type=float, help="fixed: window length in seconds (default: the longest training clip)")
    s.add_argument("--overlap", type=float, help="fixed: overlap of consecutive windows in seconds (default: a quarter window)")
    s.add_argument("--min-pause", type=float, help="pause: seconds at rest that make a pause (default 0.2)")
    s.add_argument("--min-segment", type=float, help="pause: shorter segments are merged (default 1.0 s)")
    s.add_argument("--max-segment", type=float, help="longer segments are split (default: 1.5 x the longest training clip)")
    s.add_argument("--pad", type=float, help="pause: seconds of pause kept at each end of a segment (default 0.2)")
    s.add_argument("--motion-threshold", type=float, help="pause: still below quiet + this x (busy - quiet) motion (default 0.1)")
    s.add_argument("--keypoints", nargs="+",
                   help="one per input: OpenPose JSON folder or .pose file of the whole input; pauses are then found from "
                        "hands at rest")
    r = p.add_argument_group("running")
    r.add_argument("--device", default="auto", help="auto (CUDA, then Apple MPS, then CPU; default), cpu, cuda, cuda:1, mps")
    prec = r.add_mutually_exclusive_group()
    prec.add_argument("--fp16", action="store_true", help="half precision (GPU)")
    prec.add_argument("--bf16", action="store_true", help="bfloat16 (GPU or CPU)")
    r.add_argument("--batch-size", type=int, default=32, help="segments per model call (default 32)")
    r.add_argument("--max-frames", type=int, default=4096,
                   help="encoder frames per model call at most, like fairseq's --max-tokens (default 4096)")
    r.add_argument("--threads", type=int,
                   help="torch CPU threads (default: 1 for models under 10M parameters on the CPU, else torch's choice)")
    r.add_argument("--workers", type=int, default=2, help="threads reading frames while the model runs (default 2)")
    r.add_argument("--min-duration", type=float, default=0.2, help="shorter inputs are refused (default 0.2 s)")
    r.add_argument("--max-stream-seconds", type=float, default=60.0, help="seconds read from a URL or webcam (default 60)")
    r.add_argument("--extensions", default=",".join(VIDEO_EXTENSIONS),
                   help="file extensions searched for in folders (comma-separated)")
    return p


def seconds_since_process_start() -> float:
    """How long this process has run (Linux; 0 elsewhere): the summary's time includes start-up and imports."""
    try:
        import os

        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/self/stat") as f:
            start = int(f.read().rsplit(")", 1)[1].split()[19]) / ticks
        with open("/proc/uptime") as f:
            return max(0.0, float(f.read().split()[0]) - start)
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


SMALL_MODEL = 10_000_000  # parameters


def choose_threads(requested: Optional[int], translator) -> int:
    """torch's CPU threads: as requested, else 1 for a small model on the CPU, else torch's default.

    A small model's decoder steps are matrix products of a few hundred rows: splitting them over
    threads costs more than it saves, and on a shared CPU it is ruinous (measured here, demo model,
    2 cores shared with other jobs: 200 clips in 7.7 s with 1 thread, 54 s with 2)."""
    import torch

    if requested:
        torch.set_num_threads(requested)
    elif translator.device.type == "cpu" and translator.num_parameters < SMALL_MODEL:
        torch.set_num_threads(1)
    return torch.get_num_threads()


def segmentation_from_args(args) -> SegmentationSettings:
    given = {
        k: getattr(args, k) for k in ("window", "overlap", "min_pause", "min_segment", "max_segment", "pad", "motion_threshold")
        if getattr(args, k) is not None
    }
    return SegmentationSettings(method=args.segment, **given)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # force: importing fairseq has already set the root logger up at INFO
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", stream=sys.stderr, force=True)
    t_start = time.perf_counter() - seconds_since_process_start()
    specs = expand_inputs(args.videos, [e if e.startswith(".") else f".{e}" for e in args.extensions.split(",") if e])
    if not specs and not args.features:
        parser.error("no input: give video files, folders, patterns, URLs or - (a list on stdin)")
    try:
        segmentation = segmentation_from_args(args)
    except ValueError as e:
        parser.error(str(e))
    for name in ("features", "keypoints"):
        values = getattr(args, name)
        if values is not None and specs and len(values) != len(specs):
            parser.error(f"--{name}: one per input, got {len(values)} for {len(specs)} input(s)")
    n_inputs = len(specs) or len(args.features or [])
    try:
        writer = Writer(args.format, args.output, n_inputs)
    except (ValueError, OSError) as e:
        parser.error(str(e))

    from ..translate import SignTranslator  # fairseq and torch: only once the arguments are fine

    dtype = "fp16" if args.fp16 else "bf16" if args.bf16 else None
    try:
        translator = SignTranslator.from_checkpoints(
            args.checkpoint, args.weights, args.data, beam=args.beam, max_len_b=args.max_len_b,
            device=args.device, dtype=dtype,
        )
    except (ValueError, OSError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    threads = choose_threads(args.threads, translator)
    writer.header = {"model": {**translator.describe(), "threads": threads}, "segmentation_requested": segmentation.method}
    t_loaded = time.perf_counter()

    # inputs that failed to expand (empty folder, pattern without match) keep their place in the output
    valid = [i for i, s in enumerate(specs) if s.error is None]
    done: List[Translation] = []

    def emit(t: Translation):
        done.append(t)
        if t.error:
            print(f"error: {t.error}", file=sys.stderr)
        writer.write(t)

    cursor, n_valid_done = [0], [0]

    def flush_expansion_errors(upto: int):
        while cursor[0] < upto:
            if specs[cursor[0]].error is not None:
                emit(Translation(input=specs[cursor[0]].name, error=specs[cursor[0]].error))
            cursor[0] += 1

    def on_result(t: Translation):
        # translate() hands results over in its input order: the k-th is specs[valid[k]]
        if specs:
            position = valid[n_valid_done[0]]
            flush_expansion_errors(position)
            cursor[0] = position + 1
        n_valid_done[0] += 1
        emit(t)

    progress = args.progress if args.progress is not None else (sys.stderr.isatty() and n_inputs > 1)
    videos = [specs[i].name for i in valid] if "video" in translator.modalities else None
    features = [args.features[i] for i in valid] if args.features is not None and specs else args.features
    keypoints = [args.keypoints[i] for i in valid] if args.keypoints is not None else None
    try:
        if (videos or features):
            translator.translate(
                videos, args.batch_size, features, segmentation=segmentation, keypoints=keypoints,
                max_frames=args.max_frames, workers=args.workers, errors="return", min_duration=args.min_duration,
                max_stream_seconds=args.max_stream_seconds, progress=progress, on_result=on_result,
            )
        flush_expansion_errors(len(specs))
    except (ValueError, OSError) as e:  # a problem with the inputs as a whole (counts, modalities)
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        writer.close()
    failed = [t for t in done if t.error]
    if not args.quiet:
        seconds = sum(t.duration for t in done if t.ok)
        wall = time.perf_counter() - t_start
        print(
            f"translated {len(done) - len(failed)} of {len(done)} input(s), {seconds:.1f} s of video, in {wall:.1f} s "
            f"({t_loaded - t_start:.1f} s starting and loading; {seconds / max(wall, 1e-9):.1f}x real time)"
            + (f"; {len(failed)} failed" if failed else ""),
            file=sys.stderr,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
