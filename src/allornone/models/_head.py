"""LM-head adapter: bring a transformers LM head to the form ``logits = f(x)^T g(y)``.

THEORY.md 1: a bias ``b_y`` is absorbed as ``f -> [f, 1]``, ``g -> [g, b]``; a constant logit
scale ``s`` is absorbed into ``f`` (``f -> s f``); a non-linear cap (Gemma-2 style
``c * tanh(z / c)``) is *not* of the form and is refused unless the user explicitly allows it.

Known config attributes (transformers 5.x):

========================== =========================== ==================================
attribute                  models                      head
========================== =========================== ==================================
``logit_scale``            Cohere, Cohere2             ``s * (h W^T)``
``logits_scaling``         Granite, GraniteMoe         ``(h W^T) / s``
``final_logit_softcapping`` Gemma-2 (Gemma-3 has None)  ``c * tanh(h W^T / c)``  (non-linear)
========================== =========================== ==================================

Any other head is still checked numerically against the model's own logits at load
(:meth:`LanguageModel.check_logits`); an unknown scale can be given as ``logit_scale=``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .._validation import AllOrNoneError

__all__ = ["HeadSpec", "inspect_head"]


@dataclass
class HeadSpec:
    """What the LM head does, in the terms of THEORY.md 1.

    Attributes
    ----------
    weight : torch.Tensor, shape (V, d)
        The unembedding rows ``g(y)`` (the LM head's weight, never copied).
    bias : torch.Tensor or None, shape (V,)
        The LM-head bias ``b_y`` (already multiplied by ``scale``), or None.
    scale : float
        Constant multiplier of the logits, absorbed into ``f``.
    softcap : float or None
        ``c`` of a ``c * tanh(z / c)`` cap applied after the scale (non-linear), or None.
    tied : bool
        Whether the head shares its weight with the input embedding.
    notes : list of str
        Human-readable description of each adaptation (for reports).
    warnings : list of str
        Departures from ``softmax(f^T g)`` the user accepted (``allow_nonlinear_head``).
    """

    weight: torch.Tensor
    bias: torch.Tensor | None
    scale: float
    softcap: float | None
    tied: bool
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def apply_cap(self, logits: torch.Tensor) -> torch.Tensor:
        """Apply the non-linear cap (if any) to linear logits ``f^T g``; any shape."""
        if self.softcap is None:
            return logits
        return self.softcap * torch.tanh(logits / self.softcap)


def _config_value(config: Any, name: str) -> Any:
    """Attribute ``name`` of a config or of its ``text_config`` (multimodal wrappers)."""
    for cfg in (config, getattr(config, "text_config", None)):
        if cfg is not None and getattr(cfg, name, None) is not None:
            return getattr(cfg, name)
    return None


def inspect_head(
    model: Any,
    *,
    allow_nonlinear_head: bool = False,
    logit_scale: float | None = None,
) -> HeadSpec:
    """Describe the LM head of a transformers causal LM (see the module docstring).

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A model with an output embedding (``get_output_embeddings()``), e.g. ``*ForCausalLM``.
    allow_nonlinear_head : bool
        Accept a ``tanh`` softcap; it is then recorded in ``HeadSpec.warnings``.
    logit_scale : float, optional
        Override the constant logit scale (for heads this module does not know).

    Raises
    ------
    AllOrNoneError
        No LM head, a head that is not a linear layer, or a softcap without
        ``allow_nonlinear_head=True``.
    """
    get_out = getattr(model, "get_output_embeddings", None)
    head = get_out() if callable(get_out) else None
    if head is None:
        raise AllOrNoneError(
            f"{type(model).__name__} has no LM head (get_output_embeddings() is None): load a "
            "causal LM class (e.g. AutoModelForCausalLM), not the bare encoder/decoder"
        )
    weight = getattr(head, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2:
        raise AllOrNoneError(
            f"the LM head of {type(model).__name__} is a {type(head).__name__} without a 2-D "
            "weight; only linear heads (logits = h W^T + b) are supported"
        )
    config = getattr(model, "config", None)
    notes: list[str] = []
    warns: list[str] = []

    get_in = getattr(model, "get_input_embeddings", None)
    emb = get_in() if callable(get_in) else None
    emb_w = getattr(emb, "weight", None)
    tied = isinstance(emb_w, torch.Tensor) and emb_w.data_ptr() == weight.data_ptr()
    notes.append("tied head: g(y) = input embedding row y" if tied else "untied LM head")

    scale = 1.0
    if logit_scale is not None:
        scale = float(logit_scale)
        notes.append(f"logit scale {scale:g} given by the user, absorbed into f")
    else:
        s = _config_value(config, "logit_scale")
        if s is not None and float(s) != 1.0:
            scale = float(s)
            notes.append(f"config.logit_scale = {scale:g} absorbed into f (f <- s f)")
        s = _config_value(config, "logits_scaling")
        if s is not None and float(s) != 1.0:
            scale = scale / float(s)
            notes.append(f"config.logits_scaling = {float(s):g}: f <- f / {float(s):g}")

    bias = getattr(head, "bias", None)
    flb = getattr(model, "final_logits_bias", None)  # BART, mBART, Pegasus, Marian
    if not isinstance(bias, torch.Tensor) and isinstance(flb, torch.Tensor):
        bias = flb.reshape(-1)
        notes.append("final_logits_bias of the model is the LM-head bias")
    if isinstance(bias, torch.Tensor):
        notes.append("LM-head bias absorbed: f <- [f, 1], g <- [g, b] (d grows by one)")
        bias = bias.detach() * scale
    else:
        bias = None

    cap = _config_value(config, "final_logit_softcapping")
    softcap = float(cap) if cap is not None else None
    if softcap is not None:
        msg = (
            f"final_logit_softcapping = {softcap:g}: the model's logits are "
            f"{softcap:g} * tanh(f^T g / {softcap:g}), which is NOT softmax(f^T g); the "
            "predictor describes the pre-cap logits, so identifiability results are about that "
            "linear model, not exactly about the model's distribution"
        )
        if not allow_nonlinear_head:
            raise AllOrNoneError(
                f"{type(model).__name__} uses a non-linear LM head ({msg}). To load it anyway, "
                "pass allow_nonlinear_head=True (CLI: --allow-nonlinear-head; it will be "
                "recorded in .head_warnings), or set config.final_logit_softcapping = None if "
                "you want the uncapped model"
            )
        warns.append(msg)
        notes.append(f"softcap {softcap:g} accepted (allow_nonlinear_head=True)")
    return HeadSpec(
        weight=weight,
        bias=bias,
        scale=scale,
        softcap=softcap,
        tied=tied,
        notes=notes,
        warnings=warns,
    )
