"""The data classes of :mod:`allornone.data`: pair families, relations, labelled texts, and
what the readers return; plus the one validator of a relation's contents.

This module imports nothing else from :mod:`allornone.data`: the readers
(:mod:`allornone.data.readers`) build these classes from files, and the built-in sources
(:mod:`~allornone.data.pairs`, :mod:`~allornone.data.relations`,
:mod:`~allornone.data.labels`, :mod:`~allornone.data.corpora`) from the installed data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from allornone._validation import AllOrNoneError

__all__ = [
    "ConceptInputs",
    "LabelledTexts",
    "PairFamily",
    "Relation",
    "RelationInputs",
    "relation_problems",
]


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


def _template_problems(key: str, templates: Any) -> list[str]:
    if not isinstance(templates, list) or not templates:
        return [
            f'{key!r} must be a non-empty list of strings: write e.g. ["The capital of {{}} is"]'
        ]
    out = []
    one = key.replace("templates", "template")  # "template 0", "prompt_template_zs 1"
    for i, t in enumerate(templates):
        if not isinstance(t, str):
            out.append(f"{one} {i} is {type(t).__name__}, not a string: write it in quotes")
        elif t.count("{}") != 1:
            out.append(
                f"{one} {i} ({t!r}) must contain '{{}}' exactly once (the subject): put one "
                "{} where the subject goes"
            )
    return out


def relation_problems(
    name: Any,
    templates: Any,
    samples: Any,
    templates_zs: Any = None,
    *,
    template_key: str = "templates",
    zs_key: str = "templates_zs",
    sample_shape: str = "a (subject, object) pair of strings",
) -> list[str]:
    """Every problem of a relation's contents, one line each (field, what is wrong, the fix);
    empty when the relation is valid.

    ``name`` must be a non-empty string; ``templates`` (and ``templates_zs`` when given) a
    non-empty list of strings with ``{}`` exactly once each (``templates_zs``: ``None`` when
    there are none); ``samples`` a non-empty list of
    ``(subject, object)`` pairs of non-empty strings. The keys name the fields as the caller's
    input spells them (``prompt_templates`` in an LRE file); ``sample_shape`` says what a
    sample should look like there. :class:`Relation` and the JSON reader
    (:func:`allornone.data.read_relations`) both check a relation with this function.
    """
    out = []
    if not isinstance(name, str) or not name.strip():
        out.append("'name' must be a non-empty string: name the relation")
    out += _template_problems(template_key, templates)
    if templates_zs is not None:
        out += _template_problems(zs_key, templates_zs)
    if not isinstance(samples, list) or not samples:
        out.append(
            f"'samples' must be a non-empty list, each sample {sample_shape}: add at least one"
        )
        return out
    for i, sample in enumerate(samples):
        if not (isinstance(sample, tuple) and len(sample) == 2):
            out.append(f"sample {i} must be {sample_shape}, got {sample!r}"[:200])
            continue
        for role, value in zip(("subject", "object"), sample):
            if not isinstance(value, str) or not value.strip():
                out.append(
                    f"sample {i}: {role} must be a non-empty string, got {value!r}: write the "
                    "word in quotes, or drop the sample"
                )
    return out


@dataclass
class Relation:
    """A relation with prompt templates and ``(subject, object)`` samples.

    Each template contains ``{}`` exactly once, where the subject goes; the object is the
    expected continuation (e.g. ``"The capital of {} is"`` with ``("France", "Paris")``).
    An invalid relation raises one :class:`AllOrNoneError` listing every problem
    (:func:`relation_problems`).
    """

    name: str
    templates: list[str]
    samples: list[tuple[str, str]] = field(default_factory=list)
    source: str = ""
    #: zero-shot template variants (LRE ``prompt_templates_zs``); may be empty
    templates_zs: list[str] = field(default_factory=list)
    #: free metadata (LRE ``properties``: relation_type, domain_name, range_name, symmetric)
    properties: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        zs = self.templates_zs if self.templates_zs else None  # [] means none
        problems = relation_problems(self.name, self.templates, self.samples, zs)
        if problems:
            raise AllOrNoneError(f"relation {self.name!r}: " + "; ".join(problems))

    def metadata(self) -> dict[str, Any]:
        """Provenance and description, as the audit writes them into its results."""
        return {
            "source": self.source,
            "description": self.description,
            "properties": dict(self.properties),
            "templates": list(self.templates),
            "templates_zs": list(self.templates_zs),
        }

    def prompt(self, subject: str, template: int = 0) -> str:
        """The prompt for ``subject`` using template number ``template``."""
        return self.templates[template].replace("{}", subject)

    @property
    def subjects(self) -> list[str]:
        """The samples' subjects, in order."""
        return [s for s, _ in self.samples]

    def __len__(self) -> int:
        return len(self.samples)


@dataclass
class LabelledTexts:
    """Texts with one class label each.

    ``groups`` (optional, same length as ``texts``) names what each text was drawn from,
    e.g. the final noun of a noun-number context or the book of a passage; use it for
    group-aware train/test splits so one word or book does not leak across the split.
    """

    name: str
    texts: list[str]
    labels: list[str]
    source: str = ""
    groups: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise AllOrNoneError(
                f"LabelledTexts {self.name!r}: {len(self.texts)} texts but "
                f"{len(self.labels)} labels"
            )
        if self.groups and len(self.groups) != len(self.texts):
            raise AllOrNoneError(
                f"LabelledTexts {self.name!r}: {len(self.groups)} groups for "
                f"{len(self.texts)} texts"
            )

    @property
    def classes(self) -> list[str]:
        """The distinct labels, sorted."""
        return sorted(set(self.labels))

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class ConceptInputs:
    """What :func:`~allornone.data.read_concepts` read: families, analogy questions (gensim
    format files), and notes on what was dropped (identical pairs, repeats)."""

    families: list[PairFamily] = field(default_factory=list)
    questions: dict[str, list[tuple[str, str, str, str]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


@dataclass
class RelationInputs:
    """What :func:`~allornone.data.read_relations` read: relations and notes (repeated
    samples dropped)."""

    relations: list[Relation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
