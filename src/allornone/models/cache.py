"""On-disk caches: extracted context representations ``F`` and de-quantised models.

Layout under :func:`cache_root` (``$ALLORNONE_CACHE`` or ``~/.cache/allornone``)::

    embeddings/<key>.safetensors   F (n x d) with the metadata in the safetensors header
    embeddings/<key>.json          manifest: the metadata + SHA-256 and size of the data file
    models/<name>-<hash>/          save_pretrained() output + allornone_cache.json (manifest
                                   with the SHA-256 and size of every file of the folder)
    gguf/<file>.gguf (+ .json)     assembled GGUF files of optional model packages (+ hash)

Every file is written to a temporary name in the same directory and moved into place with
``os.replace``, so a crash or a concurrent writer never leaves a torn entry; the manifest is
written last. On read the content hash is verified: a damaged or truncated entry is
reported once (a warning naming the file), deleted and rebuilt, never used. Temporary
files of killed processes are removed on the next write (see :mod:`._fs`). The key of an
``F`` entry is the SHA-256 of the model identity (name and a fingerprint of its weights), the
contexts, the dtype, the extraction settings and :data:`CACHE_VERSION`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import warn_cache_skipped
from ..store import contexts_digest  # one digest of ordered contexts: the store and this cache
from ._fs import atomic_file, atomic_write_bytes, clean_stale, sha256_file, warn_damaged

__all__ = [
    "CACHE_VERSION",
    "MODEL_CACHE_VERSION",
    "cache_root",
    "contexts_digest",
    "embedding_key",
    "load_embeddings",
    "save_embeddings",
    "weights_fingerprint",
]

#: Version of the F-cache format and extraction semantics; bump to invalidate old entries.
CACHE_VERSION = "allornone-F-v2"
#: Version of the de-quantised-model cache; a cache written by another version is rebuilt.
MODEL_CACHE_VERSION = "allornone-model-v2"  # v2: manifest with per-file SHA-256


def cache_root() -> Path:
    """The cache directory: ``$ALLORNONE_CACHE`` if set, else ``~/.cache/allornone``."""
    env = os.environ.get("ALLORNONE_CACHE")
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "allornone"
    return root


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def weights_fingerprint(module: torch.nn.Module, sample: int = 4096) -> str:
    """A cheap fingerprint of a module's parameters and buffers.

    For each tensor: its name, shape, dtype, its float32 sum and norm, and the bytes of a
    strided sample of up to ``sample`` values. Reads every weight once (about 0.1 s per 100 M
    params on a CPU). Not a cryptographic hash: an entry can only be mistaken for another if
    weights change while keeping every sum, norm and sampled value (the model adapter also
    tracks in-place edits through the tensors' version counters).
    """
    h = hashlib.sha256()
    with torch.no_grad():
        items = list(module.named_parameters()) + list(module.named_buffers())
        seen: set[int] = set()
        for name, t in items:
            if t.data_ptr() in seen and t.numel() > 0:
                h.update(f"{name}:tied".encode())
                continue
            seen.add(t.data_ptr())
            flat = t.detach().reshape(-1)
            h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
            if flat.numel() == 0:
                continue
            if flat.dtype.is_floating_point:  # float32 reductions: ~0.05 s per 100 M values
                f32 = flat if flat.dtype == torch.float32 else flat.float()
                h.update(f"{f32.sum().item()!r}:{torch.linalg.vector_norm(f32).item()!r}".encode())
            step = max(1, flat.numel() // sample)
            h.update(flat[::step].to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def embedding_key(identity: dict[str, Any], contexts: Sequence[str], settings: dict[str, Any]):
    """Cache key (hex SHA-256) of one extraction."""
    return _sha(
        {
            "version": CACHE_VERSION,
            "identity": identity,
            "contexts": contexts_digest(contexts),
            "n": len(contexts),
            "settings": settings,
        }
    )


def _emb_dir() -> Path:
    return cache_root() / "embeddings"


def save_embeddings(key: str, F: np.ndarray, metadata: dict[str, Any]) -> Path | None:
    """Write ``F`` (n x d), then its manifest (metadata + SHA-256), each atomically; returns
    the safetensors path.

    The cache is optional: when it cannot be written (a read-only or full disk, no
    permission) nothing is left half-written, one warning names the path and the reason, and
    None is returned; the caller goes on with ``F``.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import save_file

    d = _emb_dir()
    path = d / f"{key}.safetensors"
    meta = {**metadata, "version": CACHE_VERSION, "key": key}
    data_written = False
    try:
        d.mkdir(parents=True, exist_ok=True)
        clean_stale(d)
        with atomic_file(path) as tmp:
            save_file(
                {"F": np.ascontiguousarray(F)}, str(tmp), metadata={"allornone": json.dumps(meta)}
            )
            meta["sha256"], meta["bytes"] = sha256_file(tmp), tmp.stat().st_size
        data_written = True
        text = json.dumps(meta, sort_keys=True, indent=1)
        atomic_write_bytes(d / f"{key}.json", text.encode())
    except (OSError, SafetensorError) as exc:  # safetensors wraps a full disk in its own error
        if data_written:  # data without its manifest is never read: do not leave it
            _drop(path)
        warn_cache_skipped(getattr(exc, "filename", None) or path, exc)
        return None
    return path


def _drop(*paths: Path) -> None:
    for p in paths:
        try:
            p.unlink()
        except FileNotFoundError:
            pass
        except OSError:  # read-only cache: the entry stays unused
            pass


def load_embeddings(key: str) -> np.ndarray | None:
    """The cached ``F`` for ``key``, or None when absent, of another version, or damaged.

    The data file must match the SHA-256 and size recorded in its manifest; a damaged or
    truncated entry is reported (one warning naming the file) and deleted, so the caller
    recomputes and rewrites it.
    """
    from safetensors import safe_open

    path = _emb_dir() / f"{key}.safetensors"
    manifest = path.with_suffix(".json")
    if not path.exists():
        return None
    try:
        meta = json.loads(manifest.read_text())
    except FileNotFoundError:  # data without manifest: torn write or an older version
        return None
    except (OSError, ValueError):
        warn_damaged(manifest, "unreadable manifest")
        _drop(path, manifest)
        return None
    if not isinstance(meta, dict) or meta.get("version") != CACHE_VERSION:
        return None  # another version: overwritten by the next save
    if meta.get("key") != key:
        warn_damaged(manifest, "manifest of another entry")
        _drop(path, manifest)
        return None
    size = path.stat().st_size
    if size != meta.get("bytes"):
        warn_damaged(path, f"{size} bytes, expected {meta.get('bytes')}: truncated")
        _drop(path, manifest)
        return None
    if sha256_file(path) != meta.get("sha256"):
        warn_damaged(path, "content does not match its SHA-256")
        _drop(path, manifest)
        return None
    try:
        with safe_open(str(path), framework="numpy") as fh:
            return fh.get_tensor("F")
    except Exception as exc:  # hash matched but unreadable: written by something else
        warn_damaged(path, f"unreadable: {exc}")
        _drop(path, manifest)
        return None
