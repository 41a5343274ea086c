"""The pieces of a report: blocks, tables, number formatting, aligned terminal text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .explain import Explanation

#: A table cell: a number, a bool, None (shown as "–"), a string or a list of those.
Cell = Any


@dataclass
class Table:
    """A table: headers, rows of cells, and the meaning of the columns that hold numbers."""

    headers: list[str]
    rows: list[list[Cell]]
    #: column header -> explanation (only for columns holding numbers)
    columns: dict[str, Explanation] = field(default_factory=dict)


@dataclass
class Block:
    """One piece of a report.

    ``kind``: ``"h1"``, ``"h2"``, ``"h3"``, ``"p"`` (plain text, escaped), ``"note"`` (trusted
    text that may hold ``<b>`` tags), ``"table"`` (content: :class:`Table`) or ``"figure"``
    (content: a PNG file name inside the figures folder; ``caption`` says what it shows).
    """

    kind: str
    content: Any
    caption: str = ""


def fmt(x: Cell) -> str:
    """A cell as text: 3 significant digits, scientific outside [1e-3, 1e5), "–" for missing."""
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if x != x:
            return "–"
        if x == 0:
            return "0"
        a = abs(x)
        return f"{x:.3g}" if 1e-3 <= a < 1e5 else f"{x:.2e}"
    if isinstance(x, (list, tuple)):
        return ", ".join(fmt(v) for v in x)
    return str(x)


def aligned_text(rows: Sequence[Sequence[str]]) -> str:
    """Plain aligned columns for the terminal; the first row is the header, underlined."""
    if not rows:
        return ""
    n = len(rows[0])
    w = [max(len(r[i]) for r in rows) for i in range(n)]
    lines = ["  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * x for x in w))
    return "\n".join(lines)
