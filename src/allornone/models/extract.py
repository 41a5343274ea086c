"""Extract context representations ``F`` of many contexts into a representation store.

``extract(lm, contexts, out)`` embeds the contexts shard by shard (each shard batch by batch
through the model's public :meth:`~allornone.models.LanguageModel.embed`) and writes them to a
:class:`~allornone.store.RepresentationStore`. The store is keyed by the model's weights
fingerprint, the contexts (deduplicated, first occurrence kept, order recorded) and the
settings that change ``F``; rerunning the same extraction after an interruption embeds only
the shards that are missing or fail their checksum. From the command line::

    allornone extract --model smollm2 --contexts texts.jsonl --out store/

Contexts files: one text per line (``.txt`` and anything else), JSON Lines with a ``text``
field (``.jsonl``/``.ndjson``; ``--column`` names another field; a line may also be a JSON
string), or a Parquet column (``.parquet``, needs pyarrow). Empty texts are skipped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import AllOrNoneError
from ..store import RepresentationStore

#: Largest contexts file read (bytes); larger corpora: split them into several stores.
MAX_CONTEXTS_BYTES = 4 * 2**30


@dataclass(frozen=True)
class ContextsFile:
    """Contexts read from a file: unique ``texts`` in first-occurrence order, and counts."""

    texts: list[str]
    read: int
    duplicates: int
    empty: int
    source: str


@dataclass(frozen=True)
class Extraction:
    """What :func:`extract` did: the store, shards embedded now and before (resumed)."""

    store: RepresentationStore
    n: int
    d: int
    shards_written: int
    shards_reused: int

    @classmethod
    def of(cls, store: RepresentationStore, written: int) -> Extraction:
        """The summary of a finished ``store`` of which ``written`` shards were embedded now."""
        return cls(store, store.n, store.d, written, store.n_shards - written)


def read_contexts(path: str | Path, *, column: str | None = None) -> ContextsFile:
    """Contexts from a text, JSON Lines or Parquet file (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise AllOrNoneError(f"contexts file {path} does not exist")
    if path.is_dir():
        raise AllOrNoneError(f"contexts file {path} is a folder: pass a file")
    if path.stat().st_size > MAX_CONTEXTS_BYTES:
        raise AllOrNoneError(
            f"contexts file {path} is larger than {MAX_CONTEXTS_BYTES // 2**30} GiB: split it"
        )
    suffix = path.suffix.lower()
    raw: list[str | None]
    if suffix == ".parquet":
        raw = _parquet(path, column or "text")
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise AllOrNoneError(f"contexts file {path} is not UTF-8 text: {exc}") from exc
        lines = text.splitlines()
        if suffix in (".jsonl", ".ndjson"):
            raw = [_json_line(line, i + 1, path, column or "text") for i, line in enumerate(lines)]
        else:
            if column is not None:
                raise AllOrNoneError(
                    f"--column applies to .jsonl and .parquet files, not to {path.name}"
                )
            raw = list(lines)
    seen: dict[str, None] = {}
    empty = 0
    for t in raw:
        if t is None or not t.strip():
            empty += 1
            continue
        seen.setdefault(t, None)
    texts = list(seen)
    if not texts:
        raise AllOrNoneError(f"contexts file {path} has no non-empty texts")
    return ContextsFile(
        texts=texts,
        read=len(raw),
        duplicates=len(raw) - empty - len(texts),
        empty=empty,
        source=str(path),
    )


def _json_line(line: str, lineno: int, path: Path, column: str) -> str | None:
    if not line.strip():
        return None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise AllOrNoneError(f"{path} line {lineno} is not JSON ({exc.msg})") from exc
    if isinstance(obj, str):
        return obj
    if not isinstance(obj, dict) or column not in obj:
        fields = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise AllOrNoneError(
            f"{path} line {lineno} has no {column!r} field (has {fields}): pass --column NAME"
        )
    value = obj[column]
    if not isinstance(value, str):
        raise AllOrNoneError(
            f"{path} line {lineno}: field {column!r} is a {type(value).__name__}, not a string"
        )
    return value


def _parquet(path: Path, column: str) -> list[str | None]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise AllOrNoneError(
            f"reading {path.name} needs pyarrow: pip install pyarrow (or pass a .txt/.jsonl file)"
        ) from exc
    try:
        table = pq.read_table(path, columns=[column])
    except KeyError as exc:
        names = pq.read_schema(path).names
        raise AllOrNoneError(
            f"{path} has no column {column!r} (columns: {names}): pass --column NAME"
        ) from exc
    except Exception as exc:  # pyarrow raises its own error types for damaged files
        raise AllOrNoneError(f"{path} is not a readable Parquet file: {exc}") from exc
    values = table.column(column).to_pylist()
    if values and not all(v is None or isinstance(v, str) for v in values):
        raise AllOrNoneError(f"{path}: column {column!r} does not hold strings")
    return values


def model_fingerprint(lm: Any) -> str:
    """Fingerprint of a loaded model's weights (transformers: every parameter and buffer;
    word2vec: the unembedding bytes), with its class name."""
    hf = getattr(lm, "hf_model", None)
    if hf is not None:
        from .cache import weights_fingerprint

        return f"{type(hf).__name__}:{weights_fingerprint(hf)}"
    G = np.ascontiguousarray(lm.unembedding())
    h = hashlib.sha256(repr((G.shape, str(G.dtype))).encode())
    h.update(G.view(np.uint8).data)
    return f"{type(lm).__name__}:{h.hexdigest()}"


def extraction_settings(lm: Any) -> dict[str, Any]:
    """The settings that change ``F`` (part of the store key)."""
    return {
        "extractor": "embed/last-token",
        "dtype": str(getattr(lm, "dtype", "")),
        "max_length": getattr(lm, "max_length", None),
        "padding_side": getattr(lm, "padding_side", None),
        "d": int(lm.d),
    }


def store_dtype(lm: Any) -> str:
    """float64 for float64 models, else float32 (exact for bfloat16/float16 models)."""
    return "float64" if "float64" in str(getattr(lm, "dtype", "")) else "float32"


def open_for(
    lm: Any,
    texts: Sequence[str],
    out: str | Path,
    *,
    shard_rows: int | None = None,
) -> RepresentationStore:
    """The store at ``out`` for this model and these contexts (created, or resumed)."""
    return RepresentationStore.create(
        out,
        model=model_fingerprint(lm),
        d=int(lm.d),
        contexts=list(texts),
        dtype=store_dtype(lm),
        settings=extraction_settings(lm),
        shard_rows=shard_rows,
    )


def extract(
    lm: Any,
    contexts: Sequence[str] | ContextsFile,
    out: str | Path,
    *,
    shard_rows: int | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
    on_shard: Callable[[int, int], None] | None = None,
) -> Extraction:
    """Embed ``contexts`` with ``lm`` into the store at ``out`` (resuming a partial one).

    ``contexts``: texts (deduplicated here, first occurrence kept) or a :class:`ContextsFile`.
    ``on_shard(i, total)`` is called after each shard is written.
    """
    texts = contexts.texts if isinstance(contexts, ContextsFile) else _unique(contexts)
    store = open_for(lm, texts, out, shard_rows=shard_rows)
    todo = store.pending()
    for i in todo:
        lo, hi = store.shard_range(i)
        F = lm.embed(texts[lo:hi], batch_size=batch_size, progress=progress, cache=False)
        store.write_shard(i, F)
        if on_shard is not None:
            on_shard(i, store.n_shards)
    store.finish()
    return Extraction.of(store, len(todo))


def _unique(contexts: Sequence[str]) -> list[str]:
    if isinstance(contexts, str):
        raise AllOrNoneError("contexts is one string: pass a list of texts")
    out = list(dict.fromkeys(str(c) for c in contexts if str(c).strip()))
    if not out:
        raise AllOrNoneError("contexts is empty: pass at least one non-empty text")
    return out
