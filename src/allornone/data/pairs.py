"""Built-in concept pair families: the Google analogy set (gensim wheel) and WordNet antonyms.

A *pair family* is a list of ``(a, b)`` word pairs that are supposed to share one relation
(country -> capital, singular -> plural, word -> antonym). Whether a pair's words are single
tokens is decided later, by the tokenizer of the model under study; here multiword lemmas
keep their spaces. The files are parsed by :mod:`allornone.data.readers`; users' pair files
are read by :func:`allornone.data.read_concepts` / :func:`~allornone.data.read_pairs_tsv`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from allornone._validation import AllOrNoneError
from allornone.data.debian import find_debian_file
from allornone.data.readers import read_analogy_questions, read_wordnet_data
from allornone.data.types import PairFamily

__all__ = [
    "ANALOGY_SOURCE",
    "WORDNET_SOURCE",
    "analogy_families",
    "analogy_path",
    "analogy_questions",
    "antonym_pairs",
]

ANALOGY_SOURCE = (
    "Google analogy test set (Mikolov et al. 2013, questions-words.txt) from the gensim wheel "
    "test data (LGPL-2.1 bundle)"
)
WORDNET_SOURCE = "WordNet 3.0 antonym pointers (Debian wordnet-base, Princeton WordNet licence)"

WORDNET_POS_FILES = {"adj": "data.adj", "noun": "data.noun", "verb": "data.verb", "adv": "data.adv"}


def _unique(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Drop repeated pairs, keeping the first occurrence's position."""
    return list(dict.fromkeys(pairs))


def analogy_path() -> Path:
    """Path of ``questions-words.txt`` inside the installed gensim wheel."""
    spec = importlib.util.find_spec("gensim")  # located, not imported (gensim is heavy)
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover
        raise AllOrNoneError(
            "the Google analogy set ships with gensim; install it: pip install gensim"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    path = root / "test" / "test_data" / "questions-words.txt"
    if not path.is_file():  # pragma: no cover - would mean a broken gensim install
        raise AllOrNoneError(f"{path} is missing from the gensim install; reinstall gensim")
    return path


def analogy_questions() -> dict[str, list[tuple[str, str, str, str]]]:
    """The raw Google analogy questions ``a b c d`` ("a is to b as c is to d"), per section.

    Sections keep the file's order and names (``capital-common-countries`` ...
    ``gram9-plural-verbs``): 19,544 questions in 14 sections.
    """
    return read_analogy_questions(analogy_path())


def analogy_families() -> list[PairFamily]:
    """The 14 Google analogy sections as families of unique word pairs.

    A question ``a b c d`` contributes pairs ``(a, b)`` and ``(c, d)``; repeats are dropped,
    first-seen order kept. E.g. ``capital-common-countries`` has 23 pairs starting with
    ``("Athens", "Greece")``.
    """
    families = []
    for name, questions in analogy_questions().items():
        pairs: list[tuple[str, str]] = []
        for a, b, c, d in questions:
            pairs.append((a, b))
            pairs.append((c, d))
        families.append(PairFamily(name, _unique(pairs), f"{ANALOGY_SOURCE}, section {name}"))
    return families


_POS_FILE_KEY = {"a": "adj", "s": "adj", "n": "noun", "v": "verb", "r": "adv"}


def antonym_pairs(pos: str | None = None) -> PairFamily:
    """WordNet 3.0 antonym pairs, parsed from the ``!`` pointers of ``data.{adj,noun,verb,adv}``.

    ``pos`` restricts to one file (``"adj"``, ``"noun"``, ``"verb"``, ``"adv"``). Multiword
    lemmas keep spaces (``"in fact"``); pairs are deduplicated as unordered pairs, keeping the
    orientation seen first. All four files give 3,555 pairs, including ``("good", "bad")``
    (3,556 unordered pointer pairs less the self-pair ``kern``/``kern``, which is dropped).
    Needs the Debian package ``wordnet-base`` (see :mod:`allornone.data.debian`).
    """
    if pos is not None and pos not in WORDNET_POS_FILES:
        raise AllOrNoneError(f"pos={pos!r}: expected one of {sorted(WORDNET_POS_FILES)} or None")
    parsed = {
        key: read_wordnet_data(find_debian_file(f"usr/share/wordnet/{fname}", "wordnet-base"))
        for key, fname in WORDNET_POS_FILES.items()
    }
    seen: set[frozenset[str]] = set()
    pairs: list[tuple[str, str]] = []
    for key in [pos] if pos else list(WORDNET_POS_FILES):
        for words, ptrs in parsed[key].values():
            for src, target, tgt in ptrs:
                tpos, toff = target.split(":")
                target_words = parsed[_POS_FILE_KEY[tpos]][int(toff)][0]
                a, b = words[src - 1], target_words[tgt - 1]
                unordered = frozenset((a, b))
                if a == b or unordered in seen:
                    continue
                seen.add(unordered)
                pairs.append((a, b))
    name = "wordnet-antonyms" if pos is None else f"wordnet-antonyms-{pos}"
    return PairFamily(name, pairs, WORDNET_SOURCE)
