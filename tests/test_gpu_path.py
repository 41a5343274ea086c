"""The GPU path on the CPU: dtypes, device maps (accelerate), the on-device logits check,
out-of-memory recovery and bad devices, on tiny random transformers models (offline, fast).

A two-entry device map over the CPU runs through accelerate's hooks (``force_hooks``), the
same code path as a model spread over GPUs; F and G must equal the single-device result.
Out of memory is simulated by a forward that raises ``torch.cuda.OutOfMemoryError`` above a
batch size.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from test_models_hf import CONTEXTS, LEE, _bpe_tokenizer, _gpt2, _llama

from allornone import AllOrNoneError
from allornone.models import load
from allornone.models._batching import is_out_of_memory

BF16_EPS = float(torch.finfo(torch.bfloat16).eps)  # 2^-7
MANY = [line[: 20 + 7 * (i % 9)] for i, line in enumerate(LEE[:40])]


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ALLORNONE_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def tok():
    return _bpe_tokenizer()


def _two_entry_map(model) -> dict[str, str]:
    """A real multi-entry map: every top module of the Llama body and the head by name."""
    dm = {"model.embed_tokens": "cpu", "model.norm": "cpu", "model.rotary_emb": "cpu"}
    dm.update({f"model.layers.{i}": "cpu" for i in range(model.config.num_hidden_layers)})
    dm["lm_head"] = "cpu"
    return dm


# ---------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_dtype_option_and_check_tolerance(dtype, tok):
    lm = load(_llama(len(tok), tied=False), tokenizer=tok, dtype=dtype, cache=False)
    want = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    assert lm.dtype == want[dtype]
    assert all(p.dtype == want[dtype] for p in lm.hf_model.parameters())
    F = lm.embed(CONTEXTS)
    assert F.dtype == np.float32  # bf16/fp16 -> fp32 is exact; identities then in float64
    G = lm.unembedding()
    assert G.dtype == np.float32
    # G is the LM head's weight itself (no forward pass), exactly representable in fp32
    np.testing.assert_array_equal(G, lm.hf_model.lm_head.weight.detach().float().numpy())
    # the check passed, and within a bound that is a few eps of the compute dtype
    eps = float(torch.finfo(want[dtype]).eps)
    assert lm.logit_check is not None and lm.logit_check_scale is not None
    assert lm.logit_check <= lm.logit_check_tol * max(1.0, lm.logit_check_scale)
    if dtype != "float32":
        assert lm.logit_check_tol <= 5 * max(eps, BF16_EPS)
        assert lm.logit_check <= 2 * eps * lm.logit_check_scale  # bf16 rounding of logits
        # and F of the low-precision model is the rounded float32 F, not something else
        ref = load(_llama(len(tok), tied=False), tokenizer=tok, cache=False).embed(CONTEXTS)
        rel = np.abs(F - ref).max() / np.abs(ref).max()
        assert 0 < rel < 0.1


def test_bf16_check_fails_on_a_corrupted_head(tok):
    model = _llama(len(tok), tied=False)
    with torch.no_grad():  # a head whose logits are not h W^T: shift one token's logit
        bump = torch.zeros(len(tok))
        bump[7] = 1.0
        model.lm_head.register_forward_hook(lambda m, i, o: o + bump.to(o.dtype))
    with pytest.raises(AllOrNoneError, match="does not reproduce the model's own logits"):
        load(model, tokenizer=tok, dtype="bfloat16", cache=False)
    # the tolerance is a few bf16 eps of the logits' scale: twice the bound is caught
    lm = load(_llama(len(tok), tied=False), tokenizer=tok, dtype="bfloat16", cache=False)
    bound = lm.logit_check_tol * max(1.0, lm.logit_check_scale)
    assert lm.logit_check_tol == pytest.approx(3.84 * BF16_EPS, rel=0.01)
    model = _llama(len(tok), tied=False)
    small = torch.zeros(len(tok))
    small[3] = 2 * bound
    model.lm_head.register_forward_hook(lambda m, i, o: o + small.to(o.dtype))
    with pytest.raises(AllOrNoneError, match="max abs deviation"):
        load(model, tokenizer=tok, dtype="bfloat16", cache=False)


def test_check_runs_on_the_head_device_without_host_logits(tok, monkeypatch):
    """The load-time check never builds the (n, V) host array of logits."""
    from allornone.models import _forward

    def no_host_logits(*a, **k):
        raise AssertionError("the check copied the full logits to the host")

    monkeypatch.setattr(_forward.ForwardPasses, "_last_logits", no_host_logits)
    lm = load(_llama(len(tok)), tokenizer=tok, cache=False)
    assert lm.logit_check < 1e-5


def test_nan_logits_are_refused_on_device(tok):
    model = _llama(len(tok), tied=False)
    with torch.no_grad():
        model.lm_head.weight[5, 0] = float("nan")
    with pytest.raises(AllOrNoneError, match="NaN/inf"):
        load(model, tokenizer=tok, cache=False)


# ---------------------------------------------------------------------- device maps
@pytest.mark.parametrize("tied", [True, False])
def test_two_entry_device_map_equals_single_device(tied, tok):
    ref = load(_llama(len(tok), tied=tied), tokenizer=tok, cache=False)
    F0, G0 = ref.embed(MANY, batch_size=8), ref.unembedding()
    model = _llama(len(tok), tied=tied)
    lm = load(model, tokenizer=tok, cache=False, device_map=_two_entry_map(model))
    assert lm.device_map is not None and len(lm.device_map) == 2 + 1 + 2 + 1
    assert hasattr(lm.hf_model.model.layers[0], "_hf_hook")  # accelerate's hooks are on
    assert lm.tied == tied
    np.testing.assert_allclose(lm.embed(MANY, batch_size=8), F0, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(lm.unembedding(), G0)
    assert lm.logit_check < 1e-5
    np.testing.assert_allclose(lm.logprobs(CONTEXTS[:2]), ref.logprobs(CONTEXTS[:2]), atol=1e-5)


def test_device_map_auto_on_cpu_and_dtype(tok):
    ref = load(_gpt2(len(tok)), tokenizer=tok, cache=False, dtype="bfloat16")
    lm = load(_gpt2(len(tok)), tokenizer=tok, cache=False, device_map="auto", dtype="bfloat16")
    assert lm.dtype == torch.bfloat16 and lm.device_map
    assert set(map(str, lm.device_map.values())) == {"cpu"}
    np.testing.assert_array_equal(lm.embed(CONTEXTS), ref.embed(CONTEXTS))


def test_saved_folder_loads_with_dtype_and_device_map(tok, tmp_path):
    folder = tmp_path / "m"
    _llama(len(tok), tied=False).save_pretrained(folder)
    tok.save_pretrained(folder)
    lm = load(str(folder), dtype="bfloat16", device_map="auto", cache=False)
    assert lm.dtype == torch.bfloat16  # read in bf16 by from_pretrained (no fp32 copy)
    assert lm.device_map is not None and lm.device.type == "cpu"
    ref = load(str(folder), dtype="bfloat16", device="cpu", cache=False)
    np.testing.assert_array_equal(lm.embed(CONTEXTS), ref.embed(CONTEXTS))


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"device_map": "balanced"}, "use 'auto'"),
        ({"device_map": {"model": "disk", "lm_head": "cpu"}}, "offloading to disk"),
        ({"device_map": {"": "cuda:3"}}, "available devices here: cpu"),
        ({"device_map": "auto", "device": "cpu"}, "not both"),
        ({"device_map": {"model.embed_tokens": "cpu"}}, "does not place every weight"),
        ({"device": "cuda:7"}, "available devices here: cpu"),
        ({"device": "tpu"}, "not a torch device name"),
        ({"dtype": "int8"}, "is not supported"),
    ],
)
def test_bad_devices_are_clear_errors(kwargs, needle, tok):
    with pytest.raises(AllOrNoneError, match=needle) as info:
        load(_llama(len(tok)), tokenizer=tok, cache=False, **kwargs)
    assert "\n" not in str(info.value)


def test_bad_device_refused_before_the_model_is_read(tmp_path, monkeypatch):
    from allornone.models import _loading

    def boom(*a, **k):
        raise AssertionError("read the model before checking the device")

    monkeypatch.setattr(_loading, "resolve", boom)
    for kw in ({"device": "cuda"}, {"device_map": {"": "cuda:0"}}, {"device_map": "x"}):
        with pytest.raises(AllOrNoneError):
            load(str(tmp_path), **kw)


# ---------------------------------------------------------------------- out of memory
def _oom_above(lm, limit: int, exc_type=torch.cuda.OutOfMemoryError, msg="CUDA out of memory"):
    """Make the base forward fail for batches of more than ``limit`` contexts."""
    real = lm._base.forward
    calls: list[int] = []

    def forward(*a, **kw):
        b = kw["input_ids"].shape[0]
        calls.append(b)
        if b > limit:
            raise exc_type(f"{msg}. Tried to allocate 2.00 GiB")
        return real(*a, **kw)

    lm._base.forward = forward
    return calls


@pytest.mark.parametrize(
    "exc_type, msg",
    [
        (torch.cuda.OutOfMemoryError, "CUDA out of memory"),
        (RuntimeError, "MPS backend out of memory (MPS allocated: 1 GB)"),
        (
            RuntimeError,
            "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory",
        ),
    ],
)
def test_out_of_memory_halves_the_batch(exc_type, msg, tok):
    lm = load(_llama(len(tok)), tokenizer=tok, cache=False)
    ref = lm.embed(MANY, batch_size=16)
    calls = _oom_above(lm, 3, exc_type, msg)
    with pytest.warns(UserWarning) as rec:
        F = lm.embed(MANY, batch_size=16)
    msgs = [str(w.message) for w in rec]
    assert len(msgs) == 1, msgs  # one warning per call, with the first and the final size
    assert "out of memory on cpu at batch size 16" in msgs[0]
    assert "continued with batch size 2" in msgs[0] and "--batch-size 2" in msgs[0]
    np.testing.assert_allclose(F, ref, atol=1e-6)
    assert lm.oom_batch_size == 2 and lm.last_batch_size == 2
    assert max(b for b in calls if b <= 3) == 2
    # later calls start at the size that ran: no new failure, no new warning
    calls.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(lm.embed(MANY, batch_size=16), ref, atol=1e-6)
    assert max(calls) == 2


def test_out_of_memory_at_batch_size_one_is_one_clear_line(tok):
    lm = load(_llama(len(tok)), tokenizer=tok, cache=False)
    _oom_above(lm, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(AllOrNoneError) as info:
            lm.embed(MANY, batch_size=4)
    msg = str(info.value)
    assert "\n" not in msg
    assert "out of memory on cpu even at batch size 1" in msg
    assert "--dtype bfloat16" in msg and "--device-map auto" in msg


def test_out_of_memory_placing_or_reading_the_model(tok, tmp_path, monkeypatch):
    model = _llama(len(tok))

    def to(*a, **k):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 16.00 GiB")

    monkeypatch.setattr(model, "to", to)
    with pytest.raises(AllOrNoneError) as info:
        load(model, tokenizer=tok, cache=False, dtype="float32")
    msg = str(info.value)
    assert msg.startswith("out of memory placing the model (0.") and "on cpu" in msg
    assert "--dtype bfloat16" in msg and "--device-map auto" in msg and "\n" not in msg
    from allornone.models import _loading

    def resolve(*a, **k):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(_loading, "resolve", resolve)
    with pytest.raises(AllOrNoneError, match=r"out of memory reading .*--device-map auto"):
        load(str(tmp_path), dtype="float16")


def test_other_errors_are_not_taken_for_out_of_memory(tok):
    lm = load(_llama(len(tok)), tokenizer=tok, cache=False)
    _oom_above(lm, 0, RuntimeError, "mat1 and mat2 shapes cannot be multiplied")
    with pytest.raises(RuntimeError, match="shapes cannot"):
        lm.embed(MANY, batch_size=4)
    assert lm.oom_batch_size is None
    assert not is_out_of_memory(ValueError("out of memory"))
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("x"))


def test_out_of_memory_in_the_logits_paths(tok):
    lm = load(_llama(len(tok)), tokenizer=tok, cache=False)
    ref_lp = lm.logprobs(MANY[:6])
    ref_c = lm.continuation_logprob(MANY[:6], " the")
    real = lm.hf_model.forward

    def forward(*a, **kw):
        if kw["input_ids"].shape[0] > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return real(*a, **kw)

    lm.hf_model.forward = forward
    with pytest.warns(UserWarning, match="out of memory"):
        np.testing.assert_allclose(lm.logprobs(MANY[:6]), ref_lp, atol=1e-6)
    np.testing.assert_allclose(lm.continuation_logprob(MANY[:6], " the"), ref_c, atol=1e-6)
    assert lm.oom_batch_size == 2


# ---------------------------------------------------------------------- the CLI options
def test_cli_dtype_and_device_map_reach_load(monkeypatch):
    from allornone import models
    from allornone.audit.pipeline import AuditConfig, load_model
    from allornone.cli import build_parser

    args = build_parser().parse_args(
        ["audit", "--model", "m", "--dtype", "bfloat16", "--device-map", "auto"]
    )
    assert args.dtype == "bfloat16" and args.device_map == "auto"
    seen = {}
    monkeypatch.setattr(models, "load", lambda name, **kw: seen.update(kw, name=name))
    load_model(AuditConfig(model="m", dtype=args.dtype, device_map=args.device_map))
    assert seen == {"name": "m", "dtype": "bfloat16", "device_map": "auto"}


def test_cli_device_and_device_map_together_exit_2(tmp_path, capsys):
    from audit_helpers import CONCEPTS, LABELS, RELATIONS

    from allornone.cli import main

    base = ["audit", "--model", "smollm2", "--no-progress", "--out", str(tmp_path / "r")]
    base += ["--concepts", str(CONCEPTS), "--relations", str(RELATIONS), "--labels", str(LABELS)]
    rc = main(base + ["--device", "cpu", "--device-map", "auto"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("allornone: error: pass device or device_map, not both")
    assert len(err.splitlines()) == 1
    assert main(base + ["--dtype", "int4"]) == 2
    capsys.readouterr()
    rc = main(base + ["--device", "cuda:5"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "available devices here: cpu" in err
