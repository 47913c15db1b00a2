"""Caption normalisation, shared by vocabulary building, the task and scoring.

Keep this the single definition: the sentencepiece model is trained on
captions normalised here, so the task must normalise targets the same way.
The options (``lowercase``, ``punctuation``) are recorded in the data config
(``config.yaml``), which both ``scripts/build_vocab.py`` and the task read.
"""

import unicodedata
from typing import Optional, Tuple

PUNCTUATION_CHOICES = ("keep", "strip")

# reasons a caption is refused (see empty_caption_problem); skip counts are grouped by them
EMPTY_CAPTION = "empty caption"
EMPTY_AFTER_NORMALISATION = "caption empty after normalisation"

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


# invisible characters (controls, format characters such as zero-width spaces and BOMs) and
# separators: a caption made of them only has no word, and sentencepiece encodes most to nothing
_NO_WORD_CATEGORIES = frozenset(("Cc", "Cf", "Zs", "Zl", "Zp"))
_NO_WORD_STRIPPED = _NO_WORD_CATEGORIES | {"Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po"}  # punctuation too


def has_words(text: str, punctuation: str = "keep") -> bool:
    """Whether ``normalize_caption(text, ..., punctuation)`` holds anything but invisible characters
    and separators. Computed on the raw text, without normalising it: normalisation only removes
    whitespace and, with ``punctuation="strip"``, punctuation (what it keeps of it sits between
    letters or digits, which are words anyway), so the answer is the same, and the scan stops at
    the first letter (a 31k-caption split is checked at every start)."""
    if punctuation not in PUNCTUATION_CHOICES:
        raise ValueError(f"punctuation must be one of {', '.join(PUNCTUATION_CHOICES)}, got {punctuation!r}")
    no_word = _NO_WORD_STRIPPED if punctuation == "strip" else _NO_WORD_CATEGORIES
    category = unicodedata.category
    for ch in text:
        if category(ch) not in no_word:
            return True
    return False


def empty_caption_problem(text: Optional[str], punctuation: str = "keep") -> Optional[Tuple[str, str]]:
    """None for a usable caption, else ``(reason, message)``: it would train as an empty (EOS-only)
    target. Captions are checked as normalised (``punctuation="strip"`` turns ``"?!..."`` into ``""``)
    wherever they enter: preparation, manifest loading and vocabulary building. Lower-casing never
    empties a caption, so only the punctuation setting matters."""
    if text is None or not text.strip():
        return EMPTY_CAPTION, EMPTY_CAPTION
    if has_words(text, punctuation):
        return None
    if has_words(text):
        why = "has no word left once punctuation is stripped (the data config's punctuation: strip)"
    else:
        why = "holds only invisible characters (control or format characters, separators)"
    return EMPTY_AFTER_NORMALISATION, f"{EMPTY_AFTER_NORMALISATION}: {text!r} {why}"
