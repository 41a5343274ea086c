"""The result type shared by every linear property (THEORY.md section 5).

Every property reports three things: its value in this model's coordinates (``raw``), its
identified form computed from the distribution alone (``identified``: equal in every
equivalent model), and the all-or-none verdict with the condition that decided it and the
measured size of what violates it. :func:`transport` carries the witness (probe weights,
steering vector, relation map, concept direction) into another model through an
:class:`~allornone.Equivalence`: every witness implements the
:class:`allornone.registry.Witness` protocol (``transport(eq, **options)`` and
``carry_spec(eq, spec, options)``), so nothing here knows the property kinds.

Results are immutable: the mappings are read-only views, ``excluded`` is a tuple. A caller
that measures something beside a property (the audit's forward-pass check of a steering
shift) files it under ``checks`` of a new result (:meth:`PropertyResult.with_checks`), never
under ``identified``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .._io import to_jsonable
from .._tables import TableMixin
from .._validation import AllOrNoneError

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _frozen_map(x: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(x)) if x else _EMPTY


@dataclass(frozen=True, eq=False)
class PropertyResult(TableMixin):
    """One linear property measured on one model.

    Attributes
    ----------
    property : str
        The registered property name (:func:`allornone.registry.property_spec` gives its
        declared statistics).
    name : str
        What it was measured on (a pair family, a relation, a label set, a steering concept).
    raw : Mapping[str, float]
        Statistics in this model's coordinates (NOT identified: they can differ in an
        equivalent model), e.g. Euclidean cosines.
    identified : Mapping[str, float]
        Statistics computed from the distribution alone: equal in every equivalent model.
    all_or_none : bool
        True when the transfer condition holds, i.e. the raw property holds in all
        equivalent models or in none of them. Always ``condition_size <= tol``
        (:meth:`from_condition`).
    condition : str
        The condition that decided ``all_or_none`` (e.g. "w in N + M_S^perp").
    condition_size : float
        Relative size of the part violating the condition (0 when it holds exactly).
    tol : float
        Tolerance used for the verdict.
    baseline : Mapping[str, float]
        The same statistics on a chance baseline (e.g. random token pairs), when it exists.
    excluded : tuple[dict, ...]
        Items that were dropped and why (multi-token words, identical pairs, ...).
    details : Mapping[str, Any]
        Per-item numbers (lists, arrays) for tables and plots.
    witness : Any
        The object :func:`transport` carries (a :class:`allornone.registry.Witness`), or
        None.
    checks : Mapping[str, float]
        Measurements made beside the property by its caller (e.g. the audit's
        ``prediction_error`` of a steering shift against a real forward pass); empty from
        the property functions themselves.
    extra : Mapping[str, Any]
        Keys of a stored result (results.json) this version does not know, kept and written
        back unchanged.

    The live result and the stored one (:func:`allornone.audit.load_results`) are this one
    type: :meth:`to_tree` / :meth:`from_tree` write and read it (the stored one has no
    witness).
    """

    property: str
    name: str
    raw: Mapping[str, float]
    identified: Mapping[str, float]
    all_or_none: bool
    condition: str
    condition_size: float
    tol: float
    baseline: Mapping[str, float] = field(default_factory=dict)
    excluded: tuple[dict, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict, repr=False)
    witness: Any = field(default=None, repr=False)
    checks: Mapping[str, float] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for name in ("raw", "identified", "baseline", "details", "checks", "extra"):
            object.__setattr__(self, name, _frozen_map(getattr(self, name)))
        object.__setattr__(self, "excluded", tuple(dict(e) for e in self.excluded))
        object.__setattr__(self, "condition_size", float(self.condition_size))
        object.__setattr__(self, "tol", float(self.tol))
        object.__setattr__(self, "all_or_none", bool(self.all_or_none))

    @classmethod
    def from_condition(
        cls,
        property: str,
        name: str,
        raw: Mapping[str, float],
        identified: Mapping[str, float],
        condition: str,
        condition_size: float,
        tol: float,
        *,
        baseline: Mapping[str, float] | None = None,
        excluded: Sequence[dict] = (),
        details: Mapping[str, Any] | None = None,
        witness: Any = None,
    ) -> PropertyResult:
        """The one place where the verdict is decided: ``all_or_none = condition_size <= tol``."""
        size = float(condition_size)
        return cls(
            property=property,
            name=name,
            raw=raw,
            identified=identified,
            all_or_none=bool(size <= float(tol)),
            condition=condition,
            condition_size=size,
            tol=float(tol),
            baseline=baseline or {},
            excluded=tuple(excluded),
            details=details or {},
            witness=witness,
        )

    def transport(self, eq: Any, **options: Any) -> Any:
        """The witness carried into model ``b`` of ``eq``: ``transport(self, eq, **options)``."""
        return transport(self, eq, **options)

    def with_checks(
        self,
        checks: Mapping[str, float],
        *,
        details: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> PropertyResult:
        """A new result with ``checks`` added (and ``details`` replaced when given).

        The verdict, ``raw`` and ``identified`` are those of this result, unchanged.
        """
        return dataclasses.replace(
            self,
            checks={**self.checks, **checks},
            details=self.details if details is None else details,
            name=self.name if name is None else name,
        )

    #: The keys a stored result must have.
    REQUIRED = ("property", "name", "raw", "identified", "all_or_none", "condition")

    def to_tree(self) -> dict[str, Any]:
        """A plain tree (dicts, lists, numbers; arrays stay ``numpy``), as results.json holds
        it; ``checks`` only when present, unknown keys (``extra``) written back."""
        out: dict[str, Any] = {
            "property": self.property,
            "name": self.name,
            "raw": dict(self.raw),
            "identified": dict(self.identified),
            "all_or_none": bool(self.all_or_none),
            "condition": self.condition,
            "condition_size": _finite(self.condition_size),
            "tol": _finite(self.tol),
            "baseline": dict(self.baseline),
            "excluded": [dict(e) for e in self.excluded],
            "details": dict(self.details),
        }
        if self.checks:
            out["checks"] = dict(self.checks)
        out.update(self.extra)
        return out

    @classmethod
    def from_tree(cls, tree: Mapping[str, Any]) -> PropertyResult:
        """A stored result (no witness) from its tree; a missing key raises one line."""
        if not isinstance(tree, Mapping):
            raise AllOrNoneError(f"PropertyResult: expected an object, got {type(tree).__name__}")
        missing = [k for k in cls.REQUIRED if k not in tree]
        if missing:
            raise AllOrNoneError(f"PropertyResult: missing key(s) {', '.join(missing)}")
        known = {f.name for f in dataclasses.fields(cls)} - {"witness", "extra"}

        def num(x: Any) -> float:
            return float("nan") if x is None else float(x)

        return cls(
            property=tree["property"],
            name=tree["name"],
            raw=tree["raw"] or {},
            identified=tree["identified"] or {},
            all_or_none=bool(tree["all_or_none"]),
            condition=tree["condition"],
            condition_size=num(tree.get("condition_size")),
            tol=num(tree.get("tol")),
            baseline=tree.get("baseline") or {},
            excluded=tuple(tree.get("excluded") or ()),
            details=tree.get("details") or {},
            checks=tree.get("checks") or {},
            extra={k: v for k, v in tree.items() if k not in known},
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (arrays in ``details`` become lists; NaN/inf become None)."""
        out = {
            "property": self.property,
            "name": self.name,
            "raw": to_jsonable(dict(self.raw)),
            "identified": to_jsonable(dict(self.identified)),
            "all_or_none": bool(self.all_or_none),
            "condition": self.condition,
            "condition_size": to_jsonable(self.condition_size),
            "tol": to_jsonable(self.tol),
            "baseline": to_jsonable(dict(self.baseline)),
            "excluded": to_jsonable(list(self.excluded)),
            "details": to_jsonable(dict(self.details)),
        }
        if self.checks:
            out["checks"] = to_jsonable(dict(self.checks))
        return out


def _finite(x: float) -> float | None:
    return x if x == x and abs(x) != float("inf") else None


def transport(result: PropertyResult, eq: Any, **options: Any) -> Any:
    """The witness of ``result`` carried into model ``b`` of the equivalence ``eq``.

    Parameters
    ----------
    result : PropertyResult
        A property result measured on model ``a`` of ``eq``.
    eq : Equivalence
        ``allornone.equivalence(model_a, model_b)``.
    **options
        Passed to the witness's ``transport`` (relations: ``which="map"`` or ``"kl_map"``).
    """
    if not isinstance(result, PropertyResult):
        raise TypeError(
            f"transport takes a PropertyResult, got {type(result).__name__}; pass the result "
            "of a property function, e.g. transport(probe(model, labels), eq)"
        )
    for attr in ("structure_a", "structure_b", "A"):
        if not hasattr(eq, attr):
            raise TypeError(
                f"eq must be an allornone.Equivalence, got {type(eq).__name__}; pass "
                "allornone.equivalence(model_a, model_b)"
            )
    w = result.witness
    if w is None or not callable(getattr(w, "transport", None)):
        raise AllOrNoneError(
            f"{result.property} result {result.name!r} has no transportable witness"
        )
    return w.transport(eq, **options)


def no_options(options: Mapping[str, Any], prop: str) -> None:
    """Refuse transport options a witness does not take (``which`` is for relations)."""
    which = options.get("which", "map")
    extra = sorted(set(options) - {"which"})
    if which != "map":
        raise AllOrNoneError(f"which={which!r} applies to relations only, not to {prop}")
    if extra:
        raise AllOrNoneError(f"transport of a {prop} witness takes no option {extra[0]!r}")


def keep_spec(spec: Any, options: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """``carry_spec`` of witnesses whose spec names tokens or contexts (shared by every
    equivalent model): the spec and options unchanged."""
    return spec, dict(options)
