"""Task ``sign_multimodal``: decode an ensemble of models that read different inputs of the same clips.

    fairseq-generate $DATA --user-dir ssvp_plugin --task sign_multimodal --features $STORE \
        --path video.pt:landmarks.pt --ensemble-weights 0.7,0.3 --gen-subset test --beam 5

A video model (``mae_vit_slt``) reads the data root's clips exactly as ``how2sign_video`` does; a
landmark / feature model (``feature_slt``) reads the feature store exactly as ``sign_features`` does
(this task builds and loads through those tasks, so their settings, checks and errors apply unchanged).
The two are joined by manifest id (:class:`~ssvp_plugin.data.joined_dataset.JoinedDataset`) and the
generator combines the models' next-token log-probabilities with ``--ensemble-weights``
(:class:`~ssvp_plugin.models.weighted_ensemble.WeightedEnsembleModel`; equal by default, as
fairseq's own ensembles). Only the modalities the given models read are loaded, so a weighted
ensemble of video models alone needs no feature store. Checkpoints trained with other vocabularies
are refused before any model is built (:mod:`~ssvp_plugin.models.ensemble_checkpoints`).

Generation only: each model is trained with its own task.
"""

import logging
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from fairseq import utils
from fairseq.tasks import register_task
from omegaconf import II

from ssvp_slt.corpus.manifest import ManifestError
from ..data.joined_dataset import FEATURES, MODALITIES, VIDEO, JoinedDataset
from ..models.ensemble_checkpoints import CheckpointSummary, check_ensemble_checkpoints
from ..models.weighted_ensemble import MODEL_MODALITIES, EnsembleError, WeightedEnsembleModel, parse_ensemble_weights
from .how2sign_video import How2SignVideoConfig, How2SignVideoTask
from .sign_features import SignFeaturesConfig, SignFeaturesTask

logger = logging.getLogger(__name__)


@dataclass
class SignMultimodalConfig(How2SignVideoConfig):
    features: Optional[str] = field(
        default=None,
        metadata={"help": "feature store the feature_slt models read (default: <data>/features); see docs/ensembles.md"},
    )
    ensemble_weights: Optional[str] = field(
        default=None,
        metadata={
            "help": "one weight per --path checkpoint, in order, e.g. 0.7,0.3 (normalised to sum 1); the next-token "
            "distribution is sum_i w_i p_i. Default: equal weights, as fairseq's own ensembles"
        },
    )
    # the --path checkpoints (fairseq-generate's), read to refuse mismatched vocabularies before the models are
    # built; no help text: fairseq then adds no command-line flag for it
    checkpoint_paths: Optional[str] = II("common_eval.path")


def _checkpoint_paths(cfg) -> List[str]:
    try:
        paths = getattr(cfg, "checkpoint_paths", None)
    except Exception:  # an interpolation with no common_eval to resolve it (a task set up on its own)
        return []
    if not paths or str(paths).startswith("${"):
        return []
    return utils.split_paths(str(paths))


@register_task("sign_multimodal", dataclass=SignMultimodalConfig)
class SignMultimodalTask(How2SignVideoTask):
    cfg: SignMultimodalConfig

    def __init__(self, cfg: SignMultimodalConfig, data_cfg, tgt_dict):
        super().__init__(cfg, data_cfg, tgt_dict)
        self.model_modalities: List[str] = []  # what each built model reads, in build (= --path) order
        self.source_limits: Dict[str, int] = {}  # the most frames / time steps the models of a modality accept
        self.checkpoints: Optional[List[CheckpointSummary]] = None
        # SignTranslator passes features directly and builds feature models without a store
        self.read_feature_store = True
        self._feature_task: Optional[SignFeaturesTask] = None

    @classmethod
    def setup_task(cls, cfg: SignMultimodalConfig, **kwargs):
        task = super().setup_task(cfg, **kwargs)  # data config and dictionary, as how2sign_video reads them
        paths = _checkpoint_paths(cfg)
        if paths:
            task.check_checkpoints(paths)
        return task

    def check_checkpoints(self, paths) -> List[CheckpointSummary]:
        """Refuse mismatched vocabularies and a wrong number of weights, naming the checkpoints."""
        self.checkpoints = check_ensemble_checkpoints(paths, self.tgt_dict, self.data_cfg.dictionary_path)
        parse_ensemble_weights(self.cfg.ensemble_weights, len(paths), [str(p) for p in paths])
        logger.info(
            "ensemble: " + ", ".join(f"{s.path} ({s.model}, reads {s.modality})" for s in self.checkpoints)
        )
        return self.checkpoints

    @property
    def feature_task(self) -> SignFeaturesTask:
        """``sign_features`` on the same data root and the store (opened on first use: video-only ensembles need none)."""
        if self._feature_task is None:
            c = self.cfg
            self._feature_task = SignFeaturesTask.setup_task(
                SignFeaturesConfig(
                    data=c.data, features=c.features, skip_invalid_samples=c.skip_invalid_samples,
                    max_target_positions=c.max_target_positions, seed=c.seed, train_subset=c.train_subset,
                )
            )
        return self._feature_task

    def max_positions(self):
        # the joined dataset holds each modality to its own models' limit (JoinedDataset.filter_indices_by_size)
        return None, self.cfg.max_target_positions

    def build_model(self, cfg, from_checkpoint=False):
        name = getattr(cfg, "_name", None)
        modality = MODEL_MODALITIES.get(name)
        if modality is None:
            raise EnsembleError(
                f"model {name!r}: the task sign_multimodal decodes {sorted(MODEL_MODALITIES)} models "
                f"(video: mae_vit_slt, landmarks/features: feature_slt)"
            )
        if modality == FEATURES and self.read_feature_store:
            model = self.feature_task.build_model(cfg, from_checkpoint)  # fills / checks D against the store
        else:
            model = super().build_model(cfg, from_checkpoint)
        self.model_modalities.append(modality)
        limit = model.encoder.max_positions()
        self.source_limits[modality] = min(limit, self.source_limits.get(modality, limit))
        return model

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        t0 = time.perf_counter()
        needed = [m for m in MODALITIES if m in (self.model_modalities or MODALITIES)]
        parts = {}
        if VIDEO in needed:
            super().load_dataset(split, epoch, combine, **kwargs)  # how2sign_video's rows, checks, frames
            parts[VIDEO] = self.datasets.pop(split)
        if FEATURES in needed:
            self.feature_task.load_dataset(split, epoch, combine, **kwargs)  # sign_features' store lookup
            parts[FEATURES] = self.feature_task.datasets.pop(split)
        joined = JoinedDataset(split, parts, source_limits=self.source_limits)
        missing = joined.describe_missing()
        if missing:
            message = f"{split}: {missing}"
            if not self.cfg.skip_invalid_samples:
                raise ManifestError(
                    f"{message}; an ensemble decodes a clip only with every model's input: provide the missing "
                    f"inputs, or set --skip-invalid-samples to decode the {len(joined)} clip(s) that have all"
                )
            logger.warning(f"{message}: left out (task.skip_invalid_samples=true)")
        if not len(joined):
            raise ManifestError(f"{split}: no clip has every input {needed}")
        self.datasets[split] = joined
        logger.info(
            f"{split}: {len(joined)} clip(s) joined by id across {needed} (primary: {joined.primary}, whose "
            f"frames/time steps --max-tokens counts); loaded in {time.perf_counter() - t0:.2f} s"
        )

    def build_generator(self, models, args, seq_gen_cls=None, extra_gen_cls_kwargs=None, prefix_allowed_tokens_fn=None):
        for flag in ("score_reference", "print_alignment"):
            if getattr(args, flag, False):
                raise EnsembleError(f"--{flag.replace('_', '-')} is not supported by the task sign_multimodal")
        names = None
        if self.checkpoints is not None and len(self.checkpoints) == len(models):
            names = [str(s.path) for s in self.checkpoints]
        weights = parse_ensemble_weights(self.cfg.ensemble_weights, len(models), names)
        ensemble = WeightedEnsembleModel(models, weights)
        if len(models) > 1:
            shown = ", ".join(
                f"{names[i] if names else f'model {i}'} ({m or 'unknown'}): {w:.4g}"
                for i, (m, w) in enumerate(zip(ensemble.modalities, ensemble.weights))
            )
            logger.info(f"ensemble of {len(models)} models, weights {shown}")
        return super().build_generator(
            ensemble, args, seq_gen_cls=seq_gen_cls, extra_gen_cls_kwargs=extra_gen_cls_kwargs,
            prefix_allowed_tokens_fn=prefix_allowed_tokens_fn,
        )

    def train_step(self, *args, **kwargs):
        raise NotImplementedError(
            "sign_multimodal decodes ensembles of trained models; train each model with its own task "
            "(how2sign_video, sign_features)"
        )
