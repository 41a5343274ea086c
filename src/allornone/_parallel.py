"""Run independent NumPy/BLAS-heavy tasks side by side on the machine's cores.

BLAS parallelises large products well, but the small LAPACK calls and NumPy's element-wise
work between them run on one core. Running two independent tasks (the structures of two
models, two halves of the vocabulary) in threads, each with its share of the BLAS threads,
keeps every core busy. ``ALLORNONE_NUM_THREADS=1`` turns this off.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


def cpu_count() -> int:
    """Cores this process may use (``ALLORNONE_NUM_THREADS`` overrides)."""
    env = os.environ.get("ALLORNONE_NUM_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            pass
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def run_parallel(tasks: Sequence[Callable[[], T]]) -> list[T]:
    """Call each task (no arguments) and return the results in order.

    With two or more cores the tasks run in threads and the BLAS thread pool is divided
    between them (``cores // tasks`` each, through threadpoolctl); otherwise one after the
    other. An exception in a task is raised here. Do not nest: the BLAS limit is global.
    """
    cores = cpu_count()
    if len(tasks) < 2 or cores < 2:
        return [task() for task in tasks]
    from threadpoolctl import threadpool_limits

    workers = min(len(tasks), cores)
    with threadpool_limits(max(1, cores // workers), user_api="blas"):
        with ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(task) for task in tasks]
            return [f.result() for f in futures]


@contextmanager
def single_blas_thread() -> Iterator[None]:
    """BLAS on one thread inside the block (for loops of small products, where a second
    thread costs more than it gives; e.g. the KL probe's L-BFGS iterations)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        yield
