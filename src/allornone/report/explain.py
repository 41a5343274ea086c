"""What a reported number means, and whether it is identified.

``identified=True``: computed from the next-token distribution alone, so equal in every
model with the same distribution (docs/THEORY.md 4). ``False``: depends on the
parametrisation (Euclidean geometry of ``f`` / ``g``), so an equivalent model can change it.
``None``: a fact about the run or the model file rather than a statistic.
"""

from __future__ import annotations

from typing import NamedTuple


class Explanation(NamedTuple):
    """The one-line meaning of a column and whether its numbers are identified."""

    text: str
    identified: bool | None


def mark(identified: bool | None) -> str:
    """Short mark used in tables: identified, not identified, or a fact."""
    return {True: "identified", False: "NOT identified", None: "fact"}[identified]
