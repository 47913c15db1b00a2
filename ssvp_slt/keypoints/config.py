"""Keypoint settings: what the stored numbers are, and how they become the model's input.

A keypoint feature store's ``config.yaml`` holds them in two places (``ssvp_slt.features.store``):

* ``source`` -- facts about the stored values: ``kind: openpose_keypoints``, ``layout``,
  ``fps``, ``frame_size`` [width, height] (pixels), ``values`` [x, y, confidence];
* ``transform`` -- ``name: keypoints`` and the normalisation and augmentation below, applied when
  a clip is read (training, validation, generation), so the raw pixels stay in the store and
  changing an option does not mean preparing again.

:meth:`KeypointConfig.from_store_info` joins the two; a checkpoint records
:meth:`KeypointConfig.normalisation` (everything but augmentation), and inference
(:func:`ssvp_slt.keypoints.load_keypoints`) takes the same object.
"""

import dataclasses
import json
from dataclasses import dataclass, field
from .layout import LAYOUT, VALUES

SOURCE_KIND = "openpose_keypoints"
TRANSFORM_NAME = "keypoints"
ANCHORS = ("clip", "frame")
CHANNELS = ("xyv", "xyc")


class KeypointConfigError(ValueError):
    pass


@dataclass
class AugmentConfig:
    """Training-only augmentation, drawn per (seed, epoch, clip) like the video dataset's crops.

    Spatial: one rotation, scale and shift per clip, about the anchor (the origin after
    normalisation), applied to the visible points only. Temporal: the clip is resampled to a
    length x [1 - time_stretch, 1 + time_stretch] (nearest frame, so masks stay masks), then
    each frame is dropped with probability ``drop_frames`` (at least one frame stays)."""

    rotate_deg: float = 10.0  # largest |rotation|, degrees
    scale: float = 0.1  # scale factor in [1 - scale, 1 + scale]
    shift: float = 0.1  # shift of each axis in [-shift, shift], in shoulder widths
    time_stretch: float = 0.2  # length factor in [1 - time_stretch, 1 + time_stretch]
    drop_frames: float = 0.05  # probability of dropping each frame

    @property
    def enabled(self) -> bool:
        return any(v > 0 for v in dataclasses.asdict(self).values())


@dataclass
class KeypointConfig:
    # facts about the stored values (the store's source section)
    layout: str = LAYOUT
    fps: float = 24.0  # frames per second of the keypoint sequences (How2Sign: 24 as third-party loaders read it)
    frame_width: int = 1280  # the video the keypoints were computed on (How2Sign: 1280x720)
    frame_height: int = 720
    stored_dtype: str = "float16"  # how the store holds the raw values; inference rounds through it to match
    # normalisation (the store's transform section)
    anchor: str = "clip"  # "clip": centre and scale are the clip's mean shoulder midpoint and width; "frame": centre per frame
    min_confidence: float = 0.0  # a point with confidence <= this is masked (OpenPose writes 0 for undetected points)
    channels: str = "xyv"  # per point: x, y and a visibility flag (1/0), or x, y and the confidence ("xyc", 0 when masked)
    drop_face: bool = False  # leave out the 70 face points
    drop_legs: bool = False  # leave out knees, ankles and feet (10 BODY_25 points)
    fallback_scale: float = 0.4  # no frame shows both shoulders: scale = this x frame height (a How2Sign-like shoulder width)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def validate(self, where: str = "keypoint settings") -> "KeypointConfig":
        if self.layout != LAYOUT:
            raise KeypointConfigError(f"{where}: layout {self.layout!r}; only {LAYOUT!r} (OpenPose BODY_25 + face + hands) is read")
        for name in ("fps", "fallback_scale"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise KeypointConfigError(f"{where}: {name} must be a positive number, got {v!r}")
        for name in ("frame_width", "frame_height"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise KeypointConfigError(f"{where}: {name} must be a positive integer, got {v!r}")
        if self.stored_dtype not in ("float16", "float32"):
            raise KeypointConfigError(f"{where}: stored_dtype must be float16 or float32, got {self.stored_dtype!r}")
        if self.anchor not in ANCHORS:
            raise KeypointConfigError(f"{where}: anchor must be one of {list(ANCHORS)}, got {self.anchor!r}")
        if self.channels not in CHANNELS:
            raise KeypointConfigError(f"{where}: channels must be one of {list(CHANNELS)}, got {self.channels!r}")
        if isinstance(self.min_confidence, bool) or not isinstance(self.min_confidence, (int, float)) or not 0 <= self.min_confidence < 1:
            raise KeypointConfigError(f"{where}: min_confidence must be a number in [0, 1), got {self.min_confidence!r}")
        for name in ("drop_face", "drop_legs"):
            if not isinstance(getattr(self, name), bool):
                raise KeypointConfigError(f"{where}: {name} must be true or false, got {getattr(self, name)!r}")
        a = self.augment
        limits = {"rotate_deg": 180.0, "scale": 1.0, "shift": 10.0, "time_stretch": 1.0, "drop_frames": 1.0}
        for name, limit in limits.items():
            v = getattr(a, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < limit:
                raise KeypointConfigError(f"{where}: augment.{name} must be a number in [0, {limit:g}), got {v!r}")
        return self

    # -- the store's config.yaml --

    def source_dict(self) -> dict:
        return {"kind": SOURCE_KIND, "layout": self.layout, "fps": float(self.fps),
                "frame_size": [int(self.frame_width), int(self.frame_height)], "values": list(VALUES),
                "coordinates": "pixels"}

    def transform_dict(self) -> dict:
        return {"name": TRANSFORM_NAME, "anchor": self.anchor, "min_confidence": float(self.min_confidence),
                "channels": self.channels, "drop_face": self.drop_face, "drop_legs": self.drop_legs,
                "fallback_scale": float(self.fallback_scale),
                "augment": {k: float(v) for k, v in dataclasses.asdict(self.augment).items()}}

    @classmethod
    def from_store_info(cls, info) -> "KeypointConfig":
        """From a :class:`ssvp_slt.features.store.StoreInfo` whose ``transform`` is ``keypoints``."""
        where = str(info.path or "feature store config")
        source = info.source if isinstance(info.source, dict) else {}
        transform = dict(info.transform or {})
        if transform.pop("name", None) != TRANSFORM_NAME:
            raise KeypointConfigError(f"{where}: transform is not {TRANSFORM_NAME!r}")
        if source.get("kind") != SOURCE_KIND:
            raise KeypointConfigError(f"{where}: source.kind is {source.get('kind')!r}, the keypoint transform reads {SOURCE_KIND!r}")
        size = source.get("frame_size")
        if not (isinstance(size, list) and len(size) == 2):
            raise KeypointConfigError(f"{where}: source.frame_size must be [width, height], got {size!r}")
        values = dict(layout=source.get("layout"), fps=source.get("fps"), frame_width=size[0], frame_height=size[1],
                      stored_dtype=info.dtype, **transform)
        return cls.from_dict(values, where)

    # -- plain mappings (checkpoints, JSON) --

    @classmethod
    def from_dict(cls, values: dict, where: str = "keypoint settings") -> "KeypointConfig":
        values = dict(values)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise KeypointConfigError(f"{where}: unknown keypoint setting(s) {unknown}; known: {sorted(known)}")
        augment = values.pop("augment", None) or {}
        if not isinstance(augment, dict):
            raise KeypointConfigError(f"{where}: augment must be a mapping, got {augment!r}")
        known_aug = {f.name for f in dataclasses.fields(AugmentConfig)}
        if set(augment) - known_aug:
            raise KeypointConfigError(f"{where}: unknown augment setting(s) {sorted(set(augment) - known_aug)}; known: {sorted(known_aug)}")
        return cls(**values, augment=AugmentConfig(**augment)).validate(where)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def normalisation(self) -> dict:
        """Everything that decides the model's input at evaluation (all but augmentation)."""
        d = self.to_dict()
        d.pop("augment")
        return d

    def normalisation_json(self) -> str:
        return json.dumps(self.normalisation(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str = "keypoint settings") -> "KeypointConfig":
        """From :meth:`normalisation_json` (e.g. a checkpoint's ``model.feature_transform``); no augmentation."""
        try:
            values = json.loads(text)
        except (TypeError, ValueError) as e:
            raise KeypointConfigError(f"{where}: not JSON keypoint settings ({e})") from e
        if not isinstance(values, dict):
            raise KeypointConfigError(f"{where}: expected a JSON object, got {text[:80]!r}")
        values.pop("name", None)
        values.setdefault("augment", {k: 0.0 for k in (f.name for f in dataclasses.fields(AugmentConfig))})
        return cls.from_dict(values, where)
