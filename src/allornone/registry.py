"""The property registry: every property declares itself once, and everything else reads it.

A property module builds one :class:`PropertySpec` (its name, title, note, the
:class:`Statistic` s it emits with their meaning and whether each is identified, its
headline statistic, its witness type, which raw statistics its verdict protects, and how its
per-item details become table rows) and calls :func:`register_property`. The glossary, the
report sections, ``to_frame``, :func:`allornone.testing.check_property`, ``compare`` and
``--layers`` read the spec; no module outside the property's own files names the property.

A witness (what a property result carries into an equivalent model) follows the
:class:`Witness` protocol: ``transport(eq, **options)`` returns it in model ``b`` of the
:class:`~allornone.Equivalence` ``eq`` and ``carry_spec(eq, spec, options)`` puts the
property's input into ``b``'s coordinates (token pairs, labels and context rows are shared
by equivalent models and kept; a steering vector is replaced by its transported one).

This module is pure Python (the core's ground floor): it knows no property by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from ._validation import AllOrNoneError

__all__ = [
    "ItemRows",
    "PropertySpec",
    "Statistic",
    "Witness",
    "find_statistic",
    "property_spec",
    "property_specs",
    "register_property",
    "registered_names",
    "unregister_property",
]

#: Where a statistic lives in a result: ``raw`` / ``identified`` / ``baseline`` / ``checks``
#: mappings, or a scalar of ``details`` shown as a column.
Where = Literal["raw", "identified", "baseline", "checks", "details"]


@dataclass(frozen=True)
class Statistic:
    """One number a property emits, declared once.

    Attributes
    ----------
    name : key in the result's mapping ``where``.
    meaning : one line, as the glossary prints it.
    identified : True (a fact of the distribution: equal in every equivalent model), False
        (depends on the parametrisation) or None (a count, setting or check).
    where : the result mapping that holds it (``raw``, ``identified``, ``baseline``,
        ``checks``) or ``details`` for a per-result scalar shown as a column.
    unit : e.g. ``"nats"``, ``"fraction"``, ``"cosine"`` (empty when unitless).
    """

    name: str
    meaning: str
    identified: bool | None
    where: Where = "identified"
    unit: str = ""

    def __post_init__(self) -> None:
        if self.where not in ("raw", "identified", "baseline", "checks", "details"):
            raise AllOrNoneError(
                f"statistic {self.name!r}: where must be raw, identified, baseline, checks or "
                f"details, got {self.where!r}"
            )
        if self.where == "raw" and self.identified is True:
            raise AllOrNoneError(
                f"statistic {self.name!r} is declared raw and identified: a raw statistic is "
                "measured in the model's coordinates (identified=False); file it under "
                "where='identified'"
            )
        if self.where == "identified" and self.identified is not True:
            raise AllOrNoneError(
                f"statistic {self.name!r} is filed under identified but declared "
                f"identified={self.identified!r}: use where='raw' or identified=True"
            )


@runtime_checkable
class Witness(Protocol):
    """What a property result carries into an equivalent model."""

    def transport(self, eq: Any, **options: Any) -> Any:
        """The witness in model ``b`` of the equivalence ``eq`` (model ``a``: the result's)."""
        ...

    def carry_spec(
        self, eq: Any, spec: Any, options: Mapping[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """The property's ``spec`` and options in ``b``'s coordinates."""
        ...


#: ``items(details) -> (rows, identified columns, raw columns)``: one row per item measured
#: (``to_frame(per_item=True)``), or None when the details hold no per-item numbers.
ItemRows = Callable[[Mapping[str, Any]], "tuple[list[dict], list[str], list[str]] | None"]


@dataclass(frozen=True)
class PropertySpec:
    """A property, declared once by its own module.

    Attributes
    ----------
    name : the ``property`` field of its results (e.g. ``"steering"``).
    title : report section title.
    note : one paragraph: what is measured, which form is identified, the condition.
    statistics : every number it emits (:class:`Statistic`).
    headline : the identified statistic a one-line summary shows.
    function : the property function ``fn(model, spec, *, structure=None, pivot="center",
        tol=None, seed=0, **options) -> PropertyResult``.
    witness : the witness type (None when the result carries nothing to transport).
    protected_raw : prefixes of the raw statistics the all-or-none verdict protects (checked
        by :func:`allornone.testing.check_property`); None: all of them.
    items : per-item rows for ``to_frame`` (None: the summary row only).
    baseline_of : what the chance baseline is, for the legend.
    headline_raw : the raw statistic shown beside the headline (optional).
    """

    name: str
    title: str
    note: str
    statistics: tuple[Statistic, ...]
    headline: str
    function: Callable[..., Any] | None = field(default=None, repr=False, compare=False)
    witness: type | None = None
    protected_raw: tuple[str, ...] | None = ()
    items: ItemRows | None = field(default=None, repr=False, compare=False)
    baseline_of: str = "random items"
    headline_raw: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "statistics", tuple(self.statistics))
        if not self.name or not self.name.replace("_", "").isalnum():
            raise AllOrNoneError(
                f"property name {self.name!r}: use letters, digits and underscores"
            )
        seen: set[tuple[str, str]] = set()
        for s in self.statistics:
            if (s.name, s.where) in seen:
                raise AllOrNoneError(
                    f"property {self.name!r} declares statistic {s.name!r} ({s.where}) twice"
                )
            seen.add((s.name, s.where))
        if self.statistic(self.headline, "identified") is None:
            raise AllOrNoneError(
                f"property {self.name!r}: headline {self.headline!r} is not one of its "
                "identified statistics"
            )

    def statistic(self, key: str, where: str | None = None) -> Statistic | None:
        """The declared statistic ``key`` (in ``where`` when given; else the first match,
        identified first)."""
        order = ("identified", "raw", "baseline", "checks", "details")
        cands = [s for s in self.statistics if s.name == key and (where in (None, s.where))]
        cands.sort(key=lambda s: order.index(s.where))
        return cands[0] if cands else None

    def of(self, where: str) -> tuple[Statistic, ...]:
        """The statistics filed under ``where``."""
        return tuple(s for s in self.statistics if s.where == where)

    def undeclared(self, result: Any) -> list[str]:
        """Keys of ``result`` (raw, identified, checks) that this spec does not declare."""
        out = []
        for where in ("raw", "identified", "checks"):
            for key in getattr(result, where, {}) or {}:
                if self.statistic(key, where) is None and not self._pattern(key, where):
                    out.append(f"{where}.{key}")
        return out

    def _pattern(self, key: str, where: str) -> bool:
        """A statistic declared with a trailing ``*`` covers every key with that prefix
        (e.g. analogy accuracies per section)."""
        return any(
            s.name.endswith("*") and key.startswith(s.name[:-1])
            for s in self.statistics
            if s.where == where
        )


_SPECS: dict[str, PropertySpec] = {}


def register_property(spec: PropertySpec, *, replace: bool = False) -> PropertySpec:
    """Add ``spec`` to the registry (returns it, so a module can write
    ``SPEC = register_property(PropertySpec(...))``).

    Registering another spec under a taken name raises unless ``replace=True`` (re-importing
    the same module registers an equal spec again, which is accepted).
    """
    if not isinstance(spec, PropertySpec):
        raise TypeError(
            f"register_property takes a PropertySpec, got {type(spec).__name__}; build one "
            "with allornone.registry.PropertySpec(name=..., title=..., note=..., "
            "statistics=..., headline=...)"
        )
    old = _SPECS.get(spec.name)
    if old is not None and not replace and old != spec:
        raise AllOrNoneError(
            f"a property named {spec.name!r} is already registered (by "
            f"{getattr(old.function, '__module__', '?')}): choose another name or pass "
            "replace=True"
        )
    _SPECS[spec.name] = spec
    return spec


def unregister_property(name: str) -> None:
    """Remove a registered property (a plugin's, e.g. between tests); unknown names are ignored."""
    _SPECS.pop(name, None)


def property_spec(name: str) -> PropertySpec:
    """The registered spec of property ``name`` (an error lists the registered ones)."""
    try:
        return _SPECS[name]
    except KeyError:
        known = ", ".join(sorted(_SPECS)) or "none"
        raise AllOrNoneError(
            f"no property named {name!r} is registered (registered: {known}); import the "
            "module that registers it (allornone.properties for the built-in ones, or your "
            "plugin)"
        ) from None


def property_specs() -> tuple[PropertySpec, ...]:
    """Every registered spec, in registration order."""
    return tuple(_SPECS.values())


def find_statistic(key: str, where: str | None = None) -> Statistic | None:
    """The first registered declaration of statistic ``key`` (any property)."""
    for spec in _SPECS.values():
        s = spec.statistic(key, where)
        if s is not None:
            return s
    return None


def registered_names() -> Sequence[str]:
    """Names of the registered properties."""
    return tuple(_SPECS)
