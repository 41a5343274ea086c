"""A progress bar over a run's named steps, with per-step timings (shared by audit and compare)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


class Steps:
    """Run named steps one by one under a progress bar on stderr and time each.

    >>> steps = Steps(["load", "fit"], enabled=False)
    >>> steps.run("load", lambda: 1)
    1
    >>> sorted(steps.timings)
    ['load']

    ``timings`` maps step name -> seconds (rounded to ms). Use as a context manager (or call
    :meth:`close`) so the bar is closed on errors too.
    """

    def __init__(self, names: Sequence[str], enabled: bool = True) -> None:
        self.names = list(names)
        self.bar = tqdm(total=len(self.names), desc="audit", file=sys.stderr, disable=not enabled)
        self.timings: dict[str, float] = {}

    def run(self, name: str, fn: Callable[[], T]) -> T:
        """Run ``fn()`` as step ``name``; returns what it returned."""
        self.bar.set_postfix_str(name)
        t = time.perf_counter()
        out = fn()
        self.timings[name] = round(time.perf_counter() - t, 3)
        self.bar.update(1)
        return out

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> Steps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
