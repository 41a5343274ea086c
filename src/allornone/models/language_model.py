"""The public :class:`LanguageModel`: a transformers causal LM as factors ``(F, G)``.

``f(x)`` is the final hidden state at the last real token of ``x`` **after** the final norm
(the input of the LM head), times any constant logit scale; ``g(y)`` is the LM-head row of
``y`` (bias absorbed as an extra column, with a column of ones appended to ``f``).

Extraction calls the base model (``model.base_model``: ``model.model`` for Llama/Gemma,
``model.transformer`` for GPT-2), whose last hidden state is already normed, so the
full-vocabulary logits are never computed at every position (batching: :mod:`._batching`).
Long contexts are truncated from the LEFT to the model window (the first tokens are dropped,
a leading BOS is kept) with a warning: the next-token prediction depends most on the end.
Loading by name or path: :mod:`._loading`; the load-time logits check: :mod:`._logit_check`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .._validation import AllOrNoneError
from ..predictor import NextTokenPredictor
from . import cache as _cache
from ._batching import accepts, has_hooks, is_out_of_memory, user_stacklevel
from ._device import check_device_map, dispatch, input_device, resolve_device, resolve_dtype
from ._forward import ForwardPasses
from ._head import HeadSpec, inspect_head
from ._logit_check import (
    DEFAULT_CHECK_CONTEXTS,
    LOGIT_CHECK_RTOL,
    device_deviation,
    failure_message,
)
from ._masked import MaskedLayout, decoder_start, get_module
from .architectures import Adapter, adapter_for_model
from .tokens import WordTokens, special_layout, token_labels, word_tokens

__all__ = ["LanguageModel"]


class LanguageModel(ForwardPasses):
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
    device_map : None | "auto" | dict
        Spread the model over several devices with accelerate (for models larger than one
        GPU): ``"auto"`` fills the GPUs in order, a dict maps module names to devices.
        Exclusive with ``device``; a model already dispatched (``hf_device_map``) is kept.
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
        device_map: Any = None,
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
        tdtype = resolve_dtype(dtype)
        dmap = check_device_map(device_map)
        if dmap is not None and device is not None:
            raise AllOrNoneError(
                "pass device or device_map, not both (device_map places every layer itself)"
            )
        self.device_map: dict[str, Any] | None = getattr(hf_model, "hf_device_map", None)
        if self.device_map is not None and len(set(map(str, self.device_map.values()))) > 1:
            dmap = dmap or "dispatched"  # already spread over devices: keep it there
        try:
            hf_model = self._place(hf_model, tdtype, dtype, dmap, device)
        except Exception as exc:  # noqa: BLE001 - only allocation failures are translated
            if not is_out_of_memory(exc):
                raise
            n = sum(p.numel() for p in hf_model.parameters())
            here = getattr(self, "device", None) or device
            where = "the devices of device_map" if dmap is not None else str(here)
            raise AllOrNoneError(
                f"out of memory placing the model ({n / 1e9:.2f} B parameters) on {where}: use "
                "dtype='bfloat16' (--dtype bfloat16), device_map='auto' (--device-map auto) to "
                "spread it over GPUs and the CPU, or a smaller model"
            ) from None
        hf_model.eval()
        self.hf_model = hf_model
        self._init_rest(
            hf_model, tokenizer, name, allow_nonlinear_head, logit_scale, max_length,
            padding_side, batch_size, max_batch_tokens, cache, logit_tol, check, check_contexts,
        )  # fmt: skip

    def _place(
        self, hf_model: Any, tdtype: torch.dtype | None, dtype: Any, dmap: Any, device: Any
    ) -> Any:
        """Cast and move (or dispatch) the model; sets :attr:`device` and :attr:`device_map`."""
        if dmap is not None:
            if self.device_map is None:
                if tdtype is not None:
                    hf_model = hf_model.to(dtype=tdtype)
                hf_model = dispatch(hf_model, dmap)
                self.device_map = dict(hf_model.hf_device_map)
            elif tdtype is not None and next(hf_model.parameters()).dtype != tdtype:
                raise AllOrNoneError(
                    f"the model is already spread over devices in "
                    f"{next(hf_model.parameters()).dtype}: load it with dtype={dtype!r} instead"
                )
            self.device = input_device(hf_model)
        else:
            self.device = resolve_device(device, hf_model)
            hf_model = (
                hf_model.to(self.device)
                if tdtype is None
                else hf_model.to(self.device, dtype=tdtype)
            )
        return hf_model

    def _init_rest(
        self,
        hf_model: Any,
        tokenizer: Any,
        name: str | None,
        allow_nonlinear_head: bool,
        logit_scale: float | None,
        max_length: int | None,
        padding_side: str | None,
        batch_size: int | None,
        max_batch_tokens: int | None,
        cache: bool,
        logit_tol: float | None,
        check: bool,
        check_contexts: Sequence[str] | None,
    ) -> None:
        self.tokenizer = tokenizer
        self.name = name or str(getattr(hf_model, "name_or_path", "") or type(hf_model).__name__)
        self.dtype: torch.dtype = next(hf_model.parameters()).dtype
        #: The registry's adapter (None: a causal model outside the registry, checked
        #: numerically like every model); masked LMs and encoder-decoders are refused here.
        self.adapter: Adapter | None = adapter_for_model(hf_model)
        self.head: HeadSpec = inspect_head(
            hf_model, allow_nonlinear_head=allow_nonlinear_head, logit_scale=logit_scale
        )
        if self.head.weight.device.type == "meta":
            raise AllOrNoneError(
                f"{self.name}: the LM head's weight is offloaded (on the meta device), so G "
                "cannot be read; give the model more GPU/CPU memory (device_map='auto' may "
                "offload to disk) or use dtype='bfloat16'"
            )
        base = getattr(hf_model, "base_model", None)
        self._base: torch.nn.Module | None = (
            base if isinstance(base, torch.nn.Module) and base is not hf_model else None
        )
        fwd = self._base if self._base is not None else hf_model
        self._pass_positions = accepts(fwd.forward, "position_ids")
        self._pass_use_cache = accepts(fwd.forward, "use_cache")
        self._logits_to_keep = accepts(hf_model.forward, "logits_to_keep")
        self._prefix, self._n_suffix = special_layout(tokenizer)
        self._masked = None
        self._f_module = None
        self._dec_start = None
        self._src_suffix = []
        if self.adapter is not None and self.adapter.kind == "encoder-decoder":
            self._dec_start = decoder_start(hf_model, self.name)
            ids = list(tokenizer("a b c", add_special_tokens=True)["input_ids"])
            self._src_suffix = ids[len(ids) - self._n_suffix :] if self._n_suffix else []
            padding_side = "right"  # the source: right padded with an attention mask
        if self.adapter is not None and self.adapter.kind == "masked-lm":
            self._masked = MaskedLayout(tokenizer, self._prefix, self._n_suffix, self.name)
            self._f_module = get_module(hf_model, self.adapter.f_module)
            padding_side = "right"  # bidirectional: right padding, own position ids
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
        self.oom_batch_size: int | None = None
        self.last_batch_size: int | None = None
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
                return self._masked_window(v) if self._masked is not None else v
        v = getattr(self.tokenizer, "model_max_length", None)
        return int(v) if isinstance(v, int) and 0 < v < 10**7 else 2048

    def _masked_window(self, n: int) -> int:
        """Masked LMs: RoBERTa-style position tables hold ``max_position_embeddings`` rows
        of which the first ``pad_token_id + 1`` are never used; the tokenizer's
        ``model_max_length`` is then the usable window."""
        v = getattr(self.tokenizer, "model_max_length", None)
        return min(n, int(v)) if isinstance(v, int) and 0 < v < 10**7 else n

    # ------------------------------------------------------------------ words
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
        if use_cache and has_hooks(self.hf_model):
            warnings.warn(
                "the model has forward hooks registered: not using the F cache",
                stacklevel=user_stacklevel(),
            )
            use_cache = False
        key = None
        if use_cache:
            settings = {
                "dtype": str(self.dtype),
                "max_length": self.max_length,
                "prefix": self._prefix,
                **({"masked": self._masked.suffix} if self._masked is not None else {}),
                **({"source_suffix": self._src_suffix} if self._dec_start is not None else {}),
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
        half = self.dtype in (torch.bfloat16, torch.float16)  # tolerances of the compute dtype
        pred = NextTokenPredictor(
            F,
            self.unembedding(),
            contexts=texts,
            tokens=self.tokens,
            eps=float(torch.finfo(self.dtype).eps) if half else None,
        )
        pred.has_bias = self.head.bias is not None
        return pred

    # ------------------------------------------------------------------ the logits check
    def _check_inputs(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(F float64, model logits)`` on the check contexts (uncached)."""
        model_logits = self._last_logits(texts)
        with warnings.catch_warnings():  # truncation is fine for a check
            warnings.simplefilter("ignore", UserWarning)
            F = self.embed(texts, cache=False, progress=False).astype(np.float64)
        return F, model_logits

    def check_logits(self, contexts: Sequence[str] | None = None) -> float:
        """Max abs deviation between ``F G^T`` (+bias, capped if a cap was allowed) and the
        model's own logits on a few contexts (default :data:`DEFAULT_CHECK_CONTEXTS`).

        Computed on the device of the LM head (float64 there; see
        :func:`._logit_check.device_deviation`): neither the logits nor ``G`` are copied to
        the host, only the maxima come back. ``F`` is extracted as :meth:`embed` does it
        (same padding side, separate batches), the logits by a full forward (left padded).
        Also stored as :attr:`logit_check` (and the logits' max abs as ``logit_check_scale``).
        Raises :class:`~allornone.AllOrNoneError` when ``F``, ``G`` or the logits contain NaN
        or inf (a NaN deviation would otherwise compare as "within tolerance").
        """
        texts = self._as_list(list(contexts) if contexts is not None else DEFAULT_CHECK_CONTEXTS)
        encoded = self.encode(texts, warn=False)
        head = self.head

        def one(idx: np.ndarray) -> tuple[float, float]:
            seqs = [encoded[i] for i in idx]
            logits = self._logits_last(seqs)
            h = self._hidden_last(seqs, self.padding_side)
            return device_deviation(
                self.name, h, head.weight, head.bias, head.scale, logits, head.apply_cap
            )

        dev, scale = 0.0, 0.0
        with torch.inference_mode():
            for _, (d, s) in self._run_batches(encoded, None, one):
                dev, scale = max(dev, d), max(scale, s)
        self.logit_check, self.logit_check_scale = dev, scale
        return dev

    def _check_failure(self, dev: float, bound: float, contexts: Sequence[str] | None) -> str:
        """Error text for a failed logits check, with a fitted scale when one explains it."""
        texts = list(contexts) if contexts is not None else list(DEFAULT_CHECK_CONTEXTS)
        F, logits = self._check_inputs(texts)
        return failure_message(
            self.name,
            dev,
            bound,
            self.logit_check_tol,
            float(self.logit_check_scale or 0.0),
            lin=F @ self.unembedding().astype(np.float64).T,
            logits=logits,
            head_scale=self.head.scale,
            softcap=self.head.softcap,
        )
