"""Every metric of the evaluation report, each computed by the library that defines it.

=========  =====================================================================================
BLEU-n     ``sacrebleu.metrics.BLEU(max_ngram_order=n).corpus_score(hyps, [refs])`` (n = 1..4): corpus
           BLEU with uniform weights over 1..n-grams, 13a tokenisation, case-sensitive, exp smoothing,
           as sign-language translation papers report BLEU-1..4. BLEU-4 is the usual BLEU.
chrF       ``sacrebleu.metrics.CHRF().corpus_score(hyps, [refs])`` (character 6-grams, beta 2).
ROUGE-L    ``rouge_score.rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False).score(ref, hyp)``'s
           F-measure, averaged over sentences: what SSVP-SLT reports through Hugging Face ``evaluate``
           (which averages the same per-sentence F by bootstrap; its "mid" is this mean up to resampling
           noise). rouge-score's tokenizer lower-cases and keeps only ``[a-z0-9]+`` runs, so letters
           outside a-z do not count.
METEOR     ``nltk.translate.meteor_score.meteor_score([ref_tokens], hyp_tokens)`` (alpha 0.9, beta 3,
           gamma 0.5, lower-cased, Porter stems, WordNet 3.0 synonyms), averaged over sentences; tokens
           from ``nltk.word_tokenize(text, preserve_line=True)`` (the Treebank tokenizer Hugging Face
           ``evaluate`` uses, without its punkt sentence split, whose model is a download; the two differ
           only around a full stop inside a caption). ``None`` with the reason when WordNet 3.0 is not
           installed (:mod:`.wordnet`): never a METEOR without synonyms under that name.
WER        ``jiwer.wer(refs, hyps)``: (substitutions + deletions + insertions) / reference words over the
           corpus; words are the whitespace-separated tokens of the texts exactly as BLEU receives them
           (no case folding, punctuation attached to a word is part of it).
CER        ``jiwer.cer(refs, hyps)``: the same over characters, spaces included.
=========  =====================================================================================

BLEU, chrF, ROUGE-L and METEOR are reported ×100, WER and CER in percent. The texts are scored as
given: whatever normalisation the data config applied to the references (lower-casing, punctuation)
happened before; nothing is re-normalised here.

Each metric is also a sacreBLEU :class:`~sacrebleu.metrics.base.Metric` with per-sentence sufficient
statistics, so that sacreBLEU's own paired bootstrap / approximate randomisation
(:class:`sacrebleu.significance.PairedTest`) resamples all of them the same way (:mod:`.significance`).

This module imports neither fairseq nor torch.
"""

from dataclasses import dataclass
from importlib.metadata import version
from typing import Dict, List, Optional, Sequence

import jiwer
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.metrics.base import Metric, Score, Signature

METRIC_KEYS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "meteor", "chrf", "wer", "cer")
LOWER_IS_BETTER = frozenset({"wer", "cer"})
METRIC_NAMES = {
    "bleu_1": "BLEU-1", "bleu_2": "BLEU-2", "bleu_3": "BLEU-3", "bleu_4": "BLEU-4", "rouge_l": "ROUGE-L",
    "meteor": "METEOR", "chrf": "chrF", "wer": "WER %", "cer": "CER %",
}
METEOR_PARAMS = {"alpha": 0.9, "beta": 3.0, "gamma": 0.5}  # NLTK's defaults, also Hugging Face evaluate's


class EvaluationError(ValueError):
    """The inputs cannot be scored; the message says why."""


def _lib(name: str) -> str:
    return f"{name} {version(name)}"


class _Signature(Signature):
    """A sacreBLEU-style signature that names a definition (the metric's library call)."""

    def __init__(self, args: dict, definition: str):
        super().__init__(args)
        self.definition = definition
        self.info["version"] = None  # sacreBLEU's version: the definition names the library that computes the metric

    def format(self, short: bool = False) -> str:
        extra = super().format(short)
        return f"{self.definition}|{extra}" if extra else self.definition


class _SentenceMetric(Metric):
    """A metric whose corpus score is ``100 * sum(numerator) / sum(denominator)`` of per-sentence statistics.

    One reference per hypothesis. Statistics are memoised per (hypothesis, reference): sacreBLEU's paired test
    extracts them once per system, and the evaluation report already computed them.
    """

    name = "?"
    definition = "?"

    def __init__(self):
        super().__init__()
        self._memo: Dict[tuple, List[float]] = {}

    def _preprocess_segment(self, sent: str) -> str:
        return sent  # texts are scored as given

    def _extract_reference_info(self, refs: Sequence[str]) -> Dict:
        if len(refs) != 1:
            raise EvaluationError(f"{self.name}: exactly one reference per hypothesis, got {len(refs)}")
        return {"ref": refs[0]}

    def _compute_segment_statistics(self, hypothesis: str, ref_kwargs: Dict) -> List[float]:
        key = (hypothesis, ref_kwargs["ref"])
        if key not in self._memo:
            self._memo[key] = self.sentence_stats(ref_kwargs["ref"], hypothesis)
        return self._memo[key]

    def sentence_stats(self, reference: str, hypothesis: str) -> List[float]:
        raise NotImplementedError

    def _compute_score_from_stats(self, stats) -> Score:
        numerator, denominator = float(stats[0]), float(stats[1])
        return Score(self.name, 100.0 * numerator / denominator if denominator else 0.0)

    def _aggregate_and_compute(self, stats) -> Score:
        return self._compute_score_from_stats([sum(s[0] for s in stats), sum(s[1] for s in stats)])

    def get_signature(self) -> Signature:
        return _Signature(self.__dict__, self.definition)


class RougeL(_SentenceMetric):
    name = "ROUGE-L"

    def __init__(self):
        super().__init__()
        from rouge_score.rouge_scorer import RougeScorer

        self._scorer = RougeScorer(["rougeL"], use_stemmer=False)
        self.definition = (
            f"{_lib('rouge-score')}: RougeScorer(['rougeL'], use_stemmer=False).score(reference, hypothesis)"
            f"['rougeL'].fmeasure, mean over sentences, x100 (tokens: lower-cased [a-z0-9]+ runs)"
        )

    def sentence_stats(self, reference, hypothesis):
        return [self._scorer.score(reference, hypothesis)["rougeL"].fmeasure, 1.0]


def meteor_tokens(text: str) -> List[str]:
    from nltk.tokenize import word_tokenize

    return word_tokenize(text, preserve_line=True)


class Meteor(_SentenceMetric):
    name = "METEOR"

    def __init__(self, wordnet_reader, wordnet_source: str):
        super().__init__()
        from nltk.translate.meteor_score import meteor_score

        self._meteor, self._wordnet = meteor_score, wordnet_reader
        self.definition = (
            f"{_lib('nltk')}: meteor_score([word_tokenize(reference, preserve_line=True)], "
            f"word_tokenize(hypothesis, preserve_line=True), alpha=0.9, beta=3.0, gamma=0.5) (lower-cased, Porter "
            f"stems, synonyms from WordNet 3.0: {wordnet_source}), mean over sentences, x100"
        )

    def sentence_stats(self, reference, hypothesis):
        score = self._meteor([meteor_tokens(reference)], meteor_tokens(hypothesis), wordnet=self._wordnet, **METEOR_PARAMS)
        return [score, 1.0]


class JiwerRate(_SentenceMetric):
    """WER or CER: edits / reference units, summed over the corpus (what ``jiwer.wer`` / ``jiwer.cer`` compute)."""

    def __init__(self, unit: str):
        super().__init__()
        if unit not in ("words", "characters"):
            raise ValueError(unit)
        self.unit = unit
        self.name = "WER" if unit == "words" else "CER"
        self._process = jiwer.process_words if unit == "words" else jiwer.process_characters
        call = "wer" if unit == "words" else "cer"
        units = "whitespace-separated words" if unit == "words" else "characters, spaces included"
        self.definition = (
            f"{_lib('jiwer')}: {call}(references, hypotheses) x100 = (S + D + I) / reference {unit} over the corpus "
            f"({units}), on the texts exactly as BLEU receives them (no case or punctuation change)"
        )

    def sentence_stats(self, reference, hypothesis):
        out = self._process(reference, hypothesis)
        return [float(out.substitutions + out.deletions + out.insertions), float(out.hits + out.substitutions + out.deletions)]


@dataclass
class MeteorStatus:
    """Whether METEOR can be computed honestly here: the WordNet reader, or the reason it cannot."""

    reader: object = None
    source: Optional[str] = None
    reason: Optional[str] = None


_meteor_status: Optional[MeteorStatus] = None


def meteor_status() -> MeteorStatus:
    """Load WordNet 3.0 once (a few seconds) and check it (:func:`.wordnet.check`)."""
    global _meteor_status
    if _meteor_status is None:
        from . import wordnet

        try:
            root, _ = wordnet.check()
            reader = wordnet.load()
            packages = wordnet.provenance(root).get("packages", {})
            shipped = ", ".join(f"{p} {info.get('version', '?')}" for p, info in packages.items()) or "provenance unknown"
            _meteor_status = MeteorStatus(reader=reader, source=f"{root} ({shipped})")
        except wordnet.WordNetError as e:
            _meteor_status = MeteorStatus(reason=str(e))
    return _meteor_status


def build_metrics(meteor: Optional[MeteorStatus] = None) -> Dict[str, Metric]:
    """Fresh metric objects, keyed as in the report; ``meteor`` omitted when WordNet is unavailable."""
    meteor = meteor if meteor is not None else meteor_status()
    metrics: Dict[str, Metric] = {f"bleu_{n}": BLEU(max_ngram_order=n) for n in range(1, 5)}
    metrics["rouge_l"] = RougeL()
    if meteor.reader is not None:
        metrics["meteor"] = Meteor(meteor.reader, meteor.source)
    metrics["chrf"] = CHRF()
    metrics["wer"] = JiwerRate("words")
    metrics["cer"] = JiwerRate("characters")
    return {k: metrics[k] for k in METRIC_KEYS if k in metrics}


def check_pairs(refs: Sequence[str], hyps: Sequence[str]) -> None:
    if len(refs) != len(hyps):
        raise EvaluationError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if not refs:
        raise EvaluationError("nothing to score (no sentences)")
    for what, texts in (("reference", refs), ("hypothesis", hyps)):
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise EvaluationError(f"{what} #{bad[0]} is not a string ({texts[bad[0]]!r})")
    if not any(r.split() for r in refs):
        raise EvaluationError("every reference is empty: nothing to score against")


def definition_of(key: str, metric: Metric) -> str:
    """The ``signatures`` entry: sacreBLEU's own signature string, or the definition of the other metrics."""
    if isinstance(metric, _SentenceMetric):
        return metric.definition
    return str(metric.get_signature())


def score_corpus(refs: Sequence[str], hyps: Sequence[str], meteor: Optional[MeteorStatus] = None) -> dict:
    """``{"metrics", "caption_stats", "signatures"}`` of the report for one system (see the module doc)."""
    check_pairs(refs, hyps)
    meteor = meteor if meteor is not None else meteor_status()
    refs, hyps = list(refs), list(hyps)
    metrics: Dict[str, Optional[float]] = {}
    signatures: Dict[str, str] = {}
    for key, metric in build_metrics(meteor).items():
        metrics[key] = float(metric.corpus_score(hyps, [refs]).score)
        signatures[key] = definition_of(key, metric)
    if "meteor" not in metrics:
        metrics["meteor"] = None
        signatures["meteor"] = f"not computed: {meteor.reason}"
    for n in range(1, 5):
        signatures[f"bleu_{n}"] += f" (max_ngram_order={n})"
    return {"metrics": {k: metrics[k] for k in METRIC_KEYS}, "caption_stats": caption_stats(refs, hyps), "signatures": signatures}


def caption_stats(refs: Sequence[str], hyps: Sequence[str]) -> Dict[str, float]:
    n = len(refs)
    return {
        "avg_pred_length": sum(len(h.split()) for h in hyps) / n,
        "avg_ref_length": sum(len(r.split()) for r in refs) / n,
        "exact_match_rate": 100.0 * sum(h == r for h, r in zip(hyps, refs)) / n,
    }


SENTENCE_DEFINITIONS = {
    "sentence_bleu": f"sacrebleu.sentence_bleu(hypothesis, [reference]).score ({_lib('sacrebleu')}: BLEU-4, "
    f"effective n-gram order, exp smoothing)",
    "sentence_wer": "jiwer.wer(reference, hypothesis) x100; empty when the reference has no words",
    "avg_pred_length / avg_ref_length": "mean number of whitespace-separated words per hypothesis / reference",
    "exact_match_rate": "percent of clips whose hypothesis equals the reference character for character",
}


def sentence_scores(refs: Sequence[str], hyps: Sequence[str]) -> List[Dict[str, Optional[float]]]:
    """Per clip: ``sentence_bleu`` (sacreBLEU) and ``sentence_wer`` (jiwer, percent; None for an empty reference)."""
    from sacrebleu import sentence_bleu

    out = []
    for ref, hyp in zip(refs, hyps):
        words = jiwer.process_words(ref, hyp)
        n_ref = words.hits + words.substitutions + words.deletions
        wer = 100.0 * (words.substitutions + words.deletions + words.insertions) / n_ref if n_ref else None
        out.append({"sentence_bleu": sentence_bleu(hyp, [ref]).score, "sentence_wer": wer})
    return out
