"""A small compositional grammar for synthetic captions.

Sentences have one of two forms (at most one adjective per sentence, so a
sentence is 3 to 6 words long)::

    intransitive:  DET [ADJ] NOUN IVERB                 "the tall cat sleeps"
    transitive:    DET [ADJ] NOUN TVERB DET [ADJ] NOUN  "a dog sees the red ball"

With 2 determiners, 5 adjectives, 7 nouns, 4 transitive and 2 intransitive
verbs (20 words) the grammar generates 8,792 distinct sentences (see
:func:`count_sentences`), so a model can only translate held-out sentences by
reading the signs word by word.

:func:`sample_splits` draws train/val/test captions such that no val or test
sentence ever occurs in train (val and test are also disjoint from each other
and have no repeats), and every word of the vocabulary occurs in train.
"""

from typing import Dict, List, Sequence, Tuple

import numpy as np

DETERMINERS = ("the", "a")
ADJECTIVES = ("big", "small", "red", "tall", "happy")
NOUNS = ("dog", "cat", "man", "woman", "bird", "ball", "car")
TRANSITIVE_VERBS = ("sees", "likes", "takes", "wants")
INTRANSITIVE_VERBS = ("runs", "sleeps")

CATEGORIES: Dict[str, Tuple[str, ...]] = {
    "DET": DETERMINERS,
    "ADJ": ADJECTIVES,
    "NOUN": NOUNS,
    "TVERB": TRANSITIVE_VERBS,
    "IVERB": INTRANSITIVE_VERBS,
}

# every word, in a fixed order (the gesture table in signer.py follows it)
VOCAB: Tuple[str, ...] = DETERMINERS + ADJECTIVES + NOUNS + TRANSITIVE_VERBS + INTRANSITIVE_VERBS
assert len(set(VOCAB)) == len(VOCAB)

MIN_WORDS, MAX_WORDS = 3, 6

# sampling distribution of a sentence: form, then whether / where an adjective goes
P_INTRANSITIVE = 0.25
P_ADJECTIVE = 0.5  # probability that the sentence has an adjective at all

Sentence = Tuple[str, ...]


def _noun_phrases(with_adj: bool):
    if with_adj:
        return [(d, a, n) for d in DETERMINERS for a in ADJECTIVES for n in NOUNS]
    return [(d, n) for d in DETERMINERS for n in NOUNS]


def all_sentences() -> List[Sentence]:
    """Every sentence the grammar generates, each once, in a fixed order."""
    out: List[Sentence] = []
    for with_adj in (False, True):
        for np_ in _noun_phrases(with_adj):
            for v in INTRANSITIVE_VERBS:
                out.append(np_ + (v,))
    # transitive: adjective on neither, the subject, or the object
    for subj_adj, obj_adj in ((False, False), (True, False), (False, True)):
        for subj in _noun_phrases(subj_adj):
            for v in TRANSITIVE_VERBS:
                for obj in _noun_phrases(obj_adj):
                    out.append(subj + (v,) + obj)
    return out


def count_sentences() -> int:
    """Number of distinct sentences, counted from the grammar (not by enumeration)."""
    d, a, n = len(DETERMINERS), len(ADJECTIVES), len(NOUNS)
    plain_np, adj_np = d * n, d * a * n
    intransitive = (plain_np + adj_np) * len(INTRANSITIVE_VERBS)
    transitive = len(TRANSITIVE_VERBS) * (plain_np * plain_np + 2 * adj_np * plain_np)
    return intransitive + transitive


def sample_sentence(rng: np.random.Generator) -> Sentence:
    """One sentence from the sampling distribution."""

    def pick(words):
        return words[int(rng.integers(len(words)))]

    def noun_phrase(adj: bool):
        return (pick(DETERMINERS),) + ((pick(ADJECTIVES),) if adj else ()) + (pick(NOUNS),)

    has_adj = rng.random() < P_ADJECTIVE
    if rng.random() < P_INTRANSITIVE:
        return noun_phrase(has_adj) + (pick(INTRANSITIVE_VERBS),)
    adj_on_subject = rng.random() < 0.5
    return (
        noun_phrase(has_adj and adj_on_subject)
        + (pick(TRANSITIVE_VERBS),)
        + noun_phrase(has_adj and not adj_on_subject)
    )


def _greedy_cover(candidates: Sequence[Sentence], rng: np.random.Generator) -> List[Sentence]:
    """A small set of candidate sentences that together use every word (greedy set cover).

    Ties are broken by a seeded shuffle of the candidates, so the result is
    deterministic for a given generator state.
    """
    index = {w: i for i, w in enumerate(VOCAB)}
    order = rng.permutation(len(candidates))
    cands = [candidates[i] for i in order]
    masks = np.zeros((len(cands), len(VOCAB)), dtype=bool)
    for i, s in enumerate(cands):
        masks[i, [index[w] for w in s]] = True
    uncovered = np.ones(len(VOCAB), dtype=bool)
    chosen: List[Sentence] = []
    while uncovered.any():
        gain = (masks & uncovered).sum(axis=1)
        best = int(np.argmax(gain))  # first maximum: tie broken by the shuffle
        if gain[best] == 0:
            missing = [w for w, u in zip(VOCAB, uncovered) if u]
            raise ValueError(f"no train sentence can contain the words {missing}")
        chosen.append(cands[best])
        uncovered &= ~masks[best]
    return chosen


def sample_splits(
    n_train: int, n_val: int, n_test: int, seed: int = 1
) -> Tuple[List[List[str]], List[List[str]], List[List[str]]]:
    """Captions (lists of words) for train, val and test.

    - val and test sentences are distinct, disjoint from each other and never
      occur in train; train sentences may repeat;
    - every vocabulary word occurs in train (a greedy cover of the vocabulary,
      about 6 sentences, is part of train, so ``n_train`` must be at least that);
    - deterministic for a given seed.
    """
    if min(n_train, n_val, n_test) < 0:
        raise ValueError("split sizes must be non-negative")
    total = count_sentences()
    n_held = n_val + n_test
    if n_held > total // 2:
        raise ValueError(f"val+test ({n_held}) must be at most half of the {total} possible sentences")
    rng = np.random.default_rng([int(seed), 7919])

    held: List[Sentence] = []
    held_set = set()
    while len(held) < n_held:
        s = sample_sentence(rng)
        if s not in held_set:
            held_set.add(s)
            held.append(s)
    val, test = held[:n_val], held[n_val:]

    if n_train == 0:
        train: List[Sentence] = []
    else:
        pool = [s for s in all_sentences() if s not in held_set]
        cover = _greedy_cover(pool, rng)
        if len(cover) > n_train:
            raise ValueError(
                f"n_train={n_train} is too small: {len(cover)} sentences are needed to use every word"
            )
        train = list(cover)
        while len(train) < n_train:
            s = sample_sentence(rng)
            if s not in held_set:
                train.append(s)
        train = [train[i] for i in rng.permutation(len(train))]

    def as_lists(ss):
        return [list(s) for s in ss]

    return as_lists(train), as_lists(val), as_lists(test)


def caption_text(words: Sequence[str]) -> str:
    """How2Sign-style caption: first letter upper-cased, final period."""
    s = " ".join(words)
    return s[:1].upper() + s[1:] + "."


def normalise_caption(text: str) -> List[str]:
    """Inverse of :func:`caption_text`: lower-case, punctuation stripped, split into words."""
    kept = "".join(c for c in text.lower() if c.isalnum() or c.isspace())
    return kept.split()


def word_counts(captions: Sequence[Sequence[str]]) -> Dict[str, int]:
    counts = {w: 0 for w in VOCAB}
    for c in captions:
        for w in c:
            counts[w] += 1
    return counts

