"""The forward-pass steering check in the head's own coordinates (issue 24).

A head with a bias (GPT-2 body + biased head, as GPT-J) gives the audit a steering vector with
the absorbed bias column; scaled heads (Cohere ``logit_scale``, Granite ``logits_scaling``)
apply a constant after the head. In every case the measured shift of ``f + alpha v`` must equal
the prediction ``alpha (G - mean G) v`` of the predictor built from the same model.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_models_hf import _bpe_tokenizer, _cohere, _gpt2, _granite, _llama

from allornone import AllOrNoneError
from allornone.models import LanguageModel
from allornone.models.steering_check import measured_shift

CONTEXTS = ["The cat sat on the", "A man went to", "She said that the"]


@pytest.fixture(scope="module")
def tok():
    return _bpe_tokenizer()


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ALLORNONE_CACHE", str(tmp_path / "cache"))


BUILD = {
    "bias": lambda V: _gpt2(V, bias=True),
    "cohere": lambda V: _cohere(V),
    "granite": lambda V: _granite(V),
    "plain": lambda V: _llama(V),
}


@pytest.mark.parametrize("kind", list(BUILD))
def test_shift_of_predictor_vector_is_measured_exactly(kind, tok):
    lm = LanguageModel(BUILD[kind](len(tok)), tok, dtype="float64", cache=False)
    P = lm.predictor(CONTEXTS)
    rng = np.random.default_rng(0)
    v = rng.standard_normal(P.d)  # the predictor's coordinates (bias column included)
    assert P.d == lm.d == 32 + (kind == "bias")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an exact check never warns
        chk = measured_shift(lm.hf_model, tok, CONTEXTS, v, 0.5)
    pred = 0.5 * P.G0_matmul(v)
    assert np.abs(chk.predicted - pred).max() < 1e-9 * np.abs(pred).max()
    assert chk.max_abs_error < 1e-9 * chk.effect and chk.effect > 1e-2
    assert chk.error_vs_effect < 1e-9
    # the factor model itself agrees with the forward pass
    F = P.F.astype(np.float64)
    G = lm.unembedding().astype(np.float64)

    def centred_lp(X):
        from scipy.special import log_softmax

        lp = log_softmax(X @ G.T, axis=1)
        return lp - lp.mean(1, keepdims=True)

    fact = centred_lp(F + 0.5 * v) - centred_lp(F)
    assert np.abs(chk.measured - fact).max() < 1e-9 * np.abs(fact).max()
    if kind == "bias":
        assert "bias entry" in chk.hooked
    if kind in ("cohere", "granite"):
        assert "logit scale" in chk.hooked


def test_wrong_length_is_one_clear_line(tok):
    lm = LanguageModel(_gpt2(len(tok), bias=True), tok, dtype="float64", cache=False)
    with pytest.raises(AllOrNoneError, match=r"v has 7 entries but the LM head's G has 32 or 33"):
        measured_shift(lm.hf_model, tok, CONTEXTS, np.ones(7), 1.0)


def test_error_larger_than_effect_warns(tok):
    """A wrong hook point (a scale the check is not told about) makes the error larger than
    the effect: the check warns instead of passing silently."""
    from allornone.models._head import inspect_head

    model = _cohere(len(tok), scale=0.01)
    wrong = inspect_head(model, logit_scale=1.0)  # pretends the scale is 1
    v = np.random.default_rng(1).standard_normal(32)
    with pytest.warns(UserWarning, match="larger than the shift it measures"):
        chk = measured_shift(model, tok, CONTEXTS, v, 1.0, head=wrong)
    assert chk.error_vs_effect > 1.0
