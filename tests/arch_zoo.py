"""Tiny random models of every architecture of the registry (the verified table).

Each is 2 layers, hidden 32 (or the architecture's smallest legal size), with random norm
weights and head biases (so reading ``f`` before a norm, or forgetting a bias, would show),
over the 512-token Lee BPE of :mod:`test_models_hf` with a mask token added.
"""

from __future__ import annotations

from collections.abc import Callable
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
}
#: Table rows: name -> model_type (two Falcon variants).
ROWS: dict[str, str] = {}


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


BUILDERS: dict[str, Callable[[Any], torch.nn.Module]] = {}
