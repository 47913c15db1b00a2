"""Video clips paired with caption tokens, batched by frames.

``__getitem__`` decodes only the frames the model will see and crops them;
the collater pads clips to the longest in the batch, builds the frame padding
mask and normalises. Frames travel from DataLoader workers as uint8 (4x less
to copy than float).
"""

import logging
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import torch
from fairseq.data import FairseqDataset, data_utils

from ssvp_slt.corpus.data_config import VideoDataConfig
from ssvp_slt.corpus.frame_sampling import num_sampled_frames, sample_frame_indices
from ssvp_slt.corpus.manifest import ManifestRow
from ssvp_slt.corpus.video_io import decode_frames

logger = logging.getLogger(__name__)


def crop_frames(frames: np.ndarray, crop_size: int, rng: Optional[np.random.Generator]) -> np.ndarray:
    """Square crop of (T, H, W, C) frames; random offset if ``rng`` is given, else centred.

    The same offset is used for every frame of the clip, so motion is preserved.
    """
    _, h, w, _ = frames.shape
    if h < crop_size or w < crop_size:
        raise ValueError(f"frames of {h}x{w} are smaller than the crop size {crop_size}")
    if rng is None:
        top, left = (h - crop_size) // 2, (w - crop_size) // 2
    else:
        top, left = int(rng.integers(0, h - crop_size + 1)), int(rng.integers(0, w - crop_size + 1))
    return frames[:, top : top + crop_size, left : left + crop_size]


def normalise_frames(frames_uint8: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(B, T, H, W, C) uint8 -> (B, C, T, H, W) float, normalised per channel."""
    x = frames_uint8.permute(0, 4, 1, 2, 3).float().div_(255.0)
    mean_t = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1, 1)
    std_t = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1, 1)
    return x.sub_(mean_t).div_(std_t)


class VideoClipDataset(FairseqDataset):
    """One item per manifest row: ``{"id", "source": (T, H, W, C) uint8, "target"}``.

    Args:
        rows: validated manifest rows.
        video_paths: absolute path of each row's video.
        data_cfg: sampling, crop and normalisation settings.
        targets: encoded caption of each row (ending with EOS), or None for
            unlabelled data.
        pad, eos: target dictionary indices.
        train: random windows and crops when true, deterministic otherwise.
        eval_window: window mode outside training ("center" or "cover").
        shuffle: shuffle before sorting by length in ``ordered_indices``.
        seed: base of the per-item random state (window and crop).
    """

    def __init__(
        self,
        split: str,
        rows: List[ManifestRow],
        video_paths: List[Path],
        data_cfg: VideoDataConfig,
        targets: Optional[List[torch.Tensor]],
        pad: int,
        eos: int,
        train: bool,
        eval_window: str = "center",
        shuffle: bool = True,
        seed: int = 1,
    ):
        super().__init__()
        assert len(rows) == len(video_paths)
        assert targets is None or len(targets) == len(rows)
        self.split = split
        self.rows = rows
        self.video_paths = video_paths
        self.cfg = data_cfg
        self.targets = targets
        self.pad, self.eos = pad, eos
        self.train = train
        self.eval_window = eval_window
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 1
        c = data_cfg
        self.sizes = np.array(
            [num_sampled_frames(r.n_frames, r.fps, c.target_fps, c.num_frames, c.sampling_rate) for r in rows],
            dtype=np.int64,
        )
        self.tgt_sizes = (
            np.array([len(t) for t in targets], dtype=np.int64) if targets is not None else np.zeros(len(rows), dtype=np.int64)
        )
        self.n_truncated = 0

    def __len__(self):
        return len(self.rows)

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        return False  # windows and crops are drawn per epoch

    def set_epoch(self, epoch):
        self.epoch = epoch

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])

    def __getitem__(self, index):
        row = self.rows[index]
        c = self.cfg
        rng = self._rng(index) if self.train else None
        mode = "random" if self.train else self.eval_window
        indices = sample_frame_indices(row.n_frames, row.fps, c.target_fps, c.num_frames, c.sampling_rate, mode, rng)
        frames, n_decoded = decode_frames(self.video_paths[index], indices, c.resize_short_side)
        if n_decoded < len(indices):
            self.n_truncated += 1
            logger.warning(
                f"{self.video_paths[index]} (manifest line {row.line}): video ended after {n_decoded} of "
                f"{len(indices)} sampled frames; the last frame was repeated "
                f"({self.n_truncated} such clip(s) so far in this worker)"
            )
        frames = crop_frames(frames, c.crop_size, rng)
        item = {"id": index, "source": torch.from_numpy(np.ascontiguousarray(frames))}
        if self.targets is not None:
            item["target"] = self.targets[index]
        return item

    def collater(self, samples):
        samples = [s for s in samples if s is not None]
        if not samples:
            return {}
        lengths = torch.tensor([s["source"].shape[0] for s in samples], dtype=torch.long)
        t_max = int(lengths.max())
        first = samples[0]["source"]
        frames = first.new_zeros((len(samples), t_max) + tuple(first.shape[1:]))
        for i, s in enumerate(samples):
            frames[i, : s["source"].shape[0]] = s["source"]
        source = normalise_frames(frames, self.cfg.mean, self.cfg.std)
        # padded frames are zeros after normalisation (the mean colour) and masked out
        padding_mask = torch.arange(t_max).unsqueeze(0) >= lengths.unsqueeze(1)
        source.masked_fill_(padding_mask.view(len(samples), 1, t_max, 1, 1), 0.0)
        batch = {
            "id": torch.tensor([s["id"] for s in samples], dtype=torch.long),
            "nsentences": len(samples),
            "net_input": {"source": source, "padding_mask": padding_mask},
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
        return int(self.sizes[index])  # frames: --max-tokens bounds frames per batch

    def num_tokens_vec(self, indices):
        return self.sizes[indices]

    def batch_by_size(self, indices, max_tokens=None, max_sentences=None, required_batch_size_multiple=1):
        batches = super().batch_by_size(indices, max_tokens, max_sentences, required_batch_size_multiple)
        # fairseq drops a last batch whose size is not a multiple of required_batch_size_multiple
        # (8 by default in fairseq-generate): that would silently leave clips out of evaluation
        n_batched = sum(len(b) for b in batches)
        if n_batched < len(indices):
            batches.append(np.asarray(indices[n_batched:], dtype=np.int64))
        return batches

    def size(self, index):
        return int(self.sizes[index]), int(self.tgt_sizes[index])

    def ordered_indices(self):
        order = np.random.permutation(len(self)) if self.shuffle else np.arange(len(self))
        # sort by frames, then target length, keeping the shuffle among equals
        return order[np.lexsort((self.tgt_sizes[order], self.sizes[order]))]

    @property
    def supports_prefetch(self):
        return False

    def filter_indices_by_size(self, indices, max_sizes):
        return data_utils.filter_paired_dataset_indices_by_size(self.sizes, self.tgt_sizes, indices, max_sizes)
