"""Audit steps as a registry: what the audit, ``--layers`` and ``compare`` run for each
property.

An :class:`AuditStep` declares the property it measures (the name of a registered
:class:`~allornone.registry.PropertySpec`), its run function (the audit's inputs -> property
results), where it runs (audit, compare), its figure, extra report columns or a report section
of its own, and its per-layer summary (:class:`LayerSummary`). The built-in steps live one
module a property in :mod:`allornone.audit.builtin`; a user's plugin registers its own
(docs/EXTENDING.md). The pipeline, the report, ``--layers`` and ``compare`` iterate
:func:`audit_steps`; none of them names a property.

A step reads an immutable :class:`StepInputs`: the model, every embedded context, the named
context sets, the parsed inputs, the main structure and the run's settings.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .._validation import AllOrNoneError
from ..predictor import NextTokenPredictor
from ..properties import PropertyResult
from ..registry import PropertySpec, property_spec
from ..structure import Structure

__all__ = [
    "AuditStep",
    "Column",
    "Geometry",
    "LayerInputs",
    "LayerSummary",
    "StepInputs",
    "StepOption",
    "add_step_contexts",
    "load_step_data",
    "mean_finite",
    "num",
    "answer_ids",
    "audit_steps",
    "register_step",
    "unregister_step",
    "single",
]


@dataclass(frozen=True, eq=False)
class Geometry:
    """The main context set and its structure, shared by the property steps (the property
    functions cache their factorisations per structure)."""

    P: NextTokenPredictor  # main contexts x all tokens
    st: Structure  # structure(P)

    @classmethod
    def build(cls, P: NextTokenPredictor, st: Structure) -> Geometry:
        return cls(P=P, st=st)


@dataclass(frozen=True, eq=False)
class StepInputs:
    """What a step may read (nothing here is modified by a step).

    Attributes
    ----------
    lm : the model object (``word_tokens``, ``tokens``; a real model also has
        ``hf_model``/``tokenizer``, ``continuation_logprob``).
    P : every embedded context x all tokens.
    ctx : the named context sets (``ctx.rows("labels:<name>")`` ...).
    inputs : the parsed inputs (families, questions, relations, labels ...).
    geo : the main contexts and their structure.
    seed : the run's seed.
    purpose : ``"audit"`` or ``"compare"`` (compare measures the identified statistics only:
        no forward-pass checks, no KL probe).
    kl : fit the KL probe of relations.
    relations : the relations the audit measures (word2vec models have none).
    """

    lm: Any
    P: NextTokenPredictor
    ctx: Any
    inputs: Any
    geo: Geometry
    seed: int = 0
    purpose: Literal["audit", "compare"] = "audit"
    kl: bool = False
    relations: tuple[Any, ...] = ()
    data: Any = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def structure(self) -> Structure:
        return self.geo.st


@dataclass(frozen=True, eq=False)
class LayerInputs:
    """What a per-layer summary reads: one layer's predictor and the final layer's."""

    lm: Any
    layer: int
    P: NextTokenPredictor  # this layer, every embedded context (local rows of ``ctx``)
    P_final: NextTokenPredictor  # the final layer, the same contexts
    ctx: Any
    inputs: Any
    geo: Geometry  # this layer's main contexts and structure
    seed: int
    kl: bool
    quick: bool = False
    data: Mapping[str, Any] = field(default_factory=dict)  # every step's own inputs, by step


@dataclass(frozen=True)
class StepOption:
    """A command-line option a step declares (``allornone audit FLAG VALUE``).

    ``dest`` is the key of its value in ``AuditConfig.options`` (and ``StepInputs.options``);
    ``repeatable`` collects every occurrence into a list.
    """

    flag: str
    dest: str
    help: str
    metavar: str = "PATH"
    repeatable: bool = False


@dataclass(frozen=True)
class Column:
    """One extra report column of a step: header, meaning, identified flag, one value per
    result."""

    header: str
    meaning: str
    identified: bool | None
    values: tuple[Any, ...]


@dataclass(frozen=True)
class LayerSummary:
    """A step's per-layer columns (``--layers``).

    ``columns``: ``(name, meaning, identified)`` of each column, in order; ``run(inputs)``
    gives one layer's values ``{name: value}``; ``jobs(inputs_by_layer)``, when given,
    instead returns independent callables whose results ``collect(layers, results)`` turns
    into ``{layer: {name: value}}`` (run side by side on the cores). ``sets(inputs, quick)``
    names the context sets it needs read at every layer (besides ``main``);
    ``describe(inputs, quick)`` adds entries to the layers' results.json (what it measured).
    """

    columns: tuple[tuple[str, str, bool | None], ...]
    run: Callable[[LayerInputs], dict[str, Any]] | None = None
    order: float = 100.0
    step_name: str = ""
    jobs: Callable[[dict[int, LayerInputs]], list[Callable[[], Any]]] | None = None
    collect: Callable[[list[int], list[Any]], dict[int, dict[str, Any]]] | None = None
    sets: Callable[[Any, bool], list[str]] | None = None
    describe: Callable[[Any, bool], dict[str, Any]] | None = None


@dataclass(frozen=True)
class AuditStep:
    """One step of the audit, declared once by the property's own audit module.

    Attributes
    ----------
    name : the progress-bar step name (and its key in ``timings_s``).
    property : the registered property whose results it returns.
    run : ``run(StepInputs) -> list[PropertyResult]`` (or, with ``section_key``, the tree of
        a section of results.json of its own).
    order : position in the audit (and the report).
    in_compare : ``compare`` runs it too.
    figure : ``figure(results, path) -> path or None`` (matplotlib; ``results``: the typed
        :class:`~allornone.audit.AuditResults`).
    figure_name : the figure's name (file ``figures/<name>.png``; default the property).
    columns : extra report columns from the step's records.
    section_key : a step whose output is not property results but its own section of
        results.json (e.g. analogy accuracy per section).
    section : ``section(results, figures) -> blocks`` of its own report section (default:
        the generic table of the property's declared statistics).
    layer : its per-layer summary.
    options : its command-line options (:class:`StepOption`).
    load : ``load(options, config) -> data``: the step's own inputs (a built-in source, or
        the files its options name, read and validated) before the model loads; errors are
        one line naming the file and the fix. ``StepInputs.data`` holds the result.
    contexts : ``contexts(data, lm) -> {name: texts}``: context sets the step needs embedded
        (named ``<step>:<name>``; not part of the main structure).
    """

    name: str
    property: str
    run: Callable[[StepInputs], Any]
    order: float = 100.0
    in_compare: bool = False
    figure: Callable[[Any, Path], Path | None] | None = None
    figure_name: str | None = None
    columns: Callable[[Sequence[Any]], list[Column]] | None = None
    section_key: str | None = None
    section: Callable[[Any, dict[str, str]], list[Any]] | None = None
    layer: LayerSummary | None = None
    options: tuple[StepOption, ...] = ()
    load: Callable[[Mapping[str, Any], Any], Any] | None = None
    contexts: Callable[[Any, Any], Mapping[str, Sequence[str]]] | None = None

    @builtins.property
    def spec(self) -> PropertySpec:
        return property_spec(self.property)

    @builtins.property
    def figure_file(self) -> str:
        return self.figure_name or self.property


_STEPS: dict[str, AuditStep] = {}


def register_step(step: AuditStep, *, replace: bool = False) -> AuditStep:
    """Add ``step`` to the audit (returns it). Its property must be registered first."""
    if not isinstance(step, AuditStep):
        raise TypeError(f"register_step takes an AuditStep, got {type(step).__name__}")
    property_spec(step.property)  # refuses an unregistered property, naming the fix
    old = _STEPS.get(step.name)
    if old is not None and not replace and old != step:
        raise AllOrNoneError(
            f"an audit step named {step.name!r} is already registered: choose another name "
            "or pass replace=True"
        )
    taken = {o.flag: s.name for s in _STEPS.values() if s.name != step.name for o in s.options}
    for o in step.options:
        if not o.flag.startswith("--") or o.flag in taken:
            raise AllOrNoneError(
                f"audit step {step.name!r}: option {o.flag!r} "
                + (
                    f"is taken by step {taken[o.flag]!r}"
                    if o.flag in taken
                    else "must start with --"
                )
            )
    _STEPS[step.name] = step
    return step


def unregister_step(name: str) -> None:
    """Remove a registered step (a plugin's, e.g. between tests); unknown names are ignored."""
    _STEPS.pop(name, None)


def audit_steps(*, purpose: str = "audit") -> tuple[AuditStep, ...]:
    """The registered steps in order (``purpose="compare"``: those compare runs;
    ``"layers"``: those with a per-layer summary, in their layer order). The built-in steps
    register when :mod:`allornone.audit.builtin` is imported (``allornone.audit`` does)."""
    steps = sorted(_STEPS.values(), key=lambda s: s.order)
    if purpose == "compare":
        return tuple(s for s in steps if s.in_compare)
    if purpose == "layers":
        with_layer = [s for s in steps if s.layer is not None]
        return tuple(sorted(with_layer, key=lambda s: s.layer.order))  # type: ignore[union-attr]
    return tuple(steps)


def results_of(step: AuditStep, out: Any) -> list[PropertyResult]:
    """A step's property results (checked: the declared property, PropertyResult)."""
    if step.section_key is not None:
        return []
    res = list(out or [])
    for r in res:
        if not isinstance(r, PropertyResult) or r.property != step.property:
            raise AllOrNoneError(
                f"audit step {step.name!r} returned {type(r).__name__}"
                + (f" of property {r.property!r}" if isinstance(r, PropertyResult) else "")
                + f"; it must return PropertyResults of {step.property!r}"
            )
    return res


# ---------------------------------------------------------------------------- helpers
def _selected(cfg: Any) -> list[AuditStep]:
    only = getattr(cfg, "steps", None)
    return [s for s in audit_steps() if only is None or s.name in only]


def load_step_data(cfg: Any) -> dict[str, Any]:
    """Each selected step's own inputs (``AuditStep.load``), read before the model loads."""
    return {s.name: s.load(dict(cfg.options), cfg) for s in _selected(cfg) if s.load is not None}


def add_step_contexts(ctx: Any, step_data: dict[str, Any], lm: Any, cfg: Any = None) -> None:
    """The context sets the selected steps declare (``AuditStep.contexts``), named
    ``<step>:<set>``."""
    for s in _selected(cfg):
        if s.contexts is None:
            continue
        for name, texts in s.contexts(step_data.get(s.name), lm).items():
            ctx.add(f"{s.name}:{name}", list(texts))


def mean_finite(values: Any) -> float | None:
    """Mean of the finite values (None for none): the per-layer summaries' average."""
    vals = [float(v) for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def num(x: Any) -> float:
    """``x`` as a float, None as NaN (for plotting stored figures)."""
    return float("nan") if x is None else float(x)


def single(lm: Any, words: list[str]) -> dict[str, int]:
    """``word -> token id`` of the words that are one token of ``lm``."""
    return dict(lm.word_tokens(list(words)).single)


def answer_ids(lm: Any, relation: Any) -> dict[str, int]:
    """``object -> token id`` for a relation's single-token objects."""
    return single(lm, sorted({o for _, o in relation.samples}))
