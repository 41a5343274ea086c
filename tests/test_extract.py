"""``allornone extract``: F of a contexts file into a representation store (tiny HF model)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from test_models_hf import LEE, _bpe_tokenizer, _llama

import allornone as aon
from allornone.cli import main
from allornone.models import load
from allornone.models.extract import extract, read_contexts
from allornone.store import RepresentationStore

TEXTS = [t[:80] for t in LEE[:40]]


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ALLORNONE_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-llama")
    _llama(512).save_pretrained(path)
    _bpe_tokenizer().save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def lm(model_dir):
    return load(str(model_dir), device="cpu")


def test_read_contexts_formats_dedupe_and_errors(tmp_path):
    (tmp_path / "a.txt").write_text("one\ntwo\n\none\nthree\n", encoding="utf-8")
    c = read_contexts(tmp_path / "a.txt")
    assert c.texts == ["one", "two", "three"] and (c.read, c.duplicates, c.empty) == (5, 1, 1)
    rows = [{"text": "x y"}, {"text": "z"}, "z", {"text": "w", "id": 3}]
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    assert read_contexts(tmp_path / "b.jsonl").texts == ["x y", "z", "w"]
    with pytest.raises(aon.AllOrNoneError, match=r"line 1 has no 'body' field.*--column"):
        read_contexts(tmp_path / "b.jsonl", column="body")
    (tmp_path / "c.jsonl").write_text('{"text": "ok"}\n{oops\n', encoding="utf-8")
    with pytest.raises(aon.AllOrNoneError, match="line 2 is not JSON"):
        read_contexts(tmp_path / "c.jsonl")
    with pytest.raises(aon.AllOrNoneError, match="does not exist"):
        read_contexts(tmp_path / "missing.txt")
    (tmp_path / "e.txt").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(aon.AllOrNoneError, match="no non-empty texts"):
        read_contexts(tmp_path / "e.txt")
    (tmp_path / "f.parquet").write_bytes(b"PAR1")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        with pytest.raises(aon.AllOrNoneError, match="needs pyarrow"):
            read_contexts(tmp_path / "f.parquet")
    else:
        with pytest.raises(aon.AllOrNoneError):
            read_contexts(tmp_path / "f.parquet")


def test_extract_equals_embed_and_the_store_gives_the_same_structure(lm, tmp_path):
    res = extract(lm, TEXTS + TEXTS[:5], tmp_path / "s", shard_rows=16)
    assert (res.n, res.d, res.shards_written, res.shards_reused) == (40, lm.d, 3, 0)
    store = RepresentationStore.open(tmp_path / "s")
    assert store.contexts() == TEXTS  # deduplicated, first-occurrence order
    F = lm.embed(TEXTS, cache=False)
    np.testing.assert_allclose(store.load(), F, rtol=1e-5, atol=1e-5)
    P = store.predictor(lm.unembedding(), tokens=lm.tokens)
    ref = lm.predictor(TEXTS)
    assert aon.structure(P).k == aon.structure(ref).k
    assert aon.equivalence(P, ref).equivalent
    again = extract(lm, TEXTS, tmp_path / "s", shard_rows=16)
    assert again.shards_written == 0 and again.shards_reused == 3


def test_interrupted_extraction_resumes_and_matches_a_clean_one(lm, tmp_path, monkeypatch):
    calls: list[int] = []
    real = lm.embed

    def flaky(texts, **kw):
        calls.append(len(texts))
        if len(calls) == 2:
            raise KeyboardInterrupt  # the user hits Ctrl-C during the second shard
        return real(texts, **kw)

    monkeypatch.setattr(lm, "embed", flaky)
    with pytest.raises(KeyboardInterrupt):
        extract(lm, TEXTS, tmp_path / "s", shard_rows=16)
    part = RepresentationStore.open(tmp_path / "s", complete=False)
    assert not part.complete and part.pending() == [1, 2]
    monkeypatch.setattr(lm, "embed", real)
    res = extract(lm, TEXTS, tmp_path / "s", shard_rows=16)
    assert (res.shards_written, res.shards_reused) == (2, 1)
    clean = extract(lm, TEXTS, tmp_path / "clean", shard_rows=16)
    np.testing.assert_array_equal(res.store.load(), clean.store.load())


def test_cli_extract_resume_and_refusals(model_dir, tmp_path, capsys, monkeypatch):
    from transformers.utils import logging as hf_logging

    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    ctx = tmp_path / "ctx.jsonl"
    ctx.write_text("\n".join(json.dumps({"text": t}) for t in TEXTS), encoding="utf-8")
    out = tmp_path / "store"
    argv = ["extract", "--model", str(model_dir), "--contexts", str(ctx), "--out", str(out)]
    assert main([*argv, "--shard-rows", "16", "--no-progress", "--device", "cpu"]) == 0
    cap = capsys.readouterr()
    text = cap.out
    assert "Loading weights" not in cap.err  # --no-progress hides transformers' own bar too
    # ... for that command only: the switches are put back afterwards
    assert "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ
    assert hf_logging.is_progress_bar_enabled()
    assert "40 unique of 40 read" in text and "3 written now, 0 reused" in text
    shard = out / "F-00002.safetensors"
    shard.write_bytes(shard.read_bytes()[:-8])  # truncated: redone on the next run
    assert main([*argv, "--shard-rows", "16", "--no-progress", "--device", "cpu"]) == 0
    assert "1 written now, 2 reused" in capsys.readouterr().out
    # another shard size (a setting of the layout) is refused, naming it
    assert main([*argv, "--shard-rows", "8", "--device", "cpu"]) == 2
    assert "shard_rows=16" in capsys.readouterr().err
    other = tmp_path / "other.txt"
    other.write_text("a different text\n", encoding="utf-8")
    argv2 = ["extract", "--model", str(model_dir), "--contexts", str(other), "--out", str(out)]
    assert main([*argv2, "--device", "cpu"]) == 2
    assert "another contexts" in capsys.readouterr().err
    missing = ["extract", "--model", "nonexistent-model-xyz", "--contexts", "nope.txt"]
    assert main([*missing, "--out", str(tmp_path / "x")]) == 2
    assert "nope.txt does not exist" in capsys.readouterr().err  # before the model loads


def test_no_progress_switch_is_put_back_when_transformers_is_imported_during_the_command():
    """The libraries read their switch once, on import: in a fresh process (transformers not
    imported yet) the bars are off inside the command and on again after it."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from allornone.cli import _hide_library_progress\n"
        "assert 'transformers' not in sys.modules\n"
        "with _hide_library_progress():\n"
        "    import transformers.utils.logging as t\n"
        "    import huggingface_hub.utils as h\n"
        "    print(t.is_progress_bar_enabled(), h.are_progress_bars_disabled())\n"
        "print(t.is_progress_bar_enabled(), h.are_progress_bars_disabled())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True", "True", "False"]


def test_cli_extract_allow_nonlinear_head(tmp_path, capsys):
    """A softcapped head (Gemma-2) is refused, naming the CLI flag's keyword; with
    --allow-nonlinear-head the model loads and the store is written."""
    from test_models_hf import _gemma2

    gemma = tmp_path / "gemma2"
    tok = _bpe_tokenizer()
    _gemma2(len(tok)).save_pretrained(gemma)
    tok.save_pretrained(gemma)
    capsys.readouterr()  # save_pretrained's own progress bar
    ctx = tmp_path / "ctx.txt"
    ctx.write_text("\n".join(TEXTS[:8]), encoding="utf-8")
    argv = ["extract", "--model", str(gemma), "--contexts", str(ctx), "--device", "cpu"]
    argv += ["--no-progress", "--out", str(tmp_path / "store")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "non-linear LM head" in err and len(err.strip().splitlines()) == 1
    assert main([*argv, "--allow-nonlinear-head"]) == 0
    assert "n=8 x d=" in capsys.readouterr().out
    assert RepresentationStore.open(tmp_path / "store").load().shape[0] == 8
