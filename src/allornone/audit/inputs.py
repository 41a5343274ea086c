"""What the audit runs on: its configuration, the concept families, relations and labelled
sets (built-in or the user's files), and the deduplicated context strings with named index
sets into them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import props


@dataclass
class AuditConfig:
    """What to audit and how big. ``quick`` shrinks every set (for tests and smoke runs)."""

    model: str = "smollm2"
    concepts: str | None = None
    relations: str | None = None
    labels: str | None = None
    device: str | None = None
    dtype: str | None = None  # float32 | bfloat16 | float16 (None: the model's own)
    device_map: str | None = None  # "auto": spread over GPUs (accelerate)
    batch_size: int | None = None
    seed: int = 0
    quick: bool = False
    n_passages: int = 100  # per class (KJV vs Austen)
    n_nouns: int = 60  # per class (singular vs plural)
    n_subjects: int = 48  # per relation
    n_relations: int = 3  # built-in relations used
    max_questions: int = 300  # analogy questions per section
    n_equivalents: int = 3
    progress: bool = True

    def sized(self) -> AuditConfig:
        if not self.quick:
            return self
        out = AuditConfig(**asdict(self))
        out.n_passages, out.n_nouns, out.n_subjects = 12, 10, 14
        out.n_relations, out.max_questions, out.n_equivalents = 2, 40, 2
        return out


@dataclass
class Inputs:
    """Concept families, relations and labelled sets the audit runs on."""

    families: list[Any] = field(default_factory=list)
    relations: list[Any] = field(default_factory=list)
    labels: list[Any] = field(default_factory=list)
    questions: dict[str, list[tuple[str, str, str, str]]] = field(default_factory=dict)


# ---------------------------------------------------------------------------- inputs
def load_inputs(cfg: AuditConfig) -> Inputs:
    """Built-in sets (or the user's files). Bad user rows raise AllOrNoneError with the line."""
    from .. import data

    rng = np.random.default_rng(cfg.seed)
    inp = Inputs()
    if cfg.concepts:
        inp.families = data.read_pairs_tsv(cfg.concepts)
    else:
        inp.families = data.analogy_families()
        inp.questions = data.analogy_questions()
    if cfg.relations:
        inp.relations = data.read_relations_json(cfg.relations)
    else:
        rels = {r.name: r for r in data.geonames_relations()}
        order = ["country-capital", "city-country", "country-continent", "country-currency"]
        inp.relations = [rels[n] for n in order if n in rels][: cfg.n_relations]
    if cfg.labels:
        inp.labels = [data.read_labels_tsv(cfg.labels)]
    else:
        inp.labels = [
            data.book_passages(n_per_class=cfg.n_passages, seed=cfg.seed),
            data.noun_number_contexts(max_per_word=3, seed=cfg.seed)
            if _accepts_kw(data.noun_number_contexts, "max_per_word")
            else data.noun_number_contexts(),
        ]
        inp.labels[1] = _balanced(inp.labels[1], cfg.n_nouns, rng)
    for sec, qs in list(inp.questions.items()):
        if len(qs) > cfg.max_questions:
            idx = np.sort(rng.choice(len(qs), cfg.max_questions, replace=False))
            inp.questions[sec] = [qs[i] for i in idx]
    return inp


def select_subjects(lm: Any, inp: Inputs, cfg: AuditConfig) -> None:
    """Keep up to ``n_subjects`` samples per relation, preferring single-token objects
    (the answer set Y_q is made of single tokens; the rest would be excluded anyway)."""
    rng = np.random.default_rng(cfg.seed)
    for r in inp.relations:
        ids = props.answer_ids(lm, r)
        good = [i for i, (_, o) in enumerate(r.samples) if o in ids]
        bad = [i for i, (_, o) in enumerate(r.samples) if o not in ids]
        pick = good if len(good) >= cfg.n_subjects else good + bad
        if len(pick) > cfg.n_subjects:
            if len(good) >= cfg.n_subjects:
                pick = rng.choice(good, cfg.n_subjects, replace=False).tolist()
            else:
                pick = good + rng.choice(bad, cfg.n_subjects - len(good), replace=False).tolist()
        r.samples = [r.samples[i] for i in sorted(pick)]


def _accepts_kw(fn: Callable, name: str) -> bool:
    import inspect

    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _balanced(lt: Any, n_per_class: int, rng: np.random.Generator) -> Any:
    from ..data import LabelledTexts

    keep: list[int] = []
    labels = np.asarray(lt.labels)
    for c in sorted(set(lt.labels)):
        idx = np.flatnonzero(labels == c)
        if len(idx) > n_per_class:
            idx = np.sort(rng.choice(idx, n_per_class, replace=False))
        keep.extend(idx.tolist())
    keep.sort()
    return LabelledTexts(
        name=lt.name,
        texts=[lt.texts[i] for i in keep],
        labels=[lt.labels[i] for i in keep],
        source=lt.source,
        groups=[lt.groups[i] for i in keep] if lt.groups else [],
    )


def single_ids(model: Any, words: Sequence[str]) -> dict[str, int]:
    """``word -> token id`` for the words that are one token in running text."""
    rep = model.word_tokens(list(words))
    return dict(rep.single)


@dataclass
class ContextSets:
    """All context strings, deduplicated, with named index sets into them."""

    all: list[str] = field(default_factory=list)
    sets: dict[str, list[int]] = field(default_factory=dict)

    def add(self, name: str, texts: Sequence[str]) -> list[int]:
        index = getattr(self, "_index", None)
        if index is None:
            index = {}
            self._index = index
        rows = []
        for t in texts:
            if t not in index:
                index[t] = len(self.all)
                self.all.append(t)
            rows.append(index[t])
        self.sets[name] = rows
        return rows

    def rows(self, name: str) -> list[int]:
        return self.sets[name]

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.sets.items()}

    @classmethod
    def build(cls, inp: Inputs) -> ContextSets:
        cs = cls()
        main: list[str] = []
        for lt in inp.labels:
            cs.add(f"labels:{lt.name}", lt.texts)
            main += lt.texts
        for r in inp.relations:
            cs.add(f"subjects:{r.name}", [s for s, _ in r.samples])
            cs.add(f"prompts:{r.name}", [r.prompt(s) for s, _ in r.samples])
            main += [s for s, _ in r.samples] + [r.prompt(s) for s, _ in r.samples]
        cs.add("main", main)
        return cs
