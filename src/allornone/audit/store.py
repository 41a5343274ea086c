"""results.json + arrays.safetensors: writing and reading an audit's results.

``results.json`` holds the summaries and per-item scalars; every array that
:func:`~.results.normalise` kept as ``numpy`` (more than 64 numbers, or 2-D) is stored in
``arrays.safetensors`` beside it and replaced in the JSON by ``{"$array": key}`` (the key is
the array's path, e.g. ``"properties/relational/country-capital/details/strong_map_A"``).
Both files are written atomically (temporary sibling + ``os.replace``).

The two files are tied: ``results.json`` records the SHA-256 of the ``arrays.safetensors``
written with it (``"$arrays": {"sha256": ..., "run_id": ...}``; the run id is also in the
safetensors metadata). :func:`read_tree` reads both files, checks the hash and retries
briefly while a rerun republishes the folder, so it never returns one audit's summaries with
another's matrices.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
import warnings
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
#: Key of ``results.json`` that ties it to its arrays file: ``{"sha256": hex, "run_id": hex}``.
ARRAYS_RECORD = "$arrays"
#: Pauses (s) between the reads of a folder that looks mid-rewrite (a mixed pair, a missing
#: file): about 1 s in all before :func:`read_tree` gives up with one line.
RETRY_DELAYS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.4)


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
    run_id = uuid.uuid4().hex
    with atomic_path(folder / ARRAYS) as tmp:
        save_file(
            arrays, str(tmp), metadata={"schema_version": res.schema_version, "run_id": run_id}
        )
        digest = _sha256(tmp.read_bytes())
    tree[ARRAYS_RECORD] = {"sha256": digest, "run_id": run_id}
    atomic_write_text(folder / RESULTS, json.dumps(tree, indent=1, allow_nan=False))
    return {"json": RESULTS, "arrays": ARRAYS}


def read_tree(folder: str | Path) -> dict[str, Any]:
    """An audit's ``results.json`` with its array references resolved (plain dicts and lists,
    ``numpy`` arrays); the same checks as :func:`load_results`.

    Both files are read, then the arrays' SHA-256 is checked against the one ``results.json``
    records: a folder caught between two audits (a ``--force`` rerun republishing it, or files
    copied from two reports) is read again after a short pause, and refused in one line if it
    stays mixed. Results written before the record existed load with a warning (unchecked).
    """
    folder = Path(folder)
    mixed: _Mixed | None = None
    for delay in (*RETRY_DELAYS, None):
        try:
            return _read_pair(folder)
        except _Mixed as exc:
            mixed = exc
        if delay is not None:
            time.sleep(delay)
    assert mixed is not None
    raise mixed.error


class _Mixed(Exception):
    """The folder looks mid-rewrite; ``error`` is the message if it stays so."""

    def __init__(self, error: AllOrNoneError) -> None:
        super().__init__(str(error))
        self.error = error


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_pair(folder: Path) -> dict[str, Any]:
    path = folder / RESULTS
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        error = AllOrNoneError(
            f"{folder}: no {RESULTS} here; pass the folder an audit wrote (allornone audit --out)"
        )
        if folder.is_dir() and not (folder / ARRAYS).exists():
            raise error from None
        raise _Mixed(error) from None  # the folder is being swapped: look again
    try:
        tree = json.loads(raw.decode("utf-8"))
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
    record = tree.pop(ARRAYS_RECORD, None)
    if not _has_refs(tree):
        return tree
    apath = folder / ARRAYS
    try:
        data = apath.read_bytes()
    except FileNotFoundError:
        error = AllOrNoneError(
            f"{apath}: missing; results.json refers to arrays stored there: copy the whole "
            "report folder, or rerun the audit"
        )
        raise (_Mixed(error) if record is not None else error) from None
    if record is None:
        warnings.warn(
            f"{path}: written before allornone recorded the SHA-256 of {ARRAYS}, so whether "
            "the two files belong to the same audit is not checked; rerun the audit to get "
            "the check",
            stacklevel=4,
        )
    elif not isinstance(record, dict) or record.get("sha256") != _sha256(data):
        _parse_arrays(apath, data)  # a truncated or damaged file says so at once
        raise _Mixed(
            AllOrNoneError(
                f"{folder}: {RESULTS} and {ARRAYS} are from two different audits (the "
                "arrays' SHA-256 is not the one results.json records): the folder is being "
                "rewritten by another audit, or its files were mixed or modified: wait for "
                "that audit to finish and load it again, or rerun the audit"
            )
        )
    return join_arrays(tree, _parse_arrays(apath, data)[0], where=str(apath))


def _has_refs(x: Any) -> bool:
    if isinstance(x, dict):
        return set(x) == {REF} or any(_has_refs(v) for v in x.values())
    if isinstance(x, list):
        return any(_has_refs(v) for v in x)
    return False


def _parse_arrays(path: Path, data: bytes) -> tuple[dict[str, np.ndarray], str | None]:
    """The arrays held in ``data`` (the bytes of ``path``) and the run id in its metadata."""
    import struct

    from safetensors.numpy import load

    try:
        arrays = load(data)
        (n,) = struct.unpack("<Q", data[:8])
        meta = json.loads(data[8 : 8 + n]).get("__metadata__") or {}
    except Exception as e:  # safetensors raises its own error type for a truncated file
        raise AllOrNoneError(
            f"{path}: unreadable ({type(e).__name__}: {e}); the file is truncated or not a "
            "safetensors file: rerun the audit"
        ) from e
    run = meta.get("run_id") if isinstance(meta, dict) else None
    return arrays, run if isinstance(run, str) else None


def load_results(folder: str | Path) -> AuditResults:
    """The typed results of the audit written in ``folder`` (``results.json`` + arrays).

    Every array reference is resolved into a ``numpy`` array, so the object equals the one
    :func:`~allornone.audit.run_audit` returned (numbers identical, arrays equal). Raises
    :class:`~allornone.AllOrNoneError` for a folder without ``results.json``, a schema
    version this allornone cannot read, a missing or truncated ``arrays.safetensors``, an
    ``arrays.safetensors`` of another audit (its SHA-256 is not the one ``results.json``
    records; a folder being republished is read again for about a second first), or a
    reference to an array that is not in it.
    """
    tree = read_tree(folder)
    return AuditResults.from_tree(tree)
