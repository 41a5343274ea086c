"""A pickle-free file format for word2vec models, and the detection of pickle files.

gensim's own ``Word2Vec.save`` / ``Word2Vec.load`` is a Python pickle: loading one runs any
code stored in it. allornone therefore saves word2vec models as a folder::

    FOLDER/word2vec.json            format tag, settings, vocabulary (index order), SHA-256
    FOLDER/word2vec.safetensors     "vectors" (V x d), "syn1neg" (V x d), optional "counts"

read back with :func:`read_word2vec` (JSON + safetensors: nothing is executed). gensim pickle
files are read only with an explicit ``trust_pickle=True`` (CLI ``--trust-pickle``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import AllOrNoneError
from ._fs import apply_umask, sha256_file, temp_dir

__all__ = [
    "W2V_FORMAT",
    "is_word2vec_dir",
    "looks_like_pickle",
    "read_word2vec",
    "save_word2vec",
]

#: Format tag written into ``word2vec.json``.
W2V_FORMAT = "allornone-word2vec-v1"
_JSON = "word2vec.json"
_ARRAYS = "word2vec.safetensors"


def looks_like_pickle(path: Path) -> bool:
    """Whether a file starts like a Python pickle (protocol 2-5 header, or gensim's)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
    except OSError:
        return False
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def is_word2vec_dir(path: Path) -> bool:
    return path.is_dir() and (path / _JSON).is_file()


def save_word2vec(w2v: Any, folder: str | Path, *, name: str | None = None) -> Path:
    """Write a gensim ``Word2Vec`` (negative sampling) to ``folder`` in the format above.

    The folder is written next to its final place and moved there when complete; an
    existing folder of this format is replaced, any other existing path is refused.
    """
    from safetensors.numpy import save_file

    from .._io import replace_dir

    folder = Path(folder)
    if folder.exists() and not is_word2vec_dir(folder):
        raise AllOrNoneError(
            f"{folder} exists and is not a word2vec folder written by allornone: choose a new path"
        )
    kv = w2v.wv
    arrays = {
        "vectors": np.ascontiguousarray(kv.vectors, dtype=np.float32),
        "syn1neg": np.ascontiguousarray(w2v.syn1neg, dtype=np.float32),
    }
    try:
        arrays["counts"] = np.asarray(
            [int(kv.get_vecattr(k, "count")) for k in kv.index_to_key], dtype=np.int64
        )
    except (KeyError, AttributeError):
        pass
    with temp_dir(folder) as tmp:
        save_file(arrays, str(tmp / _ARRAYS))
        meta = {
            "format": W2V_FORMAT,
            "name": name,
            "vector_size": int(w2v.vector_size),
            "sg": int(w2v.sg),
            "negative": int(w2v.negative),
            "hs": int(getattr(w2v, "hs", 0) or 0),
            "cbow_mean": int(getattr(w2v, "cbow_mean", 1)),
            "window": int(getattr(w2v, "window", 5)),
            "vocabulary": list(kv.index_to_key),
            "sha256": sha256_file(tmp / _ARRAYS),
        }
        (tmp / _JSON).write_text(json.dumps(meta), encoding="utf-8")
        apply_umask(tmp)
        replace_dir(tmp, folder)
    return folder


def read_word2vec(folder: str | Path) -> tuple[Any, str | None]:
    """``(gensim Word2Vec, saved name)`` from a folder written by :func:`save_word2vec`."""
    from gensim.models import KeyedVectors, Word2Vec
    from safetensors.numpy import load_file

    folder = Path(folder)
    try:
        meta = json.loads((folder / _JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AllOrNoneError(
            f"{folder / _JSON} cannot be read ({exc}): re-save the model"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != W2V_FORMAT:
        raise AllOrNoneError(
            f"{folder / _JSON} is not a {W2V_FORMAT} file (format "
            f"{meta.get('format') if isinstance(meta, dict) else None!r}): re-save the model"
        )
    arrays_path = folder / _ARRAYS
    if not arrays_path.is_file() or sha256_file(arrays_path) != meta.get("sha256"):
        raise AllOrNoneError(
            f"{arrays_path} is missing or does not match the SHA-256 in {_JSON} (truncated or "
            "modified): re-save or re-train the model"
        )
    arrays = load_file(str(arrays_path))
    vocab = meta.get("vocabulary")
    vectors, syn1neg = arrays.get("vectors"), arrays.get("syn1neg")
    if (
        not isinstance(vocab, list)
        or vectors is None
        or syn1neg is None
        or vectors.ndim != 2
        or vectors.shape != syn1neg.shape
        or vectors.shape[0] != len(vocab)
    ):
        raise AllOrNoneError(
            f"{folder} is inconsistent (vocabulary, vectors and syn1neg shapes differ): "
            "re-save the model"
        )
    d = int(vectors.shape[1])
    w2v = Word2Vec(
        vector_size=d,
        sg=int(meta.get("sg", 1)),
        hs=int(meta.get("hs", 0)),
        negative=int(meta.get("negative", 5)),
        cbow_mean=int(meta.get("cbow_mean", 1)),
        window=int(meta.get("window", 5)),
        min_count=1,
        workers=1,
    )
    kv = KeyedVectors(d, count=0, dtype=np.float32)
    kv.add_vectors([str(w) for w in vocab], vectors)
    if "counts" in arrays:
        for w, c in zip(kv.index_to_key, arrays["counts"].tolist()):
            kv.set_vecattr(w, "count", int(c))
    w2v.wv = kv
    w2v.syn1neg = syn1neg
    name = meta.get("name")
    return w2v, name if isinstance(name, str) else None
