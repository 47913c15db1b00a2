"""Task ``sign_features``: per-clip feature sequences (T x D) -> English captions.

The second stage of two-stage translation (SSVP-SLT's recipe): features come from a feature
store (``scripts/extract_features.py`` for a frozen video encoder; any producer of one D-vector
per time step, keypoints included, writes the same format), captions and vocabulary from the data
root, exactly as ``how2sign_video`` reads them: this task is ``how2sign_video`` with the clips'
frames replaced by stored features (same sentencepiece model, dictionary, caption normalisation,
BLEU validation and detokenisation, inherited unchanged).
"""

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from fairseq.dataclass import FairseqDataclass
from fairseq.tasks import register_task
from omegaconf import II, OmegaConf, open_dict

from ssvp_slt.corpus.data_config import VideoDataConfig
from ssvp_slt.corpus.manifest import ManifestError
from ssvp_slt.corpus.skip_flag import SKIP_INVALID_HINT, SKIP_INVALID_OVERRIDE
from ssvp_slt.features.store import FeatureStore, FeatureStoreError
from ..data.feature_dataset import FeatureCaptionDataset, feature_transform_for
from ..data.splits import is_training_load, load_split_rows, training_subset
from .how2sign_video import How2SignVideoTask

logger = logging.getLogger(__name__)

MAX_MISSING_SHOWN = 10


@dataclass
class SignFeaturesConfig(FairseqDataclass):
    data: str = field(default="???", metadata={"help": "data root: <split>.tsv manifests, config.yaml, spm.model, dict.txt"})
    features: Optional[str] = field(
        default=None, metadata={"help": "feature store directory (default: <data>/features); see docs/two_stage.md"}
    )
    skip_invalid_samples: bool = field(
        default=False,
        metadata={
            "help": "drop (and count in the log) manifest rows with bad fields or empty captions, and clips without "
            "features in the store (failed extractions), instead of stopping with an error"
        },
    )
    max_train_clips: int = field(
        default=0, metadata={"help": "train on a random subset of this many training clips (0: all), fixed by common.seed"}
    )
    # the same settings, with the same meaning, as how2sign_video's (its methods read them)
    max_target_positions: int = field(default=128, metadata={"help": "longest caption in tokens (with EOS)"})
    eval_bleu: bool = field(default=False, metadata={"help": "decode the validation set and report BLEU"})
    eval_bleu_args: str = field(default='{"beam": 5}', metadata={"help": "generation args for validation BLEU, as JSON"})
    eval_bleu_print_samples: bool = field(default=False, metadata={"help": "print a hypothesis/reference per batch"})
    seed: int = II("common.seed")
    train_subset: str = II("dataset.train_subset")


@register_task("sign_features", dataclass=SignFeaturesConfig)
class SignFeaturesTask(How2SignVideoTask):
    cfg: SignFeaturesConfig

    def __init__(self, cfg: SignFeaturesConfig, data_cfg: VideoDataConfig, tgt_dict, store: FeatureStore):
        super().__init__(cfg, data_cfg, tgt_dict)
        self.store = store
        # the store's config.yaml selects it (keypoints: normalisation + training augmentation); None: as stored
        self.feature_transform = feature_transform_for(store.info)

    @classmethod
    def setup_task(cls, cfg: SignFeaturesConfig, **kwargs):
        base = How2SignVideoTask.setup_task(cfg)  # data config, dictionary: as how2sign_video reads them
        store_dir = Path(cfg.features) if cfg.features else Path(cfg.data) / "features"
        store = FeatureStore(store_dir)
        logger.info(
            f"feature store {store.root}: D={store.dim}, {store.info.dtype}, {store.info.feature_rate:g} steps/s, "
            f"splits {store.splits()}"
        )
        _warn_if_made_with_other_frames(store, base.data_cfg)
        task = cls(cfg, base.data_cfg, base.tgt_dict, store)
        if task.feature_transform is not None:
            logger.info(f"feature transform {store.info.transform.get('name')!r} from {store.info.path}: D={store.dim} stored -> "
                        f"D={task.feature_dim} model input; {store.info.transform}")
        return task

    @property
    def feature_dim(self) -> int:
        """D: what the model's input projection reads (the store's config.yaml, after its transform)."""
        return self.feature_transform.output_dim if self.feature_transform is not None else self.store.dim

    @property
    def feature_store_config(self) -> Path:
        return self.store.info.path

    def max_positions(self):
        return None, self.cfg.max_target_positions  # time steps: the model's max_source_positions bounds them

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        t0 = time.perf_counter()
        train = is_training_load(split, self.cfg.train_subset, kwargs)
        manifest_path, rows, _ = load_split_rows(
            self.data_cfg, split, need_text=True, skip_invalid=self.cfg.skip_invalid_samples, check="none", workers=1
        )
        if train:
            rows, _ = training_subset(rows, rows, self.cfg.max_train_clips, self.cfg.seed)
        features = self.store.split(split)
        index = [features.index_of(r.id) for r in rows]
        missing = [r for r, i in zip(rows, index) if i is None]
        if missing:
            shown = ", ".join(f"{r.id} (line {r.line})" for r in missing[:MAX_MISSING_SHOWN])
            message = (
                f"{manifest_path}: {len(missing)} of {len(rows)} clip(s) have no features in {features.dir} "
                f"(e.g. {shown}); failed extractions are listed in {features.dir}/failures-*.tsv. Re-run "
                f"scripts/extract_features.py to retry them"
            )
            if not self.cfg.skip_invalid_samples:
                raise FeatureStoreError(message + f", or set {SKIP_INVALID_HINT} to train without them")
            logger.warning(message + f"; skipped ({SKIP_INVALID_OVERRIDE})")
            keep = [k for k, i in enumerate(index) if i is not None]
            rows, index = [rows[k] for k in keep], [index[k] for k in keep]
            if not rows:
                raise ManifestError(f"{manifest_path}: no clip has features in {features.dir}")
        targets = self.encode_row_captions(manifest_path, rows)
        unk = self.tgt_dict.unk()
        n_unk = sum(1 for t in targets if unk in t.tolist())
        if n_unk:
            logger.warning(f"{manifest_path}: {n_unk} caption(s) contain pieces missing from the dictionary (<unk>)")
        dataset = FeatureCaptionDataset(
            split, rows, features, np.asarray(index, dtype=np.int64), targets, pad=self.tgt_dict.pad(),
            eos=self.tgt_dict.eos(), shuffle=train, transform=self.feature_transform, train=train, seed=self.cfg.seed,
            skip_invalid=self.cfg.skip_invalid_samples, manifest_path=manifest_path,
        )
        self.datasets[split] = dataset
        unused = len(features) - len(rows)
        logger.info(
            f"{split}: {len(dataset)} clips, {int(dataset.sizes.sum())} feature time steps (per clip {int(dataset.sizes.min())}"
            f"-{int(dataset.sizes.max())}), D={self.feature_dim}; {unused} store entries not in the manifest; "
            f"loaded in {time.perf_counter() - t0:.2f} s"
        )

    def build_model(self, cfg, from_checkpoint=False):
        transform = self.feature_transform.describe() if self.feature_transform is not None else ""
        with open_dict(cfg) if OmegaConf.is_config(cfg) else contextlib.nullcontext():
            # fill D (and the transform's settings) into the settings the trainer saves (fairseq's build_model works
            # on a merged copy), so that a checkpoint records what it reads and refuses a store that differs
            if getattr(cfg, "input_dim", "absent") is None:
                cfg.input_dim = self.feature_dim
            if getattr(cfg, "feature_transform", "absent") is None:
                cfg.feature_transform = transform
        recorded = getattr(cfg, "feature_transform", None)
        if recorded is not None and recorded != transform:
            raise FeatureStoreError(
                f"{self.store.info.path}: the model was trained on features read with transform "
                f"{recorded or 'none (as stored)'}, this store's config.yaml gives {transform or 'none (as stored)'}: "
                f"use the store (and settings) the model was trained on"
            )
        model = super().build_model(cfg, from_checkpoint)
        expected = getattr(getattr(model, "encoder", None), "input_dim", None)
        if expected is not None and expected != self.feature_dim:
            given = f"D={self.store.dim} features" if self.feature_transform is None else (
                f"D={self.store.dim} features, D={self.feature_dim} after its transform")
            raise FeatureStoreError(
                f"{self.store.info.path}: the store holds {given}, the model reads D={expected} "
                f"(model.input_dim, recorded when it was trained): use the store the model was trained on"
            )
        return model


def _warn_if_made_with_other_frames(store: FeatureStore, data_cfg: VideoDataConfig) -> None:
    """Video-encoder features record the frame settings they were made with; say so if the data root's differ."""
    recorded = store.info.source.get("data_config") if isinstance(store.info.source, dict) else None
    if not isinstance(recorded, dict):
        return
    current = {k: getattr(data_cfg, k, None) for k in recorded}
    if "window_stride" in recorded:
        current["window_stride"] = data_cfg.window_settings().window_stride
    changed = [f"{k}: store {recorded[k]!r}, data config {current[k]!r}" for k in recorded if current[k] != recorded[k]]
    if changed:
        logger.warning(
            f"{store.info.path}: features were extracted with other frame settings than {data_cfg.path} now has "
            f"({'; '.join(changed)}); the features are used as stored"
        )
