"""GGUF files: a structural check before de-quantising, and the de-quantised model cache.

:func:`check_gguf` reads the header and tensor table (no tensor data) and checks that the
file holds every tensor it declares: a file cut short anywhere (a 4 KB stub, a half-finished
download) is reported as "truncated or damaged" instead of a ``struct.error`` or reshape
error from deep inside the conversion. It also reads the model sizes the metadata declares
(:func:`declared_parameters`): transformers allocates the model from them before reading a
tensor, so a small file with a crafted header (no tensors, ``embedding_length`` 16384,
``block_count`` 64) is refused in one line instead of allocating hundreds of GB, as is a
model whose float32 copy cannot fit in the memory available.

:func:`load_gguf` de-quantises a GGUF once with transformers (about 18 s for SmolLM2), saves
the float32 result with ``save_pretrained`` under ``cache_root()/models/<name>-<hash>/`` and
loads it from there afterwards. The folder's manifest ``allornone_cache.json`` records
:data:`~.cache.MODEL_CACHE_VERSION` and the SHA-256 and size of every file; a folder that
does not match (a truncated ``config.json`` or ``model.safetensors``, an edited file) is
reported, deleted and rebuilt. The folder is built in a temporary sibling removed on any
error or Ctrl-C; leftovers of killed processes are removed on the next build.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from .._io import replace_dir, warn_cache_skipped
from .._validation import AllOrNoneError
from . import cache as _cache
from ._fs import (
    apply_umask,
    atomic_write_bytes,
    clean_stale,
    file_mode,
    sha256_file,
    temp_dir,
    warn_damaged,
)

__all__ = [
    "assembled_file",
    "check_gguf",
    "declared_parameters",
    "load_gguf",
    "offline",
    "safe_name",
]

MANIFEST = "allornone_cache.json"
# GGUF metadata value types -> struct format (8 string, 9 array handled apart)
_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?"}
_SCALAR.update({10: "Q", 11: "q", 12: "d"})


class _Damaged(Exception):
    pass


class _Array(int):
    """A metadata array, kept as its length only (e.g. the vocabulary's token list)."""


def _read(fh: BinaryIO, n: int) -> bytes:
    b = fh.read(n)
    if len(b) != n:
        raise _Damaged(f"the header ends early, at byte {fh.tell()}")
    return b


def _u(fh: BinaryIO, fmt: str) -> Any:
    return struct.unpack("<" + fmt, _read(fh, struct.calcsize(fmt)))[0]


def _string(fh: BinaryIO, limit: int) -> bytes:
    n = _u(fh, "Q")
    if n > limit:
        raise _Damaged(f"the header ends early: a {n}-byte string at byte {fh.tell()} does not fit")
    return _read(fh, n)


def _value(fh: BinaryIO, vtype: int, limit: int) -> Any:
    if vtype in _SCALAR:
        return _u(fh, _SCALAR[vtype])
    if vtype == 8:
        return _string(fh, limit)
    if vtype == 9:
        etype, count = _u(fh, "I"), _u(fh, "Q")
        if count > limit:
            raise _Damaged(f"the header ends early: an array of {count} values does not fit")
        if etype in _SCALAR:
            _read(fh, struct.calcsize(_SCALAR[etype]) * count)
        else:
            for _ in range(count):
                _value(fh, etype, limit)
        return _Array(count)
    raise _Damaged(f"unknown metadata value type {vtype} at byte {fh.tell()}")


def _damaged(path: Path, why: str) -> AllOrNoneError:
    return AllOrNoneError(
        f"GGUF file {path} is truncated or damaged ({why}; the file has "
        f"{path.stat().st_size:,} bytes): re-download it, or reinstall the package that ships it"
    )


def check_gguf(path: Path) -> None:
    """Raise a clear error unless ``path`` is a complete GGUF file (header + all tensors)."""
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    size = path.stat().st_size
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
            if magic != b"GGUF":
                raise AllOrNoneError(
                    f"{path} is not a GGUF file (it starts with {magic!r}, not b'GGUF')"
                )
            version = _u(fh, "I")
            if version not in (2, 3):
                raise _Damaged(f"unknown GGUF version {version}")
            n_tensors, n_kv = _u(fh, "Q"), _u(fh, "Q")
            if n_tensors > size or n_kv > size:
                raise _Damaged(f"{n_tensors} tensors / {n_kv} metadata entries declared")
            alignment = 32
            meta: dict[bytes, Any] = {}
            for _ in range(n_kv):
                key = _string(fh, size)
                value = _value(fh, _u(fh, "I"), size)
                meta[key] = value
                if key == b"general.alignment" and type(value) is int and value > 0:
                    alignment = value
            end = present = 0
            for _ in range(n_tensors):
                name = _string(fh, size)
                dims = [_u(fh, "Q") for _ in range(_u(fh, "I"))]
                ttype, offset = _u(fh, "I"), _u(fh, "Q")
                try:
                    block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ttype)]
                except (ValueError, KeyError):
                    raise _Damaged(f"tensor {name[:60]!r} has unknown type {ttype}") from None
                n = 1
                for d in dims:
                    n *= d
                end = max(end, offset + n // block * type_size)
                present += n
            data_start = -(-fh.tell() // alignment) * alignment
    except _Damaged as exc:
        raise _damaged(path, str(exc)) from None
    if data_start + end > size:
        raise _damaged(path, f"its header and tensors need {data_start + end:,} bytes")
    _check_declared_size(path, meta, present)


#: Room (parameters) between what a GGUF's metadata implies and the tensors it holds.
_SIZE_SLACK = 1_000_000


def declared_parameters(meta: dict[bytes, Any]) -> tuple[int, str]:
    """A lower bound on the parameters transformers allocates for a GGUF's metadata, and the
    metadata it came from (text); ``(0, "")`` when the sizes are not declared.

    transformers builds the model from the metadata (``ARCH.embedding_length`` d,
    ``ARCH.block_count`` b, ``ARCH.feed_forward_length`` f, the vocabulary V) before it reads
    a single tensor; every block has at least one d x d attention matrix and two d x f MLP
    matrices, and the embedding has V x d: ``b (d^2 + 2 d f) + V d``.
    """
    arch = meta.get(b"general.architecture")
    if not isinstance(arch, bytes):
        return 0, ""

    def num(key: str) -> int:
        v = meta.get(arch + b"." + key.encode())
        return int(v) if isinstance(v, int) and not isinstance(v, _Array) and v > 0 else 0

    d, b, f = num("embedding_length"), num("block_count"), num("feed_forward_length")
    tokens = meta.get(b"tokenizer.ggml.tokens")
    V = num("vocab_size") or (int(tokens) if isinstance(tokens, _Array) else 0)
    if not (d and b):
        return 0, ""
    how = f"{arch.decode(errors='replace')[:40]}: embedding_length {d:,}, block_count {b:,}"
    how += f", feed_forward_length {f:,}" if f else ""
    how += f", {V:,} tokens" if V else ""
    return b * (d * d + 2 * d * f) + V * d, how


def _check_declared_size(path: Path, meta: dict[bytes, Any], present: int) -> None:
    """Refuse a GGUF whose metadata would make transformers allocate more than the tensors
    the file holds (a crafted header), or more float32 memory than is available."""
    from .._validation import available_memory, human_bytes

    params, how = declared_parameters(meta)
    if not params:
        return
    split = meta.get(b"split.count")
    need = 4 * params  # de-quantised to float32
    if not (isinstance(split, int) and split > 1) and params > present + _SIZE_SLACK:
        raise AllOrNoneError(
            f"GGUF file {path} declares a model of at least {params:,} parameters ({how}; "
            f"{human_bytes(need)} as float32) but holds tensors for only {present:,}: it is "
            "damaged or crafted, and building it would allocate that memory for nothing; "
            "re-download it"
        )
    free = available_memory()
    if free is not None and need > free:
        raise AllOrNoneError(
            f"GGUF file {path} declares a model of at least {params:,} parameters ({how}): "
            f"de-quantised to float32 it needs at least {human_bytes(need)}, more than the "
            f"{human_bytes(free)} of memory available; use a smaller model or free memory"
        )


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """HF_HUB_OFFLINE=1 while loading local files (restored afterwards)."""
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = old


def safe_name(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:60]


def _manifest_files(folder: Path) -> dict[str, dict[str, Any]]:
    return {
        p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != MANIFEST
    }


def _verify(folder: Path, meta: dict[str, Any]) -> tuple[Path, str] | None:
    """None when every file of the manifest is there with its size and hash, else the first
    bad file and why."""
    files = meta.get("files")
    if not isinstance(files, dict) or "config.json" not in files:
        return folder / MANIFEST, "lists no files"
    for name, info in files.items():
        p = folder / name
        if not p.is_file():
            return p, "missing"
        if p.stat().st_size != info.get("bytes"):
            return p, f"{p.stat().st_size} bytes, expected {info.get('bytes')}: truncated"
        if sha256_file(p) != info.get("sha256"):
            return p, "content does not match its SHA-256"
    return None


def _from_cache(final: Path) -> tuple[Any, Any] | None:
    """The cached model + tokenizer, or None (absent, other version, or damaged: deleted)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    meta_path = final / MANIFEST
    if not final.is_dir():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        meta = None
    if not isinstance(meta, dict):
        warn_damaged(meta_path, "missing or unreadable", f"deleting {final.name}, rebuilding it")
    elif meta.get("version") != _cache.MODEL_CACHE_VERSION:
        import warnings

        from ._batching import user_stacklevel

        warnings.warn(
            f"model cache {final} was written by {meta.get('version', 'an unknown version')!r}, "
            f"not {_cache.MODEL_CACHE_VERSION!r}: rebuilding it",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    else:
        bad = _verify(final, meta)
        if bad is None:
            try:
                with offline():
                    tok = AutoTokenizer.from_pretrained(
                        final, local_files_only=True, trust_remote_code=False
                    )
                    model = AutoModelForCausalLM.from_pretrained(
                        final, dtype=torch.float32, local_files_only=True, trust_remote_code=False
                    )
                return model, tok
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                bad = final, f"cannot be loaded: {type(exc).__name__}: {str(exc)[:200]}"
        warn_damaged(bad[0], bad[1], f"deleting the cached model {final.name}, rebuilding it")
    shutil.rmtree(final, ignore_errors=True)
    return None


def load_gguf(path: Path, name: str) -> tuple[Any, Any]:
    """De-quantise a GGUF once, cache it with save_pretrained, and load the cached copy."""
    import torch
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM, AutoTokenizer

    st = path.stat()
    ident = {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    root = _cache.cache_root() / "models"
    final = root / f"{safe_name(name)}-{digest}"
    clean_stale(root, legacy=True)
    hit = _from_cache(final)
    if hit is not None:
        return hit
    check_gguf(path)
    try:
        with offline():
            tok = AutoTokenizer.from_pretrained(
                path.parent, gguf_file=path.name, trust_remote_code=False
            )
            model = AutoModelForCausalLM.from_pretrained(
                path.parent, gguf_file=path.name, dtype=torch.float32, trust_remote_code=False
            )
    except (struct.error, ValueError, RuntimeError, KeyError, IndexError, OSError) as exc:
        raise AllOrNoneError(
            f"GGUF file {path} could not be de-quantised ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]}): it is damaged, or of an architecture this "
            "transformers version cannot read; re-download it"
        ) from None
    # the de-quantised weights are plain float32 tensors: drop the GGUF quantizer marker so
    # that save_pretrained accepts the model
    setattr(model, "hf_quantizer", None)  # noqa: B010 - typed as a Tensor | Module
    for cfg in (model.config, getattr(model.config, "text_config", None)):
        if cfg is not None and hasattr(cfg, "quantization_config"):
            delattr(cfg, "quantization_config")
    try:
        with temp_dir(final) as tmp:
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            apply_umask(tmp)
            meta = {
                "version": _cache.MODEL_CACHE_VERSION,
                "source": ident,
                "name": name,
                "files": _manifest_files(tmp),
            }
            atomic_write_bytes(tmp / MANIFEST, json.dumps(meta, indent=1).encode())
            replace_dir(tmp, final)
    except (OSError, SafetensorError) as exc:  # a read-only or full cache: still usable
        warn_cache_skipped(getattr(exc, "filename", None) or final, exc)
    return model, tok


def assembled_file(
    target: Path, build: Callable[[Path], Path | None], *, sha256: str | None = None
) -> Path:
    """A file the tool assembles into the cache (optional model packages), verified on read.

    ``build(tmp_folder)`` writes the file into a temporary folder and returns its path (None:
    ``tmp_folder / target.name``). The SHA-256 (``sha256`` when known, else the one measured
    at assembly) is kept in ``target.json``; a file that no longer matches it is reported,
    deleted and assembled again.
    """
    side = target.with_name(target.name + ".json")
    if target.is_file():
        try:
            want = json.loads(side.read_text()).get("sha256")
        except (OSError, ValueError, AttributeError):
            want = None
        want = sha256 or want
        if want is not None and sha256_file(target) == want:
            if not side.is_file():
                atomic_write_bytes(side, json.dumps({"sha256": want}).encode())
            return target
        warn_damaged(target, "does not match its SHA-256" if want else "no recorded hash")
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target.parent, legacy=True)
    with temp_dir(target) as tmp:
        written = Path(build(tmp) or tmp / target.name)
        got = sha256_file(written)
        if sha256 is not None and got != sha256:
            raise AllOrNoneError(
                f"assembling {target.name} gave a file with SHA-256 {got[:16]}..., expected "
                f"{sha256[:16]}...: the installed parts are damaged or of another version; "
                "reinstall them"
            )
        os.chmod(written, file_mode())
        os.replace(written, target)
    atomic_write_bytes(side, json.dumps({"sha256": got}).encode())
    return target
