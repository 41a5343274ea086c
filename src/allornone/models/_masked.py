"""Masked LMs (BERT, RoBERTa, DistilBERT, ALBERT, ELECTRA generator, XLM-RoBERTa, ModernBERT)
as next-token predictors ``softmax(f(x)^T g(y))`` (THEORY.md 1).

A context is a text holding the tokenizer's mask token; a text without one gets the mask
appended (the next word as a masked query: ``"The capital of France is [MASK]"``). ``f(x)``
is the output of the prediction head's transform (dense, activation, norm) at the **last**
mask of the context, read by a forward hook on the adapter's ``f_module`` (the forward stops
there: the decoder's V logits per position are never computed); ``g(y)`` are the decoder's
rows with its bias absorbed (:mod:`._head`). Batches are right padded with an attention mask
and the model's own position ids (bidirectional attention: nothing is read past a pad).
"""

from __future__ import annotations

from typing import Any

import torch

from .._validation import AllOrNoneError

__all__ = ["MaskedLayout", "capture", "capture_input", "get_module"]


class _Captured(Exception):  # noqa: N818 - control flow, never escapes
    def __init__(self, value: torch.Tensor) -> None:
        super().__init__("captured")
        self.value = value


def get_module(root: Any, path: str) -> torch.nn.Module:
    """The submodule at a dotted ``path`` (one line when it is absent)."""
    mod = root
    for part in path.split("."):
        mod = getattr(mod, part, None)
        if mod is None:
            raise AllOrNoneError(
                f"{type(root).__name__} has no module {path!r} (the registry's f_module for "
                "this architecture): the installed transformers lays it out differently"
            )
    if not isinstance(mod, torch.nn.Module):
        raise AllOrNoneError(f"{type(root).__name__}.{path} is not a torch module")
    return mod


def capture(model: Any, module: torch.nn.Module, kwargs: dict[str, Any]) -> torch.Tensor:
    """Run ``model(**kwargs)`` until ``module`` has produced its output and return it (the
    rest of the forward, e.g. the decoder's logits, is skipped)."""

    def hook(_m: Any, _inp: Any, out: Any) -> None:
        raise _Captured(out[0] if isinstance(out, tuple) else out)

    handle = module.register_forward_hook(hook)
    try:
        model(**kwargs)
    except _Captured as got:
        return got.value
    finally:
        handle.remove()
    raise AllOrNoneError(f"the forward pass of {type(model).__name__} never ran {module}")


def capture_input(model: Any, module: torch.nn.Module, kwargs: dict[str, Any]) -> torch.Tensor:
    """Run ``model(**kwargs)`` until ``module`` is called and return its first input (the
    encoder-decoders' ``f``: the LM head's input, any output scaling included)."""

    def pre(_m: Any, args: Any) -> None:
        raise _Captured(args[0])

    handle = module.register_forward_pre_hook(pre)
    try:
        model(**kwargs)
    except _Captured as got:
        return got.value
    finally:
        handle.remove()
    raise AllOrNoneError(f"the forward pass of {type(model).__name__} never ran {module}")


def decoder_start(model: Any, name: str) -> int:
    """The decoder start token of an encoder-decoder (the empty target prefix)."""
    cfg = getattr(model, "config", None)
    start = getattr(cfg, "decoder_start_token_id", None)
    if start is None:
        gen = getattr(model, "generation_config", None)
        start = getattr(gen, "decoder_start_token_id", None)
    if start is None:
        raise AllOrNoneError(
            f"{name} is an encoder-decoder without config.decoder_start_token_id: set it "
            "(the token that starts the target) before loading"
        )
    return int(start)


class MaskedLayout:
    """Token layout of a masked LM's contexts: ``prefix + text (+ mask) + suffix``."""

    def __init__(self, tokenizer: Any, prefix: list[int], n_suffix: int, name: str) -> None:
        mask_id = getattr(tokenizer, "mask_token_id", None)
        if mask_id is None:
            raise AllOrNoneError(
                f"{name} is a masked LM but its tokenizer has no mask token: pass the "
                "model's own tokenizer (or tokenizer.add_special_tokens({'mask_token': ...}))"
            )
        self.mask_id = int(mask_id)
        self.prefix = list(prefix)
        ids = list(tokenizer("a b c", add_special_tokens=True)["input_ids"])
        self.suffix = ids[len(ids) - n_suffix :] if n_suffix else []

    def wrap(self, body: list[int]) -> list[int]:
        """``prefix + body (+ mask when body has none) + suffix``."""
        if self.mask_id not in body:
            body = [*body, self.mask_id]
        return self.prefix + body + self.suffix

    def wrap_ids(self, ids: list[int]) -> list[int]:
        """Token ids given as is (as ``embed_ids``): the mask appended when absent."""
        return ids if self.mask_id in ids else [*ids, self.mask_id]

    def back(self, seq: list[int]) -> int:
        """Positions from the last token of ``seq`` back to its last mask."""
        for j in range(len(seq) - 1, -1, -1):
            if seq[j] == self.mask_id:
                return len(seq) - 1 - j
        raise AllOrNoneError("a context of a masked LM holds no mask token")
