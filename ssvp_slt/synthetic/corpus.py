"""Rendering a synthetic corpus as real H.264 mp4 files in the How2Sign layout.

Layout written under ``out``::

    raw/clips/<SENTENCE_NAME>.mp4
    raw/how2sign_train.csv
    raw/how2sign_val.csv
    raw/how2sign_test.csv

The CSVs are tab-separated with How2Sign's header. One sentence per
"video": VIDEO_ID ``syn_<split>_00042``, VIDEO_NAME ``<VIDEO_ID>-rgb_front``,
SENTENCE_ID ``<VIDEO_ID>_0``, SENTENCE_NAME ``<VIDEO_ID>_0-rgb_front`` (the
mp4's stem). SENTENCE is the caption like How2Sign writes it ("The big dog
sees a ball.").

Each sample's randomness derives from ``(seed, split, index)``, so the output
does not depend on the number of workers. Existing non-empty mp4s are kept
(re-running is cheap), and clips are written under a temporary name and then
renamed, so an interrupted run never leaves a partial mp4.

How2Sign's official layout (full multi-sentence videos and realigned CSVs
with each sentence's START/END inside its video) is written by
:func:`ssvp_slt.synthetic.full_videos.render_full_videos`.

What a clip looks like is the ``style``'s business (:mod:`.styles`): the
default ``"simple"`` signer, or the How2Sign-like ``"how2sign"`` one.
"""

import csv
import itertools
import logging
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .grammar import caption_text, sample_splits
from .signer import ClipPlan, plan_sentence
from .styles import resolve_style

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
CSV_COLUMNS = (
    "VIDEO_ID",
    "VIDEO_NAME",
    "SENTENCE_ID",
    "SENTENCE_NAME",
    "START_REALIGNED",
    "END_REALIGNED",
    "SENTENCE",
)
DEFAULT_CRF = 20
CLIP_CSV_TEMPLATE = "how2sign_{split}.csv"


def sample_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of one sample: a function of (seed, split, index) only."""
    return np.random.default_rng([int(seed), _SPLIT_IDS[split], int(index), 104729])


def clip_names(split: str, index: int) -> Dict[str, str]:
    video_id = f"syn_{split}_{index:05d}"
    return {
        "VIDEO_ID": video_id,
        "VIDEO_NAME": f"{video_id}-rgb_front",
        "SENTENCE_ID": f"{video_id}_0",
        "SENTENCE_NAME": f"{video_id}_0-rgb_front",
    }


def plan_sample(words: Sequence[str], seed: int, split: str, index: int, size: int = 64, style=None) -> ClipPlan:
    """The plan of sample ``index`` of ``split``: the simple signer at ``size``, or ``style``'s plan."""
    if style is None:
        return plan_sentence(words, sample_rng(seed, split, index), height=size, width=size)
    return style.plan(words, sample_rng(seed, split, index))


def write_mp4(path, frames, fps: int = 25, crf: int = DEFAULT_CRF, preset: Optional[str] = None) -> Path:
    """Encode RGB frames as H.264 (libx264, yuv420p) mp4, atomically.

    ``frames``: a (T, H, W, 3) uint8 array, or any iterable of (H, W, 3) uint8
    arrays (a generator streams long videos without holding them in memory).
    ``preset``: x264's speed preset (None: libx264's default, "medium").
    """
    import av  # local import: the grammar and signer do not need PyAV

    path = Path(path)
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4:
            raise ValueError(f"expected uint8 RGB frames (T, H, W, 3), got {frames.dtype} {frames.shape}")
        _, h, w, c = frames.shape
        dtype = frames.dtype
        first, rest = None, iter(frames)
    else:
        rest = iter(frames)
        first = next(rest, None)
        if first is None:
            raise ValueError("no frames to write")
        first = np.asarray(first)
        if first.ndim != 3:
            raise ValueError(f"expected uint8 RGB frames (H, W, 3), got {first.dtype} {first.shape}")
        h, w, c = first.shape
        dtype = first.dtype
    if c != 3 or dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB frames (T, H, W, 3), got {dtype} (..., {h}, {w}, {c})")
    if h % 2 or w % 2:
        raise ValueError(f"yuv420p needs even frame sizes, got {w}x{h}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.mp4")
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=int(fps))
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            # One thread: frames are tiny and the pool already uses the cores. No
            # macroblock-tree rate control: on frames this small it makes x264's
            # output vary from run to run; without it encoding is deterministic.
            options = {"crf": str(crf), "threads": "1", "x264-params": "mbtree=0"}
            if preset is not None:
                options["preset"] = str(preset)
            stream.options = options
            stream.codec_context.time_base = Fraction(1, int(fps))
            for i, f in enumerate(rest if first is None else itertools.chain([first], rest)):
                if f.shape != (h, w, 3) or f.dtype != np.uint8:
                    raise ValueError(f"frame {i} is {f.dtype} {f.shape}, expected uint8 {(h, w, 3)}")
                frame = av.VideoFrame.from_ndarray(f, format="rgb24")
                frame.pts = i
                frame.time_base = Fraction(1, int(fps))
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


# --------------------------------------------------------------------------- workers

# (split, index, words, seed, style, fps, crf, mp4 path)
_Job = Tuple[str, int, List[str], int, object, int, int, str]


def _render_job(job: _Job) -> Tuple[str, int, int, bool]:
    """Render one clip if needed; returns (split, index, n_frames, rendered)."""
    split, index, words, seed, style, fps, crf, path = job
    plan = plan_sample(words, seed, split, index, style=style)
    p = Path(path)
    if p.is_file() and p.stat().st_size > 0:
        return split, index, plan.n_frames, False
    write_mp4(p, style.frames(plan), fps=fps, crf=crf, preset=style.encoder_preset)
    return split, index, plan.n_frames, True


def clip_rows(split: str, captions: Sequence[Sequence[str]], n_frames: Dict[Tuple[str, int], int], fps: int) -> List[Dict[str, str]]:
    """The CSV rows of a split of the clip layout (``n_frames[(split, i)]``: clip i's length)."""
    return [
        dict(
            clip_names(split, i),
            START_REALIGNED="0.0",
            END_REALIGNED=f"{n_frames[(split, i)] / fps:.2f}",
            SENTENCE=caption_text(words),
        )
        for i, words in enumerate(captions)
    ]


def _write_csv(path: Path, rows: List[Dict[str, object]], columns: Sequence[str] = CSV_COLUMNS):
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE, escapechar="\\")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row[c] for c in columns])
    os.replace(tmp, path)


@dataclass
class CorpusSummary:
    out: Path
    clips: Dict[str, int]
    total_frames: int
    rendered: int
    skipped: int
    seconds: float
    fps: int
    style: str = "simple"
    keypoints: Optional[object] = None  # a keypoint_corpus.KeypointSummary when keypoints were written

    @property
    def mean_frames(self) -> float:
        n = sum(self.clips.values())
        return self.total_frames / n if n else 0.0

    def __str__(self):
        per_split = ", ".join(f"{s}={n}" for s, n in self.clips.items())
        style = "" if self.style == "simple" else f" ({self.style} style)"
        text = (
            f"synthetic corpus{style} in {self.out}: clips {per_split}; {self.total_frames} frames "
            f"({self.total_frames / self.fps:.1f} s of video, {self.mean_frames:.1f} frames/clip); "
            f"rendered {self.rendered}, kept {self.skipped} existing; {self.seconds:.1f} s"
        )
        return text if self.keypoints is None else f"{text}\n{self.keypoints}"


def check_size_and_fps(size: int, fps: int) -> None:
    if size % 2 or size < 16:
        raise ValueError(f"size must be even and at least 16, got {size}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")


def run_jobs(fn, jobs: Sequence, workers: int, chunksize: int, what: str, progress: bool = False, every: int = 200):
    """Yield ``fn(job)`` for every job (in any order), in ``workers`` processes.

    Each job's randomness comes from its own arguments, so the output does not
    depend on the worker count. Leaving the pool's context terminates the
    workers, also when a job fails.
    """
    start = time.time()
    if workers <= 1:
        results, pool = map(fn, jobs), None
    else:
        pool = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn").Pool(workers)
        results = pool.imap_unordered(fn, jobs, chunksize=chunksize)
    try:
        for k, result in enumerate(results, 1):
            if progress and (k % every == 0 or k == len(jobs)):
                logger.info(f"{k}/{len(jobs)} {what} ({time.time() - start:.1f} s)")
            yield result
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def render_corpus(
    out,
    n_train: int = 1500,
    n_val: int = 100,
    n_test: int = 200,
    seed: int = 1,
    size: int = 64,
    fps: int = 25,
    workers: int = 2,
    crf: int = DEFAULT_CRF,
    progress: bool = False,
    style="simple",
    frame_size: Optional[Tuple[int, int]] = None,
    words_per_sentence: Optional[Tuple[int, int]] = None,
    keypoints: bool = False,
    keypoint_noise=None,
) -> CorpusSummary:
    """Render the whole corpus into ``out`` (How2Sign layout) and return a summary.

    ``style``: ``"simple"`` (``size`` x ``size`` frames), ``"how2sign"``
    (``frame_size`` = (width, height), default 640x360, and
    ``words_per_sentence`` = (min, max)), or a style object (:mod:`.styles`).
    ``keypoints``: also write every clip's OpenPose keypoints under ``out/keypoints``
    (:mod:`.keypoint_corpus`), with ``keypoint_noise`` (a
    :class:`~.keypoint_noise.DetectorNoise`; default none).
    """
    start = time.time()
    check_size_and_fps(size, fps)
    style = resolve_style(style, size, frame_size, words_per_sentence)
    out = Path(out)
    raw = out / "raw"
    clips_dir = raw / "clips"
    clips_dir.mkdir(parents=True, exist_ok=True)

    captions = dict(zip(SPLITS, sample_splits(n_train, n_val, n_test, seed, grammar=style.grammar)))
    jobs: List[_Job] = []
    for split in SPLITS:
        for i, words in enumerate(captions[split]):
            name = clip_names(split, i)["SENTENCE_NAME"]
            jobs.append((split, i, words, seed, style, fps, crf, str(clips_dir / f"{name}.mp4")))

    n_frames: Dict[Tuple[str, int], int] = {}
    rendered = 0
    for split, i, n, was_rendered in run_jobs(_render_job, jobs, workers, 8, "clips", progress):
        n_frames[(split, i)] = n
        rendered += int(was_rendered)

    for split in SPLITS:
        _write_csv(raw / CLIP_CSV_TEMPLATE.format(split=split), clip_rows(split, captions[split], n_frames, fps))

    keypoint_summary = None
    if keypoints:
        from .keypoint_corpus import write_clip_keypoints  # it imports this module
        from .keypoint_noise import OFF

        corpus = dict(n_train=n_train, n_val=n_val, n_test=n_test)
        noise = OFF if keypoint_noise is None else keypoint_noise
        keypoint_summary = write_clip_keypoints(out, captions, seed, style, fps, corpus, noise, workers, progress)

    return CorpusSummary(
        out=out,
        clips={s: len(captions[s]) for s in SPLITS},
        total_frames=sum(n_frames.values()),
        rendered=rendered,
        skipped=len(jobs) - rendered,
        seconds=time.time() - start,
        fps=fps,
        style=style.name,
        keypoints=keypoint_summary,
    )
