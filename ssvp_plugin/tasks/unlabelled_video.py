"""Task ``unlabelled_video``: video clips without captions, for MAE pretraining (model ``mae_vit``).

It reads the same data root layout and ``config.yaml`` as ``how2sign_video``
and the same dataset class, so pretraining sees frames exactly as fine-tuning
will. Captions are ignored when present; the vocabulary files named in the
config are not needed. ``scripts/make_video_manifest.py`` builds such a data
root from any folder of clips.
"""

import logging
import time
from dataclasses import dataclass

from fairseq.tasks import FairseqTask, register_task

from ssvp_slt.corpus.data_config import VideoDataConfig
from ..data.splits import is_training_load, load_video_split, log_split_summary, max_encoder_frames
from ..data.unreadable_clip import note_skipped_clips, reduce_skipped_clips, train_step_outputs
from ..data.video_clip_dataset import VideoClipDataset
from .video_task_config import VideoTaskConfig
from .training_setup import RankBatchesCheck

logger = logging.getLogger(__name__)

# an MAE sample is one encoder window: a random one of each clip per epoch in training, the centred one otherwise
ONE_WINDOW = "truncate"


@dataclass
class UnlabelledVideoConfig(VideoTaskConfig):
    pass


@register_task("unlabelled_video", dataclass=UnlabelledVideoConfig)
class UnlabelledVideoTask(RankBatchesCheck, FairseqTask):
    cfg: UnlabelledVideoConfig

    def __init__(self, cfg: UnlabelledVideoConfig, data_cfg: VideoDataConfig):
        super().__init__(cfg)
        self.data_cfg = data_cfg

    @classmethod
    def setup_task(cls, cfg: UnlabelledVideoConfig, **kwargs):
        data_cfg = VideoDataConfig.load(cfg.data, check_files=False)
        logger.info(f"data config {data_cfg.path}: {data_cfg.to_dict()}")
        return cls(cfg, data_cfg)

    @property
    def source_dictionary(self):
        return None

    @property
    def target_dictionary(self):
        return None

    def max_positions(self):
        return max_encoder_frames(self.data_cfg, ONE_WINDOW)

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        t0 = time.perf_counter()
        train = is_training_load(split, self.cfg.train_subset, kwargs)
        _, rows, video_paths, summary = load_video_split(
            self.cfg, self.data_cfg, split, train, need_text=False, long_clips=ONE_WINDOW
        )
        self.datasets[split] = VideoClipDataset(
            split, rows, video_paths, self.data_cfg, targets=None, pad=0, eos=0, train=train,
            long_clips=ONE_WINDOW, shuffle=train, seed=self.cfg.seed, skip_invalid=self.cfg.skip_invalid_samples,
        )
        log_split_summary(logger, split, self.datasets[split], summary, 1, time.perf_counter() - t0)

    # clips left out of a batch as unreadable (task.skip_invalid_samples): the skipped_clips metric
    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        outputs = super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)
        return train_step_outputs(sample, *outputs, ignore_grad)  # counts clips left out as unreadable

    def valid_step(self, sample, model, criterion):
        loss, sample_size, logging_output = super().valid_step(sample, model, criterion)
        return loss, sample_size, note_skipped_clips(sample, logging_output)

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        reduce_skipped_clips(logging_outputs)
