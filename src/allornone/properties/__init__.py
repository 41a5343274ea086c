"""Linear properties of next-token predictors and when they are all-or-none (THEORY.md 5).

Each property returns a :class:`PropertyResult` with its raw value, its identified form,
the all-or-none condition (and how much it is violated) and a transportable witness.
"""

from ._result import PropertyResult
from .parallelism import (
    AnalogyResult,
    analogy_accuracy,
    context_parallelism,
    parallelism,
    parallelism_families,
)
from .probing import LinearProbe, probe, probe_scores_residual, transfer_residuals
from .relational import RelationMap, RelationWitness, relation_logodds, relational
from .steering import (
    ShiftCheck,
    find_final_norm,
    measured_shift,
    steering,
    vector_from_contexts,
    vector_from_tokens,
)

__all__ = [
    "AnalogyResult",
    "LinearProbe",
    "PropertyResult",
    "RelationMap",
    "RelationWitness",
    "ShiftCheck",
    "analogy_accuracy",
    "context_parallelism",
    "find_final_norm",
    "measured_shift",
    "parallelism",
    "parallelism_families",
    "probe",
    "probe_scores_residual",
    "relation_logodds",
    "relational",
    "steering",
    "transfer_residuals",
    "vector_from_contexts",
    "vector_from_tokens",
]
