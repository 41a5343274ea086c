"""Every file format :mod:`allornone.data` reads, each parsed here and nowhere else.

Users' concept files (word pairs), :func:`read_concepts` and :func:`read_pairs_tsv`: files or
folders (searched recursively) of

- the project's TSV: ``a<TAB>b`` or ``a<TAB>b<TAB>family`` (docs/DATA.md);
- Park et al.'s word pairs: ``word_pairs/[base - target].txt``, one ``base<TAB>target`` per
  line; the family is named from the file name (``country - capital``);
- BATS 3.0: ``E01 [country - capital].txt`` files, ``word<TAB>answer1/answer2/...`` (several
  correct answers; all are kept in :attr:`PairFamily.alternatives`);
- the gensim / word2vec analogy format (``questions-words.txt``): ``: section`` lines
  followed by ``a b c d`` lines; the questions are kept for the analogy figure too
  (:func:`read_analogy_questions` reads the copy in the gensim wheel with the same parser).

Relations, :func:`read_relations` and :func:`read_relations_json`: JSON files or folders of
them, in the project's schema (``name``, ``templates``, ``samples``) or in the LRE schema of
Hernandez et al. (ICLR 2024: ``name``, ``prompt_templates``, ``prompt_templates_zs``,
``properties``, ``samples``); the packaged LRE files are read by the same code.
:func:`relation_file_problems` lists every problem of one file.

Labelled texts, :func:`read_labels_tsv`: ``text<TAB>label`` lines.

The installed data's formats: WordNet ``data.POS`` files (:func:`read_wordnet_data`), fortune
files (:func:`read_fortune_file`), the Debian ``bible`` tool's output
(:func:`parse_kjv_output`) and janeaustenr's R lazy-load database
(:func:`read_janeaustenr`).

Text files are read as UTF-8 with an optional byte-order mark (``utf-8-sig``: files saved by
Excel or Notepad read like their BOM-free copies). For users' files every problem of every
file is collected and reported at once (file and line; the list is capped at
:data:`MAX_LISTED`), as one :class:`AllOrNoneError`. Pairs whose two words are identical are
dropped (as Park et al.'s own loader does) and counted in the returned notes.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
import struct
import warnings
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from allornone._validation import AllOrNoneError, read_user_file
from allornone.data.types import (
    ConceptInputs,
    LabelledTexts,
    PairFamily,
    Relation,
    RelationInputs,
    relation_problems,
)

__all__ = [
    "MAX_LISTED",
    "InputProblems",
    "concept_format",
    "parse_kjv_output",
    "read_analogy_questions",
    "read_concepts",
    "read_fortune_file",
    "read_janeaustenr",
    "read_labels_tsv",
    "read_pairs_tsv",
    "read_relations",
    "read_relations_json",
    "read_wordnet_data",
    "relation_file_problems",
]

#: Most problems listed in one error message (the rest are counted).
MAX_LISTED = 25

_SKIP_NAMES = re.compile(r"^(readme|license|licence|copying|notice)(\..*)?$", re.IGNORECASE)
_BRACKET = re.compile(r"\[([^\]]+)\]")


class InputProblems:
    """Collects the problems of a set of input files; :meth:`raise_if_any` reports them all."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")

    def __len__(self) -> int:
        return len(self.items)

    def raise_if_any(self) -> None:
        if not self.items:
            return
        n = len(self.items)
        if n == 1:
            raise AllOrNoneError(self.items[0])
        shown = "; ".join(self.items[:MAX_LISTED])
        more = f"; ... and {n - MAX_LISTED} more" if n > MAX_LISTED else ""
        raise AllOrNoneError(f"{n} problems in the {self.what} input: {shown}{more}")


def _expand(
    paths: str | Path | Sequence[str | Path], suffixes: tuple[str, ...], problems: InputProblems
) -> list[Path]:
    """Files named by ``paths``; folders are searched recursively for ``suffixes``."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(
                f
                for f in p.rglob("*")
                if f.is_file()
                and f.suffix.lower() in suffixes
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
                and not _SKIP_NAMES.match(f.name)
            )
            if not found:
                problems.add(str(p), f"the folder holds no {'/'.join(suffixes)} files")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            problems.add(str(p), "does not exist (no such file or folder)")
    return list(dict.fromkeys(out))


def _content_lines(text: str) -> Iterable[tuple[int, str]]:
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        if line.strip() and not line.lstrip().startswith("#"):
            yield lineno, line


# ---------------------------------------------------------------------------- concepts
def concept_format(path: Path, text: str) -> str:
    """``"analogy"`` (gensim ``: section`` format), ``"bats"`` (``E01 [a - b].txt``),
    ``"park"`` (``[a - b].txt``) or ``"tsv"`` (the project's format)."""
    first = next((line for _, line in _content_lines(text)), "")
    if first.lstrip().startswith(":"):
        return "analogy"
    if path.suffix.lower() == ".txt" and _BRACKET.search(path.stem):
        return "park" if path.stem.startswith("[") else "bats"
    return "tsv"


def _family_name(path: Path) -> str:
    """``[country - capital]`` -> ``country - capital``; ``E01 [country - capital]`` ->
    ``E01 country - capital``."""
    return " ".join(path.stem.replace("[", " ").replace("]", " ").split()) or path.stem


def _split_cols(line: str) -> list[str]:
    cols = [c.strip() for c in line.split("\t")]
    if len(cols) == 1:  # a few published files use spaces
        cols = line.split()
    return cols


def read_concepts(
    paths: str | Path | Sequence[str | Path],
    max_pairs: int | None = None,
    max_questions: int | None = None,
) -> ConceptInputs:
    """Read concept files and folders in any of the formats of the module docstring.

    ``max_pairs`` keeps the first pairs of each family (``--quick``); ``max_questions`` the
    first questions of each analogy section. Raises one :class:`AllOrNoneError` listing
    every problem (file, line), e.g. a wrong column count, an empty field, a line of an
    analogy file without 4 words, a family name defined in two files, a file with no pairs.
    """
    problems = InputProblems("--concepts")
    out = ConceptInputs()
    owner: dict[str, str] = {}
    for path in _expand(paths, (".txt", ".tsv"), problems):
        try:
            text = read_user_file(path, "concepts")
        except AllOrNoneError as exc:
            problems.add(str(path), str(exc))
            continue
        out.files.append(str(path))
        kind = concept_format(path, text)
        if kind == "analogy":
            fams, qs = _read_analogy(path, text, problems, max_questions)
            for sec, q in qs.items():
                out.questions.setdefault(sec, []).extend(q)
            identical = 0
        elif kind in ("park", "bats"):
            fams, identical = _read_bracket(path, text, problems, kind)
        else:
            fams, identical = _read_tsv(path, text, problems)
        if identical:
            out.notes.append(f"{path}: {identical} pair(s) whose two words are identical dropped")
        if not fams and not any(p.startswith(str(path)) for p in problems.items):
            problems.add(str(path), "the file holds no pairs")
        for fam in fams:
            if fam.name in owner:
                problems.add(
                    str(path),
                    f"family {fam.name!r} is also defined in {owner[fam.name]}: rename one "
                    "(third TSV column or file name)",
                )
                continue
            owner[fam.name] = str(path)
            if max_pairs is not None and len(fam.pairs) > max_pairs:
                out.notes.append(
                    f"{fam.name}: first {max_pairs} of {len(fam.pairs)} pairs used (--quick)"
                )
                fam.pairs = fam.pairs[:max_pairs]
            out.families.append(fam)
    if not out.files and not problems:
        problems.add("--concepts", "no files given")
    problems.raise_if_any()
    return out


def _finish(
    name: str, pairs: list[tuple[str, str]], alts: dict[str, tuple[str, ...]], source: str
) -> PairFamily:
    return PairFamily(name, list(dict.fromkeys(pairs)), source, alternatives=alts)


def _read_tsv(path: Path, text: str, problems: InputProblems) -> tuple[list[PairFamily], int]:
    default = path.stem
    grouped: dict[str, list[tuple[str, str]]] = {}
    identical = 0
    first = True
    for lineno, line in _content_lines(text):
        cols = [c.strip() for c in line.split("\t")]
        if first:
            first = False
            if {c.lower() for c in cols} in ({"a", "b"}, {"a", "b", "family"}):
                continue
        where = f"{path}, line {lineno}"
        if len(cols) not in (2, 3):
            problems.add(
                where,
                f"expected 2 or 3 tab-separated columns (a, b[, family]), got {len(cols)}: "
                f"{line!r}",
            )
            continue
        if any(not c for c in cols):
            problems.add(where, f"empty field in {line!r}")
            continue
        if cols[0] == cols[1]:
            identical += 1
            continue
        grouped.setdefault(cols[2] if len(cols) == 3 else default, []).append((cols[0], cols[1]))
    return [_finish(n, p, {}, str(path)) for n, p in grouped.items()], identical


def _read_bracket(
    path: Path, text: str, problems: InputProblems, kind: str
) -> tuple[list[PairFamily], int]:
    """Park et al. ``[a - b].txt`` (``base<TAB>target``) or BATS (``word<TAB>ans1/ans2``)."""
    pairs: list[tuple[str, str]] = []
    alts: dict[str, tuple[str, ...]] = {}
    identical = 0
    for lineno, line in _content_lines(text):
        where = f"{path}, line {lineno}"
        cols = _split_cols(line)
        if len(cols) != 2 or not all(cols):
            problems.add(
                where, f"expected 2 tab-separated columns (word, answer[/answer...]): {line!r}"
            )
            continue
        a = cols[0]
        answers = [x.strip() for x in cols[1].split("/")] if kind == "bats" else [cols[1]]
        if any(not x for x in answers):
            problems.add(where, f"empty answer in {line!r}")
            continue
        kept = [x for x in dict.fromkeys(answers) if x != a]
        if not kept:
            identical += 1
            continue
        if a in alts:
            continue  # repeated word: the first line counts
        alts[a] = tuple(kept)
        pairs.append((a, kept[0]))
    name = _family_name(path)
    fams = [_finish(name, pairs, alts if kind == "bats" else {}, str(path))] if pairs else []
    return fams, identical


def _analogy_sections(
    path: Path, text: str, problems: InputProblems
) -> dict[str, list[tuple[str, str, str, str]]]:
    """The gensim analogy format: ``: section`` lines, each followed by ``a b c d`` questions.

    Every section named, in the file's order (also one without questions); each wrong line
    is added to ``problems``.
    """
    sections: dict[str, list[tuple[str, str, str, str]]] = {}
    current: list[tuple[str, str, str, str]] | None = None
    for lineno, line in _content_lines(text):
        where = f"{path}, line {lineno}"
        if line.lstrip().startswith(":"):
            name = line.lstrip()[1:].strip()
            if not name:
                problems.add(where, "a ': section' line without a name")
                current = None
                continue
            current = sections.setdefault(name, [])
            continue
        words = line.split()
        if current is None:
            problems.add(where, "a question before the first ': section' line")
            continue
        if len(words) != 4:
            problems.add(where, f"expected 4 words (a b c d), got {len(words)}: {line!r}")
            continue
        current.append((words[0], words[1], words[2], words[3]))
    return sections


def _read_analogy(
    path: Path, text: str, problems: InputProblems, max_questions: int | None
) -> tuple[list[PairFamily], dict[str, list[tuple[str, str, str, str]]]]:
    sections = _analogy_sections(path, text, problems)
    fams = []
    for name, qs in sections.items():
        if max_questions is not None:
            sections[name] = qs = qs[:max_questions]
        pairs = [p for a, b, c, d in qs for p in ((a, b), (c, d)) if p[0] != p[1]]
        if pairs:
            fams.append(_finish(name, pairs, {}, f"{path}, section {name}"))
    return fams, {k: v for k, v in sections.items() if v}


def read_analogy_questions(path: str | Path) -> dict[str, list[tuple[str, str, str, str]]]:
    """The questions ``a b c d`` of an installed gensim-format analogy file, per section, in
    the file's order (the built-in Google set: :func:`allornone.data.analogy_questions`).

    Same parser as :func:`read_concepts`; a wrong line raises one :class:`AllOrNoneError`
    listing every problem.
    """
    path = Path(path)
    problems = InputProblems(str(path))
    sections = _analogy_sections(path, path.read_text(encoding="utf-8-sig"), problems)
    problems.raise_if_any()
    return sections


def read_pairs_tsv(path: str | Path, family: str | None = None) -> list[PairFamily]:
    """Read word pairs from one user file (the project's TSV, Park et al.'s ``[a - b].txt``,
    a BATS file or the gensim analogy format; see :func:`read_concepts`).

    TSV format, one pair per line, tab-separated: ``a<TAB>b`` or ``a<TAB>b<TAB>family``. An
    optional header line ``a<TAB>b`` (or ``a<TAB>b<TAB>family``) is skipped; blank lines and
    lines starting with ``#`` are ignored. Two-column lines go to the family ``family``
    (default: the file's stem). Exact repeats and pairs of two identical words are dropped.
    Returns one :class:`PairFamily` per family name, in first-seen order.

    Raises one :class:`AllOrNoneError` listing every wrong line (file and line number: wrong
    column count, empty field); also for a file with no pairs.
    """
    path = Path(path)
    if path.is_dir():
        raise AllOrNoneError(f"pairs file {path} is a folder: pass a file (or read_concepts)")
    fams = read_concepts([path]).families
    if family is not None:
        for f in fams:
            if f.name == path.stem:
                f.name = family
    return fams


# ---------------------------------------------------------------------------- relations
_OWN_KEYS = {"name", "templates", "samples", "source", "description", "prompt_templates_zs"}
_LRE_KEYS = {"name", "prompt_templates", "prompt_templates_zs", "properties", "samples"}
_ALL_KEYS = _OWN_KEYS | _LRE_KEYS
_JSON_SAMPLE = "an object with exactly the keys 'subject' and 'object'"


def _relations_of_file(
    path: Path, text: str, default_source: str, problems: InputProblems, notes: list[str]
) -> list[tuple[str, Relation]]:
    """``(where, relation)`` for each valid relation of one JSON file's ``text``; every
    problem of the file goes to ``problems`` (also a name repeated inside the file)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.add(
            f"{path}, line {exc.lineno}, column {exc.colno}",
            f"invalid JSON ({exc.msg}): fix the syntax there",
        )
        return []
    items = data if isinstance(data, list) else [data]
    if not items:
        problems.add(str(path), "the list of relations is empty: add a relation object")
    out: list[tuple[str, Relation]] = []
    seen: set[str] = set()
    for i, obj in enumerate(items):
        where = f"{path}: relation {i}"
        rel = _relation_from_obj(obj, where, default_source, problems, notes)
        if rel is None:
            continue
        where = f"{where} ({rel.name!r})"
        if rel.name in seen:
            problems.add(where, f"relation name {rel.name!r} used more than once: rename one")
            continue
        seen.add(rel.name)
        out.append((where, rel))
    return out


def relation_file_problems(path: str | Path) -> list[str]:
    """Every problem of one relation JSON file (project or LRE schema), one line each naming
    the file, the relation and field (or the line of invalid JSON) and the fix; ``[]`` when
    :func:`read_relations` reads it cleanly. The same checks as :func:`read_relations`."""
    path = Path(path)
    problems = InputProblems("--relations")
    try:
        text = read_user_file(path, "relations")
    except AllOrNoneError as exc:
        return [str(exc)]
    _relations_of_file(path, text, str(path), problems, [])
    return list(problems.items)


def read_relations(
    paths: str | Path | Sequence[str | Path], default_source: str | None = None
) -> RelationInputs:
    """Read relation JSON files and folders (project or LRE schema, see the module docstring).

    ``default_source``: the provenance string of relations without a ``source`` key (default:
    the file path). Raises one :class:`AllOrNoneError` listing every problem: invalid JSON
    (line, column), missing or unknown keys, templates without exactly one ``{}``, bad
    samples (index), repeated relation names (with both files).
    """
    problems = InputProblems("--relations")
    out = RelationInputs()
    owner: dict[str, str] = {}
    for path in _expand(paths, (".json",), problems):
        try:
            text = read_user_file(path, "relations")
        except AllOrNoneError as exc:
            problems.add(str(path), str(exc))
            continue
        out.files.append(str(path))
        src = default_source if default_source is not None else str(path)
        for where, rel in _relations_of_file(path, text, src, problems, out.notes):
            if rel.name in owner:
                problems.add(
                    where,
                    f"relation name {rel.name!r} used more than once (also in "
                    f"{owner[rel.name]}): rename one",
                )
                continue
            owner[rel.name] = str(path)
            out.relations.append(rel)
    if not out.files and not problems:
        problems.add("--relations", "no files given")
    problems.raise_if_any()
    return out


def read_relations_json(path: str | Path) -> list[Relation]:
    """Read relations from one user JSON file (project schema or LRE schema).

    The file holds one relation object or a list of them::

        {"name": "country-capital",
         "templates": ["The capital of {} is"],
         "samples": [{"subject": "France", "object": "Paris"}, ...],
         "source": "optional provenance string"}

    or an LRE file (``prompt_templates``, ``prompt_templates_zs``, ``properties``,
    ``samples``). Raises one :class:`AllOrNoneError` listing every problem: missing or
    unknown keys, a template without exactly one ``{}``, empty samples, non-string or empty
    fields, repeated relation names, invalid JSON (with its line number). Folders and several
    files: :func:`read_relations`.
    """
    path = Path(path)
    if path.is_dir():
        raise AllOrNoneError(f"relations file {path} is a folder: pass a file (or read_relations)")
    return read_relations([path]).relations


def _relation_from_obj(
    obj: Any, where: str, default_source: str, problems: InputProblems, notes: list[str]
) -> Relation | None:
    """The relation of one JSON object, or None after adding its problems: the JSON shape
    (object, keys, sample objects) is checked here, the contents by :func:`relation_problems`,
    the one validator :class:`Relation` uses too."""
    if not isinstance(obj, dict):
        problems.add(
            where,
            f"expected a JSON object, got {type(obj).__name__}: write each relation as "
            '{"name": ..., "templates": [...], "samples": [...]}',
        )
        return None
    name = obj.get("name")
    if isinstance(name, str) and name.strip():
        where = f"{where} ({name!r})"
    n0 = len(problems)
    if "templates" in obj and "prompt_templates" in obj:
        problems.add(where, "give 'templates' or 'prompt_templates' (LRE), not both")
    tkey = "prompt_templates" if "prompt_templates" in obj else "templates"
    missing = [k for k in (tkey, "samples") if k not in obj]
    if missing:
        hint = " (or 'prompt_templates', the LRE spelling)" if tkey in missing else ""
        problems.add(where, f"missing key(s) {missing}{hint}: add them")
    unknown = sorted(set(obj) - _ALL_KEYS)
    if unknown:
        problems.add(where, f"unknown key(s) {unknown}; allowed: {sorted(_ALL_KEYS)}")
    props = obj.get("properties", {})
    if not isinstance(props, dict):
        problems.add(where, "'properties' must be an object, e.g. {\"symmetric\": false}")
    for key in ("source", "description"):
        if key in obj and not isinstance(obj[key], str):
            problems.add(where, f"{key!r} must be a string: write it in quotes")
    raw = obj.get("samples")
    samples = (
        [
            (s["subject"], s["object"])
            if isinstance(s, dict) and set(s) == {"subject", "object"}
            else s
            for s in raw
        ]
        if isinstance(raw, list)
        else raw
    )
    # a missing key is reported above; a placeholder keeps it from being reported twice
    for problem in relation_problems(
        name,
        obj[tkey] if tkey in obj else ["{}"],
        samples if "samples" in obj else [("-", "-")],
        obj.get("prompt_templates_zs"),
        template_key=tkey,
        zs_key="prompt_templates_zs",
        sample_shape=_JSON_SAMPLE,
    ):
        problems.add(where, problem)
    if len(problems) > n0 or not isinstance(samples, list):  # (a list once valid)
        return None
    stripped = [(s.strip(), o.strip()) for s, o in samples]
    unique = list(dict.fromkeys(stripped))
    if len(unique) < len(stripped):
        notes.append(f"{where}: {len(stripped) - len(unique)} repeated sample(s) dropped")
    return Relation(
        str(name),
        obj[tkey],
        unique,
        obj.get("source", default_source),
        templates_zs=obj.get("prompt_templates_zs", []),
        properties=dict(props),
        description=obj.get("description", ""),
    )


# ---------------------------------------------------------------------------- labels
def read_labels_tsv(path: str | Path, name: str | None = None) -> LabelledTexts:
    """Read labelled texts from a user TSV file: ``text<TAB>label`` per line.

    An optional header ``text<TAB>label`` is skipped; blank lines and lines starting with
    ``#`` are ignored (so a text cannot start with ``#``). Raises :class:`AllOrNoneError`
    naming the file and line number for a wrong column count or an empty field, and when
    the file has fewer than two distinct labels.
    """
    path = Path(path)
    text = read_user_file(path, "labels")
    texts: list[str] = []
    labels: list[str] = []
    first = True
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cols = line.split("\t")
        if first:
            first = False
            if [c.strip().lower() for c in cols] == ["text", "label"]:
                continue
        where = f"{path}, line {lineno}"
        if len(cols) != 2:
            raise AllOrNoneError(
                f"{where}: expected 2 tab-separated columns (text, label), got {len(cols)}"
            )
        t, label = cols[0].strip(), cols[1].strip()
        if not t or not label:
            raise AllOrNoneError(f"{where}: empty {'text' if not t else 'label'}")
        texts.append(t)
        labels.append(label)
    if not texts:
        raise AllOrNoneError(f"labels file {path} holds no rows")
    if len(set(labels)) < 2:
        raise AllOrNoneError(
            f"labels file {path} has a single class ({labels[0]!r}); a probe needs at least two"
        )
    return LabelledTexts(name or path.stem, texts, labels, str(path))


# ---------------------------------------------------------------------------- installed data
_ADJ_MARKER = re.compile(r"\((?:a|p|ip)\)$")


def _lemma(word: str) -> str:
    """WordNet lemma as text: drop adjective position markers, underscores become spaces."""
    return _ADJ_MARKER.sub("", word).replace("_", " ")


def read_wordnet_data(path: Path) -> dict[int, tuple[list[str], list[tuple[int, str, int]]]]:
    """Parse one WordNet ``data.POS`` file into ``{offset: (words, antonym pointers)}``.

    An antonym pointer is ``(source word number, "pos:offset" of the target synset,
    target word number)``; word numbers are 1-based, as in the file.
    """
    synsets: dict[int, tuple[list[str], list[tuple[int, str, int]]]] = {}
    with path.open(encoding="utf-8-sig", errors="replace") as fh:
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


def read_fortune_file(path: Path) -> list[str]:
    """The cookies of one fortune file: chunks separated by lines holding a single ``%``."""
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    cookies = []
    for chunk in re.split(r"^%\s*$", text, flags=re.MULTILINE):
        chunk = chunk.strip("\n")
        if chunk.strip():
            cookies.append(chunk)
    return cookies


_KJV_REF = re.compile(r"^[1-3]?[A-Za-z]+\d+:\d+\s+")


def parse_kjv_output(output: str, n_verses: int) -> list[str]:
    """The verse texts of the Debian ``bible`` tool's output (``Ge1:1 In the beginning...``
    lines; the references are stripped). Raises when a line is not a verse or the count is
    not ``n_verses``."""
    verses = []
    for line in output.splitlines():
        if not line.strip():
            continue
        match = _KJV_REF.match(line)
        if match is None:
            raise AllOrNoneError(f"unexpected line from the bible tool: {line[:80]!r}")
        verses.append(line[match.end() :].strip())
    if len(verses) != n_verses:
        raise AllOrNoneError(
            f"the bible tool gave {len(verses)} verses, expected {n_verses}; is the "
            "bible-kjv-text package complete?"
        )
    return verses


def _parse_r(raw: bytes) -> object:
    import rdata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Unknown file type: assumed RDS"
        return rdata.conversion.convert(rdata.parser.parse_data(raw, expand_altrep=True))


@functools.lru_cache(maxsize=4)
def read_janeaustenr(data_dir: str, variables: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """The text lines of each of ``variables`` in janeaustenr's R lazy-load database
    (``Rdata.rdx`` index + ``Rdata.rdb`` blobs in ``data_dir``), in that order.

    The ``.rdx`` is gzip-compressed serialised R: a list whose ``variables`` element maps
    each data set name to ``(offset, length)`` in the ``.rdb``. Each ``.rdb`` entry is a
    4-byte big-endian uncompressed length followed by a zlib stream of serialised R.
    """
    folder = Path(data_dir)
    try:
        index = _parse_r(gzip.decompress((folder / "Rdata.rdx").read_bytes()))
        rdb = (folder / "Rdata.rdb").read_bytes()
        books = []
        offsets = index["variables"]  # type: ignore[index]
        for var in variables:
            offset, length = (int(x) for x in offsets[var])
            blob = rdb[offset : offset + length]
            (size,) = struct.unpack(">I", blob[:4])
            raw = zlib.decompress(blob[4:])
            if len(raw) != size:
                raise ValueError(f"{var}: {len(raw)} bytes after zlib, header says {size}")
            books.append(tuple(str(x) for x in _parse_r(raw)))  # type: ignore[attr-defined]
    except AllOrNoneError:
        raise
    except Exception as exc:  # corrupt or unexpected package contents
        raise AllOrNoneError(
            f"could not read Jane Austen's novels from {folder}/Rdata.{{rdx,rdb}} "
            f"({type(exc).__name__}: {exc}); reinstall r-cran-janeaustenr with "
            "`bash scripts/install.sh`"
        ) from exc
    return tuple(books)
