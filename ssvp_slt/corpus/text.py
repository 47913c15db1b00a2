"""Caption normalisation, shared by vocabulary building, the task and scoring.

Keep this the single definition: the sentencepiece model is trained on
captions normalised here, so the task must normalise targets the same way.
The options (``lowercase``, ``punctuation``) are recorded in the data config
(``config.yaml``), which both ``scripts/build_vocab.py`` and the task read.
"""

import unicodedata

PUNCTUATION_CHOICES = ("keep", "strip")

# Kept between two letters/digits under punctuation="strip": they are part of a word
# ("don't", "well-known"), not sentence punctuation.
_WORD_INTERNAL = frozenset("'\u2019-\u2010\u2011")
# Kept between two digits: numbers and times ("3.5", "1,000", "10:30").
_NUMBER_INTERNAL = frozenset(".,:")


def strip_punctuation(text: str) -> str:
    """Replace every Unicode punctuation character (categories P*) by a space, except
    apostrophes and hyphens inside words and ``. , :`` inside numbers. Symbols such as
    ``$ % +`` are kept: they carry meaning ("$5", "50%")."""
    out = []
    n = len(text)
    for i, ch in enumerate(text):
        if unicodedata.category(ch).startswith("P"):
            prev = text[i - 1] if i > 0 else ""
            nxt = text[i + 1] if i + 1 < n else ""
            if ch in _WORD_INTERNAL and prev.isalnum() and nxt.isalnum():
                out.append(ch)
            elif ch in _NUMBER_INTERNAL and prev.isdigit() and nxt.isdigit():
                out.append(ch)
            else:
                out.append(" ")  # a space, not nothing: "yes,no" must stay two words
        else:
            out.append(ch)
    return "".join(out)


def normalize_caption(text: str, lowercase: bool, punctuation: str = "keep") -> str:
    """Collapse every run of whitespace (spaces, tabs, newlines) to one space and strip
    the ends; lower-case when ``lowercase``; with ``punctuation="strip"`` remove
    punctuation (see :func:`strip_punctuation`). With the defaults punctuation and
    everything else is kept as is."""
    if punctuation not in PUNCTUATION_CHOICES:
        raise ValueError(f"punctuation must be one of {', '.join(PUNCTUATION_CHOICES)}, got {punctuation!r}")
    if punctuation == "strip":
        text = strip_punctuation(text)
    text = " ".join(text.split())
    return text.lower() if lowercase else text
