"""Cutting the sentences of one full video into clips with PyAV.

One call (:func:`cut_group`) handles a group of sentences of the same video,
so the video is opened once and each sentence is reached by seeking.

* **Stream copy** when nothing about the pictures changes (no resize, no frame
  rate change, no blurring, no signer crop) and the cut is exact: the first frame is a
  keyframe and the packets up to the last frame reference nothing after it.
  Otherwise the clip is **decoded and re-encoded** (libx264, yuv420p, CRF).
* Frame ``k`` of a clip shows the source frame nearest to ``START + k / fps``;
  a clip has ``round((END - START) * fps)`` frames, the same for both paths.
* END past the end of the video (a known How2Sign defect) is clamped to the
  video's end; what remains must last ``min_duration`` or the row is dropped.
* A clip is written to a temporary name in its own folder and renamed when
  complete (``os.replace`` is atomic), so an interrupted run never leaves a
  partial clip under the final name; stale temporary files are removed.
* **Signer crop** (``signer_crop``, see ``signer_crop.py``): two passes over
  the clip's frames. The first decodes them and converts every
  ``detect_every``-th one, in grey at the detector's reduced size, for face
  detection, which gives the clip's one square box (in source pixels); the
  second converts each frame at the scale that makes the box ``crop_size``
  pixels (never above the source size), blurs faces there if asked (on the
  whole frame, before cropping, so a face cut by the box edge is still found
  and blurred), crops the box (padding what lies outside the frame) and
  encodes it. Decoding twice is cheaper than holding a clip's decoded frames.
* A finished clip records, in its mp4 ``comment`` tag, the START/END and the
  settings it was made with (and its clamp and face counts and crop box, for
  the report).
  A later run reuses it only if that record matches and the file probes fine.
* Only compressed packets of the current clip are held in memory, never
  decoded frames beyond the one being converted.
"""

import glob
import json
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Sequence

import av
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

from ..corpus.video_io import VideoError, probe_video
from .report import COPIED, ENCODED, EXISTING

if TYPE_CHECKING:  # signer_crop needs OpenCV: imported only when a signer crop is asked for
    from .signer_crop import CropBox, SignerCropSettings

DROPPED_STATUS = "dropped"
TOOL_TAG = "ssvp-prep/1"  # bump when the meaning of the record changes
TEMP_MARK = ".tmp-"  # <name>.mp4.tmp-<pid>: never matches *.mp4

# reasons for dropping a row (counted in the report)
MISSING_VIDEO = "missing video"
UNREADABLE_VIDEO = "unreadable video"
NO_VIDEO_STREAM = "no video stream"
STARTS_AFTER_END = "START past video end"
TOO_SHORT = "too short"
TRUNCATED_VIDEO = "truncated video"  # the file holds fewer frames than its header says
CUT_FAILED = "cut failed"
# for kept rows
END_CLAMPED = "END past video end"


@dataclass(frozen=True)
class CutSettings:
    short_side: Optional[int] = None  # scale so the shorter side is this (even sizes, aspect kept)
    fps: Optional[float] = None  # resample to this frame rate
    blur_faces: bool = False
    crf: int = 18
    preset: str = "veryfast"
    allow_copy: bool = True  # False: always re-encode
    min_duration: float = 0.2  # seconds; shorter clips are dropped
    threads: int = 1  # codec threads per worker process
    # makes a blurrer (FaceBlurrer API); None: ssvp_slt.prep.face_blur.FaceBlurrer, imported on first use
    blur_factory: Optional[Callable[[], Any]] = None
    # crop a square box around the signer and resize it to crop_size x crop_size (never stream-copied)
    signer_crop: Optional["SignerCropSettings"] = None

    @property
    def crop_size(self) -> int:
        """Side of signer-cropped clips: short_side (default 256), made even for yuv420p."""
        from .signer_crop import DEFAULT_CROP_SIZE

        return max(2, int(round((self.short_side or DEFAULT_CROP_SIZE) / 2)) * 2)

    def content_key(self) -> dict:
        """The settings a finished clip must have been made with to be reused."""
        key = {
            "short_side": self.short_side,
            "fps": self.fps,
            "blur_faces": self.blur_faces,
            "crf": self.crf,
            "preset": self.preset,
            "allow_copy": self.allow_copy,
        }
        if self.signer_crop is not None:  # only when set: clips made before this option stay valid
            key["signer_crop"] = {**self.signer_crop.content_key(), "size": self.crop_size}
        return key


@dataclass(frozen=True)
class ClipJob:
    key: Any  # the caller's id for the row
    name: str
    start: float  # seconds from the start of the video, as in the CSV
    end: float
    path: str  # final clip path


@dataclass
class ClipResult:
    key: Any
    status: str  # COPIED, ENCODED, EXISTING or DROPPED_STATUS
    n_frames: int = 0
    fps: float = 0.0
    reason: str = ""  # why it was dropped
    message: str = ""
    clamped: Optional[str] = None  # message when END was clamped to the video's end
    faces: Optional[dict] = None  # FaceBlurrer.stats summed over the clip
    width: int = 0  # frame size of the clip as written (from the probe that checks it)
    height: int = 0
    crop: Optional[dict] = None  # CropBox.to_dict() of a signer-cropped clip

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps if self.fps else 0.0


class _Drop(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class _Timing:
    time_base: Fraction
    start_pts: int
    rate: Fraction  # average frame rate
    duration: float  # seconds; inf when the container does not say

    def seconds(self, pts: int) -> float:
        return float((pts - self.start_pts) * self.time_base)

    def index(self, pts: int) -> int:
        return round((pts - self.start_pts) * self.time_base * self.rate)

    def pts_of_index(self, i: int) -> int:
        return self.start_pts + round(Fraction(i) / self.rate / self.time_base)


def _timing(container, stream, path) -> _Timing:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate:
        raise _Drop(UNREADABLE_VIDEO, f"{path}: video stream has no frame rate")
    tb = stream.time_base
    if stream.duration:
        duration = float(stream.duration * tb)
    elif container.duration:
        duration = container.duration / av.time_base
    elif stream.frames:
        duration = stream.frames / float(rate)
    else:
        duration = math.inf  # found out at the end of the stream
    return _Timing(time_base=tb, start_pts=stream.start_time or 0, rate=Fraction(rate), duration=duration)


def output_size(width: int, height: int, short_side: Optional[int]):
    """(width, height) of re-encoded clips: even (yuv420p needs it), aspect kept."""

    def even(x):
        return max(2, int(round(x / 2)) * 2)

    if not short_side:
        return width - width % 2 or 2, height - height % 2 or 2
    scale = short_side / min(width, height)
    return even(width * scale), even(height * scale)


def temp_path(final: str) -> str:
    # same folder as the final file, so os.replace is an atomic rename on the same filesystem
    return f"{final}{TEMP_MARK}{os.getpid()}"


def _publish(tmp: str, final: str) -> None:
    """The one point where a finished clip appears under its final name (atomic rename)."""
    os.replace(tmp, final)


def remove_stale_temps(final: str) -> int:
    n = 0
    for p in glob.glob(glob.escape(final) + TEMP_MARK + "*"):
        try:
            os.unlink(p)
            n += 1
        except OSError:
            pass
    return n


def _record(job: ClipJob, settings: CutSettings, method: str, clamped=None, faces=None, crop=None) -> str:
    record = {
        "tool": TOOL_TAG,
        "start": job.start,
        "end": job.end,
        "settings": settings.content_key(),
        "method": method,
        "clamped": clamped,
        "faces": faces,
    }
    if crop is not None:
        record["crop"] = crop
    return json.dumps(record, sort_keys=True)


def existing_clip(job: ClipJob, settings: CutSettings) -> Optional[ClipResult]:
    """The finished clip of ``job`` if it exists, is not empty, probes fine and was made
    from the same START/END with the same settings; else None (it is redone)."""
    try:
        if os.path.getsize(job.path) == 0:
            return None
        with av.open(job.path) as c:
            record = json.loads(c.metadata.get("comment") or "{}")
        if (
            record.get("tool") != TOOL_TAG
            or record.get("start") != job.start
            or record.get("end") != job.end
            or record.get("settings") != settings.content_key()
        ):
            return None
        info = probe_video(job.path)
    except Exception:  # missing, unreadable, not ours: redo it
        return None
    return ClipResult(
        key=job.key,
        status=EXISTING,
        n_frames=info.n_frames,
        fps=info.fps,
        clamped=record.get("clamped"),
        faces=record.get("faces"),
        width=info.width,
        height=info.height,
        crop=record.get("crop"),
    )


def nearest_index(t: float, rate) -> int:
    """Index of the frame nearest to time ``t`` (exact ties: the earlier frame)."""
    return math.ceil(t * float(rate) - 0.5 - 1e-9)


def _seek(container, stream, pts: int) -> None:
    # backward to the keyframe at or before pts; PyAV flushes the decoder
    container.seek(max(pts, stream.start_time or 0), stream=stream, backward=True, any_frame=False)


def _packets_for_copy(container, stream, timing: _Timing, first: int, n_frames: int):
    """The packets of source frames first..first+n_frames-1 if they can be copied as is, else None."""
    end = first + n_frames
    _seek(container, stream, timing.pts_of_index(first))
    packets = []
    for p in container.demux(stream):
        if p.size == 0 or p.pts is None:
            continue  # the flush packet at the end; a packet without pts cannot be placed
        if not packets and not (p.is_keyframe and timing.index(p.pts) == first):
            return None  # START is not on a keyframe: the first frame would need earlier packets
        if timing.index(p.dts if p.dts is not None else p.pts) >= end:
            break  # decode order is past END, and pts >= dts, so nothing later is wanted
        packets.append(p)
    indices = [timing.index(p.pts) for p in packets]
    last = max((j for j, i in enumerate(indices) if i < end), default=-1)
    # with B-frames, a frame after END may be needed as a reference: then copying is not exact
    if sorted(indices[: last + 1]) != list(range(first, end)):
        return None
    return packets[: last + 1]


def _source_frames(container, stream, timing: _Timing, start: float, errors: list):
    """(seconds, frame) of the decoded frames from the keyframe at or before START.

    A decoding error ends the stream here and is appended to ``errors``: the
    caller decides whether the frames it got are enough."""
    _seek(container, stream, timing.pts_of_index(math.floor(start * timing.rate) - 1))
    frames = container.decode(stream)
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            return
        except av.error.FFmpegError as e:  # truncated or damaged file
            errors.append(e)
            return
        if frame.pts is not None:
            yield timing.seconds(frame.pts), frame


def _resample(frames, start: float, n_out: int, out_rate: float, source_frame: float):
    """For k = 0..n_out-1, the source frame nearest to START + k / out_rate (one frame held)."""
    k = 0
    prev, prev_t = None, None
    for t, frame in frames:
        # "<=": a slot exactly between two frames takes the earlier one, as nearest_index does
        while prev is not None and k < n_out and start + k / out_rate <= (prev_t + t) / 2 + 1e-9:
            yield prev
            k += 1
        if k >= n_out:
            return
        prev, prev_t = frame, t
    # the stream ended: its last frame still serves the slots within its own display time
    while prev is not None and k < n_out and start + k / out_rate < prev_t + source_frame - 1e-9:
        yield prev
        k += 1


_BLURRERS: dict = {}  # blur_factory -> blurrer: one per worker process (loading the detector is not free)


def _blurrer(settings: CutSettings):
    """This process's blurrer; the caller resets it for every clip, so its state never spans clips."""
    key = settings.blur_factory
    if key not in _BLURRERS:
        if settings.blur_factory is not None:
            _BLURRERS[key] = settings.blur_factory()
        else:
            from .face_blur import FaceBlurrer  # lazy: OpenCV is only needed with --blur-faces

            _BLURRERS[key] = FaceBlurrer()
    return _BLURRERS[key]


_FINDERS: dict = {}  # SignerCropSettings -> SignerBoxFinder: one per worker process and settings


def _finder(settings: CutSettings):
    key = settings.signer_crop
    if key not in _FINDERS:
        from .signer_crop import SignerBoxFinder  # lazy: OpenCV is only needed with a signer crop

        _FINDERS[key] = SignerBoxFinder(key)
    return _FINDERS[key]


def _signer_box(container, stream, timing, start, n_out, out_rate: Fraction, settings: CutSettings) -> "CropBox":
    """First pass of a signer crop: decode the clip's frames, detect faces on every detect_every-th
    one (converted straight to grey at the detector's working size), return the clip's box.
    A decoding error just ends the pass: the encoding pass meets it again and reports it."""
    src_w, src_h = stream.codec_context.width, stream.codec_context.height
    finder = _finder(settings)
    finder.reset()
    scale = finder.detector.detection_scale(src_w, src_h)
    det_w, det_h = max(1, round(src_w * scale)), max(1, round(src_h * scale))
    last_wanted = (max(1, n_out) - 1) // finder.settings.detect_every * finder.settings.detect_every
    reformatter = VideoReformatter()
    frames = _source_frames(container, stream, timing, start, [])
    for k, frame in enumerate(_resample(frames, start, n_out, float(out_rate), float(1 / timing.rate))):
        if finder.wants(k):
            grey = reformatter.reformat(frame, format="gray", width=det_w, height=det_h, interpolation=Interpolation.AREA)
            finder.add(grey.to_ndarray(), scale=det_w / src_w)
        if k >= last_wanted:
            break  # the rest of the clip is never looked at: do not decode it
    return finder.box(src_w, src_h)


def _encode(out, container, stream, timing, start, n_out, out_rate: Fraction, settings: CutSettings, crop=None):
    """Decode, convert (resize or signer crop, blur) and encode; returns (packets, frames written,
    face stats, decoding errors)."""
    src_w, src_h = stream.codec_context.width, stream.codec_context.height
    if crop is not None:
        from .signer_crop import crop_and_resize

        width = height = settings.crop_size
        # frames are converted at the scale that makes the box crop_size wide (never upscaled: a
        # small box is cropped at source size, then enlarged), blurred whole, then cropped
        work = min(1.0, width / crop.side)
        work_w, work_h = max(1, round(src_w * work)), max(1, round(src_h * work))
    else:
        width, height = output_size(src_w, src_h, settings.short_side)
    enc = out.add_stream("libx264", rate=out_rate)
    enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
    enc.options = {"crf": str(settings.crf), "preset": settings.preset}
    enc.codec_context.thread_count = settings.threads
    frame_tb = 1 / out_rate
    blurrer = None
    if settings.blur_faces:
        blurrer = _blurrer(settings)
        blurrer.reset()
    reformatter = VideoReformatter()
    packets = []
    n = 0
    errors = []
    frames = _source_frames(container, stream, timing, start, errors)
    for frame in _resample(frames, start, n_out, float(out_rate), float(1 / timing.rate)):
        if crop is not None:
            rgb = reformatter.reformat(frame, format="rgb24", width=work_w, height=work_h, interpolation=Interpolation.AREA)
            rgb = rgb.to_ndarray()
            if blurrer is not None:
                rgb = blurrer(rgb)
            out_frame = av.VideoFrame.from_ndarray(crop_and_resize(rgb, crop, width), format="rgb24")
        elif blurrer is not None:
            rgb = reformatter.reformat(frame, format="rgb24", width=width, height=height, interpolation=Interpolation.AREA)
            rgb = np.ascontiguousarray(blurrer(rgb.to_ndarray()))
            out_frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        else:
            out_frame = reformatter.reformat(frame, format="yuv420p", width=width, height=height, interpolation=Interpolation.AREA)
        out_frame.pts, out_frame.time_base = n, frame_tb
        packets.extend(enc.encode(out_frame))
        n += 1
    packets.extend(enc.encode())
    faces = dict(blurrer.stats) if blurrer is not None else None
    return packets, n, faces, errors


def _cut_one(container, stream, timing: _Timing, job: ClipJob, settings: CutSettings, video_path) -> ClipResult:
    source_frame = float(1 / timing.rate)
    start, end = job.start, job.end
    if start >= timing.duration - source_frame / 2:
        raise _Drop(STARTS_AFTER_END, f"START {start:g} s is at or past the end of {video_path} ({timing.duration:.3f} s)")
    clamped = None
    if end > timing.duration + source_frame / 2:
        clamped = f"END {end:g} s is past the end of {video_path} ({timing.duration:.3f} s); clamped to the video's end"
        end = timing.duration
    if end - start < settings.min_duration:
        after = " after clamping END to the video's end" if clamped else ""
        raise _Drop(TOO_SHORT, f"clip of {end - start:.3f} s{after}, shorter than the minimum {settings.min_duration:g} s")

    src_w, src_h = stream.codec_context.width, stream.codec_context.height
    out_rate = Fraction(settings.fps).limit_denominator(1001) if settings.fps else timing.rate
    n_out = math.floor((end - start) * out_rate + 0.5)
    # a copy keeps the source's pictures: only allowed when nothing asks to change them
    same_pictures = (
        not settings.blur_faces
        and settings.signer_crop is None
        and (not settings.short_side or output_size(src_w, src_h, settings.short_side) == (src_w, src_h))
        and (not settings.fps or abs(float(out_rate) - float(timing.rate)) < 1e-3)
    )
    packets = None
    if settings.allow_copy and same_pictures:
        packets = _packets_for_copy(container, stream, timing, nearest_index(start, timing.rate), n_out)

    tmp = temp_path(job.path)
    os.makedirs(os.path.dirname(job.path) or ".", exist_ok=True)
    out = av.open(tmp, "w", format="mp4")
    try:
        crop_record = None
        if packets is not None:
            method, faces, n_written = COPIED, None, len(packets)
            copy = out.add_stream_from_template(stream)
            out.metadata["comment"] = _record(job, settings, "copy", clamped)
            base = packets[0].pts
            for p in packets:
                p.pts -= base
                if p.dts is not None:
                    p.dts -= base
                p.stream = copy
                out.mux(p)
        else:
            method = ENCODED
            crop = None
            if settings.signer_crop is not None:
                crop = _signer_box(container, stream, timing, start, n_out, out_rate, settings)
            enc_packets, n_written, faces, errors = _encode(out, container, stream, timing, start, n_out, out_rate, settings, crop)
            if n_written < n_out and errors:  # an incomplete clip would not match its caption
                at = f" after {start + n_written / float(out_rate):.3f} s" if n_written else ""
                raise _Drop(UNREADABLE_VIDEO, f"{video_path}: decoding failed{at} (truncated or damaged file? {errors[0]})")
            if n_written == 0:
                raise _Drop(
                    TRUNCATED_VIDEO,
                    f"no frame of {video_path} decoded between {start:g} s and {end:g} s, although the file "
                    f"claims {timing.duration:.3f} s (truncated?)",
                )
            if n_written < n_out:  # the stream ended before the container's duration said
                real_end = start + n_written / float(out_rate)
                clamped = f"{video_path} ends at {real_end:.3f} s, before END {job.end:g} s; clamped to the video's end"
                if n_written / float(out_rate) < settings.min_duration:
                    raise _Drop(TOO_SHORT, f"clip of {n_written / float(out_rate):.3f} s after clamping END, shorter than the minimum")
            # the record is written with the header, which waits for the first packet: all facts are known now
            crop_record = crop.to_dict() if crop is not None else None
            out.metadata["comment"] = _record(job, settings, "encode", clamped, faces, crop_record)
            for p in enc_packets:
                out.mux(p)
        out.close()
        info = probe_video(tmp)  # what the manifest says must be what the file holds
        _publish(tmp, job.path)
    except BaseException:
        try:
            out.close()
        except Exception:
            pass
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return ClipResult(
        key=job.key, status=method, n_frames=info.n_frames, fps=info.fps, clamped=clamped, faces=faces,
        width=info.width, height=info.height, crop=crop_record,
    )


def _drop_all(jobs, reason, message) -> List[ClipResult]:
    return [ClipResult(key=j.key, status=DROPPED_STATUS, reason=reason, message=message) for j in jobs]


def cut_group(video_path: str, jobs: Sequence[ClipJob], settings: CutSettings) -> List[ClipResult]:
    """Cut ``jobs`` (sentences of one video) from ``video_path``; one result per job, never raises
    for a bad video or row (only for KeyboardInterrupt and the like)."""
    results, todo = [], []
    for job in jobs:
        remove_stale_temps(job.path)  # left by an interrupted run
        done = existing_clip(job, settings)
        if done is not None:
            results.append(done)
        else:
            todo.append(job)
    if not todo:
        return results
    if not os.path.isfile(video_path):
        return results + _drop_all(todo, MISSING_VIDEO, f"video file not found: {video_path}")
    try:
        container = av.open(str(video_path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        return results + _drop_all(todo, UNREADABLE_VIDEO, f"{video_path}: cannot open as a video ({e})")
    with container:
        if not container.streams.video:
            return results + _drop_all(todo, NO_VIDEO_STREAM, f"{video_path}: file has no video stream")
        stream = container.streams.video[0]
        if settings.threads > 1:
            stream.thread_type = "AUTO"
            stream.codec_context.thread_count = settings.threads
        try:
            timing = _timing(container, stream, video_path)
        except _Drop as e:
            return results + _drop_all(todo, e.reason, str(e))
        for job in sorted(todo, key=lambda j: j.start):  # forward through the file
            try:
                results.append(_cut_one(container, stream, timing, job, settings, video_path))
            except _Drop as e:
                results.append(ClipResult(key=job.key, status=DROPPED_STATUS, reason=e.reason, message=str(e)))
            except (av.error.FFmpegError, VideoError) as e:
                msg = f"{video_path}: decoding or writing {job.name} failed ({e})"
                results.append(ClipResult(key=job.key, status=DROPPED_STATUS, reason=UNREADABLE_VIDEO, message=msg))
            except Exception as e:  # a bug or an unexpected file: report the row, keep going
                msg = f"cutting {job.name} from {video_path} failed ({type(e).__name__}: {e})"
                results.append(ClipResult(key=job.key, status=DROPPED_STATUS, reason=CUT_FAILED, message=msg))
    return results


def cut_group_task(task) -> List[ClipResult]:
    """multiprocessing entry point: ``task`` is (video_path, jobs, settings)."""
    return cut_group(*task)
