"""Ordered concepts: the built-in sets (months, weekdays; numbers, years) and the user's order
files, for :func:`allornone.properties.cyclic`.

An order file is read unmodified: a first line ``# cycle`` or ``# line``, optional lines
``# template: See you on {}`` (contexts for the f side, ``{}`` is the item), then one item per
line (blank lines and other ``#`` lines skipped)::

    # cycle
    # template: See you on {}
    Monday
    Tuesday
    ...

Every problem names the file and the line, and says what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .._validation import AllOrNoneError, read_user_file

__all__ = ["OrderSet", "builtin_orders", "read_order_file", "read_orders"]

KINDS = ("cycle", "line")


@dataclass(frozen=True)
class OrderSet:
    """Items in their order (a cycle or a line), with context templates for the f side."""

    name: str
    kind: str
    items: tuple[str, ...]
    templates: tuple[str, ...] = ()
    source: str = "built-in"
    lines: tuple[int, ...] = ()  # the file line of each item (user files)

    def contexts(self) -> list[str]:
        """One context per item (the first template), ending with the item."""
        return [self.templates[0].format(it) for it in self.items] if self.templates else []


_MONTHS = (
    "January February March April May June July August September October November December"
).split()
_DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
_NUMBER_WORDS = (
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
).split()


def builtin_orders(quick: bool = False) -> list[OrderSet]:
    """Months and weekdays (cycles), numbers one..twenty, 1..100 and years 1900..2020 (lines).

    ``quick``: months, weekdays and one..twenty only."""
    out = [
        OrderSet("months", "cycle", tuple(_MONTHS), ("It happened in {}",)),
        OrderSet("weekdays", "cycle", tuple(_DAYS), ("See you on {}",)),
        OrderSet("numbers one-twenty", "line", tuple(_NUMBER_WORDS), ("The answer is {}",)),
    ]
    if not quick:
        out += [
            OrderSet(
                "numbers 1-100", "line", tuple(str(i) for i in range(1, 101)), ("The answer is {}",)
            ),  # fmt: skip
            OrderSet(
                "years 1900-2020",
                "line",
                tuple(str(y) for y in range(1900, 2021)),
                ("It was the year {}",),
            ),  # fmt: skip
        ]
    return out


def read_order_file(path: str | Path) -> OrderSet:
    """One order file (module docstring); the set is named after the file."""
    path = Path(path)
    text = read_user_file(path, "order").lstrip("\ufeff")
    lines = text.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None:
        raise AllOrNoneError(f"order file {path} is empty: write '# cycle' or '# line', then items")
    head = lines[first].strip()
    kind = head[1:].strip().lower() if head.startswith("#") else ""
    if kind not in KINDS:
        what = f"an unknown kind {kind!r}" if head.startswith("#") else f"no header ({head!r})"
        raise AllOrNoneError(
            f"order file {path}, line {first + 1}: {what}; the first line must be '# cycle' "
            "(months, weekdays) or '# line' (numbers, years)"
        )
    items: list[str] = []
    where: list[int] = []
    templates: list[str] = []
    seen: dict[str, int] = {}
    for i in range(first + 1, len(lines)):
        s = lines[i].strip()
        if not s:
            continue
        if s.startswith("#"):
            body = s[1:].strip()
            if body.lower().startswith("template:"):
                t = body.split(":", 1)[1].strip()
                if t.count("{}") != 1:
                    raise AllOrNoneError(
                        f"order file {path}, line {i + 1}: a template holds the item once as "
                        f"'{{}}', e.g. '# template: See you on {{}}'; got {t!r}"
                    )
                templates.append(t)
            continue
        if s in seen:
            raise AllOrNoneError(
                f"order file {path}, line {i + 1}: {s!r} repeats line {seen[s]}; list each "
                "item once"
            )
        seen[s] = i + 1
        items.append(s)
        where.append(i + 1)
    if len(items) < 4:
        raise AllOrNoneError(
            f"order file {path}: {len(items)} item(s); an order needs at least 4 (one per line)"
        )
    return OrderSet(path.stem, kind, tuple(items), tuple(templates), str(path), tuple(where))


def read_orders(paths: str | Path | Sequence[str | Path]) -> list[OrderSet]:
    """Order files (a file or a list of them), each read and validated."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    return [read_order_file(p) for p in paths]
