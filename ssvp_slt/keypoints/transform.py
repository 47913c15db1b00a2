"""The keypoint feature transform: stored raw keypoints -> the model's input, the same everywhere.

The task ``sign_features`` applies it to every clip it reads from a keypoint store (selected by
the store config's ``transform: {name: keypoints, ...}``), training with augmentation, evaluation
without; :func:`load_keypoints` applies it to a new video's OpenPose folder or ``.pose`` file.
"""

import logging
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np

from .augment import augment, max_length
from .clip import KeypointClip, KeypointError, frame_ranges, issue_counts
from .config import KeypointConfig
from .layout import N_POINTS, RAW_DIM, kept_points
from .normalize import normalize
from .openpose import read_openpose_folder
from .pose_file import read_pose_file

logger = logging.getLogger(__name__)


class KeypointTransform:
    """Callable: (T, 411) raw keypoints -> (T', output_dim) float32; ``rng`` given: training augmentation."""

    def __init__(self, cfg: KeypointConfig):
        self.cfg = cfg.validate()
        self.points = kept_points(cfg.drop_face, cfg.drop_legs)
        self.output_dim = len(self.points) * 3

    @classmethod
    def from_store_info(cls, info) -> "KeypointTransform":
        return cls(KeypointConfig.from_store_info(info))

    @property
    def augments(self) -> bool:
        return self.cfg.augment.enabled

    def output_length(self, length: int, train: bool) -> int:
        """Time steps the model sees for a stored clip of ``length`` frames (in training: at most)."""
        return max_length(length, self.cfg.augment) if train and self.augments else int(length)

    def describe(self) -> str:
        """What a checkpoint records: the normalisation settings as JSON (augmentation left out)."""
        return self.cfg.normalisation_json()

    def __call__(self, raw: np.ndarray, rng: Optional[np.random.Generator] = None,
                 frame_size: Optional[Tuple[int, int]] = None) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float32)
        if raw.ndim == 2:
            if raw.shape[1] != RAW_DIM:
                raise ValueError(f"keypoint vectors of size {raw.shape[1]}, expected {RAW_DIM} (137 points x (x, y, confidence))")
            raw = raw.reshape(len(raw), N_POINTS, 3)
        xy, visible, _ = normalize(raw, self.cfg, frame_size)
        # third channel per point: the visibility flag, or the confidence of visible points (0 when masked)
        third = visible.astype(np.float32) if self.cfg.channels == "xyv" else np.where(visible, raw[..., 2], 0.0).astype(np.float32)
        if rng is not None and self.augments:
            xy, visible, frames = augment(xy, visible, self.cfg.augment, rng)
            third = third[frames]
        xy, third = xy[:, self.points], third[:, self.points]
        return np.concatenate([xy, third[..., None]], axis=-1).reshape(len(xy), -1)


def read_keypoints(path, frame_size: Tuple[int, int] = (1280, 720)) -> KeypointClip:
    """An OpenPose JSON folder or a ``.pose`` file -> :class:`KeypointClip` (raw pixels, problems recorded)."""
    path = Path(path)
    if path.is_dir():
        return read_openpose_folder(path, frame_size)
    if path.suffix == ".pose":
        return read_pose_file(path)
    if not path.exists():
        raise KeypointError(f"{path}: not found (expected an OpenPose JSON folder or a .pose file)")
    raise KeypointError(f"{path}: not an OpenPose JSON folder or a .pose file")


def resample_frames(keypoints: np.ndarray, fps: float, target_fps: float) -> np.ndarray:
    """Nearest-frame resampling of (T, ...) from ``fps`` to ``target_fps`` (unchanged if equal)."""
    if abs(fps - target_fps) < 1e-6 * target_fps:
        return keypoints
    n = len(keypoints)
    n_out = max(1, int(round(n * target_fps / fps)))
    index = np.minimum(n - 1, np.floor(np.arange(n_out) * fps / target_fps + 0.5).astype(np.int64))
    return keypoints[index]


def load_keypoints(path: Union[str, Path], cfg: KeypointConfig, fps: Optional[float] = None,
                   frame_size: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """A new video's keypoints -> the (T, D) sequence a model trained with ``cfg`` reads.

    ``path``: an OpenPose JSON folder (one ``*_keypoints.json`` per frame, OpenPose's 137-point
    output: BODY_25 + face + hands) or a ``.pose`` file of that layout. ``fps`` and
    ``frame_size`` (width, height) describe the input: a ``.pose`` file's header gives them,
    an OpenPose folder has neither (default: ``cfg``'s, i.e. as the training keypoints). A
    sequence at another frame rate is resampled to ``cfg.fps`` (nearest frame). The values go
    through the store's dtype, the normalisation and the channel layout exactly as a stored
    clip is read at evaluation (no augmentation). ``cfg``: ``KeypointConfig.from_store_info(
    FeatureStore(store).info)``, or ``KeypointConfig.from_json(model_cfg.feature_transform)``
    from a checkpoint. Problems in single frames are logged, not raised; an unusable input
    raises :class:`KeypointError` naming it."""
    clip = read_keypoints(path, frame_size or (cfg.frame_width, cfg.frame_height))
    counts = {k: v for k, v in issue_counts(clip.issues).items() if v}
    if counts:
        logger.warning(f"{clip.path}: {counts}" + (f"; missing frames {frame_ranges(clip.issues.missing_frames)}" if clip.issues.missing_frames else ""))
    if clip.frames_with_person() == 0:
        raise KeypointError(f"{clip.path}: no person detected in any of its {clip.n_frames} frame(s)")
    source_fps = clip.fps or fps or cfg.fps
    raw = resample_frames(clip.keypoints, source_fps, cfg.fps)
    raw = raw.astype(cfg.stored_dtype).astype(np.float32)  # as the store holds training clips
    return KeypointTransform(cfg)(raw.reshape(len(raw), RAW_DIM), frame_size=clip.frame_size or frame_size)
