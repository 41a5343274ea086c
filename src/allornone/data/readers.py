"""Readers for the concept and relation files researchers already have, read unmodified.

Concepts (word pairs), :func:`read_concepts`: files or folders (searched recursively) of

- the project's TSV: ``a<TAB>b`` or ``a<TAB>b<TAB>family`` (docs/DATA.md);
- Park et al.'s word pairs: ``word_pairs/[base - target].txt``, one ``base<TAB>target`` per
  line; the family is named from the file name (``country - capital``);
- BATS 3.0: ``E01 [country - capital].txt`` files, ``word<TAB>answer1/answer2/...`` (several
  correct answers; all are kept in :attr:`PairFamily.alternatives`);
- the gensim / word2vec analogy format (``questions-words.txt``): ``: section`` lines
  followed by ``a b c d`` lines; the questions are kept for the analogy figure too.

Relations, :func:`read_relations`: JSON files or folders of them, in the project's schema
(``name``, ``templates``, ``samples``) or in the LRE schema of Hernandez et al. (ICLR 2024:
``name``, ``prompt_templates``, ``prompt_templates_zs``, ``properties``, ``samples``).

Every problem of every file is collected and reported at once (file and line; the list is
capped at :data:`MAX_LISTED`), as one :class:`AllOrNoneError`. Pairs whose two words are
identical are dropped (as Park et al.'s own loader does) and counted in the returned notes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from allornone._validation import AllOrNoneError, read_user_file
from allornone.data.pairs import PairFamily
from allornone.data.relations import Relation

__all__ = [
    "MAX_LISTED",
    "ConceptInputs",
    "InputProblems",
    "RelationInputs",
    "concept_format",
    "read_concepts",
    "read_relations",
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
@dataclass
class ConceptInputs:
    """What :func:`read_concepts` read: families, analogy questions (gensim format files),
    and notes on what was dropped (identical pairs, repeats)."""

    families: list[PairFamily] = field(default_factory=list)
    questions: dict[str, list[tuple[str, str, str, str]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


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


def _read_analogy(
    path: Path, text: str, problems: InputProblems, max_questions: int | None
) -> tuple[list[PairFamily], dict[str, list[tuple[str, str, str, str]]]]:
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
    fams = []
    for name, qs in sections.items():
        if max_questions is not None:
            sections[name] = qs = qs[:max_questions]
        pairs = [p for a, b, c, d in qs for p in ((a, b), (c, d)) if p[0] != p[1]]
        if pairs:
            fams.append(_finish(name, pairs, {}, f"{path}, section {name}"))
    return fams, {k: v for k, v in sections.items() if v}


# ---------------------------------------------------------------------------- relations
@dataclass
class RelationInputs:
    """What :func:`read_relations` read: relations and notes (repeated samples dropped)."""

    relations: list[Relation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


_OWN_KEYS = {"name", "templates", "samples", "source", "description", "prompt_templates_zs"}
_LRE_KEYS = {"name", "prompt_templates", "prompt_templates_zs", "properties", "samples"}
_ALL_KEYS = _OWN_KEYS | _LRE_KEYS


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
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.add(
                f"{path}, line {exc.lineno}, column {exc.colno}", f"invalid JSON ({exc.msg})"
            )
            continue
        items = data if isinstance(data, list) else [data]
        if not items:
            problems.add(str(path), "the list of relations is empty")
        for i, obj in enumerate(items):
            where = f"{path}: relation {i}"
            src = default_source if default_source is not None else str(path)
            rel = _relation_from_obj(obj, where, src, problems, out.notes)
            if rel is None:
                continue
            if rel.name in owner:
                other = owner[rel.name]
                problems.add(
                    where,
                    f"relation name {rel.name!r} used more than once"
                    + ("" if other == str(path) else f" (also in {other})"),
                )
                continue
            owner[rel.name] = str(path)
            out.relations.append(rel)
    if not out.files and not problems:
        problems.add("--relations", "no files given")
    problems.raise_if_any()
    return out


def _str_list(v: Any, key: str, where: str, problems: InputProblems) -> list[str] | None:
    if not isinstance(v, list) or not v:
        problems.add(where, f"{key!r} must be a non-empty list of strings")
        return None
    ok = True
    for i, t in enumerate(v):
        if not isinstance(t, str):
            problems.add(where, f"{key[:-1]} {i} is {type(t).__name__}, not a string")
            ok = False
        elif t.count("{}") != 1:
            problems.add(
                where, f"{key[:-1]} {i} ({t!r}) must contain '{{}}' exactly once (the subject)"
            )
            ok = False
    return list(v) if ok else None


def _relation_from_obj(
    obj: Any, where: str, default_source: str, problems: InputProblems, notes: list[str]
) -> Relation | None:
    if not isinstance(obj, dict):
        problems.add(where, f"expected a JSON object, got {type(obj).__name__}")
        return None
    name = obj.get("name")
    if isinstance(name, str) and name.strip():
        where = f"{where} ({name!r})"
    else:
        problems.add(where, "'name' must be a non-empty string")
        name = None
    n0 = len(problems)
    if "templates" in obj and "prompt_templates" in obj:
        problems.add(where, "give 'templates' or 'prompt_templates' (LRE), not both")
    tkey = "prompt_templates" if "prompt_templates" in obj else "templates"
    missing = [k for k in (tkey, "samples") if k not in obj]
    if missing:
        hint = " (or 'prompt_templates', the LRE spelling)" if tkey in missing else ""
        problems.add(where, f"missing key(s) {missing}{hint}")
    unknown = sorted(set(obj) - _ALL_KEYS)
    if unknown:
        problems.add(where, f"unknown key(s) {unknown}; allowed: {sorted(_ALL_KEYS)}")
    templates = _str_list(obj[tkey], tkey, where, problems) if tkey in obj else None
    zs: list[str] | None = []
    if "prompt_templates_zs" in obj:
        zs = _str_list(obj["prompt_templates_zs"], "prompt_templates_zs", where, problems)
    props = obj.get("properties", {})
    if not isinstance(props, dict):
        problems.add(where, "'properties' must be an object")
    for key in ("source", "description"):
        if key in obj and not isinstance(obj[key], str):
            problems.add(where, f"{key!r} must be a string")
    samples: list[tuple[str, str]] = []
    raw = obj.get("samples")
    if "samples" in obj and (not isinstance(raw, list) or not raw):
        problems.add(where, "'samples' must be a non-empty list of objects")
    elif isinstance(raw, list):
        for i, s in enumerate(raw):
            if not isinstance(s, dict) or set(s) != {"subject", "object"}:
                problems.add(
                    where,
                    f"sample {i} must be an object with exactly the keys 'subject' and "
                    f"'object', got {s!r}"[:200],
                )
                continue
            bad = False
            for role in ("subject", "object"):
                v = s[role]
                if not isinstance(v, str) or not v.strip():
                    problems.add(where, f"sample {i}: {role} must be a non-empty string, got {v!r}")
                    bad = True
            if not bad:
                samples.append((s["subject"].strip(), s["object"].strip()))
    if len(problems) > n0 or name is None or templates is None or zs is None:
        return None
    unique = list(dict.fromkeys(samples))
    if len(unique) < len(samples):
        notes.append(f"{where}: {len(samples) - len(unique)} repeated sample(s) dropped")
    return Relation(
        name,
        templates,
        unique,
        obj.get("source", default_source),
        templates_zs=zs,
        properties=dict(props),
        description=obj.get("description", ""),
    )
