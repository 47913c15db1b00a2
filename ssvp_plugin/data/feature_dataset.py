"""Per-clip feature sequences (T x D float vectors, any kind) with caption tokens, batched by time steps.

The features come from a feature store (:mod:`ssvp_slt.features.store`): video-encoder
features, keypoints, anything with one D-vector per time step. ``--max-tokens`` counts time
steps, what the text model's encoder processes.

A store whose ``config.yaml`` names a ``transform`` (keypoints: normalisation, training
augmentation) has it applied to every clip read; a store without one (video-encoder features)
is read as stored.
"""

import importlib
import logging
from typing import List, Optional, Sequence

import numpy as np
import torch
from fairseq.data import FairseqDataset, data_utils

from ssvp_slt.corpus.manifest import ManifestRow
from ssvp_slt.features.store import FeatureStoreError, SplitFeatures, StoreInfo
from .batching import keep_every_clip
from .unreadable_clip import SKIPPED_KEY, UnreadableClips, count_skipped


logger = logging.getLogger(__name__)

# store config transform name -> "module:class"; the class has from_store_info(info), output_dim,
# output_length(stored_length, train), describe() and __call__(x, rng=None) (rng only in training)
FEATURE_TRANSFORMS = {"keypoints": "ssvp_slt.keypoints.transform:KeypointTransform"}


def feature_transform_for(info: StoreInfo):
    """The transform the store's config.yaml selects, or None (features used as stored)."""
    if not info.transform:
        return None
    name = info.transform.get("name")
    if name not in FEATURE_TRANSFORMS:
        raise FeatureStoreError(f"{info.path}: unknown transform {name!r}; known: {sorted(FEATURE_TRANSFORMS)}")
    module, cls = FEATURE_TRANSFORMS[name].split(":")
    try:
        return getattr(importlib.import_module(module), cls).from_store_info(info)
    except ValueError as e:  # bad settings: the message names the store config
        raise FeatureStoreError(str(e)) from e


class FeatureCaptionDataset(FairseqDataset):
    """One item per manifest row: ``{"id", "source": (T, D) float32, "target"}``.

    Args:
        rows: the manifest rows (for error messages).
        features: the split in the store; ``feature_index[i]`` is row i's position in it.
        targets: encoded captions (ending with EOS), or None.
        pad, eos: target dictionary indices.
        shuffle: shuffle before sorting by length in ``ordered_indices`` (training).
        transform: applied to every clip read (see ``feature_transform_for``), or None.
        train: the transform augments (drawn per seed, epoch and index, as the video dataset's crops).
        seed: base of the per-item random state.
        skip_invalid: a clip whose features cannot be read (chunk removed or cut short since the split
            loaded, non-finite values) is logged and left out of its batch (task.skip_invalid_samples) instead
            of stopping with an error naming it (:mod:`ssvp_plugin.data.unreadable_clip`).
        manifest_path: the manifest the rows' line numbers refer to, for those messages.
    """

    def __init__(
        self,
        split: str,
        rows: Sequence[ManifestRow],
        features: SplitFeatures,
        feature_index: np.ndarray,
        targets: Optional[List[torch.Tensor]],
        pad: int,
        eos: int,
        shuffle: bool = False,
        transform=None,
        train: bool = False,
        seed: int = 1,
        skip_invalid: bool = False,
        manifest_path=None,
    ):
        super().__init__()
        assert len(rows) == len(feature_index)
        assert targets is None or len(targets) == len(rows)
        self.split, self.rows, self.features = split, list(rows), features
        self.feature_index = np.asarray(feature_index, dtype=np.int64)
        self.targets, self.pad, self.eos, self.shuffle = targets, pad, eos, shuffle
        self.transform, self.train, self.seed, self.epoch = transform, train, seed, 1
        stored = features.lengths[self.feature_index].astype(np.int64)
        if transform is not None:  # time augmentation changes lengths: batch by the longest a clip can come out
            stored = np.array([transform.output_length(int(n), train) for n in stored], dtype=np.int64)
        self.sizes = stored  # time steps: what --max-tokens bounds
        self.tgt_sizes = (
            np.array([len(t) for t in targets], dtype=np.int64) if targets is not None else np.zeros(len(rows), dtype=np.int64)
        )
        self.unreadable = UnreadableClips(
            manifest_path or f"the {split} manifest", skip_invalid,
            advice=f"extract its features again (scripts/extract_features.py) into {features.dir}",
        )

    def __len__(self):
        return len(self.rows)

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        return not (self.train and self.transform is not None)  # augmentation is drawn per epoch

    def set_epoch(self, epoch):
        self.epoch = epoch

    def _read(self, index):
        """Clip ``index``'s stored (T, D) features (a view into the memory map), or None after handing a
        clip that cannot be read to ``self.unreadable`` (the split was checked when it loaded; files can
        change since)."""
        i = int(self.feature_index[index])
        chunk = self.features.chunk_paths[int(self.features.row_chunk[i])]
        expected = int(self.features.lengths[i])
        try:
            x = self.features.read(i)
        except (OSError, ValueError) as e:  # chunk removed (OSError) or cut before its data (mmap: ValueError)
            return self.unreadable(self.rows[index], chunk, f"cannot read the clip's features ({e})")
        if len(x) < expected:
            return self.unreadable(
                self.rows[index], chunk, f"holds {len(x)} of the clip's {expected} feature rows (cut short since the split loaded)"
            )
        if not np.isfinite(x).all():  # the store's writer refuses these: the file changed since
            return self.unreadable(self.rows[index], chunk, "the clip's features hold non-finite values (NaN or inf)")
        return x

    def __getitem__(self, index):
        x = self._read(index)
        if x is None:
            return None
        if self.transform is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index]) if self.train else None
            x = self.transform(x, rng=rng)
        item = {"id": index, "source": torch.from_numpy(np.asarray(x, dtype=np.float32))}  # the cast copies
        if self.targets is not None:
            item["target"] = self.targets[index]
        return item

    def collater(self, samples):
        skipped = count_skipped(samples)
        samples = [s for s in samples if s is not None]
        if not samples:
            return {}  # fairseq trains its dummy batch with the loss zeroed (ssvp_plugin.runtime.skipped_batches)
        lengths = torch.tensor([len(s["source"]) for s in samples], dtype=torch.long)
        t_max, dim = int(lengths.max()), samples[0]["source"].shape[1]
        source = torch.zeros(len(samples), t_max, dim, dtype=torch.float32)
        for i, s in enumerate(samples):
            source[i, : len(s["source"])] = s["source"]
        padding_mask = torch.arange(t_max).unsqueeze(0) >= lengths.unsqueeze(1)
        batch = {
            "id": torch.tensor([s["id"] for s in samples], dtype=torch.long),
            "nsentences": len(samples),
            # fairseq's SequenceGenerator reads "source" + "padding_mask": source length = time steps
            "net_input": {"source": source, "padding_mask": padding_mask},
            SKIPPED_KEY: skipped,
        }
        if self.targets is not None:
            targets = [s["target"] for s in samples]
            batch["target"] = data_utils.collate_tokens(targets, self.pad, self.eos, left_pad=False)
            batch["net_input"]["prev_output_tokens"] = data_utils.collate_tokens(
                targets, self.pad, self.eos, left_pad=False, move_eos_to_beginning=True
            )
            batch["target_lengths"] = torch.tensor([len(t) for t in targets], dtype=torch.long)
            batch["ntokens"] = int(batch["target_lengths"].sum())
        else:
            batch["ntokens"] = int(lengths.sum())
        return batch

    def num_tokens(self, index):
        return int(self.sizes[index])

    def num_tokens_vec(self, indices):
        return self.sizes[indices]

    def size(self, index):
        return int(self.sizes[index]), int(self.tgt_sizes[index])

    def ordered_indices(self):
        order = np.random.permutation(len(self)) if self.shuffle else np.arange(len(self))
        # by time steps, then target length, keeping the shuffle among equals
        return order[np.lexsort((self.tgt_sizes[order], self.sizes[order]))]

    def batch_by_size(self, indices, max_tokens=None, max_sentences=None, required_batch_size_multiple=1):
        if max_tokens and len(indices):
            longest = int(indices[np.argmax(self.sizes[indices])])
            if self.sizes[longest] > max_tokens:
                row = self.rows[longest]
                raise ValueError(
                    f"{self.split}: clip {row.id} (manifest line {row.line}) has {self.sizes[longest]} feature time "
                    f"steps, more than dataset.max_tokens={max_tokens} (which counts time steps): raise max_tokens"
                )
        batches = super().batch_by_size(indices, max_tokens, max_sentences, required_batch_size_multiple)
        return keep_every_clip(batches, indices)

    @property
    def supports_prefetch(self):
        return False

    def filter_indices_by_size(self, indices, max_sizes):
        return data_utils.filter_paired_dataset_indices_by_size(self.sizes, self.tgt_sizes, indices, max_sizes)
