"""Writing a synthetic corpus's OpenPose keypoints in How2Sign's layout.

How2Sign's keypoints follow its *pre-cut clips*, which were cut at the
original (not the realigned) timestamps; so do these:

- clip layout (:mod:`.corpus`): one folder per clip, covering all its frames;
- full-video layout (:mod:`.full_videos`): one folder per sentence with a
  video (good rows, ``end_past_video_end`` and ``empty_caption`` rows; not
  ``missing_video`` rows), covering the frames of its original START..END span
  of its full video (:mod:`.original_timestamps`).

Frames are numbered from 0 within the clip; the files are
``<out>/keypoints/<split>/json/<SENTENCE_NAME>/<SENTENCE_NAME>_<frame:012d>_keypoints.json``
(:mod:`.openpose`). The keypoints of a frame are computed by the style from
the very plan its video frame is rendered from (``style.keypoints(plan)``),
so they follow the video; detector noise (:mod:`.keypoint_noise`) is optional.

Re-running is cheap: a sentence folder that exists is kept (folders are
written under a temporary name and renamed, so an existing one is complete).
``keypoints/synthetic_settings.json`` records the settings the folders were
written with; writing into a folder made with other settings is refused
instead of mixing the two.

:func:`keypoints_only` writes the keypoints of a corpus already rendered
(same arguments and seed) without rendering a frame: it re-plans the corpus,
checks that the planned CSVs equal the ones on disk, and writes the
keypoints (and, for the full layout, the original-timestamp CSVs).
"""

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from . import openpose as op
from .keypoint_noise import OFF, DetectorNoise, apply, noise_rng

SETTINGS_NAME = "synthetic_settings.json"
CONVENTIONS = {
    "format": "OpenPose 1.3 JSON, one file per frame: BODY_25 (25 points), face (70), "
    "left and right hand (21 each); x, y, confidence",
    "coordinates": "pixels of the rendered frame (the full video's frame for the full layout), pixel centres at integers",
    "undetected": "0, 0, 0 (points outside the frame, legs and feet, hands not drawn)",
    "hands": "hand_left = the person's own left hand (on the image's right when facing the camera), "
    "as OpenPose names them",
    "frames": "numbered from 0 within each clip; full layout: the original START..END span of the sentence's video",
}


class KeypointCorpusError(ValueError):
    """The keypoints cannot be written as asked (other settings, or no matching corpus)."""


@dataclass
class KeypointSummary:
    root: Path
    clips: Dict[str, int]  # keypoint clips (sentence folders) per split
    frames: int
    written: int
    kept: int
    seconds: float
    noise: bool

    def __str__(self):
        per_split = ", ".join(f"{s}={n}" for s, n in self.clips.items())
        noise = "with detector noise" if self.noise else "exact (no detector noise)"
        return (
            f"keypoints in {self.root / op.KEYPOINT_DIR}: clips {per_split}; {self.frames} frames, {noise}; "
            f"wrote {self.written}, kept {self.kept} existing; {self.seconds:.1f} s"
        )


# --------------------------------------------------------------------------- settings


def settings(layout: str, style, seed: int, fps: int, noise: DetectorNoise, corpus: dict) -> dict:
    """What the keypoints depend on (written to ``keypoints/synthetic_settings.json``)."""
    doc = dict(
        layout=layout,
        style=repr(style),
        seed=int(seed),
        fps=int(fps),
        noise=noise.as_dict(),
        corpus=corpus,
        conventions=CONVENTIONS,
    )
    return json.loads(json.dumps(doc))  # tuples -> lists: comparable with what is read back


def claim_settings(root, wanted: dict) -> None:
    """Record the settings, or refuse if the folder holds keypoints written with other ones."""
    path = Path(root) / op.KEYPOINT_DIR / SETTINGS_NAME
    if path.is_file():
        found = json.loads(path.read_text(encoding="utf-8"))
        if found != wanted:
            diff = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
            raise KeypointCorpusError(
                f"{path.parent} holds keypoints written with other settings (differing: {', '.join(diff)}); "
                "remove it or write to another --out"
            )
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(wanted, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- jobs

# a keypoint clip: (split, SENTENCE_NAME, first frame, end frame exclusive) of a plan's frames
Span = Tuple[str, str, int, int]
# ("clip", (split, index, words), None, ...) plans one clip in the worker;
# ("video", full-video plan, spans, ...) cuts the given spans out of one full video
_Job = Tuple[str, object, Optional[List[Span]], object, int, DetectorNoise, str]


def _keypoint_job(job: _Job) -> List[Tuple[str, int, bool]]:
    """Write the keypoint clips of one clip or one full video; returns (split, frames, written) each."""
    from .corpus import clip_names, plan_sample

    kind, source, spans, style, seed, noise, root = job
    if kind == "clip":
        split, index, words = source
        plan = plan_sample(words, seed, split, index, style=style)
        spans = [(split, clip_names(split, index)["SENTENCE_NAME"], 0, plan.n_frames)]
    else:
        plan = source
    todo = [s for s in spans if not op.sentence_dir(root, s[0], s[1]).is_dir()]
    points = style.keypoints(plan) if todo else None
    for split, name, f0, f1 in todo:
        clip, person = apply(noise, points[f0:f1], noise_rng(seed, split, name), plan.width, plan.height)
        op.write_sentence(root, split, name, clip, person)
    return [(s[0], s[3] - s[2], s in todo) for s in spans]


def _run(root, jobs: Sequence[_Job], noise: DetectorNoise, workers: int, progress: bool, what: str) -> KeypointSummary:
    from .corpus import SPLITS, run_jobs

    start = time.time()
    # temporary folders left by an interrupted run (killed before it could remove them)
    for stale in (Path(root) / op.KEYPOINT_DIR).glob(f"*/{op.JSON_DIR}/.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    clips = {s: 0 for s in SPLITS}
    frames = written = kept = 0
    for results in run_jobs(_keypoint_job, jobs, workers, 4, what, progress):
        for split, n, was_written in results:
            clips[split] += 1
            frames += n
            written += int(was_written)
            kept += int(not was_written)
    return KeypointSummary(Path(root), clips, frames, written, kept, time.time() - start, noise.enabled)


def write_clip_keypoints(
    root,
    captions: Dict[str, List[List[str]]],
    seed: int,
    style,
    fps: int,
    corpus: dict,
    noise: DetectorNoise = OFF,
    workers: int = 2,
    progress: bool = False,
) -> KeypointSummary:
    """Keypoints of every clip of the clip layout (``captions``: split -> the split's sentences;
    ``corpus``: the corpus arguments, recorded with the settings)."""
    claim_settings(root, settings("clips", style, seed, fps, noise, corpus))
    jobs = [
        ("clip", (split, i, words), None, style, seed, noise, str(root))
        for split, split_captions in captions.items()
        for i, words in enumerate(split_captions)
    ]
    return _run(root, jobs, noise, workers, progress, "keypoint clips")


def full_layout_spans(layout) -> List[Tuple[object, List[Span]]]:
    """(full-video plan, its keypoint spans) of every rendered video of a planned full layout:
    one span per sentence, its original START..END frames (``assign_original_spans``)."""
    from .full_videos import sentence_names

    out = []
    for video in layout.videos:
        if video.plan is None:  # a missing video: no frames, no keypoints
            continue
        spans = [
            (
                video.split,
                sentence_names(video.VIDEO_ID, k)["SENTENCE_NAME"],
                seg.original_start_frame,
                seg.original_end_frame,
            )
            for k, seg in enumerate(video.segments)
        ]
        out.append((video.plan, spans))
    return out


def write_full_keypoints(
    root, layout, seed: int, corpus: dict, noise: DetectorNoise = OFF, workers: int = 2, progress: bool = False
) -> KeypointSummary:
    """Keypoints of every sentence with a video of a planned full layout (:class:`~.full_videos.FullLayout`;
    ``corpus``: the corpus arguments, recorded with the settings)."""
    claim_settings(root, settings("full", layout.style, seed, layout.fps, noise, corpus))
    jobs = [("video", plan, spans, layout.style, seed, noise, str(root)) for plan, spans in full_layout_spans(layout)]
    return _run(root, jobs, noise, workers, progress, "videos' keypoints")


# --------------------------------------------------------------------------- keypoints only


def check_csvs(expected: Dict[Path, Tuple[List[dict], Sequence[str]]]) -> None:
    """Each CSV must exist and equal, byte for byte, what the plan writes (rows, columns)."""
    from .corpus import _write_csv

    with tempfile.TemporaryDirectory() as tmp:
        for path, (rows, columns) in expected.items():
            if not path.is_file():
                raise KeypointCorpusError(
                    f"{path} not found: --keypoints-only needs a corpus rendered with the same arguments and seed "
                    "(render it first, or render with --keypoints)"
                )
            mine = Path(tmp) / path.name
            _write_csv(mine, rows, columns)
            if mine.read_bytes() != path.read_bytes():
                raise KeypointCorpusError(
                    f"{path} differs from the corpus these arguments plan: it was rendered with other arguments or "
                    "another seed (pass the ones it was rendered with)"
                )


def keypoints_only(
    out,
    layout: str = "clips",
    n_train: int = 1500,
    n_val: int = 100,
    n_test: int = 200,
    seed: int = 1,
    size: int = 64,
    fps: int = 25,
    workers: int = 2,
    progress: bool = False,
    style="simple",
    frame_size: Optional[Tuple[int, int]] = None,
    words_per_sentence: Optional[Tuple[int, int]] = None,
    sentences_per_video: Optional[Tuple[int, int]] = None,
    broken_rows: bool = True,
    noise: DetectorNoise = OFF,
) -> KeypointSummary:
    """The keypoints of a corpus already rendered into ``out`` with these arguments, without
    rendering or encoding a frame (arguments as for :func:`~.corpus.render_corpus` and
    :func:`~.full_videos.render_full_videos`)."""
    from .corpus import CLIP_CSV_TEMPLATE, CSV_COLUMNS, SPLITS, check_size_and_fps, clip_rows, plan_sample
    from .full_videos import CSV_TEMPLATE, SENTENCES_PER_VIDEO, plan_full_corpus, write_original_csvs
    from .grammar import sample_splits
    from .styles import resolve_style

    out = Path(out)
    raw = out / "raw"
    if layout == "full":
        spv = tuple(sentences_per_video or SENTENCES_PER_VIDEO)
        planned = plan_full_corpus(
            n_train, n_val, n_test, seed, size, fps, spv, broken_rows, style, frame_size, words_per_sentence
        )
        check_csvs({raw / CSV_TEMPLATE.format(split=s): (planned.rows[s], CSV_COLUMNS) for s in SPLITS})
        corpus = dict(n_train=n_train, n_val=n_val, n_test=n_test, sentences_per_video=spv, broken_rows=broken_rows)
        write_original_csvs(raw, planned)
        return write_full_keypoints(out, planned, seed, corpus, noise, workers, progress)
    if layout != "clips":
        raise ValueError(f"unknown layout {layout!r}; choose clips or full")
    if sentences_per_video is not None:
        raise ValueError("sentences_per_video only applies to the full layout")
    check_size_and_fps(size, fps)
    style = resolve_style(style, size, frame_size, words_per_sentence)
    captions = dict(zip(SPLITS, sample_splits(n_train, n_val, n_test, seed, grammar=style.grammar)))
    n_frames = {
        (split, i): plan_sample(words, seed, split, i, style=style).n_frames
        for split in SPLITS
        for i, words in enumerate(captions[split])
    }
    check_csvs(
        {raw / CLIP_CSV_TEMPLATE.format(split=s): (clip_rows(s, captions[s], n_frames, fps), CSV_COLUMNS) for s in SPLITS}
    )
    corpus = dict(n_train=n_train, n_val=n_val, n_test=n_test)
    return write_clip_keypoints(out, captions, seed, style, fps, corpus, noise, workers, progress)
