"""How2Sign's *original* sentence timestamps for the full-video layout.

How2Sign has two sets of timestamps: the original ones (``how2sign_<split>.csv``,
columns ``START`` / ``END``), which the pre-cut clips and the released OpenPose
keypoints follow, and the manually re-aligned ones
(``how2sign_realigned_<split>.csv``, ``START_REALIGNED`` / ``END_REALIGNED``),
which match the signing. The original ones are off by a fraction of a second
to seconds: a clip often starts early or late and takes in a bit of the
neighbouring sentence or misses the first or last sign.

The synthetic full-video layout writes both (:mod:`.full_videos`). Its
realigned timestamps are the truth (the frames the sentence was rendered in);
an original timestamp is the true one moved by a whole number of frames drawn
from :data:`SHIFT_START` / :data:`SHIFT_END` seconds: mostly wider than the
sentence (pre-cut clips tend to include the pause around it), sometimes up to
0.2 s narrower (into the rest frames and the first or last transition, not
into a sign: every sentence starts and ends with 3-8 rest frames and a
transition). Spans stay inside their video (at least one frame long). The
shifts come from their own random stream (one per split), so adding them
changed nothing else in the corpus.

The frames of a row are ``round(START * fps) <= t < round(END * fps)`` of its
video, as for the realigned timestamps; these are the frames of its keypoint
clip (:mod:`.keypoint_corpus`). Rows of missing videos (a deliberately broken
row kind) keep their realigned times: there is nothing to measure them on.
"""

from typing import Dict, List

import numpy as np

ORIGINAL_CSV_TEMPLATE = "how2sign_{split}.csv"
ORIGINAL_COLUMNS = ("VIDEO_ID", "VIDEO_NAME", "SENTENCE_ID", "SENTENCE_NAME", "START", "END", "SENTENCE")
SHIFT_START = (-0.4, 0.2)  # seconds added to the true start (negative: the clip starts early)
SHIFT_END = (-0.2, 0.4)  # seconds added to the true end (positive: the clip ends late)
_ORIGINAL_SALT = 99991
_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


def assign_original_spans(layout, seed: int) -> None:
    """Set ``original_start_frame`` / ``original_end_frame`` of every segment of every rendered
    video of a :class:`~.full_videos.FullLayout` (in place)."""
    fps = layout.fps
    for split, sid in _SPLIT_IDS.items():
        rng = np.random.default_rng([int(seed), sid, _ORIGINAL_SALT])
        for video in layout.videos:
            if video.split != split or video.plan is None:
                continue
            n = video.plan.n_frames
            for seg in video.segments:
                k0 = int(round(rng.uniform(*SHIFT_START) * fps))
                k1 = int(round(rng.uniform(*SHIFT_END) * fps))
                f0 = min(max(0, seg.start_frame + k0), n - 1)
                f1 = min(max(f0 + 1, seg.end_frame + k1), n)
                seg.original_start_frame, seg.original_end_frame = f0, f1


def original_rows(layout) -> Dict[str, List[Dict[str, str]]]:
    """split -> rows of How2Sign's original CSV (``ORIGINAL_COLUMNS``), row for row the
    realigned CSV's (same names, order and captions), with the original START / END."""
    from .full_videos import sentence_names  # full_videos imports this module

    fps = layout.fps
    out = {}
    for split, realigned in layout.rows.items():
        rows = iter(realigned)
        split_rows = []
        for video in layout.videos:
            if video.split != split:
                continue
            for position, seg in enumerate(video.segments):
                row = next(rows)
                assert row["SENTENCE_NAME"] == sentence_names(video.VIDEO_ID, position)["SENTENCE_NAME"]
                if video.plan is None:
                    start, end = row["START_REALIGNED"], row["END_REALIGNED"]
                else:
                    start = f"{seg.original_start_frame / fps:.2f}"
                    end = f"{seg.original_end_frame / fps:.2f}"
                split_rows.append({**{c: row[c] for c in ORIGINAL_COLUMNS if c in row}, "START": start, "END": end})
        assert next(rows, None) is None, f"{split}: rows without a segment"
        out[split] = split_rows
    return out
