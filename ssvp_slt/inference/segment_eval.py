"""Scoring a segmentation against known sentence boundaries (synthetic full videos, or any
annotated recording): which true sentences a segment recovers, and how far its ends are.

A true sentence is *recovered* when a predicted segment overlaps it with intersection over
union >= ``min_iou`` (0.5; the share with IoU >= 0.8 is reported too); each segment recovers at most one sentence and each sentence is
matched at most once (greedily, best overlap first). Boundary errors are measured on the
recovered pairs, in seconds.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import numpy as np

Interval = Tuple[float, float]


def iou(a: Interval, b: Interval) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def match(truth: Sequence[Interval], predicted: Sequence[Interval], min_iou: float = 0.5) -> List[Tuple[int, int]]:
    """(truth index, predicted index) pairs, one-to-one, best overlap first."""
    pairs = sorted(
        ((iou(t, p), i, j) for i, t in enumerate(truth) for j, p in enumerate(predicted)), reverse=True
    )
    used_t, used_p, out = set(), set(), []
    for score, i, j in pairs:
        if score < min_iou:
            break
        if i not in used_t and j not in used_p:
            used_t.add(i)
            used_p.add(j)
            out.append((i, j))
    return sorted(out)


@dataclass
class SegmentationScore:
    sentences: int = 0
    segments: int = 0
    recovered: int = 0
    start_errors: List[float] = field(default_factory=list)
    end_errors: List[float] = field(default_factory=list)
    ious: List[float] = field(default_factory=list)  # of the recovered pairs

    def add(self, truth: Sequence[Interval], predicted: Sequence[Interval], min_iou: float = 0.5) -> List[Tuple[int, int]]:
        pairs = match(truth, predicted, min_iou)
        self.sentences += len(truth)
        self.segments += len(predicted)
        self.recovered += len(pairs)
        for i, j in pairs:
            self.ious.append(iou(truth[i], predicted[j]))
            self.start_errors.append(abs(predicted[j][0] - truth[i][0]))
            self.end_errors.append(abs(predicted[j][1] - truth[i][1]))
        return pairs

    def summary(self) -> Dict[str, float]:
        errors = np.array(self.start_errors + self.end_errors, dtype=np.float64)

        def q(p):
            return round(float(np.percentile(errors, p)), 3) if len(errors) else None

        return {
            "sentences": self.sentences,
            "segments": self.segments,
            "recovered": self.recovered,
            "recovered_share": round(self.recovered / self.sentences, 4) if self.sentences else None,
            # a sentence cut in two can still be "recovered" by its larger part: the stricter count
            "recovered_iou_0.8_share": round(sum(v >= 0.8 for v in self.ious) / self.sentences, 4) if self.sentences else None,
            "boundary_error_mean_s": round(float(errors.mean()), 3) if len(errors) else None,
            "boundary_error_median_s": q(50),
            "boundary_error_p90_s": q(90),
        }
