"""One clip, several inputs: the clips of a split joined by id across modalities, for ensembles.

A video model (``mae_vit_slt``) reads a clip's frames, a landmark / feature model (``feature_slt``)
its stored T x D sequence. :class:`JoinedDataset` pairs the per-modality datasets the single-model
tasks build (``VideoClipDataset``, ``FeatureCaptionDataset``: their reading, checks and errors
unchanged) by manifest id. Ids present in every modality are joined; ids missing in one are counted
(``missing``) so that the task can report or refuse them, never drop them silently.

Batch layout (``net_input``): the *primary* modality's inputs under their usual names (``source``,
``padding_mask``[, ``window_starts``]: what fairseq's SequenceGenerator reads for the batch size and
source lengths), every other modality's under ``<modality>_<name>`` (``features_source``,
``features_padding_mask``), and ``modality`` naming the primary. :func:`modality_input` gives each
model its own inputs back. Each tensor appears once, so moving a batch to the GPU copies it once.
"""

from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from fairseq.data import FairseqDataset

from .batching import keep_every_clip
from .unreadable_clip import SKIPPED_KEY, count_skipped


VIDEO, FEATURES = "video", "features"
MODALITIES = (VIDEO, FEATURES)  # primary first: video frames dominate a batch's memory and --max-tokens counts them
MODALITY_KEY = "modality"  # net_input entry naming the modality of the unprefixed inputs
MAX_IDS_SHOWN = 5


def modality_input(net_input: dict, modality: Optional[str]) -> dict:
    """The encoder arguments of a model of ``modality`` in a (joined or plain) batch.

    A plain batch (no ``modality`` entry: ``how2sign_video``'s or ``sign_features``') goes whole to every
    model, as in fairseq's own ensembles; ``modality=None`` (a model of unknown kind) reads the primary inputs.
    """
    primary = net_input.get(MODALITY_KEY)
    if primary is None:
        return {k: v for k, v in net_input.items() if k != "prev_output_tokens"}
    if modality is None or modality == primary:
        prefixes = tuple(f"{m}_" for m in MODALITIES if m != primary)
        return {
            k: v for k, v in net_input.items()
            if k not in ("prev_output_tokens", MODALITY_KEY) and not k.startswith(prefixes)
        }
    prefix = f"{modality}_"
    own = {k[len(prefix):]: v for k, v in net_input.items() if k.startswith(prefix)}
    if not own:
        present = [primary] + [m for m in MODALITIES if any(k.startswith(f"{m}_") for k in net_input)]
        raise ValueError(f"a model reads {modality} input, but this batch carries only {present}")
    return own


def join_net_inputs(parts: Dict[str, dict], primary: str) -> dict:
    """One ``net_input`` from each modality's own (the layout in the module doc)."""
    net_input = dict(parts[primary])
    for m, part in parts.items():
        if m != primary:
            net_input.update({f"{m}_{k}": v for k, v in part.items() if k != "prev_output_tokens"})
    net_input[MODALITY_KEY] = primary
    return net_input


def collate_features(sequences: Sequence[torch.Tensor]) -> dict:
    """``{"source": (B, T, D) float32, "padding_mask": (B, T)}`` of (T_i, D) sequences, as ``FeatureCaptionDataset``
    batches them (zero padding at the end, True where padded)."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    t_max, dim = int(lengths.max()), sequences[0].shape[1]
    source = torch.zeros(len(sequences), t_max, dim, dtype=torch.float32)
    for i, s in enumerate(sequences):
        source[i, : len(s)] = s
    return {"source": source, "padding_mask": torch.arange(t_max).unsqueeze(0) >= lengths.unsqueeze(1)}


def _ids(dataset) -> List[str]:
    return [r.id for r in dataset.rows]


class JoinedDataset(FairseqDataset):
    """The clips present in every part, item ``i`` holding each part's item for that clip.

    Args:
        parts: modality -> dataset with ``rows`` (manifest rows: ``.id``), ``sizes``, ``tgt_sizes``,
            ``collater``; all built from the same manifest and vocabulary.
        primary: the modality whose inputs are unprefixed, whose sizes ``--max-tokens`` counts, and whose
            targets the batch carries (default: video if present).
        source_limits: modality -> the most time steps / frames the models reading it accept
            (the rest is left out by fairseq's size filter, or refused, as for a single model).
    """

    def __init__(self, split: str, parts: Dict[str, FairseqDataset], primary: Optional[str] = None,
                 source_limits: Optional[Dict[str, int]] = None):
        super().__init__()
        if not parts:
            raise ValueError("a joined dataset needs at least one modality")
        self.split, self.parts = split, dict(parts)
        self.primary = primary or next((m for m in MODALITIES if m in parts), next(iter(parts)))
        self.source_limits = dict(source_limits or {})
        positions = {m: {clip_id: i for i, clip_id in enumerate(_ids(d))} for m, d in self.parts.items()}
        every = [clip_id for m in self.parts for clip_id in _ids(self.parts[m])]
        union = list(dict.fromkeys(every))  # in the primary's order first, then the others'
        union.sort(key=lambda c: (c not in positions[self.primary], positions[self.primary].get(c, 0)))
        self.ids = [c for c in union if all(c in positions[m] for m in self.parts)]
        # ids some modality has and this one lacks: reported by the task, never dropped without a count
        self.missing: Dict[str, List[str]] = {m: [c for c in union if c not in positions[m]] for m in self.parts}
        self.index = {m: np.array([positions[m][c] for c in self.ids], dtype=np.int64) for m in self.parts}
        base = self.parts[self.primary]
        self.rows = [base.rows[i] for i in self.index[self.primary]]
        self.sizes = np.asarray(base.sizes, dtype=np.int64)[self.index[self.primary]]
        self.tgt_sizes = np.asarray(base.tgt_sizes, dtype=np.int64)[self.index[self.primary]]
        self.part_sizes = {m: np.asarray(d.sizes, dtype=np.int64)[self.index[m]] for m, d in self.parts.items()}

    def describe_missing(self) -> str:
        """'N clip(s) have no <modality> (e.g. ...)' for each modality that lacks some, or ''."""
        notes = []
        for m, ids in self.missing.items():
            if ids:
                shown = ", ".join(ids[:MAX_IDS_SHOWN]) + (", ..." if len(ids) > MAX_IDS_SHOWN else "")
                notes.append(f"{len(ids)} clip(s) have no {m} input ({shown})")
        return "; ".join(notes)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, index):
        item = {m: d[int(self.index[m][index])] for m, d in self.parts.items()}
        if any(v is None for v in item.values()):
            return None  # a part could not read the clip and skipped it (task.skip_invalid_samples): it logged why
        item["id"] = index
        return item

    def collater(self, samples):
        skipped = count_skipped(samples)
        samples = [s for s in samples if s is not None]
        if not samples:
            return {}
        batches = {m: d.collater([s[m] for s in samples]) for m, d in self.parts.items()}
        batch = dict(batches[self.primary])  # targets, ntokens, nsentences: the primary's (same captions in all)
        batch["id"] = torch.tensor([s["id"] for s in samples], dtype=torch.long)
        batch["net_input"] = join_net_inputs({m: b["net_input"] for m, b in batches.items()}, self.primary)
        batch[SKIPPED_KEY] = skipped
        return batch

    def num_tokens(self, index):
        return int(self.sizes[index])

    def num_tokens_vec(self, indices):
        return self.sizes[indices]

    def size(self, index):
        return int(self.sizes[index]), int(self.tgt_sizes[index])

    def ordered_indices(self):
        # deterministic: this dataset only serves generation
        order = np.arange(len(self))
        return order[np.lexsort((self.tgt_sizes[order], self.sizes[order]))]

    def batch_by_size(self, indices, max_tokens=None, max_sentences=None, required_batch_size_multiple=1):
        if max_tokens and len(indices):
            longest = int(indices[np.argmax(self.sizes[indices])])
            if self.sizes[longest] > max_tokens:
                raise ValueError(
                    f"{self.split}: clip {self.ids[longest]} (manifest line {self.rows[longest].line}) has "
                    f"{self.sizes[longest]} {self.primary} time steps/frames, more than dataset.max_tokens={max_tokens} "
                    f"(which counts the {self.primary} input): raise --max-tokens"
                )
        batches = super().batch_by_size(indices, max_tokens, max_sentences, required_batch_size_multiple)
        return keep_every_clip(batches, indices)

    def filter_indices_by_size(self, indices, max_sizes):
        """Targets against fairseq's limit; each modality against the limit of the models reading it
        (fairseq's single source limit would hold video frames to a feature model's time-step limit)."""
        indices = np.asarray(indices, dtype=np.int64)
        ok = np.ones(len(indices), dtype=bool)
        max_tgt = max_sizes[1] if isinstance(max_sizes, (tuple, list)) else None
        if max_tgt is not None:
            ok &= self.tgt_sizes[indices] <= max_tgt
        for m, limit in self.source_limits.items():
            if m in self.part_sizes and limit is not None:
                ok &= self.part_sizes[m][indices] <= limit
        return indices[ok], indices[~ok].tolist()

    @property
    def supports_prefetch(self):
        return False

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        return False
