"""``allornone extract --engine ray``: the shards of an extraction over Ray workers.

Optional (``pip install 'allornone[ray]'``). The driver loads the model once for the store key
(weights fingerprint and settings, exactly as :func:`allornone.models.extract.extract`),
opens or resumes the same store, and hands the pending shards to ``workers`` Ray actors, each
holding its own copy of the model (one CPU each, or a GPU share when ``gpus_per_worker`` is
set). Actors return the shard's ``F``; only the driver writes (so the manifest has one
writer). A worker that dies (killed, out of memory) is replaced and its shard redone, up to
``retries`` times per shard. The store is the one the single-process engine writes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import AllOrNoneError
from .extract import ContextsFile, Extraction, open_for

#: Environment variable read by workers in tests: "SHARD:PATH" makes the worker that gets
#: shard SHARD exit abruptly once (while PATH exists; it is removed first).
KILL_ONCE_ENV = "ALLORNONE_RAY_KILL_ONCE"


class _Worker:
    """Ray actor body: one model, embeds one shard per call."""

    def __init__(self, model: Any, options: Mapping[str, Any], threads: int) -> None:
        import torch

        from . import load

        torch.set_num_threads(max(1, threads))
        self.lm = load(model, **{k: v for k, v in options.items() if v is not None})

    def embed(self, i: int, texts: list[str]) -> tuple[int, np.ndarray]:
        spec = os.environ.get(KILL_ONCE_ENV, "")
        if spec:
            shard, _, marker = spec.partition(":")
            if int(shard) == i and os.path.exists(marker):
                os.remove(marker)
                os._exit(1)  # simulate a killed worker (no cleanup, like SIGKILL)
        return i, self.lm.embed(texts, cache=False, progress=False)


def extract_ray(
    model: Any,
    contexts: Sequence[str] | ContextsFile,
    out: str | Path,
    *,
    workers: int = 2,
    shard_rows: int | None = None,
    load_options: Mapping[str, Any] | None = None,
    gpus_per_worker: float = 0.0,
    retries: int = 2,
    lm: Any = None,
    on_shard: Callable[[int, int], None] | None = None,
) -> Extraction:
    """Like :func:`~allornone.models.extract.extract` with the shards spread over Ray actors.

    ``model``: what :func:`allornone.models.load` takes (a name or path, loaded by every
    worker); ``lm``: the driver's already-loaded copy (loaded here when None). Starts a local
    Ray cluster (``workers`` CPUs) unless ``ray.init`` was called already or ``RAY_ADDRESS``
    names an existing cluster (then its resources are used).
    """
    try:
        import ray
        from ray.exceptions import RayActorError, WorkerCrashedError
    except ImportError as exc:
        raise AllOrNoneError(
            "--engine ray needs Ray: pip install 'allornone[ray]' (or use --engine local)"
        ) from exc
    if workers < 1:
        raise AllOrNoneError(f"workers must be >= 1, got {workers}")
    if not isinstance(model, (str, os.PathLike)):
        raise AllOrNoneError(
            "the Ray engine loads the model in every worker: pass its name or path, not an object"
        )
    options = dict(load_options or {})
    if lm is None:
        from . import load

        lm = load(str(model), **{k: v for k, v in options.items() if v is not None})
    texts = contexts.texts if isinstance(contexts, ContextsFile) else list(dict.fromkeys(contexts))
    store = open_for(lm, texts, out, shard_rows=shard_rows)
    todo = store.pending()
    if not todo:  # complete already: no cluster needed
        return Extraction.of(store.finish(), 0)
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        if address:  # an existing cluster (e.g. RAY_ADDRESS=ray://head:10001): its resources
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    cls = ray.remote(num_cpus=1, num_gpus=gpus_per_worker)(_Worker)

    def spawn() -> Any:
        return cls.remote(str(model), options, 1)

    actors = [spawn() for _ in range(min(workers, len(todo)))]
    queue = list(todo)
    failures: dict[int, int] = {}
    running: dict[Any, tuple[int, int]] = {}  # future -> (shard, actor slot)

    def submit(slot: int) -> None:
        i = queue.pop(0)
        lo, hi = store.shard_range(i)
        running[actors[slot].embed.remote(i, texts[lo:hi])] = (i, slot)

    for slot in range(len(actors)):
        if queue:
            submit(slot)
    try:
        while running:
            ready, _ = ray.wait(list(running), num_returns=1)
            fut = ready[0]
            i, slot = running.pop(fut)
            try:
                _, F = ray.get(fut)
            except (RayActorError, WorkerCrashedError) as exc:
                failures[i] = failures.get(i, 0) + 1
                if failures[i] > retries:
                    raise AllOrNoneError(
                        f"shard {i} failed {failures[i]} times on Ray workers ({exc}); the "
                        "shards written so far are kept: rerun to resume"
                    ) from exc
                actors[slot] = spawn()  # replace the dead worker, redo its shard
                queue.insert(0, i)
            else:
                store.write_shard(i, F)
                if on_shard is not None:
                    on_shard(i, store.n_shards)
            if queue:
                submit(slot)
    finally:
        for a in actors:
            ray.kill(a)
    store.finish()
    return Extraction.of(store, len(todo))
