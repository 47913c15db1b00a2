"""Body, hand and face keypoints (OpenPose's 137-point layout) as features for ``sign_features``.

    from ssvp_slt.keypoints import KeypointConfig, load_keypoints
    cfg = KeypointConfig.from_store_info(FeatureStore(store).info)   # or KeypointConfig.from_json(checkpoint model.feature_transform)
    x = load_keypoints("new_video_openpose_json/", cfg)              # (T, D) float32, as training read its clips

Reading (OpenPose JSON folders, ``.pose`` files), normalisation, augmentation and the feature
transform the task applies; preparation of a data root is in :mod:`ssvp_slt.keypoints.prepare`.
Needs numpy (and pose-format for ``.pose`` files); imports neither torch nor fairseq.
See docs/landmarks.md.
"""

from .clip import ClipIssues, KeypointClip, KeypointError
from .config import AugmentConfig, KeypointConfig, KeypointConfigError
from .layout import COMPONENTS, LAYOUT, N_POINTS, RAW_DIM, kept_points
from .normalize import normalize
from .openpose import read_openpose_folder
from .pose_file import read_pose_file, write_pose_file
from .transform import KeypointTransform, load_keypoints, read_keypoints, resample_frames

__all__ = [
    "AugmentConfig", "ClipIssues", "COMPONENTS", "KeypointClip", "KeypointConfig", "KeypointConfigError",
    "KeypointError", "KeypointTransform", "LAYOUT", "N_POINTS", "RAW_DIM", "kept_points", "load_keypoints",
    "normalize", "read_keypoints", "read_openpose_folder", "read_pose_file", "resample_frames", "write_pose_file",
]
