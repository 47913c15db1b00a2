"""Task ``unlabelled_video``: video clips without captions, for MAE pretraining (model ``mae_vit``).

It reads the same data root layout and ``config.yaml`` as ``how2sign_video``
and the same dataset class, so pretraining sees frames exactly as fine-tuning
will. Captions are ignored when present; the vocabulary files named in the
config are not needed. ``scripts/make_video_manifest.py`` builds such a data
root from any folder of clips.
"""

import logging
from dataclasses import dataclass

from fairseq.tasks import FairseqTask, register_task

from ssvp_slt.corpus.data_config import VideoDataConfig
from ..data.splits import load_split_rows, log_split_summary
from ..data.video_clip_dataset import VideoClipDataset
from .video_task_config import VideoTaskConfig

logger = logging.getLogger(__name__)


@dataclass
class UnlabelledVideoConfig(VideoTaskConfig):
    pass


@register_task("unlabelled_video", dataclass=UnlabelledVideoConfig)
class UnlabelledVideoTask(FairseqTask):
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
        return self.data_cfg.num_frames

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        _, rows, video_paths = load_split_rows(
            self.data_cfg, split, need_text=False, skip_invalid=self.cfg.skip_invalid_samples,
            check=self.cfg.check_videos, workers=self.cfg.check_videos_workers,
        )
        train = split == self.cfg.train_subset
        self.datasets[split] = VideoClipDataset(
            split, rows, video_paths, self.data_cfg, targets=None, pad=0, eos=0, train=train,
            eval_window=str(self.cfg.eval_window), shuffle=train, seed=self.cfg.seed,
        )
        log_split_summary(logger, split, self.data_cfg, self.datasets[split])
