"""Linear properties of next-token predictors and when they are all-or-none (THEORY.md 5).

Every property has one signature,

    name(model, spec, *, structure=None, pivot="center", tol=None, seed=0, **options)
        -> PropertyResult

with ``spec`` what it is measured on: token pairs (:func:`parallelism`), context pairs
(:func:`context_parallelism`), labels (:func:`probe`), a steering vector (:func:`steering`),
a :class:`RelationSpec` (:func:`relational`) or analogy questions (:func:`analogy_accuracy`).
A :class:`PropertyResult` holds the raw value, its identified form, the all-or-none
condition (and how much it is violated) and a witness that :func:`transport` carries into an
equivalent model. Numpy only: the forward-pass check of a steering shift on a real model
is :func:`allornone.models.steering_check.measured_shift`.

Each property module declares its :class:`allornone.registry.PropertySpec` (statistics,
headline, witness) and registers it on import; a user's property registers the same way
(docs/EXTENDING.md). :func:`spec` gives the spec of a registered property. Every public
module of this package is imported (so a new built-in property is one module here), and a
registered property's function is reachable by its name (``aon.properties.<name>``).
"""

import importlib as _importlib
import pkgutil as _pkgutil
from typing import Any as _Any

from ..registry import property_spec as spec
from ..registry import registered_names as _registered
from ._common import split
from ._result import PropertyResult, transport
from .analogy import analogy_accuracy
from .parallelism import (
    ConceptDirection,
    context_parallelism,
    parallelism,
    parallelism_families,
)
from .probing import LinearProbe, probe, probe_scores_residual, transfer_residuals
from .relational import RelationMap, RelationSpec, RelationWitness, relation_logodds, relational
from .steering import SteeringWitness, steering, vector_from_contexts, vector_from_tokens

__all__ = [
    "ConceptDirection",
    "LinearProbe",
    "PropertyResult",
    "RelationMap",
    "RelationSpec",
    "RelationWitness",
    "SteeringWitness",
    "analogy_accuracy",
    "context_parallelism",
    "parallelism",
    "parallelism_families",
    "probe",
    "probe_scores_residual",
    "relation_logodds",
    "relational",
    "spec",
    "split",
    "steering",
    "transfer_residuals",
    "transport",
    "vector_from_contexts",
    "vector_from_tokens",
]

for _m in sorted(_pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _m.name.startswith("_"):
        _importlib.import_module(f"{__name__}.{_m.name}")


def __getattr__(name: str) -> _Any:
    """A registered property's function by its name (e.g. a module added to this package)."""
    if name in _registered():
        fn = spec(name).function
        if fn is not None:
            return fn
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
