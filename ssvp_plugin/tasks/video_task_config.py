"""Settings every video task shares: where the data is, how strictly it is checked, what trains."""

from dataclasses import dataclass, field

from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from omegaconf import II

from ..data.splits import VIDEO_CHECKS

VIDEO_CHECK_CHOICES = ChoiceEnum(list(VIDEO_CHECKS))


@dataclass
class VideoTaskConfig(FairseqDataclass):
    data: str = field(default="???", metadata={"help": "data root: <split>.tsv manifests and config.yaml"})
    skip_invalid_samples: bool = field(
        default=False,
        metadata={
            "help": "drop (and count in the log) manifest rows with bad fields, empty captions or unusable "
            "videos instead of stopping with an error"
        },
    )
    check_videos: VIDEO_CHECK_CHOICES = field(
        default="files",
        metadata={
            "help": "what loading a split checks: 'files' (each video exists and has the size preparation "
            "recorded: seconds for 30k clips), 'probe' (open every video: minutes), 'none'"
        },
    )
    check_videos_workers: int = field(default=8, metadata={"help": "threads for the video check"})
    max_train_clips: int = field(
        default=0,
        metadata={
            "help": "train on a random subset of this many training clips (0: all), fixed by common.seed: "
            "a quick check of a real setup without cutting a manifest by hand"
        },
    )
    seed: int = II("common.seed")
    train_subset: str = II("dataset.train_subset")
