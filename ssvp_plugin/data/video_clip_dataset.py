"""Video clips (with caption tokens, or without for pretraining), batched by encoder frames.

``__getitem__`` decodes each sampled frame of a clip once (at the crop's
scale, in the same swscale call as the RGB conversion) and crops it; the
frames of overlapping encoder windows are shared, and the windows are
described by their first frames (``starts``). The collater pads clips to the
longest in the batch and stacks them as uint8 (B, T, H, W, C): a quarter of
float32's bytes through DataLoader workers and to the GPU, and no
normalising on the loader's CPU. The model normalises on its own device, in
its own dtype (:class:`ssvp_plugin.models.frame_input.FrameNormalizer`),
and cuts the windows there.
"""

import logging
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import torch
from fairseq.data import FairseqDataset, data_utils

from ssvp_slt.corpus.data_config import VideoDataConfig
from ssvp_slt.corpus.frame_sampling import WindowPlan, plan_windows
from ssvp_slt.corpus.manifest import ManifestRow
from ssvp_slt.corpus.video_io import VideoError, decode_frames
from .batching import keep_every_clip
from .unreadable_clip import SKIPPED_KEY, UnreadableClips, count_skipped


logger = logging.getLogger(__name__)


def crop_box(
    height: int, width: int, crop_size: int, jitter: float = 0.0, rng: Optional[np.random.Generator] = None
) -> Tuple[int, int]:
    """(top, left) of a ``crop_size`` square: centred, or with ``rng`` moved by up to ``jitter * crop_size``
    in each direction, and always inside the frame.

    Training draws the shift (and, before decoding, the scale: :meth:`VideoClipDataset.decode_size`)
    around the centre instead of anywhere in the frame: on a 16:9 frame a free random crop can
    land beside the signer and cut off the signing hands.
    """
    if height < crop_size or width < crop_size:
        raise ValueError(f"frames of {height}x{width} are smaller than the crop size {crop_size}")
    top, left = (height - crop_size) / 2, (width - crop_size) / 2
    if rng is not None and jitter > 0:
        dy, dx = rng.uniform(-jitter, jitter, size=2) * crop_size
        top, left = top + dy, left + dx
    return int(round(min(max(top, 0), height - crop_size))), int(round(min(max(left, 0), width - crop_size)))


class VideoClipDataset(FairseqDataset):
    """One item per manifest row: ``{"id", "source": (T, H, W, C) uint8, "starts": (W,) long[, "target"]}``.

    ``source`` holds the clip's sampled frames, each once; encoder window ``k``
    is ``source[starts[k] : starts[k] + num_frames]`` (see
    :mod:`ssvp_slt.corpus.frame_sampling`).

    Args:
        rows: validated manifest rows.
        video_paths: absolute path of each row's video.
        data_cfg: sampling, windows, crop and normalisation settings.
        targets: encoded caption of each row (ending with EOS), or None for
            unlabelled data.
        pad, eos: target dictionary indices.
        train: random phase, windows (under ``truncate``) and crop jitter when
            true; deterministic otherwise.
        long_clips: overrides the data config's long-clip policy (MAE
            pretraining reads one window per sample: ``truncate``).
        shuffle: shuffle before sorting by length in ``ordered_indices``.
        seed: base of the per-item random state.
        skip_invalid: a clip whose video cannot be decoded is logged and left out of its batch
            (task.skip_invalid_samples) instead of stopping with an error naming it
            (:mod:`ssvp_plugin.data.unreadable_clip`).
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
        long_clips: Optional[str] = None,
        shuffle: bool = True,
        seed: int = 1,
        skip_invalid: bool = False,
    ):
        super().__init__()
        assert len(rows) == len(video_paths)
        assert targets is None or len(targets) == len(rows)
        self.split = split
        self.rows = rows
        self.video_paths = video_paths
        self.cfg = data_cfg
        self.windows = data_cfg.window_settings()
        self.long_clips = long_clips or self.windows.long_clips
        self.targets = targets
        self.pad, self.eos = pad, eos
        self.train = train
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 1
        # encoder frames per clip (windows x num_frames, or the frames of a short clip): what
        # --max-tokens bounds; planned with the deterministic phase, which never has fewer frames
        # the deterministic plan depends only on a clip's frame count and rate: plan each distinct pair
        # once, not every row (frame counts are bounded by the longest clip, so a split of tens of
        # thousands of clips has far fewer distinct pairs)
        first_row = {}
        for i, r in enumerate(rows):
            first_row.setdefault((r.n_frames, r.fps), i)
        plan_of = {key: self.plan(i, rng=None) for key, i in first_row.items()}
        plans = [plan_of[(r.n_frames, r.fps)] for r in rows]
        self.sizes = np.array([self.encoder_frames(p) for p in plans], dtype=np.int64)
        self.num_windows = np.array([p.num_windows for p in plans], dtype=np.int64)
        self.n_stretched = sum(p.stretched for p in plans)
        self.n_truncated = sum(p.truncated for p in plans)
        self.tgt_sizes = (
            np.array([len(t) for t in targets], dtype=np.int64) if targets is not None else np.zeros(len(rows), dtype=np.int64)
        )
        self.n_short_decodes = 0
        self.unreadable = UnreadableClips(
            data_cfg.resolve(f"{split}.tsv"), skip_invalid,
            advice="fix or remove it (task.check_videos=probe opens every video when the split loads and lists all such files)",
        )

    def __len__(self):
        return len(self.rows)

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        return False  # phases, windows and crops are drawn per epoch

    def set_epoch(self, epoch):
        self.epoch = epoch

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])

    def plan(self, index: int, rng: Optional[np.random.Generator]) -> WindowPlan:
        row = self.rows[index]
        policy = "stretch" if self.long_clips == "drop" else self.long_clips  # drops were made at load time
        return plan_windows(row.n_frames, row.fps, self.windows, train=rng is not None, rng=rng, long_clips=policy)

    def encoder_frames(self, plan: WindowPlan) -> int:
        if plan.num_windows == 1:
            return len(plan.source_indices)
        return plan.num_windows * self.cfg.num_frames

    def decode_size(self, rng: Optional[np.random.Generator]) -> int:
        """Short side to decode at: the data config's, scaled by up to +-train_jitter in training."""
        c = self.cfg
        if rng is None or c.train_jitter <= 0:
            return c.resize_short_side
        return max(c.crop_size, int(round(c.resize_short_side * rng.uniform(1 - c.train_jitter, 1 + c.train_jitter))))

    def __getitem__(self, index):
        rng = self._rng(index) if self.train else None
        plan = self.plan(index, rng)
        try:
            frames, n_decoded = decode_frames(self.video_paths[index], plan.source_indices, self.decode_size(rng))
        except VideoError as e:
            return self.unreadable(self.rows[index], self.video_paths[index], e)
        if n_decoded < len(plan.source_indices):
            self.n_short_decodes += 1
            logger.warning(
                f"{self.video_paths[index]} (manifest line {self.rows[index].line}): video ended after {n_decoded} of "
                f"{len(plan.source_indices)} sampled frames; the last frame was repeated "
                f"({self.n_short_decodes} such clip(s) so far in this worker)"
            )
        top, left = crop_box(frames.shape[1], frames.shape[2], self.cfg.crop_size, self.cfg.train_jitter, rng)
        frames = frames[:, top : top + self.cfg.crop_size, left : left + self.cfg.crop_size]
        item = {
            "id": index,
            "source": torch.from_numpy(np.ascontiguousarray(frames)),
            "starts": torch.from_numpy(plan.starts),
        }
        if self.targets is not None:
            item["target"] = self.targets[index]
        return item

    def collater(self, samples):
        skipped = count_skipped(samples)
        samples = [s for s in samples if s is not None]
        if not samples:
            return {}  # fairseq trains its dummy batch with the loss zeroed (ssvp_plugin.runtime.skipped_batches)
        lengths = torch.tensor([s["source"].shape[0] for s in samples], dtype=torch.long)
        t_max = int(lengths.max())
        first = samples[0]["source"]
        frames = first.new_zeros((len(samples), t_max) + tuple(first.shape[1:]))  # uint8 (B, T, H, W, C)
        for i, s in enumerate(samples):
            frames[i, : s["source"].shape[0]] = s["source"]
        padding_mask = torch.arange(t_max).unsqueeze(0) >= lengths.unsqueeze(1)
        n_windows = max(len(s["starts"]) for s in samples)
        starts = torch.full((len(samples), n_windows), -1, dtype=torch.long)  # -1: no such window
        for i, s in enumerate(samples):
            starts[i, : len(s["starts"])] = s["starts"]
        batch = {
            "id": torch.tensor([s["id"] for s in samples], dtype=torch.long),
            "nsentences": len(samples),
            "net_input": {"source": frames, "padding_mask": padding_mask, "window_starts": starts},
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
            batch["ntokens"] = int(self.sizes[[s["id"] for s in samples]].sum())
        return batch

    def num_tokens(self, index):
        return int(self.sizes[index])  # encoder frames: --max-tokens bounds what the encoder processes

    def num_tokens_vec(self, indices):
        return self.sizes[indices]

    def batch_by_size(self, indices, max_tokens=None, max_sentences=None, required_batch_size_multiple=1):
        if max_tokens and len(indices):
            longest = int(indices[np.argmax(self.sizes[indices])])
            if self.sizes[longest] > max_tokens:
                row = self.rows[longest]
                raise ValueError(
                    f"{self.split}: the clip on manifest line {row.line} ({self.video_paths[longest]}) needs "
                    f"{self.sizes[longest]} encoder frames ({self.num_windows[longest]} window(s) of "
                    f"{self.cfg.num_frames}), more than dataset.max_tokens={max_tokens}: raise max_tokens to at least "
                    f"num_frames x max_windows = {self.cfg.num_frames * self.cfg.max_windows}, or lower max_windows "
                    f"in the data config"
                )
        batches = super().batch_by_size(indices, max_tokens, max_sentences, required_batch_size_multiple)
        return keep_every_clip(batches, indices)

    def size(self, index):
        return int(self.sizes[index]), int(self.tgt_sizes[index])

    def ordered_indices(self):
        order = np.random.permutation(len(self)) if self.shuffle else np.arange(len(self))
        # sort by encoder frames, then target length, keeping the shuffle among equals
        return order[np.lexsort((self.tgt_sizes[order], self.sizes[order]))]

    @property
    def supports_prefetch(self):
        return False

    def filter_indices_by_size(self, indices, max_sizes):
        return data_utils.filter_paired_dataset_indices_by_size(self.sizes, self.tgt_sizes, indices, max_sizes)
