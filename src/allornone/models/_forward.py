"""Batched forward passes of :class:`~allornone.models.LanguageModel` (its base class).

Tokenisation as the model sees it (BOS prefix, left truncation), the last-token hidden state
``h(x)`` (the input of ``F``), the model's own logits and continuation log-probabilities.
Contexts are sorted by length before batching (little padding) and put back in the input
order; padding uses explicit attention masks and position ids (see :mod:`._batching`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from .._validation import AllOrNoneError
from ._batching import (
    as_text_list,
    length_batches,
    model_kwargs,
    pad_batch,
    warn_truncated,
)
from ._head import HeadSpec
from .tokens import encode_word

__all__ = ["ForwardPasses"]


class ForwardPasses:
    """Forward passes over token-id contexts; the state is set by ``LanguageModel``."""

    hf_model: torch.nn.Module
    tokenizer: Any
    name: str
    head: HeadSpec
    device: torch.device
    dtype: torch.dtype
    batch_size: int
    max_batch_tokens: int
    max_length: int
    padding_side: str
    n_forward_batches: int
    _base: torch.nn.Module | None
    _prefix: list[int]
    _pad_id: int
    _pass_positions: bool
    _pass_use_cache: bool
    _logits_to_keep: bool

    @property
    def d(self) -> int:
        """Dimension of ``f`` and ``g`` (hidden size, +1 when a bias is absorbed)."""
        return int(self.head.weight.shape[1]) + (1 if self.head.bias is not None else 0)

    @property
    def V(self) -> int:
        """Number of tokens (rows of the LM head)."""
        return int(self.head.weight.shape[0])

    @staticmethod
    def _as_list(contexts: Sequence[str] | str, what: str = "contexts") -> list[str]:
        return as_text_list(contexts, what)

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
            warn_truncated(
                f"{len(truncated)} of {len(texts)} contexts are longer than the model window "
                f"({self.max_length} tokens) and were truncated from the LEFT (first tokens "
                f"dropped{', BOS kept' if self._prefix else ''}); first at index {truncated[0]}"
            )
        return out

    # ------------------------------------------------------------------ batching
    def _batches(self, encoded: list[list[int]], batch_size: int | None) -> Iterator[np.ndarray]:
        """Index batches of contexts sorted by decreasing length (bounded padded tokens)."""
        return length_batches(encoded, int(batch_size or self.batch_size), self.max_batch_tokens)

    def _pad(
        self, seqs: list[list[int]], side: str
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return pad_batch(
            seqs, side, pad_id=self._pad_id, device=self.device, max_length=self.max_length
        )

    def _model_kwargs(
        self, ids: torch.Tensor, mask: torch.Tensor, pos: torch.Tensor
    ) -> dict[str, Any]:
        return model_kwargs(
            ids,
            mask,
            pos,
            pass_positions=self._pass_positions,
            pass_use_cache=self._pass_use_cache,
        )

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
            warn_truncated(
                f"{truncated} contexts are longer than the model window ({self.max_length} "
                "tokens) and were truncated from the LEFT"
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
