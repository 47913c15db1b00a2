"""The signer crop at inference: uncut video is cropped as the training clips were cut.

A data root prepared with ``prepare_how2sign.py --signer-crop`` holds clips that are already
the square around the signer; the model never saw a full frame. Inference on a recording
therefore finds the signer's box in each segment exactly as preparation did for each sentence
(:class:`~ssvp_slt.prep.signer_crop.SignerBoxFinder`: face detection on every N-th frame, the
expanded face box, the median over the segment, centred-square fallback) and crops it to the
clips' side before the data config's resize and centre crop.

Whether a model was trained with a signer crop is read from its data root: the data config's
``signer_crop`` (written by ``prepare_how2sign.py`` since this was added) or, for data roots
prepared before, the ``settings`` that ``prepare_report_<split>.json`` records.
"""

from __future__ import annotations

import json
import threading
from typing import Optional, Tuple

import numpy as np

REPORT_SPLITS = ("train", "val", "test")


def recorded_signer_crop(data_cfg) -> Tuple[Optional[dict], str]:
    """(the signer crop settings the data root's clips were cut with, or None; where that was read)."""
    if getattr(data_cfg, "signer_crop", None):
        return dict(data_cfg.signer_crop), f"{data_cfg.path}: signer_crop"
    root = data_cfg.root
    if root is not None:
        for split in REPORT_SPLITS:
            report = root / f"prepare_report_{split}.json"
            if report.is_file():
                try:
                    settings = json.loads(report.read_text(encoding="utf-8")).get("settings") or {}
                except (OSError, ValueError):
                    continue
                crop = settings.get("signer_crop")
                return (dict(crop) if crop else None), f"{report}: settings.signer_crop"
    return None, f"{getattr(data_cfg, 'path', 'the data config')}: no signer_crop recorded (clips used as given)"


class SignerCropper:
    """Reads a segment's frames cropped around the signer: ``read(source, indices, start, n_frames)``.

    One :class:`SignerBoxFinder` per thread (OpenCV's cascade is not documented thread-safe)."""

    def __init__(self, record: dict):
        try:
            from ..prep.signer_crop import SignerCropSettings
        except ImportError as e:  # OpenCV missing
            raise ImportError(f"the model was trained on signer-cropped clips; cropping needs OpenCV: {e}") from e
        fields = SignerCropSettings.__dataclass_fields__
        self.settings = SignerCropSettings(**{k: v for k, v in record.items() if k in fields})
        self.size = int(record["size"])
        self.record = dict(record)
        self._local = threading.local()

    def _finder(self):
        finder = getattr(self._local, "finder", None)
        if finder is None:
            from ..prep.signer_crop import SignerBoxFinder

            finder = self._local.finder = SignerBoxFinder(self.settings)
        return finder

    def box(self, source, start: int, n_frames: int):
        """The segment's box (source pixels), from every ``detect_every``-th frame of it."""
        from av.video.reformatter import Interpolation

        finder = self._finder()
        finder.reset()
        scale = finder.detector.detection_scale(source.width, source.height)
        w, h = max(1, round(source.width * scale)), max(1, round(source.height * scale))
        wanted = start + np.arange(0, n_frames, self.settings.detect_every)
        grey, _ = source.read(wanted, size=(w, h), pixel_format="gray", interpolation=Interpolation.AREA)
        for g in grey:
            finder.add(g, scale=w / source.width)
        return finder.box(source.width, source.height)

    def read(self, source, indices: np.ndarray, start: int, n_frames: int, short_side: int):
        """(frames (T, short_side, short_side, 3) uint8, n_decoded, box) for the absolute frame ``indices``
        of the segment ``start .. start + n_frames``: cropped to the clips' side as preparation cut
        them, then scaled to ``short_side`` as the data set decodes those clips."""
        import av
        from av.video.reformatter import Interpolation, VideoReformatter

        from ..prep.signer_crop import crop_and_resize

        box = self.box(source, start, n_frames)
        work = min(1.0, self.size / box.side)  # as preparation: never upscale before cropping
        ww, wh = max(1, round(source.width * work)), max(1, round(source.height * work))
        rgb, n_decoded = source.read(indices, size=(ww, wh), interpolation=Interpolation.AREA)
        out = np.empty((len(rgb), short_side, short_side, 3), dtype=np.uint8)
        reformatter = VideoReformatter()
        for k, frame in enumerate(rgb):
            clip = crop_and_resize(frame, box, self.size)
            if self.size != short_side:  # the data set decodes the clips at resize_short_side (swscale)
                clip = reformatter.reformat(
                    av.VideoFrame.from_ndarray(clip, format="rgb24"), format="rgb24", width=short_side, height=short_side
                ).to_ndarray()
            out[k] = clip
        return out, n_decoded, box
