"""Tiny real media files for tests, written with PyAV."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def write_test_video(path, n_frames: int = 10, size=(32, 32), fps: int = 25, seed: int = 0) -> Path:
    """Write an H.264 (yuv420p) mp4 of ``n_frames`` random-ish frames of ``size`` (width, height)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    rng = np.random.default_rng(seed)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        for i in range(n_frames):
            img = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_audio_only(path, seconds: float = 0.2, rate: int = 44100, codec: str = "aac") -> Path:
    """Write a media file with one audio stream and no video stream (e.g. ``x.mp4``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = "mono"
        frame_size = stream.codec_context.frame_size or 1024
        n_samples = int(seconds * rate)
        t = 0
        while t < n_samples:
            wave = 0.1 * np.sin(np.arange(t, t + frame_size) * 2 * np.pi * 440 / rate)
            fmt = stream.codec_context.format.name  # e.g. fltp (aac) or s16 (mp2)
            if fmt.startswith("s16"):
                samples = (wave * 32767).astype(np.int16)
            else:
                samples = wave.astype(np.float32)
            frame = av.AudioFrame.from_ndarray(samples[None, :], format=fmt, layout="mono")
            frame.sample_rate = rate
            frame.pts = t
            for packet in stream.encode(frame):
                container.mux(packet)
            t += frame_size
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_garbage(path, n_bytes: int = 2048, seed: int = 0) -> Path:
    """Write random bytes under a video file name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size=n_bytes, dtype=np.uint8).tobytes())
    return path


def write_truncated_video(path, keep_bytes: int = 200, **kwargs) -> Path:
    """Write a real clip, then cut it to its first ``keep_bytes`` bytes."""
    path = write_test_video(path, **kwargs)
    data = path.read_bytes()
    path.write_bytes(data[:keep_bytes])
    return path


def write_video_without_frames(path, size=(32, 32), fps: int = 25) -> Path:
    """A Matroska file with an H.264 video stream whose packets decode to no frame."""
    path = Path(path)
    container = av.open(str(path), "w", format="matroska")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
    frame = av.VideoFrame.from_ndarray(np.zeros((size[1], size[0], 3), np.uint8), format="rgb24")
    rng = np.random.default_rng(0)
    for real in list(stream.encode(frame)) + list(stream.encode()):
        garbage = av.Packet(bytes(rng.integers(0, 256, real.size, dtype=np.uint8)))
        garbage.stream, garbage.pts, garbage.dts, garbage.time_base = stream, real.pts, real.dts, real.time_base
        container.mux(garbage)
    container.close()
    return path
