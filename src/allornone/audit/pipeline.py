"""The audit: extract representations, compute the structure, run every property, and show the
equivalence class on the model itself. Returns a JSON-ready dict (schema: docs/RESULTS_SCHEMA.md).

The pipeline only needs a model object with ``name``, ``d``, ``V``, ``tokens``,
``embed(texts, batch_size=, progress=)``, ``unembedding()`` and ``word_tokens(words)``
(:class:`allornone.models.LanguageModel` has them; tests pass a tiny stand-in).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .. import __version__
from .._io import to_jsonable
from .._validation import AllOrNoneError
from ..equivalence import equivalence
from ..linalg import memoized_r_factors
from ..predictor import NextTokenPredictor
from ..properties import PropertyResult
from ..sampler import sample_equivalent
from ..structure import structure
from . import props

SCHEMA_VERSION = "1.0"


@dataclass
class AuditConfig:
    """What to audit and how big. ``quick`` shrinks every set (for tests and smoke runs)."""

    model: str = "smollm2"
    concepts: str | None = None
    relations: str | None = None
    labels: str | None = None
    device: str | None = None
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


# ---------------------------------------------------------------------------- helpers
def single_ids(model: Any, words: Sequence[str]) -> dict[str, int]:
    """``word -> token id`` for the words that are one token in running text."""
    rep = model.word_tokens(list(words))
    return dict(rep.single)


class _Steps:
    """A progress bar over the audit's steps (stderr), with per-step timings."""

    def __init__(self, names: list[str], enabled: bool) -> None:
        self.bar = tqdm(total=len(names), desc="audit", file=sys.stderr, disable=not enabled)
        self.timings: dict[str, float] = {}

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        self.bar.set_postfix_str(name)
        t = time.perf_counter()
        out = fn()
        self.timings[name] = round(time.perf_counter() - t, 3)
        self.bar.update(1)
        return out

    def close(self) -> None:
        self.bar.close()


STEPS = [
    "load model",
    "load data",
    "embed contexts",
    "structure",
    "restricted structure",
    "parallelism",
    "analogies",
    "relations",
    "probing",
    "steering",
    "equivalence class",
]


# ---------------------------------------------------------------------------- main entry
def run_audit(cfg: AuditConfig, model: Any = None) -> dict[str, Any]:
    """Run the whole audit; returns the results dict (``schema_version`` 1.0).

    ``model``: an already loaded model object (else ``cfg.model`` is loaded).
    """
    cfg = cfg.sized()
    t0 = time.perf_counter()
    steps = _Steps(STEPS, cfg.progress)
    with memoized_r_factors():
        try:
            return _run(cfg, model, steps, t0)
        finally:
            steps.close()


def _run(cfg: AuditConfig, model: Any, steps: _Steps, t0: float) -> dict[str, Any]:
    lm = steps.run("load model", lambda: model if model is not None else load_model(cfg))
    inp = steps.run("load data", lambda: load_inputs(cfg))
    select_subjects(lm, inp, cfg)
    ctx = ContextSets.build(inp)
    F = steps.run("embed contexts", lambda: _embed(lm, ctx.all, cfg))
    G = np.asarray(lm.unembedding())
    P = NextTokenPredictor(F, G, contexts=ctx.all, tokens=list(lm.tokens))
    P.eps = max(P.eps, 1.2e-7)
    res: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "allornone", "version": __version__},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": asdict(cfg),
        "model": model_facts(lm),
        "contexts": {"n": len(ctx.all), "sets": ctx.counts()},
    }
    main_rows = ctx.rows("main")
    Pm = P.subset(rows=main_rows)
    st = steps.run("structure", lambda: structure(Pm))
    res["structure"] = {
        "context_set": "main (labelled texts, relation subjects and prompts)",
        **to_jsonable(st.summary()),
        "singular_values": to_jsonable(st.singular_values),
    }
    geo = props.Geometry.build(Pm, st)
    res["restricted"] = steps.run(
        "restricted structure", lambda: restricted_structures(P, ctx, inp, lm, cfg)
    )
    results: list[PropertyResult] = []
    results += steps.run("parallelism", lambda: props.parallelism(lm, geo, inp.families, cfg.seed))
    res["analogy"] = steps.run("analogies", lambda: props.analogies(lm, geo, inp.questions))
    results += steps.run(
        "relations", lambda: props.relations(lm, P, ctx, inp.relations, st, cfg.seed)
    )
    results += steps.run("probing", lambda: props.probing(P, ctx, inp.labels, geo, cfg.seed))
    results += steps.run("steering", lambda: props.steering(P, ctx, inp.labels, geo, cfg.seed, lm))
    res["properties"] = [r.to_dict() for r in results]
    res["equivalence_demo"] = steps.run(
        "equivalence class", lambda: equivalence_demo(P, ctx, inp, lm, cfg)
    )
    res["timings_s"] = steps.timings
    res["runtime_s"] = round(time.perf_counter() - t0, 2)
    return jsonable(res)


jsonable = to_jsonable


def load_model(cfg: AuditConfig) -> Any:
    from ..models import load

    opts: dict[str, Any] = {}
    if cfg.device:
        opts["device"] = cfg.device
    if cfg.batch_size:
        opts["batch_size"] = cfg.batch_size
    return load(cfg.model, **opts)


def model_facts(lm: Any) -> dict[str, Any]:
    return {
        "name": str(getattr(lm, "name", "model")),
        "d": int(lm.d),
        "V": int(lm.V),
        "tied": getattr(lm, "tied", None),
        "logit_check": getattr(lm, "logit_check", None),
        "logit_check_scale": getattr(lm, "logit_check_scale", None),
        "logit_check_tol": getattr(lm, "logit_check_tol", None),
        "head_notes": list(getattr(lm, "head_notes", []) or []),
        "head_warnings": list(getattr(lm, "head_warnings", []) or []),
    }


def _embed(lm: Any, texts: list[str], cfg: AuditConfig) -> np.ndarray:
    kw: dict[str, Any] = {"progress": cfg.progress}
    if cfg.batch_size:
        kw["batch_size"] = cfg.batch_size
    F = np.asarray(lm.embed(texts, **kw), dtype=np.float64)
    if F.shape != (len(texts), lm.d):
        raise AllOrNoneError(f"model returned F of shape {F.shape}, expected {(len(texts), lm.d)}")
    if not np.isfinite(F).all():
        raise AllOrNoneError("the model produced non-finite representations (NaN/inf)")
    return F


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


def reduced(P: NextTokenPredictor) -> NextTokenPredictor:
    """The same predictor written in an orthonormal basis of span{f(x), g(y)} (width <= n + V).

    Exact: every inner product f^T g, every dimension (M, N, E, junk) and k are unchanged, so
    structure() on a small restricted problem costs O((n + V)^3) instead of O(d^3).
    """
    if P.n + P.V >= P.d:
        return P
    X = np.vstack([P.F, P.G])
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    r = int((s > s[0] * max(X.shape) * 1e-15).sum()) if s.size and s[0] > 0 else 1
    B = Vt[: max(r, 1)].T
    out = NextTokenPredictor(P.F @ B, P.G @ B, contexts=P.contexts, tokens=P.tokens)
    out.eps = P.eps
    return out


def _restricted_summary(P: NextTokenPredictor) -> dict[str, Any]:
    d = P.d
    summ = to_jsonable(structure(reduced(P)).summary())
    summ["d"] = d  # the reduced basis spans M + N exactly; report the model's own width
    return summ


def restricted_structures(
    P: NextTokenPredictor, ctx: ContextSets, inp: Inputs, lm: Any, cfg: AuditConfig
) -> list[dict[str, Any]]:
    """Structure on restricted token sets (a relation's answers, a family's tokens)."""
    out: list[dict[str, Any]] = []
    rng = np.random.default_rng(cfg.seed)
    main = np.asarray(ctx.rows("main"))
    if main.size > 128:  # families: k <= |tokens| - 1 anyway; 128 contexts are plenty
        main = np.sort(rng.choice(main, 128, replace=False))
    for r in inp.relations:
        ids = props.answer_ids(lm, r)
        cols = sorted(set(ids.values()))
        if len(cols) < 2:
            continue
        summ = _restricted_summary(P.subset(rows=ctx.rows(f"prompts:{r.name}"), cols=cols))
        out.append({"kind": "relation answers", "name": r.name, **summ})
    for fam in inp.families:
        words = sorted({w for p in fam.pairs for w in p})
        cols = sorted(set(single_ids(lm, words).values()))
        if len(cols) < 2:
            continue
        summ = _restricted_summary(P.subset(rows=main.tolist(), cols=cols))
        out.append({"kind": "family tokens", "name": fam.name, **summ})
    return [o for o in out if o["k"] < o["d"]]


# ---------------------------------------------------------------------------- equivalence demo
def equivalence_demo(
    P: NextTokenPredictor, ctx: ContextSets, inp: Inputs, lm: Any, cfg: AuditConfig
) -> dict[str, Any]:
    """Sample equivalent models of other widths on a restricted problem (k < d) and show
    which statistics move (raw) and which stay fixed (identified)."""
    if not inp.relations:
        raise AllOrNoneError("the equivalence demonstration needs at least one relation")
    r = inp.relations[0]
    ids = props.answer_ids(lm, r)
    cols = sorted(set(ids.values()))
    rows = ctx.rows(f"prompts:{r.name}")
    if len(cols) < 4:  # fall back to a concept family's tokens
        fam = max(inp.families, key=len)
        cols = sorted(set(single_ids(lm, sorted({w for p in fam.pairs for w in p})).values()))
        rows = ctx.rows("main")
    base = P.subset(rows=rows, cols=cols)
    st = structure(base)
    d, k = base.d, st.k
    widths = [max(k + 2, d // 2), d + 64, 2 * d][: max(cfg.n_equivalents, 1)]
    models: list[tuple[str, int, str, NextTokenPredictor]] = [("original", d, "-", base)]
    for i, w in enumerate(widths):
        s = sample_equivalent(base, dim=w, seed=cfg.seed + 1 + i, junk="random", structure_=st)
        models.append((f"sample {i + 1}", w, "random", s.model))
    s = sample_equivalent(
        base, dim=d, seed=cfg.seed + 99, junk="adversarial", scale=1.0, structure_=st
    )
    models.append(("adversarial", d, "adversarial", s.model))
    rows_out = []
    for label, width, junk, m in models:
        eq = equivalence(base, m, rank_tol=st.tol) if label != "original" else None
        rows_out.append(
            {
                "label": label,
                "width": width,
                "junk": junk,
                "equivalent": True if eq is None else bool(eq.equivalent),
                "max_logodds_gap": 0.0 if eq is None else eq.max_logodds_gap,
                "mean_kl": 0.0 if eq is None else eq.mean_kl,
                "residual_f": 0.0 if eq is None else eq.residual_f,
                "residual_g": 0.0 if eq is None else eq.residual_g,
                "stats": props.demo_stats(m, tol=st.tol),
            }
        )
    return {
        "problem": {
            "relation": r.name,
            "n": base.n,
            "V": base.V,
            "d": d,
            "k": k,
            "dim_J_f": st.dim_J_f,
            "dim_J_g": st.dim_J_g,
            "rank_tol": st.tol,
        },
        "models": rows_out,
        "stat_identified": props.DEMO_STATS,
    }
