"""Where an input's frames come from: a video file (or URL) read on demand, or frames in memory.

A *source* knows its frame count, frame rate and frame size, and reads the frames at given
indices at a given size. The model's frames go through exactly what evaluation does
(:func:`ssvp_slt.corpus.video_io.decode_frames` for files: one swscale call converts and
resizes); frames already in memory are resized by the same swscale code, so a pipeline that
holds decoded frames gets the model input a file would give (up to the colour conversion a
file's YUV frames go through once more: tested to change no translation).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from ..corpus.video_io import VideoError, _open, _stream_fps, _video_stream, decode_frames, resized_shape

# inputs that are not files: read live (a bounded stretch) into memory
URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "file")
WEBCAM = re.compile(r"^webcam(?::(\d+))?$")  # webcam, webcam:1 -> /dev/video0, /dev/video1 (v4l2)


def is_stream(name: str) -> bool:
    """A URL or a webcam name, as opposed to a file path."""
    name = str(name)
    return bool(WEBCAM.match(name)) or bool(re.match(r"^([a-z][a-z0-9+.-]*)://", name)) and name.split("://")[0] in URL_SCHEMES


@dataclass
class VideoFrames:
    """Decoded frames of one input: (T, H, W, 3) uint8 RGB (numpy or torch, channels last) at ``fps``.

    Pass it to :meth:`SignTranslator.translate` like a file path; ``name`` labels the result."""

    frames: object
    fps: float
    name: Optional[str] = None


class FileSource:
    """A video file: probed from its header (no frame decoded), read on demand."""

    kind = "file"

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        self.name = str(path)
        if not self.path.exists():
            raise VideoError(f"{path}: video file not found")
        if self.path.is_dir():
            raise VideoError(f"{path}: is a folder, not a video file")
        with _open(self.path) as container:
            stream = _video_stream(container, self.path)
            fps = _stream_fps(stream)
            if not fps:
                raise VideoError(f"{path}: video stream has no frame rate")
            n = stream.frames
            if not n:  # containers without a frame count (webm, some mkv): count packets, still no decoding
                n = sum(1 for p in container.demux(stream) if p.size > 0)
            width, height = stream.codec_context.width, stream.codec_context.height
        if n <= 0:
            raise VideoError(f"{path}: video stream has zero frames")
        if not width or not height:
            raise VideoError(f"{path}: video stream has no frame size")
        self.n_frames, self.fps, self.width, self.height = int(n), float(fps), int(width), int(height)

    def read(self, indices: Sequence[int], short_side: Optional[int] = None, **kwargs) -> Tuple[np.ndarray, int]:
        """(frames, n_decoded) as :func:`decode_frames` (same keywords)."""
        return decode_frames(self.path, indices, short_side, **kwargs)


class ArraySource:
    """Frames held in memory: (T, H, W, 3) uint8 RGB at ``fps``."""

    kind = "frames"

    def __init__(self, frames, fps: Optional[float], name: str):
        self.name = name
        if fps is None:
            raise ValueError(f"{name}: frames given without a frame rate: pass fps= (or VideoFrames(frames, fps))")
        fps = float(fps)
        if not math.isfinite(fps) or fps <= 0:
            raise ValueError(f"{name}: the frame rate must be a positive number, got {fps!r}")
        try:  # torch tensors without importing torch here
            frames = frames.detach().cpu().numpy()
        except AttributeError:
            pass
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"{name}: expected frames of shape (T, H, W, 3) (RGB, channels last), got {frames.shape}")
        if frames.dtype != np.uint8:
            raise ValueError(f"{name}: expected uint8 frames (0-255), got {frames.dtype}")
        if frames.shape[0] == 0:
            raise ValueError(f"{name}: no frames")
        self.frames = frames
        self.n_frames, self.height, self.width = int(frames.shape[0]), int(frames.shape[1]), int(frames.shape[2])
        self.fps = fps

    def read(
        self,
        indices: Sequence[int],
        short_side: Optional[int] = None,
        *,
        size: Optional[Tuple[int, int]] = None,
        pixel_format: str = "rgb24",
        interpolation=None,
    ) -> Tuple[np.ndarray, int]:
        indices = np.minimum(np.asarray(indices, dtype=np.int64), self.n_frames - 1)
        w, h = size or resized_shape(self.width, self.height, short_side)
        if (w, h) == (self.width, self.height) and pixel_format == "rgb24":
            return self.frames[indices].copy(), len(indices)
        # the same swscale conversion a file's frames get (one reformatter for all of them)
        reformatter = VideoReformatter()
        channels = () if pixel_format == "gray" else (3,)
        out = np.empty((len(indices), h, w) + channels, dtype=np.uint8)
        cache = {}
        for k, i in enumerate(indices.tolist()):
            if i not in cache:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(self.frames[i]), format="rgb24")
                cache = {i: reformatter.reformat(frame, format=pixel_format, width=w, height=h, interpolation=interpolation).to_ndarray()}
            out[k] = cache[i]
        return out, len(indices)


def read_stream(url: str, max_seconds: float, max_short_side: Optional[int] = 720) -> VideoFrames:
    """Read up to ``max_seconds`` of a live source (URL, ``webcam[:N]``) into memory.

    Frames are kept at most ``max_short_side`` pixels on the short side (enough for the model's
    crop and for a signer crop's face detection), so a long stretch of HD video stays affordable."""
    m = WEBCAM.match(url)
    try:
        if m:
            container = av.open(f"/dev/video{m.group(1) or 0}", format="v4l2")
        else:
            container = av.open(url, timeout=10.0)
    except (av.error.FFmpegError, OSError) as e:
        raise VideoError(f"{url}: cannot open the stream ({e})") from e
    with container:
        stream = _video_stream(container, url)
        fps = _stream_fps(stream) or 25.0
        frames, first_pts = [], None
        reformatter = VideoReformatter()
        try:
            for frame in container.decode(stream):
                t = float(frame.pts * stream.time_base) if frame.pts is not None else len(frames) / fps
                first_pts = t if first_pts is None else first_pts
                if t - first_pts >= max_seconds:
                    break
                w, h = resized_shape(frame.width, frame.height, min(max_short_side or 10**9, min(frame.width, frame.height)))
                frames.append(reformatter.reformat(frame, format="rgb24", width=w, height=h).to_ndarray())
        except av.error.FFmpegError as e:
            if not frames:
                raise VideoError(f"{url}: decoding failed ({e})") from e
    if not frames:
        raise VideoError(f"{url}: the stream gave no frames")
    return VideoFrames(np.stack(frames), fps, name=url)


def open_source(x, fps: Optional[float] = None, name: Optional[str] = None, max_stream_seconds: float = 60.0):
    """A source for one input: a path, a URL / webcam name, a :class:`VideoFrames`, or an array/tensor
    of frames (with ``fps``). Raises :class:`VideoError` / ``ValueError`` naming the input."""
    if isinstance(x, VideoFrames):
        return ArraySource(x.frames, x.fps, x.name or name or "frames")
    if isinstance(x, (str, Path)):
        if is_stream(str(x)):
            v = read_stream(str(x), max_stream_seconds)
            return ArraySource(v.frames, v.fps, str(x))
        return FileSource(x)
    return ArraySource(x, fps, name or "frames")
