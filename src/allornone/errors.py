"""The errors allornone raises on bad input (public: ``from allornone.errors import ...``).

Every message names the input that was wrong and says what to do; the command line prints it
as one line and exits 2.
"""

from __future__ import annotations

__all__ = ["AllOrNoneError", "AllOrNoneTypeError"]


class AllOrNoneError(ValueError):
    """Raised for bad input: the message names the argument and says what to do."""


class AllOrNoneTypeError(AllOrNoneError, TypeError):
    """Bad input of the wrong type (also a :class:`TypeError`); the message names the fix."""
