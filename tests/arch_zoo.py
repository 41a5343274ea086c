"""Tiny random models of every architecture of the registry (the verified table).

Each is 2 layers, hidden 32 (or the architecture's smallest legal size), with random norm
weights and head biases (so reading ``f`` before a norm, or forgetting a bias, would show),
over the 512-token Lee BPE of :mod:`test_models_hf` with a mask token added.
"""

from __future__ import annotations

from typing import Any

import torch

#: Per model_type: config overrides on top of :data:`SMALL` (the config class is transformers'
#: own for the model_type).
SMALL: dict[str, Any] = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=128,
)
OVERRIDES: dict[str, dict[str, Any]] = {
    "gpt2": dict(n_embd=32, n_layer=2, n_head=4, n_positions=128),
    "gpt_bigcode": dict(n_embd=32, n_layer=2, n_head=4, n_positions=128),
    "gptj": dict(n_embd=32, n_layer=2, n_head=4, n_positions=128, rotary_dim=4),
    "codegen": dict(n_embd=32, n_layer=2, n_head=4, n_positions=128, n_ctx=128, rotary_dim=4),
    "gpt_neo": dict(attention_types=[[["global", "local"], 1]], window_size=8),
    "bloom": dict(n_layer=2, n_head=4),
    "mpt": dict(d_model=32, n_layers=2, n_heads=4, max_seq_len=128),
    "opt": dict(ffn_dim=64, word_embed_proj_dim=32),
    "falcon": dict(new_decoder_architecture=False, multi_query=True),
    "falcon-alibi": dict(alibi=True, new_decoder_architecture=False),
    "gemma2": dict(head_dim=8, final_logit_softcapping=30.0),
    "gemma": dict(head_dim=8),
    "helium": dict(head_dim=8),
    "gemma3_text": dict(head_dim=8),
    "mamba": dict(state_size=4, expand=2, conv_kernel=4, time_step_rank=4),
    "mamba2": dict(
        state_size=8, expand=2, conv_kernel=4, num_heads=8, head_dim=8, n_groups=1, chunk_size=16
    ),  # fmt: skip
    "mixtral": dict(num_local_experts=2, num_experts_per_tok=1),
    "qwen2_moe": dict(
        num_experts=2,
        num_experts_per_tok=1,
        moe_intermediate_size=32,
        shared_expert_intermediate_size=32,
    ),  # fmt: skip
    "qwen3_moe": dict(num_experts=2, num_experts_per_tok=1, moe_intermediate_size=32),
    "granitemoe": dict(num_local_experts=2, num_experts_per_tok=1, logits_scaling=4.0),
    "granite": dict(logits_scaling=4.0),
    "cohere": dict(logit_scale=0.37),
    "cohere2": dict(logit_scale=0.37, sliding_window=16),
    "phi": dict(partial_rotary_factor=0.5),
    "stablelm": dict(partial_rotary_factor=0.5),
    "roberta": dict(max_position_embeddings=130),
    "xlm-roberta": dict(max_position_embeddings=130),
    "distilbert": dict(dim=32, n_layers=2, n_heads=4, hidden_dim=64),
    "albert": dict(embedding_size=16),
    "electra": dict(embedding_size=16),
    "modernbert": dict(global_attn_every_n_layers=1, local_attention=16),
    "t5": dict(d_model=32, d_ff=64, num_layers=2, num_heads=4, d_kv=8),
    "mt5": dict(d_model=32, d_ff=64, num_layers=2, num_heads=4, d_kv=8),
}
_SEQ2SEQ = dict(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64)  # fmt: skip
for _t in ("bart", "mbart", "pegasus", "marian"):
    OVERRIDES[_t] = dict(_SEQ2SEQ)


def tokenizer() -> Any:
    from test_models_hf import _bpe_tokenizer

    tok = _bpe_tokenizer()
    tok.add_special_tokens({"mask_token": "<mask>", "cls_token": "<bos>", "sep_token": "<pad>"})
    return tok


def _randomise(model: torch.nn.Module) -> torch.nn.Module:
    """Random norm weights/biases and a random head bias: a pre-norm f or a lost bias shows."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            low = name.lower()
            if "norm" in low or ".ln_" in low or low.startswith("ln_") or "layernorm" in low:
                if name.endswith("bias"):
                    p.copy_(torch.randn(p.shape, generator=g) * 0.3)
                else:
                    p.copy_(torch.rand(p.shape, generator=g) + 0.5)
        head = model.get_output_embeddings()
        bias = getattr(head, "bias", None)
        if not isinstance(bias, torch.Tensor):
            bias = getattr(model, "final_logits_bias", None)  # BART-style
        if isinstance(bias, torch.Tensor):
            bias.copy_(torch.randn(bias.shape, generator=g))
    return model.eval()


def build(name: str, tok: Any) -> torch.nn.Module:
    """A tiny random model of table row ``name``."""
    from transformers import AutoConfig

    from allornone.models.architectures import REGISTRY, model_class

    model_type = name.split("-alibi")[0]
    adapter = REGISTRY[model_type]
    kw: dict[str, Any] = {**SMALL, **OVERRIDES.get(model_type, {}), **OVERRIDES.get(name, {})}
    kw.update(
        vocab_size=len(tok),
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.pad_token_id,
        decoder_start_token_id=tok.bos_token_id,
    )
    cfg = AutoConfig.for_model(model_type, **kw)
    torch.manual_seed(0)
    model = model_class(adapter)(cfg)
    return _randomise(model)


def names() -> list[str]:
    from allornone.models.architectures import REGISTRY

    out = [t for t, a in REGISTRY.items() if a.supported]
    out.insert(out.index("falcon") + 1, "falcon-alibi")
    return out


#: One table row per head kind is audited end to end (``audit --quick``, slow tests).
AUDITED = {
    "gptj": "biased",
    "cohere": "scaled",
    "bert": "masked-lm",
    "t5": "encoder-decoder",
    "mamba": "state-space",
}

CONTEXTS = [
    "The cat sat on the",
    "She said that the old man",
    "In the morning they went to",
    "A <mask> of the city was",
    "Two years later the",
    "He gave the book to",
    "It is one of the most",
    "When the war was over",
    "They found that the",
    "Some of the people in",
    "The government said it",
    "After the game the players",
]


def verify(name: str, tok: Any) -> dict[str, Any]:
    """Load the tiny model of row ``name`` through :class:`LanguageModel` (logits checked),
    compare ``F G^T`` with the model's log-probabilities, run ``structure`` and ``steering``
    with its forward-pass check. Returns the table row (raises on any failure)."""
    import warnings

    import numpy as np
    from scipy.special import log_softmax

    import allornone as aon
    from allornone.models import LanguageModel
    from allornone.models.steering_check import measured_shift

    model = build(name, tok)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lm = LanguageModel(model, tok, cache=False, allow_nonlinear_head=True)
    assert lm.adapter is not None
    P = lm.predictor(CONTEXTS)
    own = lm.logprobs(CONTEXTS)
    z = P.F.astype(np.float64) @ P.G.astype(np.float64).T
    if lm.head.softcap is not None:
        z = lm.head.softcap * np.tanh(z / lm.head.softcap)
    fac = log_softmax(z, axis=1)
    gap = float(np.abs(fac - own).max() / max(1.0, np.abs(own).max()))
    st = aon.structure(P)
    v = np.random.default_rng(0).standard_normal(P.d) / np.sqrt(P.d)
    r = aon.properties.steering(P, v, alpha=1.0)
    chk = measured_shift(lm.hf_model, tok, CONTEXTS[:3], v, 1.0)
    steer_err = float(np.abs(chk.measured - r.details["shift"][None, :]).max())
    return {
        "name": name,
        "model_type": lm.adapter.model_type,
        "class": type(model).__name__,
        "kind": lm.adapter.kind,
        "d": lm.d,
        "bias": lm.head.bias is not None,
        "scale": lm.head.scale,
        "softcap": lm.head.softcap,
        "gap": gap,
        "logit_check": float(lm.logit_check or 0.0) / max(1.0, lm.logit_check_scale or 0.0),
        "k": int(st.k),
        "steer_err": steer_err / max(chk.effect, 1e-12),
    }


#: Bounds the table asserts (float32 models): logit gap, steering check (the softcapped head
#: is not linear, so its linear prediction is only approximate).
GAP_TOL = 1e-5
STEER_TOL = 1e-4
STEER_TOL_SOFTCAP = 1e-2


def steer_tol(kind: str) -> float:
    return STEER_TOL_SOFTCAP if kind == "softcapped" else STEER_TOL


def _bound(x: float, tol: float, note: str = "") -> str:
    return f"< {tol:.0e}{note}" if x < tol else f"{x:.1e} (FAILS)"


HEADER = """# Architectures

<!-- generated by `python scripts/architectures_doc.py` from tests/arch_zoo.py; the test
tests/test_architectures.py fails when this page is stale: rerun the script. -->

allornone reads a model as a next-token predictor `softmax(f(x)^T g(y))` (THEORY.md 1). The
**architecture registry** (`allornone.models.architectures.REGISTRY`) maps each transformers
`model_type` to an adapter of one *head kind*, which says where `f` is read, how `g`, the
bias and the scale enter, and where the forward-pass checks inject a vector:

| head kind | how it is read |
|---|---|
{kinds}

A masked LM's context is a text holding the tokenizer's mask token, or, without one, the mask
is appended (the next word as a masked query). An encoder-decoder's context is the source
text, with an empty target prefix (the decoder start token); `(source, prefix)` pairs are not
supported yet. An architecture outside the registry is refused with one
line naming it; a model object of a causal architecture outside the registry is still loaded
and checked numerically (its logits must be reproduced by `F G^T`).

## Adding an architecture

- **Same head kind as a listed one** (almost every new causal LM): add one line to
  `REGISTRY` in `src/allornone/models/architectures.py`, e.g.
  `_a("my_arch", "plain", "MyArchForCausalLM", "model.norm")`: the `model_type`, the head
  kind, the transformers class, and the dotted path of the module whose output is the LM
  head's input (the final norm; for masked LMs the prediction transform). Then add its tiny
  config to `tests/arch_zoo.py` (`OVERRIDES`, when the defaults do not fit) and regenerate
  this page: `python scripts/architectures_doc.py`.
- **A new head kind**: add it to `HEAD_KINDS` (and `SUPPORTED_KINDS`), teach
  `models/_head.py` how its bias/scale enter and, if `f` is not the last token's state,
  `models/_forward.py` where `f` is read (see `models/_masked.py` for the masked-LM case).

Folders are never allowed to run their own code: a `config.json` or `tokenizer_config.json`
with `auto_map` is refused (`trust_remote_code=False` everywhere), and a checkpoint that
lacks tensors of the class (a head transformers would initialise at random) is refused.

With `allow_nonlinear_head=True` (CLI `--allow-nonlinear-head`) a softcapped head
(Gemma-2) loads; the predictor then describes the **pre-cap** logits `f^T g`, not exactly the
model's distribution `softmax(c tanh(f^T g / c))`, and the departure is recorded in
`head_warnings` and in the report.

## Verified table

Every row is a tiny random model (2 layers, hidden 32, random norm weights and head biases,
the 512-token Lee BPE of the tests with a mask token) built, loaded through `LanguageModel`
(float32) and checked by `tests/test_architectures.py`: *logit gap* is
`max |log_softmax(F G^T) - model log-probs|` relative to the largest log-probability (softcap
applied for Gemma-2); *steering check* is the forward-pass check of a random steering vector
(injected in the head's own coordinates) against the factor model's prediction, relative to
the measured effect; *structure* ran on 12 contexts; *audit --quick* is run on one model of
each head kind (slow tests).

{counts}

| architecture | class | head kind | d | logit gap | steering check | audit --quick |
|---|---|---|---|---|---|---|
{rows}
"""


_NOTE = {"softcapped": " (softcap: linear prediction)"}


def render(rows: list[dict[str, Any]]) -> str:
    """docs/ARCHITECTURES.md from the verified rows (stable text: gaps as bounds)."""
    from collections import Counter

    from allornone.models.architectures import HEAD_KINDS

    kinds = "\n".join(f"| {k} | {v} |" for k, v in HEAD_KINDS.items())
    body = "\n".join(
        f"| {r['name']} | {r['class']} | {r['kind']} | {r['d']} | {_bound(r['gap'], GAP_TOL)} | "
        f"{_bound(r['steer_err'], steer_tol(r['kind']), _NOTE.get(r['kind'], ''))} | "
        f"{'report written' if r['name'] in AUDITED else '-'} |"
        for r in rows
    )
    per = Counter(r["kind"] for r in rows)
    ok = sum(r["gap"] < GAP_TOL and r["steer_err"] < steer_tol(r["kind"]) for r in rows)
    counts = (
        f"{len(rows)} architectures, {ok} pass: "
        + ", ".join(f"{n} {k}" for k, n in per.items())
        + "."
    )
    return HEADER.format(kinds=kinds, rows=body, counts=counts)
