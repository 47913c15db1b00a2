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

:class:`DiscourseGrammar` (the How2Sign-like style's grammar) extends this
one to sentences of any length, from one word to dozens, so that video
durations range from about a second to more than two encoder windows::

    sentence:  INTERJ                                   "Okay."
            |  [INTERJ] CLAUSE (CONJ CLAUSE)*           "Yes the dog runs but she sleeps."
    clause:    the two forms above, or PRON IVERB / PRON TVERB DET [ADJ] NOUN
                                                        "he likes a red ball"

with pronouns (he, she), conjunctions (and, but, then) and interjections
(yes, no, okay): 28 words. The number of words of a sentence is drawn first
(a discretised log-normal, most sentences a few words long, truncated to
``words_per_sentence``), then a sentence of exactly that length. The same
:func:`sample_splits` draws its splits (``grammar=``), with the same
guarantees.
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


def _greedy_cover(
    candidates: Sequence[Sentence], rng: np.random.Generator, vocab: Sequence[str] = VOCAB
) -> List[Sentence]:
    """A small set of candidate sentences that together use every word (greedy set cover).

    Ties are broken by a seeded shuffle of the candidates, so the result is
    deterministic for a given generator state.
    """
    index = {w: i for i, w in enumerate(vocab)}
    order = rng.permutation(len(candidates))
    cands = [candidates[i] for i in order]
    masks = np.zeros((len(cands), len(vocab)), dtype=bool)
    for i, s in enumerate(cands):
        masks[i, [index[w] for w in s]] = True
    uncovered = np.ones(len(vocab), dtype=bool)
    chosen: List[Sentence] = []
    while uncovered.any():
        gain = (masks & uncovered).sum(axis=1)
        best = int(np.argmax(gain))  # first maximum: tie broken by the shuffle
        if gain[best] == 0:
            missing = [w for w, u in zip(vocab, uncovered) if u]
            raise ValueError(f"no train sentence can contain the words {missing}")
        chosen.append(cands[best])
        uncovered &= ~masks[best]
    return chosen


class SimpleGrammar:
    """The grammar of this module's functions, as an object :func:`sample_splits` can take."""

    vocab: Tuple[str, ...] = VOCAB

    def sample(self, rng: np.random.Generator) -> Sentence:
        return sample_sentence(rng)

    def count(self) -> int:
        return count_sentences()

    def cover_pool(self, held: set, rng: np.random.Generator) -> List[Sentence]:
        """Candidates for the train sentences that cover the vocabulary: every sentence not held out."""
        return [s for s in all_sentences() if s not in held]


SIMPLE_GRAMMAR = SimpleGrammar()


def sample_splits(
    n_train: int, n_val: int, n_test: int, seed: int = 1, grammar=None
) -> Tuple[List[List[str]], List[List[str]], List[List[str]]]:
    """Captions (lists of words) for train, val and test.

    - val and test sentences are distinct, disjoint from each other and never
      occur in train; train sentences may repeat;
    - every vocabulary word occurs in train (a greedy cover of the vocabulary,
      about 6 sentences, is part of train, so ``n_train`` must be at least that);
    - deterministic for a given seed.

    ``grammar``: :data:`SIMPLE_GRAMMAR` (``None``, the default) or a
    :class:`DiscourseGrammar`.
    """
    grammar = SIMPLE_GRAMMAR if grammar is None else grammar
    if min(n_train, n_val, n_test) < 0:
        raise ValueError("split sizes must be non-negative")
    total = grammar.count()
    n_held = n_val + n_test
    if n_held > total // 2:
        raise ValueError(f"val+test ({n_held}) must be at most half of the {total} possible sentences")
    rng = np.random.default_rng([int(seed), 7919])

    held: List[Sentence] = []
    held_set = set()
    while len(held) < n_held:
        s = grammar.sample(rng)
        if s not in held_set:
            held_set.add(s)
            held.append(s)
    val, test = held[:n_val], held[n_val:]

    if n_train == 0:
        train: List[Sentence] = []
    else:
        pool = grammar.cover_pool(held_set, rng)
        cover = _greedy_cover(pool, rng, grammar.vocab)
        if len(cover) > n_train:
            raise ValueError(
                f"n_train={n_train} is too small: {len(cover)} sentences are needed to use every word"
            )
        train = list(cover)
        while len(train) < n_train:
            s = grammar.sample(rng)
            if s not in held_set:
                train.append(s)
        train = [train[i] for i in rng.permutation(len(train))]

    def as_lists(ss):
        return [list(s) for s in ss]

    return as_lists(train), as_lists(val), as_lists(test)


# --------------------------------------------------------------------------- discourse grammar

PRONOUNS = ("he", "she")
CONJUNCTIONS = ("and", "but", "then")
INTERJECTIONS = ("yes", "no", "okay")
DISCOURSE_VOCAB: Tuple[str, ...] = VOCAB + PRONOUNS + CONJUNCTIONS + INTERJECTIONS
assert len(set(DISCOURSE_VOCAB)) == len(DISCOURSE_VOCAB)

_DISCOURSE_CATEGORIES: Dict[str, Tuple[str, ...]] = dict(
    CATEGORIES, PRON=PRONOUNS, CONJ=CONJUNCTIONS, INTERJ=INTERJECTIONS
)
# clause forms by length in words (at most one adjective per clause)
CLAUSE_FORMS: Dict[int, Tuple[Tuple[str, ...], ...]] = {
    2: (("PRON", "IVERB"),),
    3: (("DET", "NOUN", "IVERB"),),
    4: (("DET", "ADJ", "NOUN", "IVERB"), ("PRON", "TVERB", "DET", "NOUN")),
    5: (("PRON", "TVERB", "DET", "ADJ", "NOUN"), ("DET", "NOUN", "TVERB", "DET", "NOUN")),
    6: (("DET", "ADJ", "NOUN", "TVERB", "DET", "NOUN"), ("DET", "NOUN", "TVERB", "DET", "ADJ", "NOUN")),
}
MIN_CLAUSE, MAX_CLAUSE = min(CLAUSE_FORMS), max(CLAUSE_FORMS)
# default sentence length: 1 to 30 words, median 5. A signed word takes ~0.85 s with its transition,
# so clips last ~1 s to ~25 s, ~6 s on average (How2Sign: ~6 s), ~2% longer than 20 s.
WORDS_PER_SENTENCE = (1, 30)
MEDIAN_WORDS = 5.0
LENGTH_SIGMA = 0.75  # of log(words)
P_INTERJECTION = 0.12  # a sentence of 3+ words starts with an interjection
P_SINGLE_CLAUSE = 0.6  # a short remainder (<= MAX_CLAUSE words) is one clause rather than two


class DiscourseGrammar:
    """Sentences of one or more clauses joined by conjunctions, with a configurable length.

    ``words_per_sentence = (min, max)``: the range of sentence lengths in
    words. Every length from 1 up is possible (1: an interjection alone, 2:
    ``PRON IVERB``, more: clauses and conjunctions). Every word occurs in
    sentences of 5 words or more, so ``max`` must be at least 5 for the
    train split to use every word.
    """

    vocab: Tuple[str, ...] = DISCOURSE_VOCAB

    def __init__(self, words_per_sentence: Tuple[int, int] = WORDS_PER_SENTENCE):
        lo, hi = (int(x) for x in words_per_sentence)
        if not 1 <= lo <= hi:
            raise ValueError(f"words_per_sentence must be (min, max) with 1 <= min <= max, got {words_per_sentence}")
        self.words_per_sentence = (lo, hi)
        lengths = np.arange(lo, hi + 1, dtype=np.float64)
        # discretised log-normal density (per word count), truncated to [lo, hi]
        p = np.exp(-((np.log(lengths) - np.log(MEDIAN_WORDS)) ** 2) / (2 * LENGTH_SIGMA**2)) / lengths
        self._lengths = lengths.astype(np.int64)
        self._p = p / p.sum()

    def __repr__(self):
        return f"DiscourseGrammar(words_per_sentence={self.words_per_sentence})"

    # ------------------------------------------------------------ sampling
    def sample_length(self, rng: np.random.Generator) -> int:
        return int(rng.choice(self._lengths, p=self._p))

    def sample(self, rng: np.random.Generator) -> Sentence:
        return self.sample_of_length(self.sample_length(rng), rng)

    @staticmethod
    def _clause(n: int, rng: np.random.Generator) -> Sentence:
        forms = CLAUSE_FORMS[n]
        form = forms[int(rng.integers(len(forms)))]
        return tuple(_DISCOURSE_CATEGORIES[c][int(rng.integers(len(_DISCOURSE_CATEGORIES[c])))] for c in form)

    def sample_of_length(self, n_words: int, rng: np.random.Generator) -> Sentence:
        """A sentence of exactly ``n_words`` words."""
        if n_words < 1:
            raise ValueError(f"a sentence has at least one word, got {n_words}")

        def pick(cat):
            words = _DISCOURSE_CATEGORIES[cat]
            return words[int(rng.integers(len(words)))]

        if n_words == 1:
            return (pick("INTERJ"),)
        out: List[str] = []
        left = n_words
        if left >= 1 + MIN_CLAUSE and rng.random() < P_INTERJECTION:
            out.append(pick("INTERJ"))
            left -= 1
        first = True
        while left > 0:
            if not first:
                out.append(pick("CONJ"))
                left -= 1
            # a clause of n words; what is left after it must hold a conjunction and a clause
            longest_split = min(MAX_CLAUSE, left - 1 - MIN_CLAUSE)
            if left <= MAX_CLAUSE and (longest_split < MIN_CLAUSE or rng.random() < P_SINGLE_CLAUSE):
                n = left
            else:
                n = int(rng.integers(MIN_CLAUSE, longest_split + 1))
            out.extend(self._clause(n, rng))
            left -= n
            first = False
        return tuple(out)

    # ------------------------------------------------------------ counting
    @staticmethod
    def count_of_length(n_words: int) -> int:
        """Number of distinct sentences of exactly ``n_words`` words (the parse is unique)."""
        size = {c: len(ws) for c, ws in _DISCOURSE_CATEGORIES.items()}
        clause = {n: sum(int(np.prod([size[c] for c in f])) for f in forms) for n, forms in CLAUSE_FORMS.items()}
        # chains[n]: sequences of clauses joined by conjunctions, n words in all
        chains = [0] * (n_words + 1)
        for n in range(1, n_words + 1):
            total = clause.get(n, 0)
            for k, c in clause.items():
                if n - k - 1 >= 1:
                    total += c * size["CONJ"] * chains[n - k - 1]
            chains[n] = total
        alone = size["INTERJ"] if n_words == 1 else 0
        prefixed = size["INTERJ"] * chains[n_words - 1] if n_words >= 2 else 0
        return alone + chains[n_words] + prefixed

    def count(self) -> int:
        lo, hi = self.words_per_sentence
        return sum(self.count_of_length(n) for n in range(lo, hi + 1))

    def cover_pool(self, held: set, rng: np.random.Generator, n: int = 400) -> List[Sentence]:
        """Candidates for the vocabulary cover: ``n`` sampled sentences (the space is too large to list)."""
        pool: List[Sentence] = []
        for _ in range(n):
            s = self.sample(rng)
            if s not in held:
                pool.append(s)
        return pool


def caption_text(words: Sequence[str]) -> str:
    """How2Sign-style caption: first letter upper-cased, final period."""
    s = " ".join(words)
    return s[:1].upper() + s[1:] + "."


def normalise_caption(text: str) -> List[str]:
    """Inverse of :func:`caption_text`: lower-case, punctuation stripped, split into words."""
    kept = "".join(c for c in text.lower() if c.isalnum() or c.isspace())
    return kept.split()


def word_counts(captions: Sequence[Sequence[str]], vocab: Sequence[str] = VOCAB) -> Dict[str, int]:
    counts = {w: 0 for w in vocab}
    for c in captions:
        for w in c:
            counts[w] += 1
    return counts

