"""Steering (THEORY 5.4, 7.5): vectors in M + N^perp transfer (same log-odds shift in every
equivalent model); vectors in J_g are broken; the predicted shift matches a real HF model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_properties_planted import JUNKS, close, dim_of, random_planted, sample

from allornone import AllOrNoneError, NextTokenPredictor, structure
from allornone.properties import steering, vector_from_contexts, vector_from_tokens

TARGETS = [0, 1, 2]


def _transferable_v(p, rng):
    """Difference of context means + a component in N^perp: v in M + N^perp."""
    m = p.model
    st_ = structure(m)
    v = vector_from_contexts(m, [0, 1, 2, 3], [4, 5, 6])
    perp = np.linalg.svd(st_.N.T)[2][st_.dim_N :].T  # basis of N^perp
    return v + perp @ rng.standard_normal(perp.shape[1])


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    width=st.sampled_from(["k+2", "d-1", "d+2", "d+4"]),
    junk=st.sampled_from(JUNKS),
)
def test_steering_in_M_plus_Nperp_transfers(seed, width, junk):
    p = random_planted(seed=seed % 89)
    m = p.model
    v = _transferable_v(p, np.random.default_rng(seed))
    r = steering(m, v, alpha=2.5, targets=TARGETS)
    assert r.all_or_none and r.condition_size < 1e-10
    for key in r.raw:
        assert close(r.raw[key], r.identified[key]), key
    m2, eq = sample(m, dim_of(width, p.k, p.d), seed, junk)
    v2 = r.transport(eq)
    r2 = steering(m2, v2, alpha=2.5, targets=TARGETS)
    scale = np.abs(r.details["shift"]).max()
    assert np.allclose(r2.details["shift"], r.details["shift"], rtol=0, atol=1e-9 * scale)
    for key in r.identified:
        assert close(r2.identified[key], r.identified[key]), key
    # steering the sampled model's contexts really moves the log-odds the same way
    ctx = [0, 7]
    before, before2 = m.log_odds(ctx), m2.log_odds(ctx)
    m.F[ctx] += 2.5 * v
    m2.F[ctx] += 2.5 * v2
    d1, d2 = m.log_odds(ctx) - before, m2.log_odds(ctx) - before2
    m.F[ctx] -= 2.5 * v
    assert np.allclose(d1, d2, atol=1e-8 * scale)


def test_steering_in_J_g_is_broken():
    p = random_planted(seed=3)
    m = p.model
    jg = structure(m).J_g[:, 0]
    r = steering(m, jg, targets=TARGETS)
    assert not r.all_or_none and r.condition_size > 0.1
    assert np.abs(r.details["shift"]).max() > 0.1  # it does steer this model
    for seed in range(3):
        m2, _ = sample(m, m.d + seed, seed, "adversarial")
        # no vector of the equivalent model gives this shift: least squares G0~ x ~ G0 v
        target = m.G0() @ jg
        x = np.linalg.lstsq(m2.G0(), target, rcond=None)[0]
        assert np.linalg.norm(m2.G0() @ x - target) / np.linalg.norm(target) > 0.1
    # token-difference vectors: may leave M + N^perp; the identified part is reported
    vt = vector_from_tokens(m, [(0, 1), (2, 3)])
    rt = steering(m, vt, targets=[1, 3])
    assert rt.condition_size > 1e-3
    assert not close(rt.raw["target_shift"], rt.identified["target_shift"], 1e-6, 0)


def test_steering_validation():
    p = random_planted(seed=1)
    with pytest.raises(AllOrNoneError, match="entries"):
        steering(p.model, np.ones(3))
    with pytest.raises(AllOrNoneError, match="zero"):
        steering(p.model, np.zeros(p.d))
    with pytest.raises(AllOrNoneError, match="empty"):
        steering(p.model, np.ones(p.d), targets=[])
    with pytest.raises(AllOrNoneError, match="non-empty"):
        vector_from_contexts(p.model, [], [1])
    with pytest.raises(AllOrNoneError, match="no valid"):
        vector_from_tokens(p.model, [(1, 1)])


@pytest.fixture(scope="module")
def tiny_llama():
    torch = pytest.importorskip("torch")
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
    )
    return LlamaForCausalLM(cfg).eval()


@pytest.mark.parametrize("hook", ["auto", "lm_head"])
def test_measured_shift_matches_prediction(tiny_llama, hook):
    import torch

    from allornone.models.steering_check import measured_shift

    rng = np.random.default_rng(0)
    contexts = [[1, 5, 9, 3], [7, 2], [4, 4, 8, 10, 11]]
    v = rng.standard_normal(32)
    chk = measured_shift(tiny_llama, None, contexts, v, 0.7, hook=hook)
    assert ("model.norm" in chk.hooked) == (hook == "auto")
    assert chk.max_abs_error < 1e-5 and np.abs(chk.predicted).max() > 1e-2
    # the predictor built from the same model predicts the same shift
    with torch.no_grad():
        F = np.stack(
            [
                tiny_llama(torch.tensor([c]), output_hidden_states=True)
                .hidden_states[-1][0, -1]
                .double()
                .numpy()
                for c in contexts
            ]
        )
    G = tiny_llama.lm_head.weight.detach().double().numpy()
    r = steering(NextTokenPredictor(F, G), v, alpha=0.7)
    assert np.abs(chk.measured - r.details["shift"][None, :]).max() < 1e-5
