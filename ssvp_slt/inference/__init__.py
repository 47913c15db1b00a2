"""Inference on any sign-language video: inputs, segmentation of long recordings, the frame
pipeline, results and output formats. The model side is :class:`ssvp_slt.translate.SignTranslator`
(which uses fairseq); this package itself imports neither fairseq nor torch.

- :mod:`.inputs`: command-line arguments (files, folders, globs, ``-``, URLs) -> inputs
- :mod:`.sources`: a file / URL / frames in memory -> frames at given indices
- :mod:`.segmentation`: long input -> sentence-sized segments (fixed windows or pauses)
- :mod:`.overlap`: words repeated by overlapping windows
- :mod:`.clips`: a segment -> the model's frames and windows, as evaluation reads a clip
- :mod:`.crop`: the signer crop a model's clips were cut with, redone on uncut video
- :mod:`.results`: :class:`Translation`, :class:`Segment`
- :mod:`.formats`: txt, tsv, json, jsonl, srt, vtt
- :mod:`.segment_eval`: scoring segments against known sentence boundaries
- :mod:`.cli`: ``ssvp-slt-translate``

See docs/inference.md.
"""

from .results import InputError, Segment, Translation
from .segmentation import SegmentationSettings
from .sources import VideoFrames

__all__ = ["InputError", "Segment", "SegmentationSettings", "Translation", "VideoFrames"]
