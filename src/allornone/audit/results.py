"""The audit's results as frozen dataclasses, and the one place that reads them by key.

:func:`~allornone.audit.pipeline.run_audit` returns an :class:`AuditResults`;
:func:`~allornone.audit.store.write_results` writes it as ``results.json`` (summaries and
per-item scalars) plus ``arrays.safetensors`` (matrices and long vectors, referenced from the
JSON as ``{"$array": key}``); :func:`~allornone.audit.store.load_results` reads it back into
an equal object. The report (:mod:`.report`, :mod:`.figures`) renders from these types.

Array rule (:func:`normalise`): a numeric list or array with more than :data:`MAX_INLINE`
numbers, or any 2-D (or higher) one, is kept as a ``numpy.ndarray`` (stored in the
safetensors file); shorter 1-D ones become plain lists of numbers (NaN/inf as ``None``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from .._io import to_jsonable
from .._validation import AllOrNoneError
from ..properties import PropertyResult

#: Longest 1-D numeric list written inline in results.json; longer ones go to safetensors.
MAX_INLINE = 64


# ---------------------------------------------------------------------------- values
def normalise(x: Any) -> Any:
    """JSON-ready values, except that big or 2-D numeric arrays stay ``numpy`` arrays."""
    if isinstance(x, Mapping):
        return {str(k): normalise(v) for k, v in x.items()}
    if isinstance(x, (np.ndarray, list, tuple)):
        a = _numeric(x)
        if a is not None:
            if (a.ndim >= 2 and a.size > 0) or a.size > MAX_INLINE:
                return np.ascontiguousarray(a)
            return to_jsonable(a)
        return [normalise(v) for v in x]
    return to_jsonable(x)


def _numeric(x: Any) -> np.ndarray | None:
    if isinstance(x, (list, tuple)) and (len(x) == 0 or isinstance(x[0], (str, dict))):
        return None
    try:
        a = np.asarray(x)
    except (ValueError, TypeError):  # ragged
        return None
    return a if a.dtype.kind in "biuf" else None


def deep_equal(a: Any, b: Any) -> bool:
    """Equality that compares arrays element-wise (NaN equal to NaN) and lists to tuples."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(deep_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, PropertyResult) and isinstance(b, PropertyResult):
        return deep_equal(a.to_tree(), b.to_tree())
    if isinstance(a, Record) and isinstance(b, Record):
        return type(a) is type(b) and all(
            deep_equal(getattr(a, f.name), getattr(b, f.name))
            for f in fields(a)  # type: ignore[arg-type]
        )
    return bool(a == b) and type(a) is type(b) or (a is None and b is None)


# ---------------------------------------------------------------------------- records
class Record:
    """Base of the result records: built from and written to plain trees (dicts/lists).

    ``_nested``: field -> record class (or ``tuple`` for a tuple of plain values) for fields
    that hold records or tuples; a tuple-typed record field holds a tuple of records.
    ``_sequence``: fields that hold a tuple of records of the ``_nested`` class.
    ``_omit_none``: fields left out of the tree when they are None.
    ``extra``: keys this version does not know (kept, written back unchanged).
    """

    _nested: ClassVar[dict[str, Any]] = {}
    _sequence: ClassVar[frozenset[str]] = frozenset()
    _omit_none: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def from_tree(cls, tree: Mapping[str, Any]) -> Any:
        """The record from a tree (``normalise``-d values; arrays as ``numpy``)."""
        if not isinstance(tree, Mapping):
            raise AllOrNoneError(f"{cls.__name__}: expected an object, got {type(tree).__name__}")
        names = [f.name for f in fields(cls) if f.name != "extra"]  # type: ignore[arg-type]
        kw: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name == "extra" or f.name not in tree:
                continue
            kw[f.name] = cls._convert(f.name, tree[f.name])
        missing = [
            f.name
            for f in fields(cls)  # type: ignore[arg-type]
            if f.name not in kw and f.name != "extra" and _required(f)
        ]
        if missing:
            raise AllOrNoneError(f"{cls.__name__}: missing key(s) {', '.join(missing)}")
        extra = {k: v for k, v in tree.items() if k not in names}
        return cls(**kw, extra=extra)  # type: ignore[call-arg]

    @classmethod
    def _convert(cls, name: str, value: Any) -> Any:
        kind = cls._nested.get(name)
        if kind is None or value is None:
            return value
        if kind is tuple:
            return tuple(value)
        if name in cls._sequence:
            return tuple(kind.from_tree(v) for v in value)
        return kind.from_tree(value)

    def to_tree(self) -> dict[str, Any]:
        """A plain tree (dicts, lists, numbers, strings; arrays stay ``numpy``)."""
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            if f.name == "extra":
                continue
            v = getattr(self, f.name)
            if v is None and f.name in self._omit_none:
                continue
            out[f.name] = _tree(v)
        out.update(getattr(self, "extra", {}))
        return out

    def __eq__(self, other: object) -> bool:
        return deep_equal(self, other)

    __hash__ = None  # type: ignore[assignment]


def _required(f: Any) -> bool:
    from dataclasses import MISSING

    return f.default is MISSING and f.default_factory is MISSING


def _tree(v: Any) -> Any:
    if isinstance(v, (Record, PropertyResult)):
        return v.to_tree()
    if isinstance(v, tuple):
        return [_tree(x) for x in v]
    return v


@dataclass(frozen=True, eq=False)
class ModelFacts(Record):
    """The audited model: sizes, head, and the check that softmax(F G^T) is its output."""

    name: str
    d: int
    V: int
    tied: bool | None = None
    logit_check: float | None = None
    logit_check_scale: float | None = None
    logit_check_tol: float | None = None
    head_notes: tuple[str, ...] = ()
    head_warnings: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    _nested: ClassVar[dict[str, Any]] = {"head_notes": tuple, "head_warnings": tuple}


@dataclass(frozen=True, eq=False)
class StructureSummary(Record):
    """:meth:`allornone.Structure.summary` of one context/token set (see THEORY.md 3).

    ``kind`` and ``name`` are set on restricted token sets, ``context_set`` and
    ``singular_values`` (the spectrum of L, descending) on the main structure.
    """

    n: int
    V: int
    d: int
    k: int
    energy_rank: int
    energy: float | None
    dim_M: int
    dim_N: int
    dim_E: int
    dim_J_f: int
    dim_J_g: int
    tol: float | None
    gap: float | None
    sharp: bool
    pivot: str
    decision: str
    kind: str | None = None
    name: str | None = None
    context_set: str | None = None
    singular_values: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    _omit_none: ClassVar[frozenset[str]] = frozenset(
        {"kind", "name", "context_set", "singular_values"}
    )

    def to_tree(self) -> dict[str, Any]:
        tree = super().to_tree()  # the labels first, as in results.json 1.0
        head = [k for k in ("kind", "name", "context_set") if k in tree]
        return {k: tree[k] for k in head} | {k: v for k, v in tree.items() if k not in head}


#: The stored form of a property result is the live type itself (without its witness):
#: :class:`allornone.properties.PropertyResult`. The name is kept for older code.
PropertyRecord = PropertyResult


def stored(result: PropertyResult) -> PropertyResult:
    """A live result as results.json stores it: no witness, values normalised (NaN as None,
    short numeric arrays as lists, long or 2-D ones as arrays)."""
    return PropertyResult.from_tree(normalise(result.to_tree()))


@dataclass(frozen=True, eq=False)
class AnalogySection(Record):
    """3CosAdd accuracy on one section of analogy questions."""

    section: str
    n_questions: int
    n_total: int
    acc_raw: float | None
    acc_identified: float | None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Analogy(Record):
    """Analogy accuracy per section and overall (``overall`` is None without questions)."""

    sections: tuple[AnalogySection, ...] = ()
    overall: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    _nested: ClassVar[dict[str, Any]] = {"sections": AnalogySection}
    _sequence: ClassVar[frozenset[str]] = frozenset({"sections"})
    _omit_none: ClassVar[frozenset[str]] = frozenset({"overall"})


@dataclass(frozen=True, eq=False)
class DemoProblem(Record):
    """The restricted problem (k < d) whose equivalence class the audit samples."""

    relation: str
    n: int
    V: int
    d: int
    k: int
    dim_J_f: int
    dim_J_g: int
    rank_tol: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class DemoModel(Record):
    """One model of the demonstration: the original or a sampled equivalent."""

    label: str
    width: int
    junk: str
    equivalent: bool
    max_logodds_gap: float | None
    mean_kl: float | None
    residual_f: float | None
    residual_g: float | None
    stats: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class EquivalenceDemo(Record):
    """Sampled equivalent models and which statistics move (raw) or stay (identified)."""

    problem: DemoProblem
    models: tuple[DemoModel, ...]
    stat_identified: dict[str, bool]
    extra: dict[str, Any] = field(default_factory=dict)

    _nested: ClassVar[dict[str, Any]] = {"problem": DemoProblem, "models": DemoModel}
    _sequence: ClassVar[frozenset[str]] = frozenset({"models"})


@dataclass(frozen=True, eq=False)
class AuditResults(Record):
    """Everything one audit measured (schema: docs/RESULTS_SCHEMA.md).

    Read one from a report folder with :func:`allornone.audit.load_results`. ``properties``
    holds every property result in the order measured; :meth:`of_kind` selects one kind.
    """

    schema_version: str
    tool: dict[str, Any]
    created: str
    config: dict[str, Any]
    model: ModelFacts
    contexts: dict[str, Any]
    structure: StructureSummary
    restricted: tuple[StructureSummary, ...] = ()
    properties: tuple[PropertyResult, ...] = ()
    analogy: Analogy = field(default_factory=Analogy)
    equivalence_demo: EquivalenceDemo | None = None
    timings_s: dict[str, float] = field(default_factory=dict)
    runtime_s: float | None = None
    figures: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    _nested: ClassVar[dict[str, Any]] = {
        "model": ModelFacts,
        "structure": StructureSummary,
        "restricted": StructureSummary,
        "properties": PropertyResult,
        "analogy": Analogy,
        "equivalence_demo": EquivalenceDemo,
    }
    _sequence: ClassVar[frozenset[str]] = frozenset({"restricted", "properties"})
    _omit_none: ClassVar[frozenset[str]] = frozenset({"equivalence_demo"})

    def of_kind(self, kind: str) -> tuple[PropertyResult, ...]:
        """The property results of one kind (``"parallelism"``, ``"relational"``, ...)."""
        return tuple(p for p in self.properties if p.property == kind)

    @property
    def by_kind(self) -> dict[str, tuple[PropertyResult, ...]]:
        """Property results grouped by kind, in the order first measured."""
        out: dict[str, tuple[PropertyResult, ...]] = {}
        for p in self.properties:
            out[p.property] = out.get(p.property, ()) + (p,)
        return out
