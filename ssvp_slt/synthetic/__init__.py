"""A synthetic sign-language corpus: compositional captions, one gesture per word, real mp4s.

- :mod:`.grammar`: the caption grammar and train/val/test caption splits;
- :mod:`.signer`: the gesture table and the numpy frame renderer (the default "simple" style);
- :mod:`.corpus`: H.264 mp4 encoding and the How2Sign-layout corpus writer;
- :mod:`.full_videos`: How2Sign's official layout (full videos, realigned CSVs, broken rows);
- :mod:`.styles`: the rendering styles the writers take (``"simple"``, ``"how2sign"``);
- :mod:`.how2sign_style`, :mod:`.person`, :mod:`.scene`: the How2Sign-like style (sign
  inventory and planning; drawing the person; background, lighting and camera noise);
- OpenPose keypoints of the signers in How2Sign's layout: :mod:`.openpose` (the format and
  files), :mod:`.how2sign_keypoints` and :mod:`.simple_keypoints` (read off each style's
  drawing), :mod:`.keypoint_noise` (optional detector noise), :mod:`.original_timestamps`
  (How2Sign's original sentence timestamps, which the keypoint clips follow),
  :mod:`.keypoint_corpus` (writing a corpus's keypoints; ``--keypoints-only``).
"""

from .grammar import VOCAB, all_sentences, caption_text, count_sentences, normalise_caption, sample_splits
from .signer import GESTURES, HANDSHAPES, PATHS, PLACES, ClipPlan, plan_sentence, render_plan, render_sentence
from .corpus import CSV_COLUMNS, SPLITS, CorpusSummary, clip_names, render_corpus, sample_rng, write_mp4
from .styles import STYLES, SimpleStyle, make_style

__all__ = [
    "VOCAB",
    "all_sentences",
    "caption_text",
    "count_sentences",
    "normalise_caption",
    "sample_splits",
    "GESTURES",
    "HANDSHAPES",
    "PATHS",
    "PLACES",
    "ClipPlan",
    "plan_sentence",
    "render_plan",
    "render_sentence",
    "CSV_COLUMNS",
    "SPLITS",
    "CorpusSummary",
    "clip_names",
    "render_corpus",
    "sample_rng",
    "write_mp4",
    "STYLES",
    "SimpleStyle",
    "make_style",
]
