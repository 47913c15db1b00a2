"""Rendering the synthetic corpus in How2Sign's *official* layout: full videos + realigned CSVs.

Layout written under ``out``::

    raw/videos/<VIDEO_NAME>.mp4
    raw/how2sign_realigned_train.csv
    raw/how2sign_realigned_val.csv
    raw/how2sign_realigned_test.csv
    raw/how2sign_{train,val,test}.csv   (the original timestamps, see below)
    raw/broken_rows.json

Each full video is one signer (one set of background / skin / shirt colours)
signing several consecutive sentences of one split (``sentences_per_video``,
3 to 6 by default), with a short pause of rest frames (``PAUSE_FRAMES``)
before the first sentence, between sentences and after the last one.

A sentence's frames are exactly the frames the clip layout
(:func:`~ssvp_slt.synthetic.corpus.render_corpus`) draws for it, drawn in
the video's colours: the good sentences of a split are
``sample_splits(n_train, n_val, n_test, seed)`` in order, sentence ``i`` is
planned with ``sample_rng(seed, split, i)`` (the clip layout's generator), so
cutting a video at a row's timestamps gives the clip layout's clip of that
sentence with only the three colours changed (:func:`sentence_plan`).

The CSVs are tab-separated with How2Sign's header. Names follow How2Sign:
VIDEO_ID ``synv00012`` (numbered over train, val, test: unique across
splits), VIDEO_NAME ``synv00012-rgb_front`` (the mp4's stem), SENTENCE_ID
``synv00012_3`` (position in the video, from 0), SENTENCE_NAME
``synv00012_3-rgb_front``. START_REALIGNED / END_REALIGNED are seconds with
2 decimals: frame ``t`` spans ``[t / fps, (t + 1) / fps)`` and a row covers
exactly the frames ``round(START * fps) <= t < round(END * fps)`` of its
sentence (exact for fps <= 50). Rows appear in video order, and within a
video in time order; the good rows of a split appear in caption order.

Like How2Sign, the corpus also has *original* timestamps
(``how2sign_<split>.csv``, columns START / END, row for row the realigned
CSV): the true span moved by a fraction of a second, as How2Sign's pre-cut
clips are (:mod:`.original_timestamps`); the keypoints follow them
(``keypoints=True``, :mod:`.keypoint_corpus`).

Deliberately broken rows (``broken_rows=True``, the default) exercise data
preparation's error handling; every one is listed in ``raw/broken_rows.json``
(a JSON list of objects with at least ``split``, ``SENTENCE_NAME`` and
``kind``). Per split there are ``BROKEN_PER_SPLIT[split]`` of each kind
(fewer for ``end_past_video_end`` if the split has fewer videos):

- ``end_past_video_end``: the last sentence of a video gets END_REALIGNED
  0.5 to 2 s past the video's end (a known How2Sign defect). This is one of
  the requested good sentences, modified: all its frames are in the video,
  so clamping END to the video's duration recovers it (its true end is
  recorded as ``true_end``);
- ``missing_video``: an EXTRA row whose VIDEO_NAME has no mp4 (the video is
  never written);
- ``empty_caption``: an EXTRA row with an empty or whitespace-only SENTENCE.
  Its span is a real signed sentence inserted into a video (never as the
  video's last sentence), so the rows of a video never overlap.

So a split's CSV has ``n_<split>`` good rows (including the
``end_past_video_end`` ones) plus the ``missing_video`` and ``empty_caption``
rows. Captions of broken rows also obey the split rules (no val/test caption
occurs in train).

What the videos look like is the ``style``'s business (:mod:`.styles`): in
the How2Sign-like style a video's *look* is its signer and scene (not just
three colours), and its sentences come from that style's grammar; everything
above holds for every style.

Everything is a function of the arguments (not of the number of workers):
the layout is planned in the main process, workers only render and encode.
Existing non-empty mp4s are kept; mp4s, CSVs and the JSON are written under a
temporary name and renamed.
"""

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from .corpus import _SPLIT_IDS, DEFAULT_CRF, SPLITS, _write_csv, check_size_and_fps, plan_sample, run_jobs, write_mp4
from .grammar import caption_text, sample_sentence, sample_splits
from .original_timestamps import ORIGINAL_COLUMNS, ORIGINAL_CSV_TEMPLATE, assign_original_spans, original_rows
from .signer import ClipPlan
from .styles import SimpleStyle, resolve_style

logger = logging.getLogger(__name__)

VIDEO_DIR = "videos"
CSV_TEMPLATE = "how2sign_realigned_{split}.csv"
BROKEN_JSON = "broken_rows.json"
SENTENCES_PER_VIDEO = (3, 6)
PAUSE_FRAMES = (2, 8)  # extra rest frames before, between and after sentences (each sentence has its own 3-5)

END_PAST_VIDEO_END = "end_past_video_end"
MISSING_VIDEO = "missing_video"
EMPTY_CAPTION = "empty_caption"
BROKEN_KINDS = (END_PAST_VIDEO_END, MISSING_VIDEO, EMPTY_CAPTION)
BROKEN_PER_SPLIT = {"train": 3, "val": 1, "test": 1}  # of each kind
END_PAST_SECONDS = (0.5, 2.0)
EMPTY_CAPTIONS = ("", "   ")  # alternated

# salts of the independent random streams
_GROUP_SALT = 31337
_VIDEO_SALT = 15485863
_BROKEN_SALT = 2718281
_EXTRA_SALT = 1618033


def video_names(number: int) -> Dict[str, str]:
    video_id = f"synv{number:05d}"
    return {"VIDEO_ID": video_id, "VIDEO_NAME": f"{video_id}-rgb_front"}


def sentence_names(video_id: str, position: int) -> Dict[str, str]:
    return {"SENTENCE_ID": f"{video_id}_{position}", "SENTENCE_NAME": f"{video_id}_{position}-rgb_front"}


def video_look(seed: int, split: str, video_index: int, style=None):
    """The look of the ``video_index``-th (real) video of a split, and the video's generator.

    The look (the simple style: background, skin and shirt colours, drawn
    exactly as a clip draws them; the how2sign style: a signer and a scene) is
    drawn first. Returns ``(look, rng)``; the rng then draws the video's pauses.
    """
    style = SimpleStyle() if style is None else style
    rng = np.random.default_rng([int(seed), _SPLIT_IDS[split], int(video_index), _VIDEO_SALT])
    return style.video_look(rng), rng


def video_colours(seed: int, split: str, video_index: int):
    """The simple style's ``(background, skin, shirt, rng)`` of a video (see :func:`video_look`)."""
    look, rng = video_look(seed, split, video_index)
    return (*look, rng)


def sentence_plan(words: Sequence[str], seed: int, split: str, index: int, size: int, colours, style=None):
    """The plan of good sentence ``index`` of ``split``: the clip layout's plan, in a video's look."""
    style = SimpleStyle(size) if style is None else style
    return style.restyle(plan_sample(words, seed, split, index, style=style), colours)


# --------------------------------------------------------------------------- planning


@dataclass
class Segment:
    """One sentence of a full video."""

    split: str
    words: List[str]
    sentence: str  # the SENTENCE column
    index: Optional[int]  # index among the split's good sentences; None for an empty_caption row
    start_frame: int = 0
    end_frame: int = 0  # exclusive
    # the original (pre-cut clip) timestamps' frames, original_timestamps.assign_original_spans
    original_start_frame: Optional[int] = None
    original_end_frame: Optional[int] = None


@dataclass
class VideoSpec:
    split: str
    VIDEO_ID: str
    VIDEO_NAME: str
    plan: Optional[ClipPlan]  # the whole video (the style's plan type); None for a missing video
    segments: List[Segment] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        return self.plan.n_frames if self.plan is not None else 0


@dataclass
class FullLayout:
    """Everything render_full_videos writes, planned but not rendered."""

    videos: List[VideoSpec]  # in CSV order, train then val then test, missing videos included
    rows: Dict[str, List[Dict[str, str]]]  # split -> CSV rows (column -> text)
    broken: List[Dict[str, object]]  # the content of broken_rows.json
    captions: Dict[str, List[List[str]]]  # split -> good captions (sample_splits)
    fps: int
    style: object = None  # the style the plans belong to (styles.py)


def _group_sizes(n: int, lo: int, hi: int, rng: np.random.Generator) -> List[int]:
    """Split n sentences into videos of lo..hi sentences (only a split smaller than lo gets a shorter one)."""
    sizes = []
    left = n
    while left > 0:
        if left <= hi:
            k = left
        else:
            upper = min(hi, left - lo)
            k = int(rng.integers(lo, upper + 1)) if upper >= lo else min(hi, left)
        sizes.append(k)
        left -= k
    return sizes


def _fresh_sentence(
    rng: np.random.Generator, avoid: Set[Tuple[str, ...]], used: Set[Tuple[str, ...]], grammar=None
) -> List[str]:
    """A sampled sentence (of ``grammar``; None: the simple one) in neither ``avoid`` nor ``used``;
    it is added to ``used``."""
    while True:
        s = sample_sentence(rng) if grammar is None else grammar.sample(rng)
        if s not in avoid and s not in used:
            used.add(s)
            return list(s)


def plan_full_corpus(
    n_train: int = 1500,
    n_val: int = 100,
    n_test: int = 200,
    seed: int = 1,
    size: int = 64,
    fps: int = 25,
    sentences_per_video: Tuple[int, int] = SENTENCES_PER_VIDEO,
    broken_rows: bool = True,
    style="simple",
    frame_size: Optional[Tuple[int, int]] = None,
    words_per_sentence: Optional[Tuple[int, int]] = None,
) -> FullLayout:
    """Plan the full-video corpus (videos, CSV rows, broken rows) without rendering a pixel.

    ``style``, ``frame_size``, ``words_per_sentence``: as for :func:`~.corpus.render_corpus`."""
    check_size_and_fps(size, fps)
    style = resolve_style(style, size, frame_size, words_per_sentence)
    grammar = style.grammar
    lo, hi = (int(x) for x in sentences_per_video)
    if not 1 <= lo <= hi:
        raise ValueError(f"sentences_per_video must be (min, max) with 1 <= min <= max, got {sentences_per_video}")

    captions = dict(zip(SPLITS, sample_splits(n_train, n_val, n_test, seed, grammar=grammar)))
    train_set = {tuple(s) for s in captions["train"]}
    held_set = {tuple(s) for split in ("val", "test") for s in captions[split]}
    # words of extra (broken) rows, all distinct: train ones avoid val/test, val/test ones also avoid train
    avoid = {"train": held_set, "val": train_set | held_set, "test": train_set | held_set}
    extra_used: Set[Tuple[str, ...]] = set()

    videos: List[VideoSpec] = []
    rows: Dict[str, List[Dict[str, str]]] = {}
    broken: List[Dict[str, object]] = []
    number = 0
    for split in SPLITS:
        sid = _SPLIT_IDS[split]
        group_rng = np.random.default_rng([int(seed), sid, _GROUP_SALT])
        sizes = _group_sizes(len(captions[split]), lo, hi, group_rng)
        # groups of segments (good sentences in caption order)
        groups: List[List[Segment]] = []
        i = 0
        for k in sizes:
            groups.append(
                [Segment(split, captions[split][j], caption_text(captions[split][j]), j) for j in range(i, i + k)]
            )
            i += k

        n_each = BROKEN_PER_SPLIT[split] if broken_rows and groups else 0
        brng = np.random.default_rng([int(seed), sid, _BROKEN_SALT])
        end_past = {}  # video index -> extra seconds
        if n_each:
            for v in sorted(brng.choice(len(groups), size=min(n_each, len(groups)), replace=False).tolist()):
                end_past[int(v)] = round(float(brng.uniform(*END_PAST_SECONDS)), 2)
        extra_plans: Dict[int, ClipPlan] = {}  # id(segment) -> plan, for empty_caption segments
        for k in range(n_each):  # empty_caption: a signed sentence without a caption, never last in its video
            v = int(brng.integers(len(groups)))
            pos = int(brng.integers(len(groups[v])))
            words = _fresh_sentence(brng, avoid[split], extra_used, grammar)
            seg = Segment(split, words, EMPTY_CAPTIONS[k % len(EMPTY_CAPTIONS)], None)
            groups[v].insert(pos, seg)
            extra_rng = np.random.default_rng([int(seed), sid, k, _EXTRA_SALT])
            extra_plans[id(seg)] = style.plan(words, extra_rng)
        missing_at = []  # (position among the split's videos, words, start, end)
        for k in range(n_each):
            pos = int(brng.integers(len(groups) + 1))
            words = _fresh_sentence(brng, avoid[split], extra_used, grammar)
            start = round(float(brng.uniform(0.0, 20.0)), 2)
            end = round(start + float(brng.uniform(2.0, 6.0)), 2)
            missing_at.append((pos, words, start, end))

        # the split's video list: real videos with missing ones inserted (stable for equal positions)
        entries: List[Tuple[str, object]] = [("video", v) for v in range(len(groups))]
        for pos, words, start, end in sorted(missing_at, key=lambda m: m[0], reverse=True):
            entries.insert(pos, ("missing", (words, start, end)))

        split_rows: List[Dict[str, str]] = []
        for kind, payload in entries:
            names = video_names(number)
            number += 1
            if kind == "missing":
                words, start, end = payload
                spec = VideoSpec(split, names["VIDEO_ID"], names["VIDEO_NAME"], None)
                sent = sentence_names(names["VIDEO_ID"], 0)
                times = dict(START_REALIGNED=f"{start:.2f}", END_REALIGNED=f"{end:.2f}")
                split_rows.append(dict(names, **sent, **times, SENTENCE=caption_text(words)))
                spec.segments.append(Segment(split, list(words), caption_text(words), None))
                videos.append(spec)
                broken.append(
                    dict(
                        split=split,
                        SENTENCE_NAME=sent["SENTENCE_NAME"],
                        kind=MISSING_VIDEO,
                        VIDEO_NAME=names["VIDEO_NAME"],
                    )
                )
                continue
            v = payload
            look, vrng = video_look(seed, split, v, style)
            segs = groups[v]
            plans = []
            for seg in segs:
                if seg.index is not None:
                    plan = sentence_plan(seg.words, seed, split, seg.index, size, look, style)
                else:  # an empty_caption sentence: its own timing, the video's look
                    plan = style.restyle(extra_plans[id(seg)], look)
                plans.append(plan)
            # a pause of rest frames before each sentence and after the last one
            pauses = [int(vrng.integers(PAUSE_FRAMES[0], PAUSE_FRAMES[1] + 1)) for _ in range(len(segs) + 1)]
            t = 0
            for seg, plan, pause in zip(segs, plans, pauses):
                seg.start_frame = t + pause
                seg.end_frame = seg.start_frame + plan.n_frames
                t = seg.end_frame
            full = style.join(plans, pauses, look)
            assert full.n_frames == t + pauses[-1]
            spec = VideoSpec(split, names["VIDEO_ID"], names["VIDEO_NAME"], full, segs)
            videos.append(spec)
            duration = full.n_frames / fps
            for position, seg in enumerate(segs):
                sent = sentence_names(names["VIDEO_ID"], position)
                end_text = f"{seg.end_frame / fps:.2f}"
                record = None
                if seg.index is None:
                    record = dict(kind=EMPTY_CAPTION, VIDEO_NAME=names["VIDEO_NAME"])
                elif v in end_past and position == len(segs) - 1:
                    end_text = f"{duration + end_past[v]:.2f}"
                    record = dict(
                        kind=END_PAST_VIDEO_END,
                        VIDEO_NAME=names["VIDEO_NAME"],
                        video_duration=round(duration, 6),
                        true_end=float(f"{seg.end_frame / fps:.2f}"),
                        END_REALIGNED=float(end_text),
                    )
                split_rows.append(
                    dict(
                        names,
                        **sent,
                        START_REALIGNED=f"{seg.start_frame / fps:.2f}",
                        END_REALIGNED=end_text,
                        SENTENCE=seg.sentence,
                    )
                )
                if record is not None:
                    broken.append(dict(split=split, SENTENCE_NAME=sent["SENTENCE_NAME"], **record))
        rows[split] = split_rows

    order = {k: i for i, k in enumerate(BROKEN_KINDS)}
    broken.sort(key=lambda b: (SPLITS.index(b["split"]), order[b["kind"]], b["SENTENCE_NAME"]))
    layout = FullLayout(videos=videos, rows=rows, broken=broken, captions=captions, fps=fps, style=style)
    assign_original_spans(layout, seed)  # its own random stream: nothing above changes
    return layout


# --------------------------------------------------------------------------- rendering

# (VIDEO_NAME, full-video plan, style, fps, crf, mp4 path)
_VideoJob = Tuple[str, ClipPlan, object, int, int, str]


def _render_video_job(job: _VideoJob) -> Tuple[str, int, bool]:
    """Render one full video if needed; returns (VIDEO_NAME, n_frames, rendered)."""
    name, plan, style, fps, crf, path = job
    p = Path(path)
    if p.is_file() and p.stat().st_size > 0:
        return name, plan.n_frames, False
    write_mp4(p, style.frames(plan), fps=fps, crf=crf, preset=style.encoder_preset)
    return name, plan.n_frames, True


def write_original_csvs(raw: Path, layout: FullLayout) -> None:
    """How2Sign's original-timestamp CSVs (``how2sign_<split>.csv``) of a planned layout."""
    for split, rows in original_rows(layout).items():
        _write_csv(raw / ORIGINAL_CSV_TEMPLATE.format(split=split), rows, ORIGINAL_COLUMNS)


def _write_json(path: Path, obj):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class FullCorpusSummary:
    out: Path
    videos: Dict[str, int]  # mp4s per split (missing videos not counted)
    rows: Dict[str, int]  # CSV rows per split, broken ones included
    good: Dict[str, int]  # good sentences per split (end_past_video_end ones included)
    broken: Dict[str, Dict[str, int]]  # split -> kind -> count
    total_frames: int
    rendered: int
    skipped: int
    seconds: float
    fps: int
    style: str = "simple"
    keypoints: Optional[object] = None  # a keypoint_corpus.KeypointSummary when keypoints were written

    def __str__(self):
        def per(d):
            return ", ".join(f"{s}={n}" for s, n in d.items())

        broken = "; ".join(
            f"{s}: " + ", ".join(f"{k}={n}" for k, n in kinds.items()) for s, kinds in self.broken.items() if kinds
        )
        n_videos = sum(self.videos.values())
        style = "" if self.style == "simple" else f" ({self.style} style)"
        text = (
            f"synthetic full-video corpus{style} in {self.out}: videos {per(self.videos)}; rows {per(self.rows)} "
            f"(good {per(self.good)}); broken rows: {broken or 'none'}; {self.total_frames} frames "
            f"({self.total_frames / self.fps:.1f} s of video, "
            f"{self.total_frames / max(1, n_videos) / self.fps:.1f} s/video); "
            f"rendered {self.rendered}, kept {self.skipped} existing; {self.seconds:.1f} s"
        )
        return text if self.keypoints is None else f"{text}\n{self.keypoints}"


def render_full_videos(
    out,
    n_train: int = 1500,
    n_val: int = 100,
    n_test: int = 200,
    seed: int = 1,
    size: int = 64,
    fps: int = 25,
    workers: int = 2,
    sentences_per_video: Tuple[int, int] = SENTENCES_PER_VIDEO,
    broken_rows: bool = True,
    crf: int = DEFAULT_CRF,
    progress: bool = False,
    style="simple",
    frame_size: Optional[Tuple[int, int]] = None,
    words_per_sentence: Optional[Tuple[int, int]] = None,
    keypoints: bool = False,
    keypoint_noise=None,
) -> FullCorpusSummary:
    """Render the corpus in How2Sign's official layout (full videos + realigned CSVs) into ``out``.

    ``n_train``/``n_val``/``n_test`` good sentences per split; with
    ``broken_rows`` the ``missing_video`` and ``empty_caption`` rows are extra
    rows on top of them, and the ``end_past_video_end`` rows are good rows
    with a broken END (see the module docstring). ``style``, ``frame_size``,
    ``words_per_sentence``, ``keypoints``, ``keypoint_noise``: as for
    :func:`~.corpus.render_corpus` (here the keypoints follow the original timestamps).
    """
    start = time.time()
    layout = plan_full_corpus(
        n_train, n_val, n_test, seed, size, fps, sentences_per_video, broken_rows, style, frame_size, words_per_sentence
    )
    out = Path(out)
    raw = out / "raw"
    video_dir = raw / VIDEO_DIR
    video_dir.mkdir(parents=True, exist_ok=True)

    jobs: List[_VideoJob] = [
        (v.VIDEO_NAME, v.plan, layout.style, fps, crf, str(video_dir / f"{v.VIDEO_NAME}.mp4"))
        for v in layout.videos
        if v.plan is not None
    ]
    rendered = 0
    total_frames = 0
    for _, n, was_rendered in run_jobs(_render_video_job, jobs, workers, 2, "videos", progress, every=50):
        total_frames += n
        rendered += int(was_rendered)

    for split in SPLITS:
        _write_csv(raw / CSV_TEMPLATE.format(split=split), layout.rows[split])
    write_original_csvs(raw, layout)
    _write_json(raw / BROKEN_JSON, layout.broken)

    keypoint_summary = None
    if keypoints:
        from .keypoint_corpus import write_full_keypoints  # it imports this module
        from .keypoint_noise import OFF

        spv = tuple(sentences_per_video)
        corpus = dict(n_train=n_train, n_val=n_val, n_test=n_test, sentences_per_video=spv, broken_rows=broken_rows)
        noise = OFF if keypoint_noise is None else keypoint_noise
        keypoint_summary = write_full_keypoints(out, layout, seed, corpus, noise, workers, progress)

    broken_counts = {s: {} for s in SPLITS}
    for b in layout.broken:
        broken_counts[b["split"]][b["kind"]] = broken_counts[b["split"]].get(b["kind"], 0) + 1
    return FullCorpusSummary(
        out=out,
        videos={s: sum(1 for v in layout.videos if v.split == s and v.plan is not None) for s in SPLITS},
        rows={s: len(layout.rows[s]) for s in SPLITS},
        good={s: len(layout.captions[s]) for s in SPLITS},
        broken=broken_counts,
        total_frames=total_frames,
        rendered=rendered,
        skipped=len(jobs) - rendered,
        seconds=time.time() - start,
        fps=fps,
        style=layout.style.name,
        keypoints=keypoint_summary,
    )
