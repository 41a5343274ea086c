"""Batched forward passes of :class:`~allornone.models.LanguageModel` (its base class).

Tokenisation as the model sees it (BOS prefix, left truncation), the last-token hidden state
``h(x)`` (the input of ``F``), the model's own logits and continuation log-probabilities.
Contexts are sorted by length before batching (little padding) and put back in the input
order; padding uses explicit attention masks and position ids (see :mod:`._batching`), except
for ``F`` with right padding, which needs none (causal model). On a GPU the hidden states stay
on the device and are copied in blocks (:data:`FLUSH_BYTES`): no synchronisation per batch.
Running out of memory halves the batch and continues (:meth:`ForwardPasses._run_batches`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import torch

from .._validation import AllOrNoneError
from ._batching import (
    as_text_list,
    free_device_memory,
    is_out_of_memory,
    length_batches,
    model_kwargs,
    pad_batch,
    user_stacklevel,
    warn_truncated,
)
from ._head import HeadSpec
from ._masked import MaskedLayout, capture, capture_input
from .tokens import encode_word

__all__ = ["ForwardPasses"]

_R = TypeVar("_R")

#: Hidden states are kept on the device and copied to the host once this many bytes of them
#: have accumulated (one synchronisation per copy instead of one per batch).
FLUSH_BYTES = 64 << 20


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
    #: Largest batch that ran after an out-of-memory error (None: no error so far); later
    #: batches are capped at it. ``last_batch_size``: the largest batch of the latest call.
    oom_batch_size: int | None
    last_batch_size: int | None
    _base: torch.nn.Module | None
    _prefix: list[int]
    _pad_id: int
    _pass_positions: bool
    _pass_use_cache: bool
    _logits_to_keep: bool
    #: Masked LMs: the token layout (mask appended when a text has none) and the module
    #: whose output is ``f`` (the prediction head's transform); None for causal models.
    _masked: MaskedLayout | None
    _f_module: torch.nn.Module | None
    #: Encoder-decoders: the decoder start token (a context is the source text; the target
    #: prefix is empty) and the special tokens appended to the source; None otherwise.
    _dec_start: int | None
    _src_suffix: list[int]

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
        masked = self._masked
        keep = self.max_length - len(self._prefix)
        if masked is not None:  # room for the suffix and an appended mask
            keep -= len(masked.suffix) + 1
        keep -= len(self._src_suffix) if self._dec_start is not None else 0
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
            if masked is not None:
                out.append(masked.wrap(ids))
            elif self._dec_start is not None:
                out.append(self._prefix + ids + self._src_suffix)
            else:
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
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
        return pad_batch(
            seqs, side, pad_id=self._pad_id, device=self.device, max_length=self.max_length
        )

    def _model_kwargs(
        self, ids: torch.Tensor, mask: torch.Tensor | None, pos: torch.Tensor
    ) -> dict[str, Any]:
        return model_kwargs(
            ids,
            mask,
            pos,
            pass_positions=self._pass_positions,
            pass_use_cache=self._pass_use_cache,
        )

    def _at_mask(self, seqs: list[list[int]], run: Callable[[dict[str, Any]], Any]) -> Any:
        """Masked LMs: ``run(model kwargs)`` (B, T, ...) read at each row's last mask; right
        padding with an attention mask, the model's own position ids."""
        assert self._masked is not None
        ids, mask, _, last = self._pad(seqs, "right")
        kw: dict[str, Any] = {"input_ids": ids}
        if mask is not None:
            kw["attention_mask"] = mask
        back = torch.tensor([self._masked.back(q) for q in seqs], device=last.device)
        out = run(kw)
        rows = torch.arange(out.shape[0], device=out.device)
        return out[rows, (last - back).to(out.device)]

    def _encdec(
        self, seqs: list[list[int]], run: Callable[[dict[str, Any]], Any], targets: Any = None
    ) -> Any:
        """Encoder-decoders: ``run(model kwargs)`` with the sources right padded and the
        decoder fed its start token (then ``targets``, a (B, m) tensor, when given)."""
        assert self._dec_start is not None
        ids, mask, _, _ = self._pad(seqs, "right")
        dec = torch.full((len(seqs), 1), self._dec_start, dtype=torch.long, device=ids.device)
        if targets is not None:
            dec = torch.cat([dec, targets.to(ids.device)], dim=1)
        kw: dict[str, Any] = {"input_ids": ids, "decoder_input_ids": dec}
        if mask is not None:
            kw["attention_mask"] = mask
        if self._pass_use_cache:
            kw["use_cache"] = False
        return run(kw)

    def _hidden_last(self, seqs: list[list[int]], side: str) -> torch.Tensor:
        """Final normed hidden state at the last real token, shape (B, hidden), model dtype
        (masked LMs: the prediction head's transform at the last mask)."""
        if self._masked is not None and self._f_module is not None:
            self.n_forward_batches += 1
            f_module = self._f_module
            return self._at_mask(seqs, lambda kw: capture(self.hf_model, f_module, kw))
        if self._dec_start is not None:
            self.n_forward_batches += 1
            head: Any = self.hf_model.get_output_embeddings()  # type: ignore[operator]
            return self._encdec(seqs, lambda kw: capture_input(self.hf_model, head, kw))[:, -1]
        ids, mask, pos, last = self._pad(seqs, side)
        if side == "right":
            # Right padding needs no mask for F: in a causal model the real positions never
            # attend to the pads after them, and the default position ids are the right
            # ones. Without a mask the model takes its plain causal path (no mask to build,
            # no host sync; flash attention on CUDA). A model that is not causal would fail
            # the load-time logits check (its logits come from a masked, left-padded forward).
            mask = None
        kw = self._model_kwargs(ids, mask, pos)
        self.n_forward_batches += 1
        if self._base is not None:
            out = self._base(**kw)
            h = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        else:  # no separable base model: full forward, last hidden state
            out = self.hf_model(**kw, output_hidden_states=True)
            h = out.hidden_states[-1]
        if side == "left" or all(len(q) == h.shape[1] for q in seqs):  # rows end at T - 1
            return h[:, -1]
        return h[torch.arange(h.shape[0], device=h.device), last.to(h.device)]

    def _run_batches(
        self,
        encoded: list[list[int]],
        batch_size: int | None,
        fn: Callable[[np.ndarray], _R],
    ) -> Iterator[tuple[np.ndarray, _R]]:
        """``(indices, fn(indices))`` over length-sorted batches, recovering from running
        out of memory: the failing batch is halved (down to one context) and later batches
        are capped at the size that ran (warned once; :attr:`oom_batch_size`). One context
        that does not fit is a clear :class:`~allornone.AllOrNoneError`."""
        bs = int(batch_size or self.batch_size)
        cap = getattr(self, "oom_batch_size", None)
        queue = deque(self._batches(encoded, min(bs, cap) if cap else bs))
        self.last_batch_size = 0
        first: tuple[int, int] | None = None  # (batch size, longest context) of the 1st OOM
        while queue:
            idx = queue.popleft()
            if cap is not None and len(idx) > cap:
                queue.extendleft(reversed([idx[s : s + cap] for s in range(0, len(idx), cap)]))
                continue
            try:
                out = fn(idx)
            except Exception as exc:  # noqa: BLE001 - only allocation failures are handled
                if not is_out_of_memory(exc):
                    raise
                failed = len(idx)
                longest = max(len(encoded[i]) for i in idx)
            else:
                self.last_batch_size = max(self.last_batch_size, len(idx))
                yield idx, out
                continue
            free_device_memory(self.device)  # the exception (and its tensors) is gone here
            if failed == 1:
                raise AllOrNoneError(
                    f"{self.name}: out of memory on {self._where()} even at batch size 1 (a "
                    f"context of {longest} tokens); use dtype='bfloat16' (--dtype bfloat16), "
                    "device_map='auto' (--device-map auto) to spread the model over GPUs, a "
                    "shorter max_length, or a smaller model"
                )
            half = (failed + 1) // 2
            if cap is None or half < cap:
                cap = half
                self.oom_batch_size = cap
            if first is None:
                first = (failed, longest)
            queue.extendleft([idx[half:], idx[:half]])
        if first is not None:
            import warnings

            warnings.warn(
                f"{self.name}: out of memory on {self._where()} at batch size {first[0]} "
                f"(longest context {first[1]} tokens); continued with batch size {cap}. "
                f"Pass batch_size={cap} (--batch-size {cap}) to start there",
                UserWarning,
                stacklevel=user_stacklevel(),
            )

    def _where(self) -> str:
        dmap = getattr(self, "device_map", None)
        if dmap:
            return "devices " + ", ".join(sorted({str(v) for v in dmap.values()}))
        return str(self.device)

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
            if self._masked is not None and self._masked.mask_id not in ids:
                ids = encoded[i] = self._masked.wrap_ids(ids)  # the next word, masked
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
        """``F`` of token-id contexts. The hidden state is computed in the model's dtype,
        converted on the device to float32 (exact for bfloat16/float16; float64 models stay
        float64), kept there and copied to the host in blocks of :data:`FLUSH_BYTES`."""
        hidden = int(self.head.weight.shape[1])
        out_np = np.float64 if self.dtype == torch.float64 else np.float32
        out_t = torch.float64 if out_np == np.float64 else torch.float32
        F = np.empty((len(encoded), self.d), dtype=out_np)
        n_batches = sum(1 for _ in self._batches(encoded, batch_size))
        bar = self._progress(len(encoded), n_batches, progress, f"embed {self.name}")
        pend_idx: list[np.ndarray] = []
        pend_h: list[torch.Tensor] = []
        pend_bytes = 0
        scale = float(self.head.scale)

        def flush() -> None:
            nonlocal pend_bytes
            if not pend_h:
                return
            rows = np.concatenate(pend_idx)
            F[rows, :hidden] = torch.cat([h.to(pend_h[0].device) for h in pend_h]).cpu().numpy()
            pend_idx.clear()
            pend_h.clear()
            pend_bytes = 0

        def one(idx: np.ndarray) -> torch.Tensor:
            # a copy: a view would keep the whole (B, T, hidden) output alive until the flush
            h = self._hidden_last([encoded[i] for i in idx], side).to(out_t, copy=True)
            return h * scale if scale != 1.0 else h

        with torch.inference_mode(), bar:
            for idx, h in self._run_batches(encoded, batch_size, one):
                pend_idx.append(idx)
                pend_h.append(h)
                pend_bytes += h.numel() * h.element_size()
                if pend_bytes >= FLUSH_BYTES or h.device.type == "cpu":
                    flush()
                bar.update(len(idx))
            flush()
        if self.head.bias is not None:
            F[:, hidden] = 1.0
        return F

    # ------------------------------------------------------------------ model's own outputs
    def _last_logits(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        """The model's own logits at the last real token (full forward), (n, V) float64."""
        encoded = self.encode(texts, warn=False)
        out = np.empty((len(texts), self.V), dtype=np.float64)
        with torch.inference_mode():
            for idx, logits in self._run_batches(
                encoded, batch_size, lambda idx: self._logits_last([encoded[i] for i in idx])
            ):
                out[idx] = logits.to(torch.float64).cpu().numpy()
        return out

    def _logits_last(self, seqs: list[list[int]]) -> torch.Tensor:
        """The model's logits at the last token of each (left-padded) row, (B, V), on the
        device the model puts them, in its dtype (masked LMs: at the last mask)."""
        if self._masked is not None:
            return self._at_mask(seqs, lambda kw: self.hf_model(**kw).logits)
        if self._dec_start is not None:
            return self._encdec(seqs, lambda kw: self.hf_model(**kw).logits)[:, -1]
        ids, mask, pos, _ = self._pad(seqs, "left")
        kw = self._model_kwargs(ids, mask, pos)
        if self._logits_to_keep:
            kw["logits_to_keep"] = 1
        return self.hf_model(**kw).logits[:, -1]

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

        ``continuations`` is one string per context, or a single string for all. For a
        masked LM, token ``j`` of the continuation is scored at a mask appended to the
        context and the continuation's first ``j`` tokens (the next word masked, as in
        :meth:`embed`), and the log-probabilities are summed. The
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
        if self._masked is not None:
            return self._masked_continuation(texts, conts, batch_size)
        if self._dec_start is not None:
            return self._encdec_continuation(texts, conts, batch_size)
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

        def one(idx: np.ndarray) -> list[float]:
            batch = [seqs[i] for i in idx]
            ids, mask, pos, _ = self._pad(batch, "left")
            k = max(n_cont[i] for i in idx)
            kw = self._model_kwargs(ids, mask, pos)
            if self._logits_to_keep:
                kw["logits_to_keep"] = k + 1
            logits = self.hf_model(**kw).logits[:, -(k + 1) : -1]  # [:, j] predicts T-k+j
            vals = []
            for row, i in enumerate(idx):  # float64 one row at a time: m x V, not B x k x V
                m = n_cont[i]
                lp = torch.log_softmax(logits[row, k - m :].to(torch.float64), dim=-1)
                tgt = torch.tensor(seqs[i][-m:], device=lp.device)
                vals.append(lp.gather(-1, tgt[:, None]).sum())
            return torch.stack(vals).cpu().tolist()

        with torch.inference_mode():
            for idx, vals in self._run_batches(seqs, batch_size, one):
                out[idx] = vals
        return out

    def _masked_continuation(
        self, texts: list[str], conts: list[str], batch_size: int | None
    ) -> np.ndarray:
        """Masked LMs: ``sum_j log p(c_j | context c_<j [MASK])``."""
        masked = self._masked
        assert masked is not None
        keep = self.max_length - len(self._prefix) - len(masked.suffix) - 1
        bodies = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        full = self.tokenizer([t + c for t, c in zip(texts, conts)], add_special_tokens=False)
        queries: list[list[int]] = []
        owner: list[int] = []
        targets: list[int] = []
        for i, c in enumerate(conts):
            body, f = list(bodies[i]), list(full["input_ids"][i])
            if f[: len(body)] == body and len(f) > len(body):
                cont = f[len(body) :]
            else:
                stripped = c[1:] if c.startswith(" ") else c
                cont = encode_word(self.tokenizer, stripped, leading_space=c.startswith(" "))
            if not cont:
                raise AllOrNoneError(f"continuations[{i}] = {c!r} encodes to no tokens")
            for j, tgt in enumerate(cont):
                queries.append(masked.wrap((body + cont[:j])[-keep:]))
                owner.append(i)
                targets.append(tgt)
        tgt_all = np.asarray(targets)
        vals = np.empty(len(queries), dtype=np.float64)

        def one(idx: np.ndarray) -> np.ndarray:
            logits = self._logits_last([queries[i] for i in idx]).to(torch.float64)
            lp = torch.log_softmax(logits, dim=-1)
            tgt = torch.as_tensor(tgt_all[idx], device=lp.device)
            return lp.gather(-1, tgt[:, None])[:, 0].cpu().numpy()

        with torch.inference_mode():
            for idx, v in self._run_batches(queries, batch_size, one):
                vals[idx] = v
        out = np.zeros(len(texts), dtype=np.float64)
        np.add.at(out, np.asarray(owner), vals)
        return out

    def _encdec_continuation(
        self, texts: list[str], conts: list[str], batch_size: int | None
    ) -> np.ndarray:
        """Encoder-decoders: ``log p(target = continuation | source = context)``."""
        sources = self.encode(texts, warn=False)
        targets = []
        for i, c in enumerate(conts):
            stripped = c[1:] if c.startswith(" ") else c
            t = encode_word(self.tokenizer, stripped, leading_space=c.startswith(" "))
            if not t:
                raise AllOrNoneError(f"continuations[{i}] = {c!r} encodes to no tokens")
            targets.append(t)
        out = np.empty(len(texts), dtype=np.float64)

        def one(idx: np.ndarray) -> list[float]:
            vals = []
            for i in idx:  # one row at a time: targets of different lengths
                tgt = torch.tensor([targets[i]], dtype=torch.long)
                logits = self._encdec(
                    [sources[i]], lambda kw: self.hf_model(**kw).logits, tgt[:, :-1]
                )[0]
                lp = torch.log_softmax(logits.to(torch.float64), dim=-1)
                vals.append(float(lp.gather(-1, tgt.to(lp.device).T).sum()))
            return vals

        with torch.inference_mode():
            for idx, v in self._run_batches(sources, batch_size, one):
                out[idx] = v
        return out
