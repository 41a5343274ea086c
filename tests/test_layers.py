"""Logit lens (THEORY.md 10.4): per-layer predictors of tiny random HF models, the per-layer
audit and its CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from audit_helpers import CONCEPTS, LABELS, RELATIONS
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

import allornone as aon
from allornone.audit import pipeline
from allornone.audit.inputs import AuditConfig
from allornone.audit.layers import LAYER_COLUMNS, kl_many, kl_to, run_layers, write_layers
from allornone.cli import main
from allornone.data import read_pairs_tsv
from allornone.models import load
from allornone.models.layers import (
    layer_predictors,
    layer_representations,
    num_layers,
    parse_layers,
)

CONTEXTS = ["king and queen", "the man", "a big dog said", "small", "mother and father went"]


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ALLORNONE_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def tok() -> PreTrainedTokenizerFast:
    """A word-level tokenizer whose vocabulary holds every concept word as one token."""
    words = sorted({w for f in read_pairs_tsv(CONCEPTS) for p in f.pairs for w in p})
    text = LABELS.read_text(encoding="utf-8").split()
    vocab = {"<pad>": 0, "<unk>": 1}
    rel = json.loads(RELATIONS.read_text(encoding="utf-8"))
    objects = [x["object"] for r in rel for x in r["samples"]]  # single-token answers
    for w in words + [w.strip(".,;:!?\"'") for w in text] + CONTEXTS[2].split() + objects:
        if w and w not in vocab:
            vocab[w] = len(vocab)
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tk.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", unk_token="<unk>")


def _random_norms(model: torch.nn.Module) -> torch.nn.Module:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or ".ln_" in name:
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
    return model.eval()


def _llama(V: int, layers: int = 3, dtype: torch.dtype = torch.float32) -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=V,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    return _random_norms(LlamaForCausalLM(cfg)).to(dtype)


def _gpt2(V: int) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=V, n_embd=32, n_layer=2, n_head=4, n_positions=128)
    return _random_norms(GPT2LMHeadModel(cfg))


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_last_layer_is_the_models_own_F(kind, tok):
    model = _llama(len(tok)) if kind == "llama" else _gpt2(len(tok))
    lm = load(model, tokenizer=tok, cache=False)
    L = num_layers(lm)
    reps = layer_representations(lm, CONTEXTS)
    assert sorted(reps) == list(range(L + 1))
    F = lm.embed(CONTEXTS, cache=False)
    np.testing.assert_allclose(reps[L], F, rtol=1e-5, atol=1e-6)
    for layer in range(L):  # the earlier layers are different predictors
        assert np.abs(reps[layer] - F).max() > 1e-2
    # read through the norm: a layer's f has the norm's scale, not the residual stream's
    assert not any(h.requires_grad for h in map(torch.as_tensor, reps.values()))


def test_float64_last_layer_reproduces_the_models_logits(tok):
    lm = load(_llama(len(tok), dtype=torch.float64), tokenizer=tok, dtype="float64", cache=False)
    P = layer_predictors(lm, CONTEXTS, [0, num_layers(lm)])
    own = lm.logprobs(CONTEXTS)
    last = P[num_layers(lm)]
    np.testing.assert_allclose(last.log_probs(), own, atol=1e-9)
    assert P[0].G is last.G  # one copy of the unembeddings for every layer
    assert kl_to(last, last) < 1e-12 and kl_to(last, P[0]) > 1e-3
    eq = aon.equivalence(last, aon.NextTokenPredictor(lm.embed(CONTEXTS, cache=False), last.G))
    assert eq.equivalent


def test_parse_layers_errors_name_the_range():
    assert parse_layers("all", 3) == [0, 1, 2, 3]
    assert parse_layers("3, 1,1", 3) == [1, 3]
    with pytest.raises(aon.AllOrNoneError, match=r"layer 4 is out of range: .* layers 0\.\.3"):
        parse_layers("0,4", 3)
    with pytest.raises(aon.AllOrNoneError, match="comma-separated"):
        parse_layers("first", 3)
    with pytest.raises(aon.AllOrNoneError, match="out of range"):
        parse_layers([-1], 3)


def _cfg() -> AuditConfig:
    return AuditConfig(
        model="tiny-llama",
        concepts=str(CONCEPTS),
        relations=str(RELATIONS),
        labels=str(LABELS),
        quick=True,
        progress=False,
    )


def test_run_layers_table_and_files(tok, tmp_path):
    lm = load(_llama(len(tok)), tokenizer=tok, cache=False)
    res = run_layers(_cfg(), "all", model=lm)
    rows = res["layers"]
    assert [r["layer"] for r in rows] == [0, 1, 2, 3] and res["kind"] == "layers"
    last = rows[-1]
    assert last["kl_from_final"] < 1e-9 and all(r["kl_from_final"] > 1e-4 for r in rows[:-1])
    st = aon.structure(lm.predictor(_main_texts(lm)))
    assert last["k"] == st.k and last["energy_rank"] == st.energy_rank
    assert all(r["families"] >= 1 for r in rows)
    # probes, steering and relations at every layer, with their verdicts
    for r in rows:
        assert 0 <= r["probe_test_accuracy"] <= 1 and 0 <= r["probe_logodds_test_accuracy"] <= 1
        assert r["steer_selectivity"] is not None and r["relations"] >= 1
        assert r["rel_dist_r2_test"] is not None and 0 <= r["rel_kl_faithfulness"] <= 1
        assert 0 <= r["probe_all_or_none"] and 0 <= r["rel_all_or_none"] <= r["relations"]
    assert res["layer_relations"] == ["capital", "continent"] and res["contexts_embedded"] > 0
    # raw parallelism reads G only: the same at every layer; the identified one moves
    raw = {round(r["euclid_cos"], 12) for r in rows}
    assert len(raw) == 1
    assert len({round(r["logodds_corr"], 6) for r in rows}) > 1
    write_layers(res, tmp_path)
    with open(tmp_path / "layers.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0]) == list(LAYER_COLUMNS) and len(table) == 4
    assert json.loads((tmp_path / "results.json").read_text())["layers"][3]["layer"] == 3
    assert (tmp_path / "figures" / "layers.png").stat().st_size > 1000
    assert "Logit lens" in (tmp_path / "report.md").read_text()


def _main_texts(lm) -> list[str]:
    """The full audit's main contexts (its subject selection, its seed)."""
    from allornone.audit.inputs import ContextSets, load_inputs, select_subjects

    cfg = _cfg().sized()
    inp = load_inputs(cfg)
    select_subjects(lm, inp, cfg)
    ctx = ContextSets.build(inp, seed=cfg.seed)
    return [ctx.all[i] for i in ctx.rows("main")]


def test_kl_many_equals_kl_to_layer_by_layer(tok):
    lm = load(_llama(len(tok)), tokenizer=tok, cache=False)
    P = layer_predictors(lm, CONTEXTS, "all")
    L = num_layers(lm)
    many = kl_many(P[L], P, block=7)  # a block that does not divide V
    for layer, q in P.items():
        assert many[layer] == pytest.approx(kl_to(P[L], q), rel=1e-12, abs=1e-14)
    assert many[L] == 0.0


def test_cli_layers_and_its_errors(tok, tmp_path, monkeypatch, capsys):
    lm = load(_llama(len(tok)), tokenizer=tok, cache=False)
    monkeypatch.setattr(pipeline, "load_model", lambda cfg: lm)
    base = [
        "audit",
        "--model",
        "tiny-llama",
        "--concepts",
        str(CONCEPTS),
        "--relations",
        str(RELATIONS),
        "--labels",
        str(LABELS),
        "--quick",
        "--no-progress",
    ]
    out = tmp_path / "lay"
    assert main([*base, "--layers", "0,3", "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    assert [r["layer"] for r in res["layers"]] == [0, 3] and res["config"]["kl"] is True
    assert all(r["rel_kl_faithfulness"] is not None for r in res["layers"])
    # --no-kl reaches the per-layer audit too (it was dropped there once)
    assert main([*base, "--layers", "0,3", "--no-kl", "--out", str(tmp_path / "nokl")]) == 0
    res = json.loads((tmp_path / "nokl" / "results.json").read_text())
    assert res["config"]["kl"] is False
    assert all(r["rel_kl_faithfulness"] is None for r in res["layers"])
    capsys.readouterr()
    assert main([*base, "--layers", "0,7", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "layer 7 is out of range" in err and "0..3" in err
    assert not Path(tmp_path / "bad").exists()
    assert main([*base, "--layers", "-1", "--out", str(tmp_path / "bad")]) == 2
    assert "comma-separated layer indices" in capsys.readouterr().err


def test_layer_relations_side_by_side_equal_one_after_the_other(tok, monkeypatch):
    """The (layer, relation) fits run in threads on the cores; the numbers are those of a
    sequential run (to float rounding: BLAS thread counts differ)."""
    lm = load(_llama(len(tok)), tokenizer=tok, cache=False)
    monkeypatch.setenv("ALLORNONE_NUM_THREADS", "2")
    par = run_layers(_cfg(), "0,2,3", model=lm)["layers"]
    monkeypatch.setenv("ALLORNONE_NUM_THREADS", "1")
    seq = run_layers(_cfg(), "0,2,3", model=lm)["layers"]
    for a, b in zip(par, seq, strict=True):
        for key in ("rel_dist_r2_test", "rel_kl_faithfulness", "rel_all_or_none", "relations"):
            assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-9), key
