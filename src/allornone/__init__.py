"""allornone: which linear properties of a language model are facts about its distribution.

See ``THEORY.md`` (All or None, Marconato et al., AISTATS 2025). The public API is small and
re-exported here.
"""

from ._validation import AllOrNoneError
from .predictor import NextTokenPredictor

__version__ = "0.1.0"

__all__ = ["AllOrNoneError", "NextTokenPredictor", "__version__"]
