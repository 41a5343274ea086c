"""results.json + arrays.safetensors: writing and reading an audit's results.

``results.json`` holds the summaries and per-item scalars; every array that
:func:`~.results.normalise` kept as ``numpy`` (more than 64 numbers, or 2-D) is stored in
``arrays.safetensors`` beside it and replaced in the JSON by ``{"$array": key}`` (the key is
the array's path, e.g. ``"properties/relational/country-capital/details/strong_map_A"``).
Both files are written atomically (temporary sibling + ``os.replace``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_path, atomic_write_text
from .._validation import AllOrNoneError
from .results import AuditResults

#: The version of the results this code writes; :func:`load_results` reads this major version.
SCHEMA_VERSION = "2.0"
RESULTS = "results.json"
ARRAYS = "arrays.safetensors"
REF = "$array"


# ---------------------------------------------------------------------------- split / join
def split_arrays(tree: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """``tree`` with every array replaced by ``{"$array": key}``, and ``key -> array``."""
    arrays: dict[str, np.ndarray] = {}

    def walk(x: Any, path: list[str]) -> Any:
        if isinstance(x, np.ndarray):
            key = "/".join(path) or "array"
            base, i = key, 2
            while key in arrays:
                key, i = f"{base}#{i}", i + 1
            arrays[key] = np.ascontiguousarray(x)
            return {REF: key}
        if isinstance(x, dict):
            return {k: walk(v, path + [_part(k)]) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [walk(v, path + [_label(v, i)]) for i, v in enumerate(x)]
        return x

    return walk(tree, []), arrays


def _part(s: Any) -> str:
    return str(s).replace("/", "_") or "_"


def _label(item: Any, i: int) -> str:
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        head = item.get("property") or item.get("kind")
        parts = [str(head)] if isinstance(head, str) else []
        return "/".join(_part(p) for p in parts + [item["name"]])
    return str(i)


def join_arrays(tree: Any, arrays: Any, where: str = ARRAYS) -> Any:
    """Inverse of :func:`split_arrays`; a reference to a missing key raises AllOrNoneError."""

    def walk(x: Any) -> Any:
        if isinstance(x, dict):
            if set(x) == {REF}:
                key = x[REF]
                if key not in arrays:
                    raise AllOrNoneError(
                        f"{where}: no array {key!r} (referenced by results.json); the two "
                        "files do not belong together: rerun the audit"
                    )
                return arrays[key]
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v) for v in x]
        return x

    return walk(tree)


# ---------------------------------------------------------------------------- write / read
def write_results(res: AuditResults, folder: str | Path) -> dict[str, str]:
    """Write ``results.json`` and ``arrays.safetensors`` into ``folder``; returns their names."""
    from safetensors.numpy import save_file

    folder = Path(folder)
    tree, arrays = split_arrays(res.to_tree())
    with atomic_path(folder / ARRAYS) as tmp:
        save_file(arrays, str(tmp), metadata={"schema_version": res.schema_version})
    atomic_write_text(folder / RESULTS, json.dumps(tree, indent=1, allow_nan=False))
    return {"json": RESULTS, "arrays": ARRAYS}


def read_tree(folder: str | Path) -> dict[str, Any]:
    """An audit's ``results.json`` with its array references resolved (plain dicts and lists,
    ``numpy`` arrays); the same checks as :func:`load_results`."""
    folder = Path(folder)
    path = folder / RESULTS
    if not path.is_file():
        raise AllOrNoneError(
            f"{folder}: no {RESULTS} here; pass the folder an audit wrote (allornone audit --out)"
        )
    try:
        tree = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AllOrNoneError(f"{path}: not valid JSON ({e}); rerun the audit") from e
    if not isinstance(tree, dict):
        raise AllOrNoneError(f"{path}: expected a JSON object at the top level")
    if tree.get("kind", "audit") != "audit":
        raise AllOrNoneError(
            f"{path}: results of kind {tree.get('kind')!r}; this reads the results of an audit"
        )
    version = str(tree.get("schema_version"))
    if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise AllOrNoneError(
            f"{path}: results schema {version}; this allornone reads schema "
            f"{SCHEMA_VERSION.split('.')[0]}.x: rerun the audit with this version"
        )
    if not _has_refs(tree):
        return tree
    return join_arrays(tree, _read_arrays(folder / ARRAYS), where=str(folder / ARRAYS))


def _has_refs(x: Any) -> bool:
    if isinstance(x, dict):
        return set(x) == {REF} or any(_has_refs(v) for v in x.values())
    if isinstance(x, list):
        return any(_has_refs(v) for v in x)
    return False


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    if not path.is_file():
        raise AllOrNoneError(
            f"{path}: missing; results.json refers to arrays stored there: copy the whole "
            "report folder, or rerun the audit"
        )
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error type for a truncated file
        raise AllOrNoneError(
            f"{path}: unreadable ({type(e).__name__}: {e}); the file is truncated or not a "
            "safetensors file: rerun the audit"
        ) from e


def load_results(folder: str | Path) -> AuditResults:
    """The typed results of the audit written in ``folder`` (``results.json`` + arrays).

    Every array reference is resolved into a ``numpy`` array, so the object equals the one
    :func:`~allornone.audit.run_audit` returned (numbers identical, arrays equal). Raises
    :class:`~allornone.AllOrNoneError` for a folder without ``results.json``, a schema
    version this allornone cannot read, a missing or truncated ``arrays.safetensors``, or a
    reference to an array that is not in it.
    """
    tree = read_tree(folder)
    return AuditResults.from_tree(tree)
