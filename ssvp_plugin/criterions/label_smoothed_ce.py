"""Criterion ``slt_label_smoothed_cross_entropy``: fairseq's label-smoothed CE with token accuracy on.

fairseq's criterion already logs loss, nll_loss and perplexity; registering
our own name keeps the recipe's defaults (accuracy reported) in one place.
"""

from dataclasses import dataclass, field

from fairseq.criterions import register_criterion
from fairseq.criterions.label_smoothed_cross_entropy import (
    LabelSmoothedCrossEntropyCriterion,
    LabelSmoothedCrossEntropyCriterionConfig,
)


@dataclass
class SltLabelSmoothedCrossEntropyConfig(LabelSmoothedCrossEntropyCriterionConfig):
    label_smoothing: float = field(default=0.1, metadata={"help": "epsilon for label smoothing, 0 means none"})
    report_accuracy: bool = field(default=True, metadata={"help": "log token accuracy"})


@register_criterion("slt_label_smoothed_cross_entropy", dataclass=SltLabelSmoothedCrossEntropyConfig)
class SltLabelSmoothedCrossEntropy(LabelSmoothedCrossEntropyCriterion):
    pass
