"""What the audit runs on: its configuration, the concept families, relations and labelled
sets (built-in or the user's files), and the deduplicated context strings with named index
sets into them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .._validation import AllOrNoneError

#: Relation prompt modes: ``plain`` the first template; ``zero-shot`` the first zero-shot
#: template (LRE ``prompt_templates_zs``) when the relation has one; ``few-shot`` the first
#: template preceded by :data:`N_SHOTS` solved examples of the same relation (other subjects).
PROMPT_MODES = ("plain", "zero-shot", "few-shot")
N_SHOTS = 3

#: A relation is measured when at least this many subjects have a single-token object.
MIN_RELATION_SUBJECTS = 8
#: Most subjects with a multi-token object added to each relation (first-token answers).
MULTI_TOKEN_SUBJECTS = 50
#: precision floor of factors extracted from a float32 model (float32 epsilon, rounded up)
FLOAT32_FLOOR = 1.2e-7
#: Built-in (LRE) relations measured first (and the only ones under ``--quick``), when usable.
PREFERRED_RELATIONS = (
    "country capital city",
    "adjective comparative",
    "verb past tense",
    "adjective antonym",
)


@dataclass
class AuditConfig:
    """What to audit and how big. ``quick`` shrinks every set (for tests and smoke runs).

    ``concepts`` / ``relations``: a file or folder, or a list of them (see
    :func:`allornone.data.read_concepts` / :func:`allornone.data.read_relations`).
    ``None`` limits mean "all": every subject with a single-token object
    (``n_subjects``), every usable relation (``n_relations``), every analogy question
    whose words are single tokens (``max_questions``), every pair (``max_pairs``).
    """

    model: str = "smollm2"
    concepts: str | list[str] | None = None
    relations: str | list[str] | None = None
    labels: str | None = None
    device: str | None = None
    dtype: str | None = None  # float32 | bfloat16 | float16 (None: the model's own)
    device_map: str | None = None  # "auto": spread over GPUs (accelerate)
    batch_size: int | None = None
    seed: int = 0
    quick: bool = False
    n_passages: int = 100  # per class (KJV vs Austen)
    n_nouns: int = 60  # per class (singular vs plural)
    n_subjects: int | None = None  # per relation; None: all usable
    n_relations: int | None = None  # built-in relations used; None: all usable
    max_questions: int | None = None  # analogy questions per section; None: all
    max_pairs: int | None = None  # pairs per concept family; None: all
    min_subjects: int = MIN_RELATION_SUBJECTS
    main_per_relation: int = 48  # subjects of each relation in the main context set
    kl: bool = True  # fit the KL probe of relational linearity (THEORY.md 5.2)
    prompts: str = "plain"  # relation prompts: plain, zero-shot or few-shot (PROMPT_MODES)
    n_equivalents: int = 3
    progress: bool = True
    #: plugins loaded for this run (module names or .py files; see audit/plugins.py)
    plugins: list[str] = field(default_factory=list)
    #: values of the options registered audit steps declare (``StepOption.dest -> value``)
    options: dict[str, Any] = field(default_factory=dict)
    #: run only these audit steps (and no equivalence class); None: every step
    steps: list[str] | None = None

    def sized(self) -> AuditConfig:
        if not self.quick:
            return self
        out = AuditConfig(**asdict(self))
        out.n_passages, out.n_nouns, out.n_subjects = 12, 10, 14
        out.n_relations, out.max_questions, out.n_equivalents = 2, 40, 2
        out.max_pairs, out.main_per_relation = 40, 14
        return out


@dataclass
class Inputs:
    """Concept families, relations and labelled sets the audit runs on.

    ``notes``: what the readers dropped (identical pairs, repeats, --quick caps);
    ``dropped``: families and relations not measured, each ``{"kind", "name", "reason"}``;
    ``subject_counts``: relation -> ``{"samples", "single_token_objects", "used"}`` (and
    ``"multi_token_objects"``, ``"multi_token_used"`` when multi-token objects are kept);
    ``multi_samples``: relation -> ``(subject, object, first token id)`` of the subjects whose
    object is several tokens, measured by its first token (at most
    :data:`MULTI_TOKEN_SUBJECTS` per relation, a seeded sample).
    """

    families: list[Any] = field(default_factory=list)
    relations: list[Any] = field(default_factory=list)
    labels: list[Any] = field(default_factory=list)
    questions: dict[str, list[tuple[str, str, str, str]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)
    subject_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    multi_samples: dict[str, list[tuple[str, str, int]]] = field(default_factory=dict)
    questions_total: dict[str, int] = field(default_factory=dict)
    main_per_relation: int | None = 48
    prompts: str = "plain"
    #: relation -> the few-shot examples ``(subject, object)`` (``prompts="few-shot"``)
    shots: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    user_relations: bool = False
    user_concepts: bool = False
    user_labels: bool = False
    #: contexts are single words (word2vec): no relational linearity
    word_contexts: bool = False

    def prompt(self, r: Any, subject: str) -> str:
        """The query context of ``subject`` in relation ``r`` under :attr:`prompts`."""
        shots = [(s, o) for s, o in self.shots.get(r.name, []) if s != subject][:N_SHOTS]
        head = "".join(f"{r.prompt(s)} {o}\n" for s, o in shots)
        return head + r.prompt(subject)

    def summary(self) -> dict[str, Any]:
        """What results.json records under ``inputs``."""
        return {
            "notes": list(self.notes),
            "dropped": list(self.dropped),
            "relations": {k: dict(v) for k, v in self.subject_counts.items()},
            "analogy_questions_total": dict(self.questions_total),
            "prompts": self.prompts,
            "shots": {k: [list(x) for x in v] for k, v in self.shots.items()},
        }


# ---------------------------------------------------------------------------- inputs
def load_inputs(cfg: AuditConfig) -> Inputs:
    """Built-in sets (or the user's files), parsed and validated without the model.

    Every problem of every user file raises one AllOrNoneError (file and line of each).
    """
    from .. import data

    rng = np.random.default_rng(cfg.seed)
    if cfg.prompts not in PROMPT_MODES:
        raise AllOrNoneError(f"prompts={cfg.prompts!r}: expected one of {list(PROMPT_MODES)}")
    inp = Inputs(main_per_relation=cfg.main_per_relation, prompts=cfg.prompts)
    if cfg.concepts:
        got = data.read_concepts(_paths(cfg.concepts), cfg.max_pairs)
        inp.families, inp.questions, inp.notes = got.families, got.questions, list(got.notes)
        inp.user_concepts = True
    else:
        inp.families = data.analogy_families()
        inp.questions = data.analogy_questions()
    if cfg.relations:
        rel = data.read_relations(_paths(cfg.relations))
        inp.relations = rel.relations
        inp.notes += rel.notes
        inp.user_relations = True
    else:
        rels = data.lre_relations()
        head = [r for n in PREFERRED_RELATIONS for r in rels if r.name == n]
        inp.relations = head + [r for r in rels if r not in head]
    if cfg.labels:
        lt = data.read_labels_tsv(cfg.labels)
        inp.user_labels = True
        inp.labels = [_balanced(lt, cfg.n_nouns, rng) if cfg.quick else lt]
    else:
        inp.labels = [
            data.book_passages(n_per_class=cfg.n_passages, seed=cfg.seed),
            data.noun_number_contexts(max_per_word=3, seed=cfg.seed)
            if _accepts_kw(data.noun_number_contexts, "max_per_word")
            else data.noun_number_contexts(),
        ]
        inp.labels[1] = _balanced(inp.labels[1], cfg.n_nouns, rng)
    inp.questions_total = {s: len(q) for s, q in inp.questions.items()}
    if cfg.max_questions is not None:
        for sec, qs in list(inp.questions.items()):
            if len(qs) > cfg.max_questions:
                idx = np.sort(rng.choice(len(qs), cfg.max_questions, replace=False))
                inp.questions[sec] = [qs[i] for i in idx]
    return inp


def _paths(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


class WordCache:
    """A model seen through a memo of :meth:`word_tokens`: each word is tokenised once per
    audit however many steps ask (every other attribute is the model's own)."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._single: dict[str, int] = {}
        self._first: dict[str, int] = {}  # multi-token word -> its first token id
        self._other: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    @property
    def wrapped(self) -> Any:
        return self._model

    def word_tokens(self, words: Sequence[str] | str) -> Any:
        words = [words] if isinstance(words, str) else list(words)
        new = [w for w in dict.fromkeys(words) if w not in self._single and w not in self._other]
        if new:
            rep = self._model.word_tokens(new)
            single = dict(rep.single)
            self._single.update(single)
            self._other.update(w for w in new if w not in single)
            self._first.update(_first_of_multi(rep))
        return _Words({w: self._single[w] for w in words if w in self._single})

    def first_tokens(self, words: Sequence[str]) -> dict[str, int]:
        """``word -> first token id`` of the multi-token words (tokenised once, as above)."""
        self.word_tokens(list(words))
        return {w: self._first[w] for w in words if w in self._first}


def _first_of_multi(rep: Any) -> dict[str, int]:
    """First token of each multi-token known word of a :class:`WordTokens` report (a model
    whose report has no ``ids`` / ``multi``, e.g. a word model, has none)."""
    multi, ids = getattr(rep, "multi", None), getattr(rep, "ids", None)
    if not multi or ids is None:
        return {}
    unknown = set(getattr(rep, "unknown", ()))
    return {w: int(t[0]) for w, t in zip(rep.words, ids) if w in multi and w not in unknown and t}


def first_token_ids(model: Any, words: Sequence[str]) -> dict[str, int]:
    """``word -> first token id`` for the words that are several tokens in running text."""
    if isinstance(model, WordCache):
        return model.first_tokens(words)
    return _first_of_multi(model.word_tokens(list(words)))


@dataclass
class _Words:
    single: dict[str, int]


def word_model(lm: Any) -> Any:
    """The gensim model of a word2vec model (unwrapping :class:`WordCache`), else None."""
    inner = lm.wrapped if isinstance(lm, WordCache) else lm
    return getattr(inner, "w2v", None)


def word_contexts(lm: Any, inp: Inputs) -> None:
    """Adapt the inputs to a word2vec model, whose contexts are single vocabulary words.

    Words are matched case-insensitively as gensim's ``evaluate_word_analogies`` does (the
    most frequent vocabulary key with the same upper-case form). Relation contexts become
    the subject words themselves (template ``{}``): the restricted structures and the
    equivalence demonstration use ``p(object | subject word)``; relational linearity (a
    context ``s + q``) does not apply and is listed as not measured. The built-in labelled
    sets become the gram8-plural nouns labelled singular/plural (words, not sentences); a
    user's labelled texts keep the rows whose text is one vocabulary word.
    """
    from ..data import LabelledTexts, Relation, analogy_questions

    w2v = word_model(lm)
    upper: dict[str, str] = {}
    for key in reversed(w2v.wv.index_to_key):  # the most frequent casing wins
        upper[key.upper()] = key

    def m(w: str) -> str:
        return upper.get(w.upper(), w)

    for fam in inp.families:
        fam.pairs = list(dict.fromkeys((m(a), m(b)) for a, b in fam.pairs))
        fam.alternatives = {m(a): tuple(m(x) for x in v) for a, v in fam.alternatives.items()}
    inp.questions = {
        s: [(m(a), m(b), m(c), m(d)) for a, b, c, d in qs] for s, qs in inp.questions.items()
    }
    rels = []
    for r in inp.relations:
        samples = list(dict.fromkeys((m(s), m(o)) for s, o in r.samples if m(s).upper() in upper))
        if samples:
            meta = {"properties": r.properties, "description": r.description}
            rels.append(Relation(r.name, ["{}"], samples, r.source, **meta))
    inp.relations = rels
    inp.word_contexts = True
    inp.prompts = "plain"  # a context is one word: no templates, no examples
    if inp.user_labels:
        labels = []
        for lt in inp.labels:
            keep = [i for i, t in enumerate(lt.texts) if m(t.strip()).upper() in upper]
            if len(keep) < len(lt.texts):
                inp.notes.append(
                    f"{lt.name}: {len(lt.texts) - len(keep)} of {len(lt.texts)} texts are not "
                    "one vocabulary word of this word2vec model and were dropped"
                )
            texts = [m(lt.texts[i].strip()) for i in keep]
            labels.append(LabelledTexts(lt.name, texts, [lt.labels[i] for i in keep], lt.source))
        inp.labels = [lt for lt in labels if len(set(lt.labels)) >= 2]
    else:
        pairs = dict.fromkeys(
            p for a, b, c, d in analogy_questions()["gram8-plural"] for p in ((a, b), (c, d))
        )
        words = [(m(w), lab) for s, pl in pairs for w, lab in ((s, "singular"), (pl, "plural"))]
        words = [(w, lab) for w, lab in words if w.upper() in upper]
        inp.labels = [
            LabelledTexts(
                "noun-number-words",
                [w for w, _ in words],
                [lab for _, lab in words],
                "gram8-plural nouns of the Google analogy set, as single-word contexts",
            )
        ]


def select_subjects(lm: Any, inp: Inputs, cfg: AuditConfig, multi_token: bool = False) -> None:
    """After the model loads: tokenise every word of the inputs once; keep the relation
    samples whose object is a single token (up to ``n_subjects``), drop relations with
    fewer than ``min_subjects`` of them and families with fewer than two single-token pairs
    (each listed in ``inp.dropped`` with the reason), and resolve several correct answers
    (BATS) to the first single-token one.

    ``multi_token``: also keep, per measured relation, up to :data:`MULTI_TOKEN_SUBJECTS`
    (and ``n_subjects``) subjects whose object is several tokens, in ``inp.multi_samples``
    with the object's first token (a separate seeded draw: the single-token selection, and
    every figure that depends on it only, is unchanged)."""
    rng = np.random.default_rng(cfg.seed)
    mrng = np.random.default_rng([cfg.seed, 12])  # multi-token draws: rng's sequence unchanged
    words = {w for f in inp.families for p in f.pairs for w in f.answers(*p) + p[:1]}
    words |= {w for qs in inp.questions.values() for q in qs for w in q}
    words |= {o for r in inp.relations for _, o in r.samples}
    ids = single_ids(lm, sorted(words))  # the one tokenisation pass; later calls hit the memo
    families = []
    for fam in inp.families:
        resolved = []
        for a, b in fam.pairs:
            alts = [x for x in fam.answers(a, b) if x in ids]
            resolved.append((a, alts[0] if alts else b))
        fam.pairs = list(dict.fromkeys(resolved))
        n = sum(a in ids and b in ids for a, b in fam.pairs)
        if n < 2:
            inp.dropped.append(
                {
                    "kind": "family",
                    "name": fam.name,
                    "reason": f"{n} of {len(fam.pairs)} pairs have both words single tokens "
                    "for this model; parallelism needs at least 2",
                }
            )
        else:
            families.append(fam)
    inp.families = families
    kept: list[Any] = []
    skipped: list[dict[str, Any]] = []
    for r in inp.relations:
        good = [i for i, (_, o) in enumerate(r.samples) if o in ids]
        answers = {r.samples[i][1] for i in good}
        counts = {"samples": len(r.samples), "single_token_objects": len(good)}
        if len(good) < max(cfg.min_subjects, 4) or len(answers) < 2:
            skipped.append(
                {
                    "kind": "relation",
                    "name": r.name,
                    "reason": f"{len(good)} of {len(r.samples)} subjects have a single-token "
                    f"object ({len(answers)} distinct); the audit needs at least "
                    f"{max(cfg.min_subjects, 4)} and 2 distinct answers",
                }
            )
            continue
        if cfg.n_relations is not None and not inp.user_relations and len(kept) >= cfg.n_relations:
            skipped.append(
                {
                    "kind": "relation",
                    "name": r.name,
                    "reason": f"not among the first "
                    f"{cfg.n_relations} usable built-in relations (--quick)",
                }
            )
            continue
        if cfg.n_subjects is not None and len(good) > cfg.n_subjects:
            good = sorted(rng.choice(good, cfg.n_subjects, replace=False).tolist())
        if inp.prompts == "zero-shot" and r.templates_zs:
            r.templates = list(r.templates_zs)
        if inp.prompts == "few-shot":  # examples: N_SHOTS + 1 solved samples, seeded
            pool = [r.samples[i] for i in good]
            pick = rng.choice(len(pool), min(N_SHOTS + 1, len(pool)), replace=False)
            inp.shots[r.name] = [pool[i] for i in sorted(pick)]
        if multi_token:
            first = first_token_ids(lm, sorted({o for _, o in r.samples}))
            multi = [i for i, (_, o) in enumerate(r.samples) if o in first and o not in ids]
            cap = min(MULTI_TOKEN_SUBJECTS, cfg.n_subjects or MULTI_TOKEN_SUBJECTS)
            counts["multi_token_objects"] = len(multi)
            if len(multi) > cap:
                multi = sorted(mrng.choice(multi, cap, replace=False).tolist())
            inp.multi_samples[r.name] = [(*r.samples[i], first[r.samples[i][1]]) for i in multi]
            counts["multi_token_used"] = len(multi)
        r.samples = [r.samples[i] for i in good]
        inp.subject_counts[r.name] = {**counts, "used": len(good)}
        kept.append(r)
    inp.relations = kept
    inp.dropped += skipped


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
    """All context strings, deduplicated, with named index sets into them. Built once per run
    (:meth:`build`, then the steps' own sets), then frozen: no set is added or replaced."""

    all: list[str] = field(default_factory=list)
    sets: dict[str, list[int]] = field(default_factory=dict)

    def add(self, name: str, texts: Sequence[str]) -> list[int]:
        if getattr(self, "_frozen", False):
            raise AllOrNoneError(
                f"context set {name!r}: the contexts are fixed once the run has built them; "
                "declare a step's contexts with AuditStep.contexts"
            )
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

    def freeze(self) -> ContextSets:
        """No set is added after this (the run embeds exactly these contexts); returns self."""
        self._frozen = True
        return self

    def rows(self, name: str) -> list[int]:
        return self.sets[name]

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.sets.items()}

    def only(self, names: list[str]) -> tuple[ContextSets, list[int]]:
        """The named sets alone, renumbered: ``(sets, rows)`` where ``rows[i]`` is the row of
        this object's ``all`` that the new object's row ``i`` holds (first-seen order)."""
        rows: list[int] = []
        local: dict[int, int] = {}
        out = ContextSets()
        for name in names:
            for g in self.sets[name]:
                if g not in local:
                    local[g] = len(rows)
                    rows.append(g)
            out.sets[name] = [local[g] for g in self.sets[name]]
        out.all = [self.all[g] for g in rows]
        out._index = {t: i for i, t in enumerate(out.all)}
        return out, rows

    @classmethod
    def build(cls, inp: Inputs, seed: int = 0) -> ContextSets:
        """Labelled texts, relation subjects and prompts; ``main`` holds the labelled texts
        and up to ``inp.main_per_relation`` subjects (with their prompts) per relation
        (a seeded sample), so the structure's size does not grow with the relations."""
        cs = cls()
        main: list[str] = []
        rng = np.random.default_rng(seed)
        for lt in inp.labels:
            cs.add(f"labels:{lt.name}", lt.texts)
            main += lt.texts
        for r in inp.relations:
            subjects = [s for s, _ in r.samples]
            cs.add(f"subjects:{r.name}", subjects)
            cs.add(f"prompts:{r.name}", [inp.prompt(r, s) for s in subjects])
            cap = inp.main_per_relation
            if cap is not None and len(subjects) > cap:
                pick = np.sort(rng.choice(len(subjects), cap, replace=False))
                subjects = [subjects[i] for i in pick]
            main += subjects + [inp.prompt(r, s) for s in subjects]
        for r in inp.relations:  # not in main: the structure's contexts are unchanged
            multi = inp.multi_samples.get(r.name, [])
            if multi:
                cs.add(f"subjects_multi:{r.name}", [s for s, _, _ in multi])
                cs.add(f"prompts_multi:{r.name}", [inp.prompt(r, s) for s, _, _ in multi])
        cs.add("main", main)
        return cs
