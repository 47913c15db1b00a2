"""Dropping the words that overlapping fixed windows both translate.

Two windows that share ``overlap`` seconds of video often both translate the signs in it: the
end of one text repeats at the start of the next. The longest run of words that ends the first
text and starts the second (compared without case and punctuation) is dropped from the second.
Only runs of at most ``max_words`` words are looked for: an overlap of a few seconds holds a
few signs, and a longer accidental match would delete real words.
"""

import re
from typing import List, Sequence

_WORD = re.compile(r"[\w']+")


def _norm(word: str) -> str:
    return "".join(_WORD.findall(word.lower()))


def repeated_words(previous: str, current: str, max_words: int = 8) -> int:
    """How many leading words of ``current`` repeat the last words of ``previous``."""
    a = [_norm(w) for w in previous.split()]
    b = [_norm(w) for w in current.split()]
    for k in range(min(max_words, len(a), len(b)), 0, -1):
        if a[-k:] == b[:k] and any(a[-k:]):
            return k
    return 0


def deduplicate(texts: Sequence[str], max_words: int = 8) -> List[str]:
    """Each text with the words it repeats from the end of the previous (raw) text removed."""
    out = []
    for i, text in enumerate(texts):
        k = repeated_words(texts[i - 1], text, max_words) if i > 0 else 0
        out.append(" ".join(text.split()[k:]))
    return out
