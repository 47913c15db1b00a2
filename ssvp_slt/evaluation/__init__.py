"""Evaluation report and model comparison: ``ssvp-slt-evaluate`` and ``ssvp-slt-compare`` (docs/evaluation.md).

- :mod:`.metrics`: BLEU-1..4, chrF (sacreBLEU), ROUGE-L (rouge-score), METEOR (NLTK + WordNet 3.0),
  WER and CER (jiwer), each by its own library, with the definition it is reported under;
- :mod:`.wordnet`: WordNet 3.0 for METEOR, installed offline from Debian's packages;
- :mod:`.predictions`: the per-clip predictions (fairseq-generate output, CSV/TSV in and out);
- :mod:`.decode`: decoding a split with checkpoints through fairseq's generator, timed (imports fairseq);
- :mod:`.significance`: 95% confidence intervals and paired tests (sacreBLEU's) for every metric;
- :mod:`.evaluate`, :mod:`.compare`, :mod:`.figure`: the two tools and the comparison figure.

Only :mod:`.decode` (used when a checkpoint is given) imports fairseq and torch.
"""
