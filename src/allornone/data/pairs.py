"""Concept pair families: the Google analogy set, WordNet antonyms, and user TSV files.

A *pair family* is a list of ``(a, b)`` word pairs that are supposed to share one relation
(country -> capital, singular -> plural, word -> antonym). Whether a pair's words are single
tokens is decided later, by the tokenizer of the model under study; here multiword lemmas
keep their spaces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from allornone._validation import AllOrNoneError
from allornone.data.debian import find_debian_file

__all__ = [
    "ANALOGY_SOURCE",
    "WORDNET_SOURCE",
    "PairFamily",
    "analogy_families",
    "analogy_path",
    "analogy_questions",
    "antonym_pairs",
    "read_pairs_tsv",
]

ANALOGY_SOURCE = (
    "Google analogy test set (Mikolov et al. 2013, questions-words.txt) from the gensim wheel "
    "test data (LGPL-2.1 bundle)"
)
WORDNET_SOURCE = "WordNet 3.0 antonym pointers (Debian wordnet-base, Princeton WordNet licence)"

WORDNET_POS_FILES = {"adj": "data.adj", "noun": "data.noun", "verb": "data.verb", "adv": "data.adv"}


@dataclass
class PairFamily:
    """A named list of word pairs that should share one relation.

    ``source`` says where the pairs come from (a data set name, a file path).
    ``alternatives`` maps a first word to all its correct second words when a data set gives
    several (BATS: ``word<TAB>answer1/answer2``); ``pairs`` then holds the first answer.
    """

    name: str
    pairs: list[tuple[str, str]] = field(default_factory=list)
    source: str = ""
    alternatives: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def answers(self, a: str, b: str) -> tuple[str, ...]:
        """All correct second words of the pair ``(a, b)`` (``(b,)`` when there is one)."""
        return self.alternatives.get(a, (b,))

    def __len__(self) -> int:
        return len(self.pairs)


def _unique(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Drop repeated pairs, keeping the first occurrence's position."""
    return list(dict.fromkeys(pairs))


def analogy_path() -> Path:
    """Path of ``questions-words.txt`` inside the installed gensim wheel."""
    import importlib.util

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
    sections: dict[str, list[tuple[str, str, str, str]]] = {}
    current: list[tuple[str, str, str, str]] | None = None
    path = analogy_path()
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith(":"):
            current = sections.setdefault(line[1:].strip(), [])
            continue
        words = line.split()
        if len(words) != 4 or current is None:  # pragma: no cover - fixed file
            raise AllOrNoneError(f"{path}:{lineno}: expected 4 words after a ': section' line")
        current.append((words[0], words[1], words[2], words[3]))
    return sections


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


_ADJ_MARKER = re.compile(r"\((?:a|p|ip)\)$")


def _lemma(word: str) -> str:
    """WordNet lemma as text: drop adjective position markers, underscores become spaces."""
    return _ADJ_MARKER.sub("", word).replace("_", " ")


def _parse_wordnet_data(path: Path) -> dict[int, tuple[list[str], list[tuple[int, str, int]]]]:
    """Parse one ``data.POS`` file into ``{offset: (words, antonym pointers)}``.

    An antonym pointer is ``(source word number, "pos:offset" of the target synset,
    target word number)``; word numbers are 1-based, as in the file.
    """
    synsets: dict[int, tuple[list[str], list[tuple[int, str, int]]]] = {}
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("  "):  # licence header
                continue
            fields = line.split(" | ", 1)[0].split()
            offset = int(fields[0])
            w_cnt = int(fields[3], 16)
            words = [_lemma(fields[4 + 2 * i]) for i in range(w_cnt)]
            k = 4 + 2 * w_cnt
            p_cnt = int(fields[k])
            ptrs: list[tuple[int, str, int]] = []
            for j in range(p_cnt):
                symbol, target_off, target_pos, st = fields[k + 1 + 4 * j : k + 5 + 4 * j]
                if symbol == "!":
                    target = f"{target_pos}:{int(target_off)}"
                    ptrs.append((int(st[:2], 16), target, int(st[2:], 16)))
            synsets[offset] = (words, ptrs)
    return synsets


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
        key: _parse_wordnet_data(find_debian_file(f"usr/share/wordnet/{fname}", "wordnet-base"))
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


def read_pairs_tsv(path: str | Path, family: str | None = None) -> list[PairFamily]:
    """Read word pairs from one user file (the project's TSV, Park et al.'s ``[a - b].txt``,
    a BATS file or the gensim analogy format; see :func:`allornone.data.read_concepts`).

    TSV format, one pair per line, tab-separated: ``a<TAB>b`` or ``a<TAB>b<TAB>family``. An
    optional header line ``a<TAB>b`` (or ``a<TAB>b<TAB>family``) is skipped; blank lines and
    lines starting with ``#`` are ignored. Two-column lines go to the family ``family``
    (default: the file's stem). Exact repeats and pairs of two identical words are dropped.
    Returns one :class:`PairFamily` per family name, in first-seen order.

    Raises one :class:`AllOrNoneError` listing every wrong line (file and line number: wrong
    column count, empty field); also for a file with no pairs.
    """
    from allornone.data.readers import read_concepts

    path = Path(path)
    if path.is_dir():
        raise AllOrNoneError(f"pairs file {path} is a folder: pass a file (or read_concepts)")
    fams = read_concepts([path]).families
    if family is not None:
        for f in fams:
            if f.name == path.stem:
                f.name = family
    return fams
