"""allornone: which linear properties of a language model are facts about its distribution.

See ``THEORY.md`` (All or None, Marconato et al., AISTATS 2025). The public API is small and
re-exported here.
"""

from ._validation import AllOrNoneError
from .equivalence import Equivalence, equivalence
from .predictor import NextTokenPredictor
from .sampler import EquivalentSample, sample_equivalent
from .structure import Structure, structure, subspace_of

__version__ = "0.1.0"

__all__ = [
    "AllOrNoneError",
    "Equivalence",
    "EquivalentSample",
    "NextTokenPredictor",
    "Structure",
    "__version__",
    "equivalence",
    "sample_equivalent",
    "structure",
    "subspace_of",
]
