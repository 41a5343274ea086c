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
    args = ["train", "--out", str(fam), "--corpus", "lee", "--widths", "16", "24"]
    args += ["--seeds", "0", "1", "--steps", "6", "--layers", "1", "--no-progress"]
    assert main(args + ["--device", "cpu"]) == 0  # transformers and word2vec, table printed
    assert (fam / "tf-d16-s0" / "final").is_dir() and (fam / "tf-d16-s1" / "final").is_dir()
    out = tmp_path / "study"
    study_args = ["study", str(fam), "--contexts", "64", "--out", str(out), "--no-progress"]
    assert (
        main(study_args + ["--cross-width-pairs", "1", "--bootstrap", "50", "--permutations", "9"])
        == 0
    )
    res = json.loads((out / "results.json").read_text())
    assert res["schema_version"] == "study-1"
    # 4 models: both pairs of one width and 1 of the 4 cross-width pairs
    assert len(res["members"]) == 4 and len(res["pairs"]) == 3
    assert res["pairs_selection"] == {
        "cross_width_pairs_cap": 1,
        "measured": 3,
        "skipped_cross_width": 3,
    }
    assert sum(not p["same_width"] for p in res["pairs"]) == 1
    assert res["word2vec"]["shared_vocab"] > 100 and len(res["word2vec"]["pairs"]) == 3
    # 2 seeds: every question is answered with its point estimate only, and says so
    assert res["questions"] and res["word2vec"]["questions"]
    for q in res["questions"] + res["word2vec"]["questions"]:
        assert q["interval"]["low"] is None and q["answer"] == "undecided"
        assert "fewer than 3 seeds (2): point estimate only" in q["sentence"]
    assert all(r["ratio_ci_low"] is None for r in res["stability"])
    md = (out / "report.md").read_text()
    assert "What the data decide" in md and "fewer than 3 seeds (2)" in md
    pair = res["pairs"][0]
    assert pair["map_similarity_p"] >= 0.1  # 9 permutations: p-values down to 1/10
    assert pair["mean_kl"] > 0 and pair["k_a"] > 0 and 0 <= pair["residual_f"]
    assert (out / "report.html").exists() and (out / "report.md").exists()
    # the distances are in the report beside KL: per pair, per group, and as a figure
    assert "d_LLV" in md and "d = 16, seed vs seed" in md and "median (min–max)" in md
    assert res["figures"]["distances"] == "figures/distances.png"
    assert (out / "figures" / "distances.png").stat().st_size > 0
    # a second study into the same folder is refused without --force
    assert main(study_args) == 2
    assert main(study_args + ["--force", "--cross-width-pairs", "-1"]) == 2
    # a model with another tokenizer makes the family mixed: refused
    tok = fam / "tf-d16-s1" / "final" / "tokenizer.json"
    tok.write_text(tok.read_text().replace('"<|endoftext|>"', '"<|eot|>"', 1))
    assert main(["study", str(fam), "--out", str(tmp_path / "s2"), "--no-progress"]) == 2


def test_presets_small_is_the_earlier_default_and_reference_is_8_seeds_by_3_widths():
    small = T.preset("small")
    assert (small.widths, small.seeds, small.steps) == ([64, 128], [0, 1, 2], 1200)
    ref = T.preset("reference")
    assert len(ref.seeds) >= 8 and len(ref.widths) >= 3 and ref.word2vec
    assert min(ref.widths) >= 96  # d = 48 and 64 did not clearly beat the bigram baseline
    tasks = ref.tasks()
    assert len(tasks) == 2 * len(ref.seeds) * len(ref.widths)
    # seed by seed: an interrupted run leaves complete seeds
    assert [s for _, _, s in tasks] == sorted(s for _, _, s in tasks)
    assert tasks[: 2 * len(ref.widths)] == [("transformer", w, 0) for w in ref.widths] + [
        ("word2vec", w, 0) for w in ref.widths
    ]
    big = ref.scaled(4)  # the GPU preset still scales the reference family
    assert big.widths == [4 * w for w in ref.widths] and big.layers == 2 * ref.layers
    assert big.seeds == ref.seeds and big.steps == 2 * ref.steps
    assert T.preset("reference", seeds=[0, 1], steps=None).seeds == [0, 1]
    assert T.preset("reference", steps=None).steps == ref.steps  # None: keep the preset's
    with pytest.raises(AllOrNoneError, match="unknown preset"):
        T.preset("huge")
    with pytest.raises(AllOrNoneError, match="at least one seed"):
        T.preset("small", seeds=[])


def test_cli_train_preset_reaches_train_family(monkeypatch, tmp_path):
    from allornone.cli import main

    seen = {}

    def fake(out, cfg, *, progress=True, jobs=1, on_done=None):
        seen.update(cfg=cfg, jobs=jobs)
        return {"bigram_heldout_ppl": 1.0, "models": [], "wall_seconds": 0.0}

    monkeypatch.setattr(T, "train_family", fake)
    args = ["train", "--out", str(tmp_path / "f"), "--preset", "reference", "--jobs", "2"]
    assert main(args) == 0
    assert seen["cfg"] == T.preset("reference") and seen["jobs"] == 2
    args = ["train", "--out", str(tmp_path / "g"), "--preset", "reference", "--scale", "2"]
    assert main(args + ["--seeds", "3"]) == 0
    assert seen["cfg"].widths == [192, 256, 320] and seen["cfg"].seeds == [3]
    assert main(["train", "--out", str(tmp_path / "h"), "--jobs", "0"]) == 2


def test_parallel_jobs_train_the_same_models_as_one_job(family, tmp_path):
    """--jobs 2: worker processes, seed by seed; each model depends only on its seed."""
    for seed in (0, 1):
        T.train_transformer(family, TINY, 16, seed, progress=False)
    cfg = replace(TINY, seeds=[0, 1], word2vec=True)
    seen: list[str] = []
    summary = T.train_family(
        tmp_path / "par", cfg, jobs=2, on_done=lambda m: seen.append(m["name"])
    )
    names = [m["name"] for m in summary["models"]]
    assert names == ["tf-d16-s0", "w2v-d16-s0", "tf-d16-s1", "w2v-d16-s1"]
    assert sorted(seen) == sorted(names) and summary["jobs"] == 2
    for seed in (0, 1):
        ref = _weights(family / f"tf-d16-s{seed}" / "final")
        got = _weights(tmp_path / "par" / f"tf-d16-s{seed}" / "final")
        for key in ref:  # the same up to rounding: 1 torch thread per worker, not 2
            torch.testing.assert_close(got[key], ref[key], rtol=1e-3, atol=1e-4)
    with pytest.raises(AllOrNoneError, match="at least 1"):
        T.train_family(tmp_path / "par", cfg, jobs=0)


def test_select_pairs_caps_cross_width_pairs_only():
    from pathlib import Path

    from allornone.family.study import Member, select_pairs

    ms = [
        Member("transformer", f"m{w}-{s}", w, s, Path(".")) for w in (8, 16, 32) for s in range(4)
    ]
    every, skipped = select_pairs(ms, None, 0)
    assert len(every) == 66 and skipped == 0
    capped, skipped = select_pairs(ms, 10, 0)
    assert len([p for p in capped if p[0].width == p[1].width]) == 3 * 6  # all same-width
    assert len([p for p in capped if p[0].width != p[1].width]) == 10 and skipped == 48 - 10
    assert capped == select_pairs(ms, 10, 0)[0] and capped != select_pairs(ms, 10, 1)[0]
    assert [p for p in every if p in capped] == capped  # combination order kept
    with pytest.raises(AllOrNoneError, match="0 or more"):
        select_pairs(ms, -1, 0)


def test_distance_groups_summarise_pairs_by_width_and_seed():
    from allornone.family.report import distance_groups

    members = [{"name": f"m{w}-{s}", "width": w, "seed": s} for w in (8, 16) for s in (0, 1, 2)]
    pairs = [
        {"a": "m8-0", "b": "m8-1", "mean_kl": 0.1, "d_llv": 1.0},
        {"a": "m8-0", "b": "m8-2", "mean_kl": 0.3, "d_llv": 3.0},
        {"a": "m8-1", "b": "m8-2", "mean_kl": 0.2, "d_llv": float("nan")},
        {"a": "m16-0", "b": "m8-0", "mean_kl": 0.05, "d_llv": 0.5},
        {"a": "m16-1", "b": "m8-0", "mean_kl": 0.4, "d_llv": None},
    ]
    rows = distance_groups(pairs, members)
    assert [(r["pairs"], r["n"]) for r in rows] == [
        ("d = 8, seed vs seed", 3),
        ("d = 8 vs 16, same seed", 1),
        ("d = 8 vs 16, other seeds", 1),
    ]
    assert rows[0]["mean_kl"] == "0.2 (0.1–0.3)"
    assert rows[0]["d_llv"] == "2 (1–3)"  # the NaN is left out of the median
    assert rows[2]["d_llv"] is None and rows[2]["d_fg"] is None
