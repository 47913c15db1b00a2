"""Translate video files (and landmark / feature sequences) with trained checkpoints, from Python: the entry
point for pipelines.

    from ssvp_slt.translate import SignTranslator
    translator = SignTranslator.from_checkpoint("checkpoints/checkpoint_best.pt")
    translator.translate(["clip1.mp4", "clip2.mp4"])   # -> ["hello ...", "..."]

    # an ensemble of a video model and a landmark model, 0.7 x video + 0.3 x landmarks (docs/ensembles.md)
    translator = SignTranslator.from_checkpoints(["video.pt", "landmarks.pt"], weights=[0.7, 0.3])
    translator.translate(["clip1.mp4"], features=["clip1_openpose/"])   # or .pose, .npy, (T, D) arrays

Frames go through the same sampling, crop and normalisation as evaluation
(the data config of the data root), feature inputs through what ``sign_features`` applies to
its store (the keypoint transform a landmark checkpoint records: :class:`FeatureReader`), and decoding uses fairseq's stock SequenceGenerator with the task ``sign_multimodal``'s
weighted ensemble (one model: exactly that model's beam search).
"""

import logging
from argparse import Namespace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from fairseq import checkpoint_utils, utils

from .corpus.manifest import ManifestRow
from .corpus.video_io import probe_video
from ssvp_plugin.data.joined_dataset import FEATURES, VIDEO, collate_features, join_net_inputs
from ssvp_plugin.data.video_clip_dataset import VideoClipDataset

logger = logging.getLogger(__name__)

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "ssvp_plugin"  # the fairseq --user-dir

FeatureInput = Union[np.ndarray, torch.Tensor, str, Path]
KEYPOINT_SUFFIXES = (".pose",)  # and OpenPose JSON folders (directories)


def _is_keypoint_file(x) -> bool:
    return isinstance(x, (str, Path)) and (Path(x).is_dir() or Path(x).suffix in KEYPOINT_SUFFIXES)


def _read_array(x: FeatureInput, name: str) -> np.ndarray:
    """A (T, D) array from an array, a tensor or a ``.npy`` file."""
    if isinstance(x, (str, Path)):
        path = Path(x)
        if path.suffix != ".npy":
            raise ValueError(f"{path}: expected a .npy file of (T, D) features, an OpenPose JSON folder or a .pose file")
        if not path.is_file():
            raise FileNotFoundError(f"{path}: feature file not found")
        x = np.load(path, allow_pickle=False)
    array = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"{name}: expected a (T, D) sequence with T >= 1, got shape {tuple(array.shape)}")
    return array


class FeatureReader:
    """What a ``feature_slt`` model reads for one input, made as ``sign_features`` makes it from its store.

    A model trained on a store without a transform (video-encoder features, pre-normalised vectors) reads
    the (T, D) rows as given. A model trained on a keypoint store records the store's transform
    (``model.feature_transform``); the rows such a store holds (raw keypoints: an array or ``.npy``) go
    through that transform, and an OpenPose JSON folder or ``.pose`` file is read with
    :func:`ssvp_slt.keypoints.load_keypoints`, exactly as evaluation reads stored clips (no augmentation).
    """

    def __init__(self, input_dim: int, transform: Optional[str] = None, checkpoint: str = "the feature model"):
        self.input_dim, self.transform, self.checkpoint = input_dim, transform or None, checkpoint
        self.keypoint_cfg = None
        if self.transform:
            from .keypoints import KeypointConfig

            self.keypoint_cfg = KeypointConfig.from_json(self.transform, where=f"{checkpoint}: model.feature_transform")

    def __call__(self, x: FeatureInput, name: str) -> torch.Tensor:
        if self.keypoint_cfg is not None:
            from .keypoints import KeypointTransform, load_keypoints

            if _is_keypoint_file(x):
                out = load_keypoints(x, self.keypoint_cfg)
            else:  # the rows a keypoint store holds, rounded through its dtype as the store would
                raw = _read_array(x, name).astype(self.keypoint_cfg.stored_dtype).astype(np.float32)
                out = KeypointTransform(self.keypoint_cfg)(raw)
        elif _is_keypoint_file(x):
            raise ValueError(
                f"{name}: {self.checkpoint} was trained on features used as stored (no keypoint transform recorded), "
                f"so keypoint files cannot be read for it: pass the (T, D) rows its feature store holds"
            )
        else:
            out = _read_array(x, name)
        if out.shape[1] != self.input_dim:
            after = " after its keypoint transform" if self.keypoint_cfg is not None else ""
            raise ValueError(f"{name}: D={out.shape[1]} features{after}, {self.checkpoint} reads D={self.input_dim}")
        return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))


class SignTranslator:
    def __init__(self, models, task, generator, device: torch.device, feature_reader: Optional[FeatureReader] = None):
        self.models, self.task, self.generator, self.device = models, task, generator, device
        self.feature_reader = feature_reader

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: Union[str, Path],
        data: Optional[Union[str, Path]] = None,
        beam: int = 5,
        max_len_b: int = 127,
        device: Optional[str] = None,
    ) -> "SignTranslator":
        """Load a checkpoint; ``data`` is the data root holding config.yaml, spm.model and dict.txt
        (default: the one recorded in the checkpoint)."""
        return cls.from_checkpoints([checkpoint], data=data, beam=beam, max_len_b=max_len_b, device=device)

    @classmethod
    def from_checkpoints(
        cls,
        checkpoints: Sequence[Union[str, Path]],
        weights: Optional[Union[Sequence[float], str]] = None,
        data: Optional[Union[str, Path]] = None,
        beam: int = 5,
        max_len_b: int = 127,
        device: Optional[str] = None,
    ) -> "SignTranslator":
        """Load an ensemble: ``mae_vit_slt`` (video) and ``feature_slt`` (landmarks / features) checkpoints
        trained with the same vocabulary; ``weights`` one per checkpoint (normalised; default equal).
        ``data``: the data root with config.yaml, spm.model and dict.txt (default: the first checkpoint's)."""
        utils.import_user_module(Namespace(user_dir=str(PLUGIN_DIR)))
        from ssvp_plugin.models.ensemble_checkpoints import read_checkpoint_summary
        from ssvp_plugin.tasks.multimodal import SignMultimodalConfig, SignMultimodalTask

        paths = [Path(c) for c in checkpoints]
        if not paths:
            raise ValueError("no checkpoint given")
        if data is None:
            data = read_checkpoint_summary(paths[0]).data_root
        if weights is not None and not isinstance(weights, str):
            weights = ",".join(repr(float(w)) for w in weights)
        cfg = SignMultimodalConfig(data=str(data), ensemble_weights=weights, checkpoint_paths=None, seed=1, train_subset="train")
        task = SignMultimodalTask.setup_task(cfg)
        task.read_feature_store = False  # features come with each input (translate(features=...))
        task.check_checkpoints(paths)  # vocabularies, number of weights: before any model is built
        models, _ = checkpoint_utils.load_model_ensemble([str(p) for p in paths], task=task)
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        for m in models:
            m.to(device).eval()
        generator = task.build_generator(models, Namespace(beam=beam, max_len_b=max_len_b))
        return cls(models, task, generator, device, _feature_reader(models, task.checkpoints))

    @property
    def modalities(self) -> List[str]:
        """What the models read, in checkpoint order ('video', 'features')."""
        return list(self.task.model_modalities)

    def _dataset(self, paths: Sequence[Path]) -> VideoClipDataset:
        rows = []
        for i, p in enumerate(paths):
            info = probe_video(p)  # raises VideoError naming the file
            rows.append(ManifestRow(id=str(i), video=str(p), n_frames=info.n_frames, fps=info.fps, tgt_text=None, line=i + 1))
        d = self.task.target_dictionary
        return VideoClipDataset(
            "inference", rows, list(paths), self.task.data_cfg, targets=None, pad=d.pad(), eos=d.eos(),
            train=False, shuffle=False,
        )

    def _features(self, features: Sequence[FeatureInput]) -> List[torch.Tensor]:
        return [self.feature_reader(x, str(x) if isinstance(x, (str, Path)) else f"features[{i}]") for i, x in enumerate(features)]

    @torch.no_grad()
    def translate(
        self,
        videos: Optional[Sequence[Union[str, Path]]] = None,
        batch_size: int = 8,
        features: Optional[Sequence[FeatureInput]] = None,
    ) -> List[str]:
        """English text for each input, in order. ``videos``: video files (for video models); ``features``: for
        landmark / feature models, one per input, the same clips in the same order: the (T, D) rows the model's
        feature store holds (array or ``.npy``) or, for a keypoint model, an OpenPose JSON folder or ``.pose`` file
        (:class:`FeatureReader`)."""
        needed = set(self.modalities)
        given = {VIDEO: videos, FEATURES: features}
        for m, what in ((VIDEO, "videos=[video files]"), (FEATURES, "features=[one (T, D) array, .npy or keypoint file per input]")):
            if m in needed and given[m] is None:
                raise ValueError(f"the ensemble has a {m} model: pass {what}")
        for m in set(given) - needed:
            if given[m] is not None:
                logger.warning(f"no model of this ensemble reads {m} input: the {m} given are not used")
        counts = {m: len(given[m]) for m in needed}
        if len(set(counts.values())) > 1:
            raise ValueError(f"the inputs must be the same clips: got {counts}")
        n = next(iter(counts.values()))
        video_ds = self._dataset([Path(v) for v in videos]) if VIDEO in needed else None
        sequences = self._features(features) if FEATURES in needed else None
        out: List[Optional[str]] = [None] * n
        for start in range(0, n, batch_size):
            idx = list(range(start, min(start + batch_size, n)))
            parts: Dict[str, dict] = {}
            if video_ds is not None:
                parts[VIDEO] = video_ds.collater([video_ds[i] for i in idx])["net_input"]
            if sequences is not None:
                parts[FEATURES] = collate_features([sequences[i] for i in idx])
            primary = VIDEO if VIDEO in parts else FEATURES
            batch = {"id": torch.tensor(idx), "nsentences": len(idx), "net_input": join_net_inputs(parts, primary)}
            batch = utils.move_to_cuda(batch, self.device) if self.device.type == "cuda" else batch
            hyps = self.task.inference_step(self.generator, self.models, batch)
            for sample_id, h in zip(batch["id"].tolist(), hyps):
                out[sample_id] = self.task.decode_tokens(h[0]["tokens"])
        return out


def _feature_reader(models, summaries) -> Optional[FeatureReader]:
    """One reader for the ensemble's feature models: they all receive the same sequence per clip, so they must
    read features alike (same D, same store transform), as they must in fairseq-generate (one store)."""
    readers = {}
    for model, s in zip(models, summaries):
        if s.modality == FEATURES:
            readers.setdefault((model.encoder.input_dim, s.feature_transform or ""), []).append(s.path)
    if len(readers) > 1:
        (a, paths_a), (b, paths_b) = list(readers.items())[:2]
        raise ValueError(
            f"{paths_a[0]} (D={a[0]}, transform {a[1] or 'none'}) and {paths_b[0]} (D={b[0]}, transform {b[1] or 'none'}) "
            f"read different features; an ensemble passes one feature sequence per clip to all its feature models"
        )
    if not readers:
        return None
    (dim, transform), paths = next(iter(readers.items()))
    return FeatureReader(dim, transform, str(paths[0]))


def main(argv=None):
    import argparse

    p = argparse.ArgumentParser(description="Translate sign-language video files (and landmark features) to English text.")
    p.add_argument("videos", nargs="*", help="video files (for video models)")
    p.add_argument("--checkpoint", required=True, action="append", help="a checkpoint; repeat it for an ensemble")
    p.add_argument("--weights", help="ensemble weights, one per --checkpoint in order, e.g. 0.7,0.3 (default: equal)")
    p.add_argument(
        "--features", nargs="+",
        help="for landmark/feature models, one per input in order: a (T, D) .npy of the rows its store holds, or (keypoint "
        "models) an OpenPose JSON folder or .pose file",
    )
    p.add_argument("--data", help="data root with config.yaml/spm.model/dict.txt (default: the first checkpoint's)")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=8)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    translator = SignTranslator.from_checkpoints(args.checkpoint, args.weights, args.data, beam=args.beam)
    texts = translator.translate(args.videos or None, args.batch_size, features=args.features)
    for name, text in zip(args.videos or args.features, texts):
        print(f"{name}\t{text}")


if __name__ == "__main__":
    main()
