"""Reading video files with PyAV: probing, and decoding only the frames we keep.

Decoding itself is cheap next to the RGB conversion and resize, so frames are
decoded in order but only the kept ones are converted (and resized in the same
swscale call). One reformatter serves a whole clip: a frame's own
``to_ndarray(format=...)`` builds a new swscale context per frame, which costs
several times the conversion itself on small frames.
"""

from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Sequence, Tuple

import av
import numpy as np
from av.video.reformatter import VideoReformatter


class VideoError(ValueError):
    """A video file cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class VideoInfo:
    n_frames: int
    fps: float
    width: int
    height: int


def _open(path):
    try:
        return av.open(str(path))
    except FileNotFoundError as e:
        raise VideoError(f"{path}: video file not found") from e
    except (av.error.FFmpegError, OSError) as e:
        raise VideoError(f"{path}: cannot open as a video ({e})") from e


def _video_stream(container, path):
    if not container.streams.video:
        raise VideoError(f"{path}: file has no video stream")
    return container.streams.video[0]


def _stream_fps(stream) -> Optional[float]:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else None


def probe_video(path, count_frames: bool = False) -> VideoInfo:
    """Frame count, frame rate and size of a video, raising VideoError if unusable.

    The container's frame count is used when it has one; otherwise (or with
    ``count_frames``) the packets are demuxed and counted, which is still much
    cheaper than decoding. The first frame is always decoded, so a file whose
    stream holds no decodable picture is caught here and not mid-training.
    """
    with _open(path) as container:
        stream = _video_stream(container, path)
        fps = _stream_fps(stream)
        if not fps:
            raise VideoError(f"{path}: video stream has no frame rate")
        try:
            first = next(container.decode(stream), None)
        except av.error.FFmpegError as e:
            raise VideoError(f"{path}: cannot decode the first frame ({e})") from e
        if first is None:
            raise VideoError(f"{path}: video stream has zero frames")
        n_frames = stream.frames
        if count_frames or not n_frames:
            container.seek(0)
            n_frames = sum(1 for p in container.demux(stream) if p.size > 0)
        if n_frames <= 0:
            raise VideoError(f"{path}: video stream has zero frames")
        return VideoInfo(n_frames=int(n_frames), fps=fps, width=first.width, height=first.height)


def resized_shape(width: int, height: int, short_side: Optional[int]) -> Tuple[int, int]:
    """(width, height) after scaling so that the shorter side equals ``short_side``."""
    if not short_side:
        return width, height
    scale = short_side / min(width, height)
    return max(short_side, round(width * scale)), max(short_side, round(height * scale))


def decode_frames(
    path,
    indices: Sequence[int],
    short_side: Optional[int] = None,
    *,
    size: Optional[Tuple[int, int]] = None,
    pixel_format: str = "rgb24",
    interpolation=None,
) -> Tuple[np.ndarray, int]:
    """Decode the frames at ``indices`` (0-based, non-decreasing) as uint8 RGB.

    Returns ``(frames, n_decoded)``: frames of shape (len(indices), H, W, 3),
    resized so that the shorter side is ``short_side`` (if given), and how
    many of the requested indices were really decoded. A frame index may
    repeat (when the target fps exceeds the source fps). If the file ends
    early (a truncated file, or a manifest frame count that is too high), the
    last decoded frame fills the rest and ``n_decoded < len(indices)`` tells
    the caller; ``VideoError`` is raised only if no frame could be decoded.

    ``size`` (width, height) replaces ``short_side`` with an exact output size;
    ``pixel_format="gray"`` gives (len(indices), H, W) luma frames (what motion
    measures and face detection read); ``interpolation``: swscale's
    (``av.video.reformatter.Interpolation``; default PyAV's bilinear).
    """
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) == 0:
        raise ValueError("no frame indices requested")
    if np.any(np.diff(indices) < 0):
        raise ValueError("frame indices must be non-decreasing")
    out = None
    filled = 0
    with _open(path) as container:
        stream = _video_stream(container, path)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate:
            raise VideoError(f"{path}: video stream has no frame rate")
        fps = Fraction(rate)
        tb = stream.time_base
        start_pts = stream.start_time or 0
        first_wanted = int(indices[0])
        reformatter = VideoReformatter()
        try:
            # Seeking only pays off far from the start; decoding a few GOPs is cheaper than a seek.
            # (inside the try: a file corrupt past its header can fail here too, and must say which file)
            if first_wanted > 2 * fps:
                target_pts = start_pts + int(first_wanted / fps / tb)
                container.seek(target_pts, stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                idx = round((frame.pts - start_pts) * tb * fps)
                if idx < indices[filled]:
                    continue
                if out is None:
                    size = size or resized_shape(frame.width, frame.height, short_side)
                    channels = () if pixel_format == "gray" else (3,)
                    out = np.empty((len(indices), size[1], size[0]) + channels, dtype=np.uint8)
                rgb = reformatter.reformat(
                    frame, format=pixel_format, width=size[0], height=size[1], interpolation=interpolation
                ).to_ndarray()
                # a decoded frame serves every requested index up to its own
                while filled < len(indices) and indices[filled] <= idx:
                    out[filled] = rgb
                    filled += 1
                if filled == len(indices):
                    break
        except av.error.FFmpegError as e:
            if filled == 0:
                raise VideoError(f"{path}: decoding failed ({e})") from e
    if filled == 0:
        raise VideoError(f"{path}: no frame could be decoded at indices {indices[0]}..{indices[-1]}")
    n_decoded = filled
    if filled < len(indices):
        out[filled:] = out[filled - 1]
    return out, n_decoded
