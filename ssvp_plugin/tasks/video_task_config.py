"""Settings every video task shares: where the data is and how strictly it is checked."""

from dataclasses import dataclass, field

from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from omegaconf import II

EVAL_WINDOW_CHOICES = ChoiceEnum(["center", "cover"])


@dataclass
class VideoTaskConfig(FairseqDataclass):
    data: str = field(default="???", metadata={"help": "data root: <split>.tsv manifests and config.yaml"})
    eval_window: EVAL_WINDOW_CHOICES = field(
        default="center",
        metadata={
            "help": "frames seen outside training for clips longer than the window: the centred window "
            "(same speed as training) or frames spread over the whole clip"
        },
    )
    skip_invalid_samples: bool = field(
        default=False,
        metadata={
            "help": "drop (and count in the log) manifest rows with bad fields, empty captions or unusable "
            "videos instead of stopping with an error"
        },
    )
    check_videos: bool = field(
        default=True,
        metadata={"help": "open every video when a split loads so that broken files fail now, not mid-epoch"},
    )
    check_videos_workers: int = field(default=8, metadata={"help": "threads for the video check"})
    seed: int = II("common.seed")
    train_subset: str = II("dataset.train_subset")
