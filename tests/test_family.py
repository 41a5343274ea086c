"""Training families: reproducible from the seed, resumable, refuses mixed families."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from allornone import AllOrNoneError
from allornone.family import train as T

TINY = T.TrainConfig(
    corpus="lee",
    vocab_size=300,
    ctx=16,
    layers=1,
    heads=2,
    widths=[16],
    seeds=[0],
    steps=12,
    batch=4,
    warmup=2,
    eval_every=6,
    eval_windows=16,
    checkpoint_every=6,
    word2vec=False,
    device="cpu",
)


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    out = tmp_path_factory.mktemp("fam")
    T.prepare_family(out, TINY)
    return out


def _weights(path):
    from transformers import GPT2LMHeadModel

    return GPT2LMHeadModel.from_pretrained(path).state_dict()


def test_prepare_family_writes_split_tokenizer_and_baseline(family):
    meta = json.loads((family / "family.json").read_text())
    assert meta["vocab_size"] == 300
    assert meta["train_tokens"] > 10 * meta["heldout_tokens"] > 0
    assert meta["bigram_heldout_ppl"] > 1
    assert (family / "tokenizer" / "tokenizer.json").exists()


def test_training_is_reproducible_and_resumable(family, tmp_path, monkeypatch):
    done = T.train_transformer(family, TINY, 16, 0, progress=False)
    assert done["steps"] == 12 and (family / "tf-d16-s0" / "final").is_dir()
    assert not (family / "tf-d16-s0" / "checkpoint.pt").exists()
    ref = _weights(family / "tf-d16-s0" / "final")

    # a second family folder, same settings: interrupted after the first checkpoint
    other = tmp_path / "fam2"
    T.prepare_family(other, TINY)
    calls = {"n": 0}
    real = T.heldout_loss

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:  # at step 12, after the checkpoint of step 6
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(T, "heldout_loss", flaky)
    with pytest.raises(KeyboardInterrupt):
        T.train_transformer(other, TINY, 16, 0, progress=False)
    state = torch.load(other / "tf-d16-s0" / "checkpoint.pt", weights_only=False)
    assert state["step"] == 6 and not (other / "tf-d16-s0" / "final").exists()
    monkeypatch.setattr(T, "heldout_loss", real)
    T.train_transformer(other, TINY, 16, 0, progress=False)
    resumed = _weights(other / "tf-d16-s0" / "final")
    for key in ref:
        torch.testing.assert_close(resumed[key], ref[key], rtol=1e-5, atol=1e-6)
    # a different seed gives a different model
    T.train_transformer(family, TINY, 16, 1, progress=False)
    w1 = _weights(family / "tf-d16-s1" / "final")
    assert not torch.allclose(w1["transformer.wte.weight"], ref["transformer.wte.weight"])


def test_finished_model_loads_through_the_adapter(family):
    from allornone import models

    T.train_transformer(family, TINY, 16, 0, progress=False)
    lm = models.load(str(family / "tf-d16-s0" / "final"))
    assert lm.d == 16 and lm.V == 300
    assert lm.logit_check < 1e-3


def test_family_refuses_other_tokenizer_settings(family):
    with pytest.raises(AllOrNoneError, match="vocab_size=300"):
        T.prepare_family(family, replace(TINY, vocab_size=400))


def test_checkpoint_from_another_version_is_refused(family):
    run = family / "tf-d16-s7"
    run.mkdir(exist_ok=True)
    torch.save({"family_version": 999, "width": 16}, run / "checkpoint.pt")
    with pytest.raises(AllOrNoneError, match="another version"):
        T.train_transformer(family, TINY, 16, 7, progress=False)


def test_missing_corpus_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("ALLORNONE_DEBIAN_ROOT", str(tmp_path / "nothing"))
    monkeypatch.setenv("ALLORNONE_NO_SYSTEM_DEBIAN", "1")
    monkeypatch.setenv("ALLORNONE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(AllOrNoneError, match="bible-kjv"):
        T.prepare_family(tmp_path / "fam", replace(TINY, corpus="kjv"))


def test_bigram_baseline_is_a_perplexity():
    import numpy as np

    rng = np.random.default_rng(0)
    stream = rng.integers(0, 5, 2000)
    ppl = T.bigram_perplexity(stream, stream[:500], 5)
    assert 4.0 < ppl < 5.5  # near-uniform random tokens: perplexity close to V
    det = np.tile(np.arange(5), 400)
    assert T.bigram_perplexity(det, det[:500], 5) < 1.1  # deterministic successor


def test_cli_train_then_study_end_to_end(tmp_path):
    """`allornone train` then `allornone study` on a tiny family (Lee corpus, 2 seeds)."""
    from allornone.cli import main

    fam = tmp_path / "fam"
    args = ["train", "--out", str(fam), "--corpus", "lee", "--widths", "16", "--seeds", "0", "1"]
    args += ["--steps", "6", "--layers", "1", "--no-progress", "--device", "cpu"]
    assert main(args) == 0  # transformers and word2vec models, summary table printed
    assert (fam / "tf-d16-s0" / "final").is_dir() and (fam / "tf-d16-s1" / "final").is_dir()
    out = tmp_path / "study"
    study_args = ["study", str(fam), "--contexts", "64", "--out", str(out), "--no-progress"]
    assert main(study_args) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["schema_version"] == "study-1"
    assert len(res["members"]) == 2 and len(res["pairs"]) == 1
    assert res["word2vec"]["shared_vocab"] > 100 and len(res["word2vec"]["pairs"]) == 1
    pair = res["pairs"][0]
    assert pair["mean_kl"] > 0 and pair["k_a"] > 0 and 0 <= pair["residual_f"]
    assert (out / "report.html").exists() and (out / "report.md").exists()
    # a second study into the same folder is refused without --force
    assert main(study_args) == 2
    # a model with another tokenizer makes the family mixed: refused
    tok = fam / "tf-d16-s1" / "final" / "tokenizer.json"
    tok.write_text(tok.read_text().replace('"<|endoftext|>"', '"<|eot|>"', 1))
    assert main(["study", str(fam), "--out", str(tmp_path / "s2"), "--no-progress"]) == 2
