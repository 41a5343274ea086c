"""Logit lens: every layer's hidden state read through the final norm and the LM head
(THEORY.md 10.4).

For a transformer with blocks ``1..L``, let ``h_l(x)`` be the residual stream at the last real
token of ``x`` after block ``l`` (``h_0``: the token embeddings). The logit lens reads it as the
last layer is read, ``f_l(x) = s * norm(h_l(x))`` with the model's own final norm and logit
scale ``s``, so ``p_l(y | x) = softmax_y(f_l(x)^T g(y))`` is a next-token predictor of the form
of THEORY.md 1 with the model's own unembeddings ``g``, and everything in the package applies
to it. ``f_L`` is the model's ``F``. That the intermediate predictors mean anything is an
extension beyond the paper, not part of its theory.

Only public attributes of :class:`~allornone.models.LanguageModel` are used (``hf_model``,
``encode``, ``head``, ``device``, ``unembedding``); the hidden states come from transformers'
``output_hidden_states``, and the input of the final norm (the raw state after the last
block) from a forward pre-hook on the norm that is removed after every batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from .._validation import AllOrNoneError
from ..predictor import NextTokenPredictor

__all__ = [
    "NORM_NAMES",
    "final_norm",
    "layer_predictors",
    "layer_representations",
    "num_layers",
    "parse_layers",
]

#: Attribute names of the final normalisation on a transformers base model.
NORM_NAMES = ("norm", "ln_f", "final_layer_norm", "final_layernorm", "norm_f")


def _base(lm: Any) -> torch.nn.Module:
    model = lm.hf_model
    base = getattr(model, "base_model", None)
    return base if isinstance(base, torch.nn.Module) else model


def num_layers(lm: Any) -> int:
    """Number of transformer blocks ``L`` (layers are indexed ``0..L``, 0 the embeddings)."""
    cfg = getattr(lm.hf_model, "config", None)
    for key in ("num_hidden_layers", "n_layer", "num_layers"):
        val = getattr(cfg, key, None)
        if isinstance(val, int) and val > 0:
            return val
    raise AllOrNoneError(
        f"{type(lm.hf_model).__name__}: cannot read the number of layers from its config "
        "(num_hidden_layers / n_layer); the logit lens needs a transformers causal LM"
    )


def final_norm(lm: Any) -> torch.nn.Module:
    """The final normalisation module (the one the LM head reads after)."""
    base = _base(lm)
    for name in NORM_NAMES:
        mod = getattr(base, name, None)
        if isinstance(mod, torch.nn.Module):
            return mod
    raise AllOrNoneError(
        f"{type(lm.hf_model).__name__}: no final norm found (looked for "
        f"{', '.join(NORM_NAMES)} on the base model); the logit lens cannot read its layers"
    )


def parse_layers(spec: str | Sequence[int] | None, L: int) -> list[int]:
    """``"all"`` (or None) -> ``[0..L]``; ``"3,7,30"`` or ``[3, 7]`` -> those, sorted, unique.
    Raises a one-line error naming the valid range for an index outside ``0..L``."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return list(range(L + 1))
    if isinstance(spec, str):
        parts = [p.strip() for p in spec.split(",") if p.strip()]
        try:
            idx = [int(p) for p in parts]
        except ValueError:
            raise AllOrNoneError(
                f"--layers {spec!r}: give 'all' or comma-separated layer indices, e.g. 0,15,30"
            ) from None
    else:
        idx = [int(i) for i in spec]
    if not idx:
        raise AllOrNoneError("no layers given: pass 'all' or indices such as 0,15,30")
    bad = [i for i in idx if not 0 <= i <= L]
    if bad:
        raise AllOrNoneError(
            f"layer {bad[0]} is out of range: this model has layers 0..{L} (0 = embeddings, "
            f"{L} = last block)"
        )
    return sorted(set(idx))


@contextmanager
def _capture_norm_input(norm: torch.nn.Module) -> Iterator[list[torch.Tensor]]:
    seen: list[torch.Tensor] = []

    def hook(_mod: Any, args: tuple) -> None:
        seen.append(args[0])

    handle = norm.register_forward_pre_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def layer_representations(
    lm: Any,
    contexts: Sequence[str],
    layers: str | Sequence[int] | None = None,
    *,
    batch_size: int | None = None,
) -> dict[int, np.ndarray]:
    """``{l: F_l}`` with ``F_l`` (n x d) the logit-lens representations of layer ``l``
    (module docstring), float32 (float64 for float64 models), a ones column appended when
    the head has a bias (matching ``lm.unembedding()``)."""
    texts = [str(t) for t in contexts]
    if not texts:
        raise AllOrNoneError("contexts is empty: pass at least one context")
    L = num_layers(lm)
    want = parse_layers(layers, L)
    norm = final_norm(lm)
    base = _base(lm)
    encoded = lm.encode(texts)
    head = lm.head
    hidden = int(head.weight.shape[1])
    out_dtype = np.float64 if lm.dtype == torch.float64 else np.float32
    t_dtype = torch.float64 if out_dtype == np.float64 else torch.float32
    out = {layer: np.empty((len(texts), lm.d), dtype=out_dtype) for layer in want}
    pad = getattr(lm.tokenizer, "pad_token_id", None)
    pad = int(pad) if pad is not None else 0
    order = np.argsort([-len(e) for e in encoded], kind="stable")
    bs = int(batch_size or getattr(lm, "batch_size", 16) or 16)
    with torch.inference_mode():
        for start in range(0, len(order), bs):
            idx = order[start : start + bs]
            seqs = [encoded[i] for i in idx]
            T = max(len(s) for s in seqs)
            ids = torch.full((len(seqs), T), pad, dtype=torch.long)
            mask = torch.zeros((len(seqs), T), dtype=torch.long)
            for r, s in enumerate(seqs):  # right padding: the last real token sees no pad
                ids[r, : len(s)] = torch.tensor(s)
                mask[r, : len(s)] = 1
            last = torch.tensor([len(s) - 1 for s in seqs], device=lm.device)
            rows = torch.arange(len(seqs), device=lm.device)
            kw: dict[str, Any] = {
                "input_ids": ids.to(lm.device),
                "attention_mask": mask.to(lm.device),
                "output_hidden_states": True,
                "use_cache": False,
            }
            with _capture_norm_input(norm) as seen:
                res = base(**kw)
            hs = res.hidden_states
            if len(hs) != L + 1 or not seen:
                raise AllOrNoneError(
                    f"{type(lm.hf_model).__name__} returned {len(hs)} hidden states for {L} "
                    "layers (or never called its final norm): the logit lens cannot align them"
                )
            for layer in want:
                h = (seen[-1] if layer == L else hs[layer])[rows, last]
                f = norm(h).to(t_dtype)
                if head.scale != 1.0:
                    f = f * head.scale
                out[layer][idx, :hidden] = f.cpu().numpy()
    if head.bias is not None:
        for F in out.values():
            F[:, hidden] = 1.0
    return out


def layer_predictors(
    lm: Any,
    contexts: Sequence[str],
    layers: str | Sequence[int] | None = None,
    *,
    batch_size: int | None = None,
) -> dict[int, NextTokenPredictor]:
    """``{l: NextTokenPredictor(F_l, G)}`` sharing the model's unembeddings, not copied (a
    float32 ``G`` stays float32; ``F_l`` is float64, so every product is formed in float64;
    ``eps`` that of the model's dtype, as for :meth:`LanguageModel.predictor`)."""
    reps = layer_representations(lm, contexts, layers, batch_size=batch_size)
    G = np.asarray(lm.unembedding())
    eps = float(np.finfo(G.dtype).eps) if np.issubdtype(G.dtype, np.floating) else 2.2e-16
    out = {}
    for layer, F in reps.items():
        floor = max(eps, float(np.finfo(F.dtype).eps))
        F64 = np.asarray(F, dtype=np.float64)  # n x d: float64 products with the shared G
        out[layer] = NextTokenPredictor(F64, G, contexts=list(contexts), eps=floor)
    return out
