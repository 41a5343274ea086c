"""Adapter from a transformers causal LM to the factors ``(F, G)`` of THEORY.md 1.

``f(x)`` is the final hidden state at the last real token of ``x`` **after** the final norm
(the input of the LM head), times any constant logit scale; ``g(y)`` is the LM-head row of
``y`` (bias absorbed as an extra column, with a column of ones appended to ``f``).

Extraction calls the base model (``model.base_model``: ``model.model`` for Llama/Gemma,
``model.transformer`` for GPT-2), whose last hidden state is already normed, so the
full-vocabulary logits are never computed at every position. Contexts are sorted by length
before batching (little padding) and put back in the input order. Padding uses explicit
attention masks and position ids, so left and right padding give the same ``F``.

Long contexts are truncated from the LEFT to the model window (the first tokens are dropped,
a leading BOS is kept) with a warning: the next-token prediction depends most on the end.
"""

from __future__ import annotations

import inspect
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from .._validation import AllOrNoneError
from ..predictor import NextTokenPredictor
from . import cache as _cache
from ._head import HeadSpec, inspect_head
from .tokens import WordTokens, encode_word, special_layout, token_labels, word_tokens

__all__ = ["DEFAULT_CHECK_CONTEXTS", "LOGIT_CHECK_RTOL", "LanguageModel", "resolve_dtype"]

#: Contexts used by :meth:`LanguageModel.check_logits` when none are given.
DEFAULT_CHECK_CONTEXTS = (
    "The capital of France is Paris. The capital of Germany is",
    "Once upon a time, there was a little",
    "import numpy as np\nx = np.",
    "She opened the door and",
)

#: Tolerance of the load-time logits check, relative to the logits' scale: the check fails
#: when ``max |F G^T - logits| > rtol * max(1, max |logits|)``. Set per compute dtype: float32
#: extraction reproduces HF logits to ~1e-6 relative (SmolLM2: 1.6e-5 absolute on logits of
#: size ~20), bfloat16 rounds the logits to 8 significant bits (~4e-3 relative).
LOGIT_CHECK_RTOL: dict[torch.dtype, float] = {
    torch.float64: 1e-9,
    torch.float32: 1e-4,
    torch.float16: 2e-2,
    torch.bfloat16: 3e-2,
}

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float64": torch.float64,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def resolve_dtype(dtype: Any) -> torch.dtype | None:
    """``None`` | torch dtype | name (``"float32"``, ``"bfloat16"``, ...) -> torch dtype."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and dtype.lower() in _DTYPES:
        return _DTYPES[dtype.lower()]
    raise AllOrNoneError(f"dtype={dtype!r} is not supported; use one of {sorted(_DTYPES)}")


def _resolve_device(device: Any, model: torch.nn.Module | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    if model is not None:
        try:
            return next(model.parameters()).device
        except StopIteration:  # pragma: no cover - a model without parameters
            pass
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _accepts(fn: Any, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _user_stacklevel() -> int:
    """``stacklevel`` that points a warning at the first frame outside this package."""
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(1), 1  # noqa: SLF001
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(pkg):
        frame, level = frame.f_back, level + 1
    return level


def _has_hooks(model: torch.nn.Module) -> bool:
    return any(
        m._forward_hooks or m._forward_pre_hooks
        for m in model.modules()  # noqa: SLF001
    )


#: Padded lengths on CUDA are rounded up to a multiple of this (see ``LanguageModel._pad``).
CUDA_PAD_MULTIPLE = 16


class LanguageModel:
    """A transformers causal LM seen as a next-token predictor ``softmax(f(x)^T g(y))``.

    Build it with :func:`allornone.models.load`. Parameters (also accepted by ``load``):

    Parameters
    ----------
    hf_model : transformers.PreTrainedModel
        A causal LM (``*ForCausalLM``) with a linear head.
    tokenizer : transformers tokenizer
        Its tokenizer (BOS/EOS handling follows it; a trailing EOS is never kept).
    name : str
        Display name (also part of the cache key).
    dtype : None | "float32" | "bfloat16" | "float16" | "float64" | torch.dtype
        Compute dtype; the model is cast to it (in place, like ``model.to``; the device move
        too). None keeps the model's dtype.
    device : None | str | torch.device
        None: the model's current device (models loaded by ``load``: CUDA when available).
    batch_size : int
        Most contexts per forward batch (default 32; 128 on CUDA).
    max_batch_tokens : int
        Most padded tokens per batch (default 16384 on CPU, 131072 on CUDA).
    max_length : int, optional
        Model window in tokens; default from the config (``max_position_embeddings``...).
    padding_side : None | "left" | "right"
        Padding side used by :meth:`embed`; None follows the tokenizer.
    allow_nonlinear_head : bool
        Accept a ``tanh`` softcapped head (recorded in :attr:`head_warnings`).
    logit_scale : float, optional
        Constant logit multiplier for heads whose scale is not in the config.
    check : bool
        Run :meth:`check_logits` now and refuse the model if it fails (default True).
    logit_tol : float, optional
        Relative tolerance of the check (default :data:`LOGIT_CHECK_RTOL` of the dtype).
    cache : bool
        Default for :meth:`embed`'s on-disk cache of ``F`` (default True).

    Attributes
    ----------
    name, d, V, tokenizer, hf_model, head (:class:`HeadSpec`), head_notes, head_warnings,
    logit_check (max abs deviation found at load, or None), logit_check_tol,
    max_length, device, dtype, n_forward_batches (forward batches run so far).
    """

    def __init__(
        self,
        hf_model: Any,
        tokenizer: Any,
        *,
        name: str | None = None,
        dtype: Any = None,
        device: Any = None,
        batch_size: int | None = None,
        max_batch_tokens: int | None = None,
        max_length: int | None = None,
        padding_side: str | None = None,
        allow_nonlinear_head: bool = False,
        logit_scale: float | None = None,
        check: bool = True,
        logit_tol: float | None = None,
        cache: bool = True,
        check_contexts: Sequence[str] | None = None,
    ) -> None:
        if tokenizer is None:
            raise AllOrNoneError(
                "tokenizer is None: pass the model's tokenizer, e.g. "
                "load(model, tokenizer=AutoTokenizer.from_pretrained(path))"
            )
        if not isinstance(hf_model, torch.nn.Module):
            raise AllOrNoneError(
                f"hf_model is a {type(hf_model).__name__}, expected a transformers model"
            )
        self.device = _resolve_device(device, hf_model)
        tdtype = resolve_dtype(dtype)
        hf_model = (
            hf_model.to(self.device) if tdtype is None else hf_model.to(self.device, dtype=tdtype)
        )
        hf_model.eval()
        self.hf_model = hf_model
        self.tokenizer = tokenizer
        self.name = name or str(getattr(hf_model, "name_or_path", "") or type(hf_model).__name__)
        self.dtype: torch.dtype = next(hf_model.parameters()).dtype
        self.head: HeadSpec = inspect_head(
            hf_model, allow_nonlinear_head=allow_nonlinear_head, logit_scale=logit_scale
        )
        base = getattr(hf_model, "base_model", None)
        self._base: torch.nn.Module | None = (
            base if isinstance(base, torch.nn.Module) and base is not hf_model else None
        )
        fwd = self._base if self._base is not None else hf_model
        self._pass_positions = _accepts(fwd.forward, "position_ids")
        self._pass_use_cache = _accepts(fwd.forward, "use_cache")
        self._logits_to_keep = _accepts(hf_model.forward, "logits_to_keep")
        self._prefix, self._n_suffix = special_layout(tokenizer)
        self.max_length = int(max_length) if max_length else self._window()
        if self.max_length <= len(self._prefix):
            raise AllOrNoneError(f"max_length={self.max_length} leaves no room for any token")
        pad = getattr(tokenizer, "pad_token_id", None)
        if pad is None:
            pad = getattr(tokenizer, "eos_token_id", None)
        self._pad_id = int(pad) if pad is not None else 0
        side = padding_side or getattr(tokenizer, "padding_side", "right") or "right"
        if side not in ("left", "right"):
            raise AllOrNoneError(f"padding_side={side!r}: use 'left' or 'right'")
        self.padding_side: str = side
        cuda = self.device.type == "cuda"
        self.batch_size = int(batch_size or (128 if cuda else 32))
        self.max_batch_tokens = int(max_batch_tokens or (131072 if cuda else 16384))
        self.cache = bool(cache)
        self.n_forward_batches = 0
        self._G: np.ndarray | None = None
        self._tokens: list[str] | None = None
        self._fp_state: tuple | None = None
        self._fp: str | None = None
        self.logit_check: float | None = None
        self.logit_check_scale: float | None = None
        self.logit_check_tol = float(
            logit_tol if logit_tol is not None else LOGIT_CHECK_RTOL.get(self.dtype, 3e-2)
        )
        if check:
            dev = self.check_logits(check_contexts)
            bound = self.logit_check_tol * max(1.0, self.logit_check_scale or 0.0)
            if not dev <= bound:
                raise AllOrNoneError(self._check_failure(dev, bound, check_contexts))

    # ------------------------------------------------------------------ basic facts
    @property
    def d(self) -> int:
        """Dimension of ``f`` and ``g`` (hidden size, +1 when a bias is absorbed)."""
        return int(self.head.weight.shape[1]) + (1 if self.head.bias is not None else 0)

    @property
    def V(self) -> int:
        """Number of tokens (rows of the LM head)."""
        return int(self.head.weight.shape[0])

    @property
    def tied(self) -> bool:
        return self.head.tied

    @property
    def head_notes(self) -> list[str]:
        return list(self.head.notes)

    @property
    def head_warnings(self) -> list[str]:
        """Departures from ``softmax(f^T g)`` accepted at load (empty for a clean head)."""
        return list(self.head.warnings)

    @property
    def tokens(self) -> list[str]:
        """Unique label of every token id (see :func:`tokens.token_labels`), length V."""
        if self._tokens is None:
            self._tokens = token_labels(self.tokenizer, self.V)
        return self._tokens

    def __repr__(self) -> str:
        chk = "unchecked" if self.logit_check is None else f"logit check {self.logit_check:.2g}"
        return (
            f"LanguageModel({self.name!r}, d={self.d}, V={self.V}, "
            f"{'tied' if self.tied else 'untied'}, {self.dtype}, {self.device}, {chk})"
        )

    def report(self) -> str:
        """Multi-line description of the head adaptation and the logits check."""
        lines = [repr(self)] + [f"  head: {n}" for n in self.head.notes]
        lines += [f"  WARNING: {w}" for w in self.head.warnings]
        if self.logit_check is not None:
            lines.append(
                f"  logits check: max |F G^T - logits| = {self.logit_check:.3g} on logits of "
                f"size {self.logit_check_scale:.3g} (tolerance {self.logit_check_tol:g} relative)"
            )
        return "\n".join(lines)

    # ------------------------------------------------------------------ tokenisation
    def _window(self) -> int:
        cfg = getattr(self.hf_model, "config", None)
        cfg = getattr(cfg, "text_config", None) or cfg
        for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
            v = getattr(cfg, attr, None)
            if isinstance(v, int) and v > 0:
                return v
        v = getattr(self.tokenizer, "model_max_length", None)
        return int(v) if isinstance(v, int) and 0 < v < 10**7 else 2048

    @staticmethod
    def _as_list(contexts: Sequence[str] | str, what: str = "contexts") -> list[str]:
        if isinstance(contexts, str):
            contexts = [contexts]
        try:
            out = list(contexts)
        except TypeError:
            raise AllOrNoneError(
                f"{what} must be a list of strings, got {type(contexts).__name__}"
            ) from None
        if not out:
            raise AllOrNoneError(f"{what} is empty: pass at least one string")
        for i, c in enumerate(out):
            if not isinstance(c, str):
                raise AllOrNoneError(f"{what}[{i}] is a {type(c).__name__}, expected a string")
            if c == "":
                raise AllOrNoneError(
                    f"{what}[{i}] is the empty string: a next-token prediction needs at least "
                    "one token of context; drop it or give it text"
                )
        return out

    def encode(self, contexts: Sequence[str] | str, *, warn: bool = True) -> list[list[int]]:
        """Token ids of each context as the model sees it: tokenizer's BOS prefix (if any),
        no trailing special tokens, truncated from the left to :attr:`max_length`."""
        texts = self._as_list(contexts)
        enc = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        keep = self.max_length - len(self._prefix)
        out: list[list[int]] = []
        truncated: list[int] = []
        for i, ids in enumerate(enc):
            ids = list(ids)
            if not ids:
                raise AllOrNoneError(
                    f"contexts[{i}] = {texts[i]!r} encodes to no tokens; give it visible text"
                )
            if len(ids) > keep:
                truncated.append(i)
                ids = ids[-keep:]
            out.append(self._prefix + ids)
        if truncated and warn:
            warnings.warn(
                f"{len(truncated)} of {len(texts)} contexts are longer than the model window "
                f"({self.max_length} tokens) and were truncated from the LEFT (first tokens "
                f"dropped{', BOS kept' if self._prefix else ''}); first at index {truncated[0]}",
                UserWarning,
                stacklevel=_user_stacklevel(),
            )
        return out

    def word_tokens(self, words: Sequence[str] | str, leading_space: bool = True) -> WordTokens:
        """How each word is tokenised in running text (``" word"`` / ``"▁word"``).

        Returns a :class:`~allornone.models.tokens.WordTokens` report with the ids, the
        pieces, and which words are single-token, multi-token or unknown.
        """
        return word_tokens(self.tokenizer, words, leading_space)

    def token_id(self, word: str, leading_space: bool = True) -> int:
        """The single token id of ``word`` in running text; raises if it is not one token."""
        rep = self.word_tokens([word], leading_space)
        if word in rep.single:
            return rep.single[word]
        if word in rep.unknown:
            raise AllOrNoneError(f"word {word!r} is unknown to the tokenizer of {self.name}")
        raise AllOrNoneError(
            f"word {word!r} is not a single token for {self.name}: it is split into "
            f"{rep.multi[word]}. Use a single-token word, or continuation_logprob() for "
            "properties that allow multi-token words"
            + ("" if leading_space else " (or try leading_space=True)")
        )

    # ------------------------------------------------------------------ batching
    def _batches(self, encoded: list[list[int]], batch_size: int | None) -> Iterator[np.ndarray]:
        """Index batches of contexts sorted by decreasing length (bounded padded tokens)."""
        bs = int(batch_size or self.batch_size)
        lengths = np.array([len(e) for e in encoded])
        order = np.argsort(-lengths, kind="stable")
        start = 0
        while start < len(order):
            longest = int(lengths[order[start]])
            size = max(1, min(bs, self.max_batch_tokens // max(longest, 1)))
            yield order[start : start + size]
            start += size

    def _pad(
        self, seqs: list[list[int]], side: str
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pad to a batch: ``input_ids``, ``attention_mask``, ``position_ids`` (all B x T)
        and the index of the last real token of each row (B,).

        On CUDA the padded length is rounded up to a multiple of :data:`CUDA_PAD_MULTIPLE`,
        so length-sorted batches reuse a few kernel shapes (a new GEMM/attention shape costs
        a heuristic search on first use); the extra positions are masked padding."""
        T = max(len(s) for s in seqs)
        if self.device.type == "cuda":
            T = min(-(-T // CUDA_PAD_MULTIPLE) * CUDA_PAD_MULTIPLE, max(T, self.max_length))
        ids = torch.full((len(seqs), T), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), T), dtype=torch.long)
        for i, s in enumerate(seqs):
            if side == "left":
                ids[i, T - len(s) :] = torch.tensor(s)
                mask[i, T - len(s) :] = 1
            else:
                ids[i, : len(s)] = torch.tensor(s)
                mask[i, : len(s)] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        last = torch.tensor([T - 1 if side == "left" else len(s) - 1 for s in seqs])
        dev = self.device
        return ids.to(dev), mask.to(dev), pos.to(dev), last.to(dev)

    def _model_kwargs(self, ids, mask, pos) -> dict[str, Any]:
        kw: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if self._pass_positions:
            kw["position_ids"] = pos
        if self._pass_use_cache:
            kw["use_cache"] = False
        return kw

    def _hidden_last(self, seqs: list[list[int]], side: str) -> torch.Tensor:
        """Final normed hidden state at the last real token, shape (B, hidden), model dtype."""
        ids, mask, pos, last = self._pad(seqs, side)
        kw = self._model_kwargs(ids, mask, pos)
        self.n_forward_batches += 1
        if self._base is not None:
            out = self._base(**kw)
            h = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        else:  # no separable base model: full forward, last hidden state
            out = self.hf_model(**kw, output_hidden_states=True)
            h = out.hidden_states[-1]
        return h[torch.arange(h.shape[0], device=h.device), last]

    def _progress(self, total: int, n_batches: int, progress: bool | None, desc: str):
        from tqdm.auto import tqdm

        disable: bool | None = True if progress is False else None if progress is None else False
        if progress is None and n_batches <= 1:
            disable = True
        return tqdm(total=total, desc=desc, unit="ctx", disable=disable, leave=False)

    # ------------------------------------------------------------------ F and G
    def _identity(self) -> dict[str, Any]:
        state = tuple(
            (p.data_ptr(), p._version)  # noqa: SLF001 - bumped by in-place edits
            for p in self.hf_model.parameters()
        )
        if self._fp is None or state != self._fp_state:
            self._fp = _cache.weights_fingerprint(self.hf_model)
            self._fp_state = state
        return {
            "name": self.name,
            "class": type(self.hf_model).__name__,
            "weights": self._fp,
            "scale": self.head.scale,
            "bias": self.head.bias is not None,
        }

    def embed(
        self,
        contexts: Sequence[str] | str,
        *,
        batch_size: int | None = None,
        progress: bool | None = None,
        cache: bool | None = None,
        padding_side: str | None = None,
    ) -> np.ndarray:
        """Context representations ``F``, shape (n, d), float32 (float64 for float64 models).

        Row ``i`` is ``s * h(x_i)`` with ``h`` the final normed hidden state at the last real
        token and ``s`` the constant logit scale; a trailing column of ones is appended when
        the head has a bias (matching :meth:`unembedding`). Results are cached on disk (key:
        model weights, contexts, dtype, settings) unless ``cache=False`` or the model has
        forward hooks registered.
        """
        texts = self._as_list(contexts)
        side = padding_side or self.padding_side
        if side not in ("left", "right"):
            raise AllOrNoneError(f"padding_side={side!r}: use 'left' or 'right'")
        use_cache = self.cache if cache is None else bool(cache)
        if use_cache and _has_hooks(self.hf_model):
            warnings.warn(
                "the model has forward hooks registered: not using the F cache",
                stacklevel=_user_stacklevel(),
            )
            use_cache = False
        key = None
        if use_cache:
            settings = {
                "dtype": str(self.dtype),
                "max_length": self.max_length,
                "prefix": self._prefix,
                "extractor": "base" if self._base is not None else "hidden_states",
            }
            key = _cache.embedding_key(self._identity(), texts, settings)
            hit = _cache.load_embeddings(key)
            if hit is not None and hit.shape == (len(texts), self.d):
                self.encode(texts)  # re-issue the truncation warning, if any
                return hit
        F = self._embed_uncached(texts, batch_size, progress, side)
        if key is not None:
            _cache.save_embeddings(
                key, F, {"model": self.name, "n": len(texts), "d": self.d, "dtype": str(self.dtype)}
            )
        return F

    def _embed_uncached(
        self, texts: list[str], batch_size: int | None, progress: bool | None, side: str
    ) -> np.ndarray:
        return self._embed_encoded(self.encode(texts), batch_size, progress, side)

    def embed_ids(
        self,
        token_ids: Sequence[Sequence[int]],
        *,
        batch_size: int | None = None,
        progress: bool | None = None,
        padding_side: str | None = None,
    ) -> np.ndarray:
        """Like :meth:`embed` for contexts given as token ids (used as is: add BOS yourself);
        shape (n, d). Not cached. Longer contexts are truncated from the left with a warning."""
        encoded = [[int(t) for t in ids] for ids in token_ids]
        if not encoded:
            raise AllOrNoneError("token_ids is empty: pass at least one context")
        truncated = 0
        for i, ids in enumerate(encoded):
            if not ids:
                raise AllOrNoneError(f"token_ids[{i}] is empty: a context needs a token")
            if min(ids) < 0 or max(ids) >= self.V:
                raise AllOrNoneError(f"token_ids[{i}] has ids outside [0, {self.V})")
            if len(ids) > self.max_length:
                encoded[i], truncated = ids[-self.max_length :], truncated + 1
        if truncated:
            warnings.warn(
                f"{truncated} contexts are longer than the model window ({self.max_length} "
                "tokens) and were truncated from the LEFT",
                UserWarning,
                stacklevel=_user_stacklevel(),
            )
        return self._embed_encoded(encoded, batch_size, progress, padding_side or self.padding_side)

    def _embed_encoded(
        self, encoded: list[list[int]], batch_size: int | None, progress: bool | None, side: str
    ) -> np.ndarray:
        batches = list(self._batches(encoded, batch_size))
        hidden = int(self.head.weight.shape[1])
        out_dtype = np.float64 if self.dtype == torch.float64 else np.float32
        F = np.empty((len(encoded), self.d), dtype=out_dtype)
        bar = self._progress(len(encoded), len(batches), progress, f"embed {self.name}")
        with torch.inference_mode(), bar:
            for idx in batches:
                h = self._hidden_last([encoded[i] for i in idx], side)
                h = h.to(torch.float64 if out_dtype == np.float64 else torch.float32)
                if self.head.scale != 1.0:
                    h = h * self.head.scale
                F[idx, :hidden] = h.cpu().numpy()
                bar.update(len(idx))
        if self.head.bias is not None:
            F[:, hidden] = 1.0
        return F

    def unembedding(self) -> np.ndarray:
        """Unembeddings ``G``, shape (V, d): LM-head rows, with the bias as a last column.

        Read-only; for a float32 CPU model without bias it is a view of the weights (no copy).
        """
        if self._G is None:
            W = self.head.weight.detach()
            if W.dtype not in (torch.float32, torch.float64):
                W = W.float()
            G = W.cpu().numpy()
            if self.head.bias is not None:
                b = self.head.bias.detach().to("cpu", W.dtype).numpy()
                G = np.hstack([G, b[:, None]])
            G.flags.writeable = False
            self._G = G
        return self._G

    def predictor(self, contexts: Sequence[str] | str, **embed_options: Any) -> NextTokenPredictor:
        """A :class:`~allornone.NextTokenPredictor` on these contexts and all V tokens.

        Labels: the context strings and :attr:`tokens`. ``embed_options`` go to :meth:`embed`.
        """
        texts = self._as_list(contexts)
        F = self.embed(texts, **embed_options)
        pred = NextTokenPredictor(F, self.unembedding(), contexts=texts, tokens=self.tokens)
        pred.has_bias = self.head.bias is not None
        if self.dtype in (torch.bfloat16, torch.float16):  # tolerances of the compute dtype
            pred.eps = max(pred.eps, float(torch.finfo(self.dtype).eps))
        return pred

    # ------------------------------------------------------------------ model's own outputs
    def _last_logits(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        """The model's own logits at the last real token (full forward), (n, V) float64."""
        encoded = self.encode(texts, warn=False)
        out = np.empty((len(texts), self.V), dtype=np.float64)
        with torch.inference_mode():
            for idx in self._batches(encoded, batch_size):
                ids, mask, pos, last = self._pad([encoded[i] for i in idx], "left")
                kw = self._model_kwargs(ids, mask, pos)
                if self._logits_to_keep:
                    kw["logits_to_keep"] = 1
                logits = self.hf_model(**kw).logits[:, -1]
                out[idx] = logits.to(torch.float64).cpu().numpy()
        return out

    def logprobs(self, contexts: Sequence[str] | str, *, batch_size: int | None = None):
        """The model's own next-token log-probabilities at the last position, (n, V) float64.

        Computed with the real model forward (LM head, scale and cap included), independently
        of :meth:`embed`, so it can be used to check the factors. Mind the size for big V.
        """
        texts = self._as_list(contexts)
        logits = torch.from_numpy(self._last_logits(texts, batch_size))
        return torch.log_softmax(logits, dim=-1).numpy()

    def check_logits(self, contexts: Sequence[str] | None = None) -> float:
        """Max abs deviation between ``F G^T`` (+bias, capped if a cap was allowed) and the
        model's own logits on a few contexts (default :data:`DEFAULT_CHECK_CONTEXTS`).

        Also stored as :attr:`logit_check` (and the logits' max abs as ``logit_check_scale``).
        """
        texts = self._as_list(list(contexts) if contexts is not None else DEFAULT_CHECK_CONTEXTS)
        model_logits = self._last_logits(texts)
        with warnings.catch_warnings():  # truncation is fine for a check
            warnings.simplefilter("ignore", UserWarning)
            F = self.embed(texts, cache=False, progress=False).astype(np.float64)
        G = self.unembedding()
        dev = 0.0
        for s in range(0, self.V, 32768):
            ours = torch.from_numpy(F @ G[s : s + 32768].astype(np.float64).T)
            ours = self.head.apply_cap(ours).numpy()
            dev = max(dev, float(np.abs(ours - model_logits[:, s : s + 32768]).max()))
        self.logit_check = dev
        self.logit_check_scale = float(np.abs(model_logits).max())
        return dev

    def _check_failure(self, dev: float, bound: float, contexts: Sequence[str] | None) -> str:
        """Error text for a failed logits check, with a fitted scale when one explains it."""
        texts = list(contexts) if contexts is not None else list(DEFAULT_CHECK_CONTEXTS)
        logits = self._last_logits(texts)
        with warnings.catch_warnings():  # truncation is fine for a check
            warnings.simplefilter("ignore", UserWarning)
            F = self.embed(texts, cache=False, progress=False).astype(np.float64)
        lin = F @ self.unembedding().astype(np.float64).T
        hint = ""
        denom = float((lin * lin).sum())
        if denom > 0 and self.head.softcap is None:
            s = float((lin * logits).sum() / denom)
            if np.abs(s * lin - logits).max() <= bound:
                hint = (
                    f" The logits are {s:.6g} x F G^T: the head has a constant logit scale this "
                    f"adapter does not know; pass logit_scale={s * self.head.scale:.6g} to load()"
                    " if that is right."
                )
        return (
            f"{self.name}: F G^T does not reproduce the model's own logits: max abs deviation "
            f"{dev:.3g} > tolerance {bound:.3g} ({self.logit_check_tol:g} x logit scale "
            f"{self.logit_check_scale:.3g}). The head is not of the form softmax(f^T g) this "
            "adapter can extract (unknown scale, non-linear head, or a base model whose last "
            f"hidden state is not normed).{hint} Use check=False to load it anyway "
            "(not recommended)."
        )

    def continuation_logprob(
        self,
        contexts: Sequence[str] | str,
        continuations: Sequence[str] | str,
        *,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """``log p(continuation | context)``, summed over the continuation's tokens; (n,).

        ``continuations`` is one string per context, or a single string for all. The
        continuation is tokenised as in running text: the tokens of ``context +
        continuation`` after those of ``context`` (if the two merge at the boundary, the
        continuation is tokenised on its own, as after a space when it starts with one).
        """
        texts = self._as_list(contexts)
        if isinstance(continuations, str):
            conts = [continuations] * len(texts)
        else:
            conts = self._as_list(continuations, "continuations")
        if len(conts) != len(texts):
            raise AllOrNoneError(
                f"continuations has {len(conts)} entries but contexts has {len(texts)}"
            )
        ctx_ids = self.encode(texts, warn=False)
        full = self.tokenizer([t + c for t, c in zip(texts, conts)], add_special_tokens=False)
        seqs: list[list[int]] = []
        n_cont: list[int] = []
        for i, (ctx, c) in enumerate(zip(ctx_ids, conts)):
            f = self._prefix + list(full["input_ids"][i])
            if f[: len(ctx)] == ctx and len(f) > len(ctx):
                cont = f[len(ctx) :]
            else:
                stripped = c[1:] if c.startswith(" ") else c
                cont = encode_word(self.tokenizer, stripped, leading_space=c.startswith(" "))
            keep = self.max_length - len(self._prefix)
            body = (ctx[len(self._prefix) :] + cont)[-keep:]
            if len(body) <= len(cont):
                raise AllOrNoneError(
                    f"continuations[{i}] has {len(cont)} tokens: too long for the model window"
                )
            seqs.append(self._prefix + body)
            n_cont.append(len(cont))
        out = np.empty(len(texts), dtype=np.float64)
        with torch.inference_mode():
            for idx in self._batches(seqs, batch_size):
                batch = [seqs[i] for i in idx]
                ids, mask, pos, _ = self._pad(batch, "left")
                k = max(n_cont[i] for i in idx)
                kw = self._model_kwargs(ids, mask, pos)
                if self._logits_to_keep:
                    kw["logits_to_keep"] = k + 1
                logits = self.hf_model(**kw).logits[:, -(k + 1) : -1].to(torch.float64)
                lp = torch.log_softmax(logits, dim=-1)  # lp[:, j] predicts token at T-k+j
                for row, i in enumerate(idx):
                    m = n_cont[i]
                    tgt = torch.tensor(seqs[i][-m:], device=lp.device)
                    out[i] = float(lp[row, k - m :].gather(-1, tgt[:, None]).sum())
        return out
