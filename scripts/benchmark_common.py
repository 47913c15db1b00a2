"""Helpers shared by the benchmark scripts (not a command): test clips, timing, the host line.

The clips are written here rather than with ``ssvp_slt.synthetic`` so that the
benchmarks can ask for any frame size (16:9 included) and any length, and do
not change when the synthetic corpus's look changes: a benchmark's inputs
should stay the same from one measurement to the next.
"""

import os
import time
from fractions import Fraction
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np


def host_line() -> str:
    """Where the figures come from: CPU count and load (a loaded, shared machine gives noisy figures)."""
    try:
        load = ", load average %.1f" % os.getloadavg()[0]
    except OSError:
        load = ""
    import torch

    gpu = f", CUDA: {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no CUDA"
    return f"host: {os.cpu_count()} CPU core(s){load}, torch {torch.__version__} using {torch.get_num_threads()} thread(s){gpu}"


def time_repeats(fn: Callable[[], object], repeats: int, warmup: int = 0) -> List[float]:
    """Wall-clock seconds of each of ``repeats`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def time_interleaved(fns: dict, repeats: int, warmup: int = 0) -> dict:
    """``{name: [seconds of each call]}``, calling the functions in turn (a, b, a, b, ...): on a shared
    machine a burst of load from elsewhere then hits every side of a comparison, not one of them."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times


def parse_size(text: str):
    """'WxH' -> (W, H), both even (yuv420p needs even sizes)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"expected WxH, got {text!r}")
    if w <= 0 or h <= 0 or w % 2 or h % 2:
        raise ValueError(f"frame size must be positive and even, got {text!r}")
    return w, h


def clip_frames(n_frames: int, width: int, height: int, seed: int, noise: int = 2):
    """A signer-like test clip: a fixed textured background, a body and two moving 'hands', a little
    sensor noise. The noise keeps the H.264 bitrate (and so the decode cost) away from that of a
    flat synthetic image; set ``noise=0`` for the cheapest files."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    # low-frequency background texture: a few random sinusoids
    bg = np.zeros((height, width, 3), np.float32)
    for c in range(3):
        for _ in range(3):
            fx, fy, ph = rng.uniform(0.002, 0.03), rng.uniform(0.002, 0.03), rng.uniform(0, 6.3)
            bg[..., c] += 25 * np.sin(xx * fx * 6.3 + yy * fy * 6.3 + ph)
    bg += rng.uniform(60, 160, size=3)
    cx, cy, s = width / 2, height / 2, min(width, height)
    body = ((xx - cx) / (0.22 * s)) ** 2 + ((yy - (cy + 0.45 * s)) / (0.5 * s)) ** 2 < 1
    head = ((xx - cx) / (0.1 * s)) ** 2 + ((yy - (cy - 0.2 * s)) / (0.13 * s)) ** 2 < 1
    bg[body] = rng.uniform(20, 90, size=3)
    bg[head] = (200, 160, 130)
    r = 0.06 * s
    for t in range(n_frames):
        frame = bg.copy()
        for side in (-1, 1):  # two hands on Lissajous paths around the chest
            hx = cx + side * 0.18 * s + 0.15 * s * np.sin(0.21 * t + side)
            hy = cy + 0.1 * s + 0.15 * s * np.sin(0.13 * t * (1.5 + 0.5 * side))
            y0, y1 = int(max(hy - r, 0)), int(min(hy + r, height))
            x0, x1 = int(max(hx - r, 0)), int(min(hx + r, width))
            frame[y0:y1, x0:x1] = (220, 175, 140)
        if noise:
            frame += rng.normal(0, noise, size=(height, width, 1)).astype(np.float32)
        yield np.clip(frame, 0, 255).astype(np.uint8)


def write_clip(path: Path, n_frames: int, width: int, height: int, fps: int = 25, seed: int = 0, noise: int = 2,
               crf: int = 18, preset: str = "veryfast") -> Path:
    """Encode a test clip as H.264 (libx264, yuv420p) mp4, as preparation re-encodes clips (crf 18, veryfast)."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.mp4")
    with av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset}
        stream.codec_context.time_base = Fraction(1, fps)
        for i, rgb in enumerate(clip_frames(n_frames, width, height, seed, noise)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)
    return path


def ensure_clip(path: Path, n_frames: int, width: int, height: int, fps: int = 25, seed: int = 0,
                noise: int = 2) -> Path:
    """``write_clip`` unless the file is already there (benchmarks reuse their work directory)."""
    if not Path(path).is_file():
        write_clip(path, n_frames, width, height, fps, seed, noise)
    return Path(path)


def ratio(before: float, after: float) -> str:
    return f"{before / after:.2f}x" if after > 0 else "n/a"


def default_work_dir(name: str, override: Optional[Path]) -> Path:
    """``--work`` or work_dirs/<name> (git-ignored) in the checkout, so that rendered clips are reused."""
    path = override or Path(__file__).resolve().parents[1] / "work_dirs" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_sibling(name: str):
    """scripts/<name>.py as a module (scripts/ is not a package), to call its main() in this process:
    starting an interpreter and importing fairseq again costs seconds."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"script_{name}", Path(__file__).resolve().parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
