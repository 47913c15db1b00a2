"""Scoring fairseq-generate output: BLEU-1..4, chrF, WER and a few sanity numbers.

``fairseq-generate`` prints, per sample, ``S-<id>`` (source), ``T-<id>``
(reference), ``H-<id>`` (hypothesis as tokens), ``D-<id>`` (detokenised
hypothesis) and ``P-<id>`` (positional scores) lines, plus log lines and a
final ``Generate test with beam=5: BLEU = ...`` line. The references and
hypotheses are the ``T-`` and ``D-`` texts (``H-`` when there are no ``D-``
lines); with ``--nbest`` > 1 the first (best) hypothesis of each id is used.

BLEU-n is sacrebleu's corpus BLEU with ``max_ngram_order=n`` (uniform weights
over 1..n-grams), as reported in sign-language translation papers; BLEU-4 is
the usual BLEU. WER counts whitespace-separated words (jiwer), in percent.

The full evaluation report (ROUGE-L, METEOR, CER, confidence intervals, comparisons) is
``ssvp-slt-evaluate`` / ``ssvp-slt-compare`` (:mod:`ssvp_slt.evaluation`, docs/evaluation.md); its
BLEU-1..4, chrF and WER are the same library calls, on the texts exactly as given, whereas this module
collapses runs of whitespace first and offers ``lowercase``.

This module imports neither fairseq nor torch.
"""

import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import jiwer
from sacrebleu.metrics import BLEU, CHRF

_LINE = re.compile(r"^([A-Z])-(\S+?)\t(.*)$")
SENTENCEPIECE_MARK = "\u2581"


class ScoringError(ValueError):
    """The generate output cannot be scored; the message says why."""


def _sort_key(sample_id: str):
    return (0, int(sample_id), "") if sample_id.lstrip("-").isdigit() else (1, 0, sample_id)


def parse_generate_output(text_or_path: Union[str, Path]) -> List[Tuple[str, str, str]]:
    """``[(id, reference, hypothesis), ...]`` sorted by id (numerically when ids are integers).

    ``text_or_path`` is a path (a ``Path``, or a one-line string naming an
    existing file) or the output text itself. Raises :class:`ScoringError`
    if there are no hypotheses or no references, or if some ids have only one
    of the two.
    """
    source = "generate output"
    if isinstance(text_or_path, Path) or ("\n" not in text_or_path and Path(text_or_path).is_file()):
        path = Path(text_or_path)
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise ScoringError(f"{path}: cannot read ({e})") from e
    else:
        text = text_or_path

    refs: Dict[str, str] = {}
    hyps: Dict[str, Dict[str, str]] = {"D": {}, "H": {}}
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line[:-1] if line.endswith("\r") else line
        m = _LINE.match(line)
        if not m:
            continue
        kind, sample_id, rest = m.groups()
        if kind == "T":
            if sample_id in refs and refs[sample_id] != rest:
                raise ScoringError(
                    f"{source}, line {lineno}: id {sample_id} has a second, different reference; "
                    f"is this the output of more than one generate run?"
                )
            refs[sample_id] = rest
        elif kind in hyps:
            fields = rest.split("\t", 1)  # <score>\t<text>
            if len(fields) != 2:
                raise ScoringError(f"{source}, line {lineno}: expected '{kind}-<id>\\t<score>\\t<text>', got {line!r}")
            hyps[kind].setdefault(sample_id, fields[1])  # first = best with --nbest > 1

    kind = "D" if hyps["D"] else "H"
    chosen = hyps[kind]
    if not chosen:
        raise ScoringError(f"{source}: no hypotheses (no D-<id> or H-<id> lines); is this fairseq-generate output?")
    if not refs:
        raise ScoringError(f"{source}: no references (no T-<id> lines); is this fairseq-generate output?")
    only_ref = sorted(set(refs) - set(chosen), key=_sort_key)
    only_hyp = sorted(set(chosen) - set(refs), key=_sort_key)
    if only_ref or only_hyp:
        raise ScoringError(
            f"{source}: {len(refs)} references (T- lines) but {len(chosen)} hypotheses ({kind}- lines); "
            f"ids without a hypothesis: {only_ref[:10]}, ids without a reference: {only_hyp[:10]}"
        )
    return [(i, refs[i], chosen[i]) for i in sorted(refs, key=_sort_key)]


def _wer(refs: Sequence[str], hyps: Sequence[str]) -> Optional[float]:
    """Corpus WER in percent, or None if the references hold no words."""
    out = jiwer.process_words(list(refs), list(hyps))
    n_ref_words = out.hits + out.substitutions + out.deletions
    if n_ref_words == 0:
        return None
    return 100.0 * (out.substitutions + out.deletions + out.insertions) / n_ref_words


def score(refs: Sequence[str], hyps: Sequence[str], lowercase: bool = False) -> dict:
    """Corpus scores of ``hyps`` against ``refs`` (one reference each).

    Returns ``{"num_samples", "metrics": {bleu_1..bleu_4, chrf, wer, exact_match,
    avg_hyp_len, avg_ref_len, length_ratio}, "sacrebleu_signature",
    "chrf_signature", "lowercase"}``; BLEU, chrF, WER and exact match are in
    percent, lengths in whitespace-separated words, ``length_ratio`` is
    BLEU's hypothesis/reference length ratio (tokenised).
    """
    refs, hyps = [" ".join(r.split()) for r in refs], [" ".join(h.split()) for h in hyps]
    if len(refs) != len(hyps):
        raise ScoringError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if not refs:
        raise ScoringError("nothing to score (no sentences)")
    metrics: Dict[str, Optional[float]] = {}
    bleu4 = None
    for n in range(1, 5):
        bleu = BLEU(max_ngram_order=n, lowercase=lowercase)
        result = bleu.corpus_score(hyps, [refs])
        metrics[f"bleu_{n}"] = result.score
        if n == 4:
            bleu4, bleu4_result = bleu, result
    chrf = CHRF(lowercase=lowercase)
    metrics["chrf"] = chrf.corpus_score(hyps, [refs]).score
    cased = (lambda s: s.lower()) if lowercase else (lambda s: s)
    metrics["wer"] = _wer([cased(r) for r in refs], [cased(h) for h in hyps])
    metrics["exact_match"] = 100.0 * sum(cased(r) == cased(h) for r, h in zip(refs, hyps)) / len(refs)
    metrics["avg_hyp_len"] = sum(len(h.split()) for h in hyps) / len(hyps)
    metrics["avg_ref_len"] = sum(len(r.split()) for r in refs) / len(refs)
    metrics["length_ratio"] = bleu4_result.sys_len / bleu4_result.ref_len if bleu4_result.ref_len else None
    return {
        "num_samples": len(refs),
        "metrics": metrics,
        "sacrebleu_signature": str(bleu4.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
        "lowercase": lowercase,
    }


def warnings_for(refs: Sequence[str], hyps: Sequence[str]) -> List[str]:
    """Signs that the generate run was set up so that its scores mislead."""
    out = []
    if any(SENTENCEPIECE_MARK in h for h in hyps):
        out.append(
            f"hypotheses contain sentencepiece pieces ('{SENTENCEPIECE_MARK}'): score the D- lines of "
            f"fairseq-generate --task how2sign_video, which detokenises them with the data config's model"
        )
    if refs and sum(len(r.split()) for r in refs) / len(refs) < 1.5 and sum(map(len, refs)) / len(refs) > 10:
        out.append(
            "references look like words joined without spaces: was fairseq-generate run with --post-process "
            "sentencepiece? The task already detokenises; decoding twice joins every word (BLEU near 0)"
        )
    n_unk = sum("<<unk>>" in r or "<unk>" in r for r in refs)
    if n_unk:
        out.append(
            f"{n_unk} reference(s) contain <unk>: fairseq-generate prints references through the target "
            f"dictionary, so characters missing from it are lost and the scores are off"
        )
    n_empty = sum(not h.strip() for h in hyps)
    if n_empty:
        out.append(f"{n_empty} hypothesis/es are empty")
    return out
