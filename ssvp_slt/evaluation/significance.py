"""Confidence intervals and paired significance against a baseline, by sacreBLEU's own tests, for every metric.

:class:`sacrebleu.significance.PairedTest` runs the paired bootstrap (``bs``: 1,000 resamples of the test
clips, Koehn 2004, as Moses' ``bootstrap-hypothesis-difference-significance.pl``) or the paired approximate
randomisation (``ar``: 10,000 trials, Riezler & Maxwell 2005) on per-sentence sufficient statistics. The
metrics of :mod:`.metrics` are all sacreBLEU metrics (BLEU and chrF its own; ROUGE-L, METEOR, WER and CER
with their per-sentence statistics), so each is resampled by the same code, with the same seed
(``SACREBLEU_SEED``, default 12345) and hence the same resampled clip sets. The 95% confidence interval is
sacreBLEU's: mean of the bootstrap scores ± half the distance between their 2.5th and 97.5th percentiles.

One correction: two systems whose per-sentence statistics are identical get p = 1. sacreBLEU counts
resampled differences *strictly greater* than the observed one, so for identical systems (all differences
0) its formula returns 1 / (n + 1), which would read as "significant" at any usual level.

A verdict ("better", "worse", "no significant difference") is given per metric at level ``alpha``
(default 0.05), with the direction of the observed difference (lower WER / CER is better). No correction
for testing several metrics or systems is applied (sacreBLEU applies none); the p-values are reported.
"""

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from sacrebleu.significance import PairedTest

from .metrics import LOWER_IS_BETTER, MeteorStatus, build_metrics, check_pairs, meteor_status

BETTER, WORSE, SAME, BASELINE = "better", "worse", "no significant difference", "baseline"
TEST_NAMES = {
    "bs": "paired bootstrap resampling (sacrebleu.significance.PairedTest, test_type='bs')",
    "ar": "paired approximate randomisation (sacrebleu.significance.PairedTest, test_type='ar'; CI by bootstrap)",
}
DEFAULT_SAMPLES = {"bs": 1000, "ar": 10000}


@dataclass
class SystemResult:
    name: str
    score: float
    mean: Optional[float]  # mean of the bootstrap scores
    ci: Optional[float]  # 95% CI half-width around ``mean`` (sacreBLEU's estimate_ci)
    p_value: Optional[float] = None  # against the baseline; None for the baseline itself
    verdict: str = BASELINE
    note: str = ""

    def to_dict(self) -> Dict:
        low = None if self.mean is None else self.mean - self.ci
        high = None if self.mean is None else self.mean + self.ci
        d = {"name": self.name, "score": self.score, "bootstrap_mean": self.mean, "ci95_half_width": self.ci,
             "ci95": [low, high], "p_value": self.p_value, "verdict": self.verdict}
        if self.note:
            d["note"] = self.note
        return d


@dataclass
class MetricComparison:
    key: str
    signature: str
    systems: List[SystemResult] = field(default_factory=list)


def verdict(key: str, baseline_score: float, score: float, p_value: float, alpha: float) -> str:
    if p_value >= alpha or score == baseline_score:
        return SAME
    gain = baseline_score - score if key in LOWER_IS_BETTER else score - baseline_score
    return BETTER if gain > 0 else WORSE


def compare_systems(
    named_hyps: Sequence[Tuple[str, Sequence[str]]], refs: Sequence[str], test: str = "bs", n_samples: int = 0,
    alpha: float = 0.05, meteor: Optional[MeteorStatus] = None,
) -> Dict[str, MetricComparison]:
    """Every metric of every system with its 95% CI, and each system after the first (the baseline) tested against it.

    ``named_hyps``: ``[(name, hypotheses aligned with refs), ...]``, the baseline first. Metrics that cannot be
    computed here (METEOR without WordNet) are left out.
    """
    if test not in TEST_NAMES:
        raise ValueError(f"test must be one of {sorted(TEST_NAMES)}, got {test!r}")
    if len(named_hyps) < 2:
        raise ValueError("a comparison needs at least two systems")
    for _, hyps in named_hyps:
        check_pairs(refs, hyps)
    meteor = meteor if meteor is not None else meteor_status()
    refs, named_hyps = list(refs), [(n, list(h)) for n, h in named_hyps]
    baseline_hyps = named_hyps[0][1]
    out = {}
    for key, metric in build_metrics(meteor).items():
        # one PairedTest per metric: it keys results by the score's name, and BLEU-1..4 are all "BLEU"
        paired = PairedTest(
            named_hyps, {key: metric}, [refs], test_type=test, n_samples=n_samples,
            n_ar_confidence=DEFAULT_SAMPLES["bs"] if test == "ar" else -1,
        )
        signatures, scores = paired()
        (name, sig), = signatures.items()
        results = scores[name]
        baseline_stats = np.asarray(metric._extract_corpus_statistics(baseline_hyps, [refs]), dtype=float)
        comparison = MetricComparison(key, str(sig))
        base = results[0]
        comparison.systems.append(SystemResult(named_hyps[0][0], float(base.score), _f(base.mean), _f(base.ci)))
        for (sys_name, hyps), res in zip(named_hyps[1:], results[1:]):
            p, note = float(res.p_value), ""
            stats = np.asarray(metric._extract_corpus_statistics(hyps, [refs]), dtype=float)
            if stats.shape == baseline_stats.shape and np.array_equal(stats, baseline_stats):
                p, note = 1.0, ("per-sentence statistics identical to the baseline's: p = 1 (sacreBLEU's formula "
                                f"would give {float(res.p_value):.4f})")
            comparison.systems.append(SystemResult(
                sys_name, float(res.score), _f(res.mean), _f(res.ci), p, verdict(key, float(base.score), float(res.score), p, alpha), note,
            ))
        out[key] = comparison
    return out


def _f(x) -> Optional[float]:
    return None if x is None else float(x)


def describe_test(test: str, n_samples: int, alpha: float) -> Dict:
    n = n_samples or DEFAULT_SAMPLES[test]
    return {
        "test": TEST_NAMES[test],
        "samples": n,
        "confidence_interval": "95%: bootstrap mean ± half the 2.5th-97.5th percentile range of 1000 resampled "
                               "test sets (sacrebleu.significance.estimate_ci)",
        "seed": os.environ.get("SACREBLEU_SEED", "12345"),
        "alpha": alpha,
        "verdict": f"'{BETTER}' / '{WORSE}' than the baseline when p < {alpha} (direction of the observed difference; "
                   f"lower WER/CER is better), else '{SAME}'; no correction for multiple comparisons",
    }
