"""The result type shared by every linear property (THEORY.md section 5).

Every property reports three things: its value in this model's coordinates (``raw``), its
identified form computed from the distribution alone (``identified``: equal in every
equivalent model), and the all-or-none verdict with the condition that decided it and the
measured size of what violates it. ``transport`` carries the witness (probe weights,
steering vector, relation map, concept direction) into another model through an
:class:`~allornone.Equivalence`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._io import to_jsonable
from .._tables import TableMixin


@dataclass(eq=False)
class PropertyResult(TableMixin):
    """One linear property measured on one model.

    Attributes
    ----------
    property : str
        "parallelism", "relational", "probing" or "steering".
    name : str
        What it was measured on (a pair family, a relation, a label set, a steering concept).
    raw : dict[str, float]
        Statistics in this model's coordinates (NOT identified: they can differ in an
        equivalent model), e.g. Euclidean cosines.
    identified : dict[str, float]
        Statistics computed from the distribution alone: equal in every equivalent model.
    all_or_none : bool
        True when the transfer condition holds, i.e. the raw property holds in all
        equivalent models or in none of them.
    condition : str
        The condition that decided ``all_or_none`` (e.g. "w in N + M_S^perp").
    condition_size : float
        Relative size of the part violating the condition (0 when it holds exactly);
        ``all_or_none`` is ``condition_size <= tol``.
    tol : float
        Tolerance used for the verdict.
    baseline : dict[str, float]
        The same statistics on a chance baseline (e.g. random token pairs), when it exists.
    excluded : list[dict]
        Items that were dropped and why (multi-token words, identical pairs, ...).
    details : dict
        Per-item numbers (lists) for tables and plots.
    witness : Any
        The object to transport (probe weights, steering vector, relation map, direction).
    """

    property: str
    name: str
    raw: dict[str, float]
    identified: dict[str, float]
    all_or_none: bool
    condition: str
    condition_size: float
    tol: float
    baseline: dict[str, float] = field(default_factory=dict)
    excluded: list[dict] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict, repr=False)
    witness: Any = field(default=None, repr=False)
    _transport: Callable[[Any, Any], Any] | None = field(default=None, repr=False)

    def transport(self, eq: Any) -> Any:
        """The witness carried into model ``b`` of the :class:`~allornone.Equivalence` ``eq``."""
        if self._transport is None:
            raise NotImplementedError(f"{self.property} has no transportable witness")
        return self._transport(self.witness, eq)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (arrays in ``details`` become lists; NaN/inf become None)."""
        return {
            "property": self.property,
            "name": self.name,
            "raw": to_jsonable(self.raw),
            "identified": to_jsonable(self.identified),
            "all_or_none": bool(self.all_or_none),
            "condition": self.condition,
            "condition_size": to_jsonable(self.condition_size),
            "tol": to_jsonable(self.tol),
            "baseline": to_jsonable(self.baseline),
            "excluded": to_jsonable(self.excluded),
            "details": to_jsonable(self.details),
        }
