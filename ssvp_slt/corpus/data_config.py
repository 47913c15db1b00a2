"""The data config: one YAML file in the data root that training and generation both read.

It is the single place for the facts about a prepared corpus: vocabulary
files, frame sampling, crop size and normalisation. Paths in it are relative
to the data root.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import yaml

from .frame_sampling import LONG_CLIP_POLICIES, WindowSettings

DATA_CONFIG_NAME = "config.yaml"
# the frame settings (as opposed to vocabulary and caption settings)
VIDEO_SETTINGS = (
    "target_fps", "num_frames", "sampling_rate", "window_stride", "max_windows", "long_clips",
    "resize_short_side", "crop_size", "train_jitter", "mean", "std",
)


class DataConfigError(ValueError):
    pass


@dataclass
class VideoDataConfig:
    # vocabulary
    sentencepiece_model: str = "spm.model"
    dictionary: str = "dict.txt"
    # temporal sampling (ssvp_slt.corpus.frame_sampling): resample to target_fps, take every
    # sampling_rate-th frame; the encoder reads windows of num_frames of them, window_stride apart
    # (default: half a window), up to max_windows per clip; longer clips: long_clips
    target_fps: float = 25.0
    num_frames: int = 128
    sampling_rate: int = 2
    window_stride: Optional[int] = None
    max_windows: int = 6
    long_clips: str = "stretch"  # "stretch", "drop" (training only) or "truncate" (one window)
    # spatial: scale the short side to resize_short_side, then crop crop_size x crop_size at the
    # centre; training jitters the scale and the crop centre by up to train_jitter x crop_size,
    # so the crop stays on the signer (prepare with --signer-crop to centre the frames on them)
    resize_short_side: int = 256
    crop_size: int = 224
    train_jitter: float = 0.1
    mean: List[float] = field(default_factory=lambda: [0.45, 0.45, 0.45])
    std: List[float] = field(default_factory=lambda: [0.225, 0.225, 0.225])
    # caption normalisation applied before sentencepiece, recorded so scoring matches training
    lowercase: bool = False
    punctuation: str = "keep"  # "keep" or "strip" (ssvp_slt.corpus.text.normalize_caption)
    # the signer crop the clips were cut with (prepare_how2sign.py --signer-crop records it:
    # SignerCropSettings' fields and the clips' side, "size"), None for none. Training reads
    # the cut clips and ignores it; inference on uncut video applies the same crop (ssvp_slt.inference)
    signer_crop: Optional[dict] = None

    # set by load(), not read from the file
    root: Optional[Path] = field(default=None, repr=False)
    path: Optional[Path] = field(default=None, repr=False)

    @classmethod
    def load(cls, root, check_files: bool = True) -> "VideoDataConfig":
        root = Path(root)
        path = root / DATA_CONFIG_NAME
        if not path.is_file():
            raise DataConfigError(
                f"{path}: data config not found. A data root holds one manifest TSV per split "
                f"and a {DATA_CONFIG_NAME} (see scripts/build_vocab.py, which writes it)"
            )
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise DataConfigError(f"{path}: not valid YAML ({e})") from e
        if not isinstance(raw, dict):
            raise DataConfigError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
        known = {f.name for f in dataclasses.fields(cls)} - {"root", "path"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise DataConfigError(f"{path}: unknown setting(s) {unknown}; known: {sorted(known)}")
        cfg = cls(**raw)
        cfg.root, cfg.path = root, path
        cfg.validate()
        if check_files:
            for key in ("sentencepiece_model", "dictionary"):
                if not cfg.resolve(getattr(cfg, key)).is_file():
                    raise DataConfigError(f"{path}: {key} names {cfg.resolve(getattr(cfg, key))}, which does not exist")
        return cfg

    def validate(self):
        where = self.path or "data config"
        for name in ("num_frames", "sampling_rate", "resize_short_side", "crop_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise DataConfigError(f"{where}: {name} must be a positive integer, got {value!r}")
        if not isinstance(self.target_fps, (int, float)) or self.target_fps <= 0:
            raise DataConfigError(f"{where}: target_fps must be a positive number, got {self.target_fps!r}")
        if self.window_stride is not None and (
            isinstance(self.window_stride, bool) or not isinstance(self.window_stride, int)
            or not 0 < self.window_stride <= self.num_frames
        ):
            raise DataConfigError(
                f"{where}: window_stride must be an integer from 1 to num_frames ({self.num_frames}), "
                f"got {self.window_stride!r}"
            )
        if isinstance(self.max_windows, bool) or not isinstance(self.max_windows, int) or self.max_windows <= 0:
            raise DataConfigError(f"{where}: max_windows must be a positive integer, got {self.max_windows!r}")
        if self.long_clips not in LONG_CLIP_POLICIES:
            raise DataConfigError(f"{where}: long_clips must be one of {list(LONG_CLIP_POLICIES)}, got {self.long_clips!r}")
        if not isinstance(self.train_jitter, (int, float)) or isinstance(self.train_jitter, bool) or not 0 <= self.train_jitter < 0.5:
            raise DataConfigError(f"{where}: train_jitter must be a number in [0, 0.5), got {self.train_jitter!r}")
        if self.crop_size > self.resize_short_side:
            raise DataConfigError(
                f"{where}: crop_size ({self.crop_size}) is larger than resize_short_side ({self.resize_short_side})"
            )
        for name in ("mean", "std"):
            value = getattr(self, name)
            if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, (int, float)) for v in value)):
                raise DataConfigError(f"{where}: {name} must be a list of 3 numbers (RGB), got {value!r}")
        if self.punctuation not in ("keep", "strip"):
            raise DataConfigError(f"{where}: punctuation must be 'keep' or 'strip', got {self.punctuation!r}")
        if any(v <= 0 for v in self.std):
            raise DataConfigError(f"{where}: std values must be positive, got {self.std}")
        if self.signer_crop is not None:
            size = self.signer_crop.get("size") if isinstance(self.signer_crop, dict) else None
            if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
                raise DataConfigError(
                    f"{where}: signer_crop must be null or the crop's settings with the clips' side as 'size' "
                    f"(what prepare_how2sign.py --signer-crop records), got {self.signer_crop!r}"
                )

    def window_settings(self) -> WindowSettings:
        return WindowSettings(
            target_fps=float(self.target_fps),
            num_frames=self.num_frames,
            sampling_rate=self.sampling_rate,
            window_stride=self.window_stride or max(1, self.num_frames // 2),
            max_windows=self.max_windows,
            long_clips=self.long_clips,
        )

    def resolve(self, relpath) -> Path:
        p = Path(relpath)
        return p if p.is_absolute() or self.root is None else self.root / p

    @property
    def sentencepiece_path(self) -> Path:
        return self.resolve(self.sentencepiece_model)

    @property
    def dictionary_path(self) -> Path:
        return self.resolve(self.dictionary)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("root")
        d.pop("path")
        return d

    def save(self, root) -> Path:
        self.validate()
        path = Path(root) / DATA_CONFIG_NAME
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")
        return path


def add_video_setting_arguments(group) -> None:
    """``--target-fps`` ... ``--std`` on an argparse group; unset ones stay None (keep the base value)."""
    group.add_argument("--target-fps", type=float)
    group.add_argument("--num-frames", type=int)
    group.add_argument("--sampling-rate", type=int)
    group.add_argument("--window-stride", type=int, help="sampled frames between encoder windows (default: half a window)")
    group.add_argument("--max-windows", type=int, help="encoder windows per clip at most")
    group.add_argument("--long-clips", choices=LONG_CLIP_POLICIES, help="clips needing more windows than --max-windows")
    group.add_argument("--resize-short-side", type=int)
    group.add_argument("--crop-size", type=int)
    group.add_argument("--train-jitter", type=float, help="training scale/shift jitter of the crop, as a share of it")
    group.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"))
    group.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"))
