"""One entry point to carry a property's witness into an equivalent model (THEORY.md 5).

``transport(result, eq)`` reads ``result.witness`` and returns the corresponding object in
model ``b`` of the :class:`~allornone.Equivalence` ``eq`` (whose model ``a`` is the model the
result was measured on):

==========================  ==================================================================
witness                     carried to
==========================  ==================================================================
:class:`ConceptDirection`   ``eq.map_g(D)`` (g side) or ``eq.map_f(D)`` (f side), an array (d_b,)
:class:`LinearProbe`        ``LinearProbe(eq.map_g(W_N), b~)``: the same scores on every context
                            when the condition holds
:class:`SteeringWitness`    ``F~^T alpha_ctx`` (d_b,): the same (transferable) log-odds shift
:class:`RelationWitness`    ``RelationMap(B K A J_S B^+, B K a)`` (``which="kl_map"``: the KL map)
==========================  ==================================================================
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import AllOrNoneError
from ._result import PropertyResult
from .parallelism import ConceptDirection
from .probing import LinearProbe
from .relational import RelationMap, RelationWitness, _to_E
from .steering import SteeringWitness


def transport(result: PropertyResult, eq: Any, *, which: str = "map") -> Any:
    """The witness of ``result`` carried into model ``b`` of the equivalence ``eq``.

    Parameters
    ----------
    result : PropertyResult
        A result of :func:`parallelism`, :func:`context_parallelism`, :func:`probe`,
        :func:`steering` or :func:`relational` on model ``a`` of ``eq``.
    eq : Equivalence
        ``allornone.equivalence(a, b)``.
    which : "map" or "kl_map"
        Relations only: the refined least-squares map (default) or the KL-probe map.
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
    if which != "map" and not isinstance(w, RelationWitness):
        raise AllOrNoneError(f"which={which!r} applies to relations only, not to {result.property}")
    if isinstance(w, ConceptDirection):
        return eq.map_g(w.vector) if w.side == "g" else eq.map_f(w.vector)
    if isinstance(w, LinearProbe):
        return LinearProbe(W=eq.map_g(w.W), b=w.b.copy(), classes=w.classes)
    if isinstance(w, SteeringWitness):
        return eq.structure_b.model.F.T @ w.alpha_ctx
    if isinstance(w, RelationWitness):
        return _relation(w, eq, which)
    raise AllOrNoneError(f"{result.property} result {result.name!r} has no transportable witness")


def _relation(w: RelationWitness, eq: Any, which: str) -> RelationMap:
    """``(B K A J_S B^+, B K a)`` in model ``b`` of ``eq``."""
    if which not in ("map", "kl_map"):
        raise AllOrNoneError(f"which must be 'map' or 'kl_map', got {which!r}")
    m = w.map if which == "map" else w.kl_map
    if m is None:
        raise AllOrNoneError("no KL map was fitted (kl=False)")
    if eq.A is None:
        raise AllOrNoneError("the equivalence has no map (different k)")
    Ua, Ub = eq.structure_a.E, eq.structure_b.E
    B = eq.B
    B_pinv = Ua @ np.linalg.solve(eq.A, Ub.T)
    K = _to_E(w.G0_Y, Ua)
    return RelationMap(A=B @ K @ m.A @ w.J_S @ B_pinv, a=B @ K @ m.a)
