"""LRE's protocol beside ours (issue 12): faithfulness on the subjects the model answers
correctly, multi-token objects with first-token answers and their continuation log-prob."""

from __future__ import annotations

import numpy as np
from test_properties_relational import ANSWERS, N_S, _relation, _spec

from allornone.properties import relational
from allornone.properties.relational import MIN_HELD_OUT


def _own(p) -> np.ndarray:
    """The model's own argmax over the answers at each query row."""
    T = p.model.F[N_S : 2 * N_S] @ p.model.G0()[ANSWERS].T
    return T.argmax(axis=1)


def _objects_correct_on(p, correct: np.ndarray) -> list[int]:
    """True objects: the model's own answer on ``correct`` subjects, another one elsewhere."""
    own = _own(p)
    m = len(ANSWERS)
    return [ANSWERS[o] if c else ANSWERS[(o + 1) % m] for o, c in zip(own, correct)]


def test_filtered_set_is_exactly_the_model_correct_subjects() -> None:
    p = _relation(3, reads_junk=True)
    rng = np.random.default_rng(1)
    correct = rng.random(N_S) < 0.6
    r = relational(p.model, _spec(objects=_objects_correct_on(p, correct)), seed=0, kl=True)
    mc = r.details["model_correct"]
    assert mc["subjects"] == np.flatnonzero(correct).tolist()
    assert mc["n_subjects"] == int(correct.sum())
    test = np.asarray(r.details["test"])
    tc = test[correct[test]]
    assert mc["test"] == tc.tolist() and mc["n_test"] == len(tc)
    assert mc["decided"] is (len(tc) >= MIN_HELD_OUT)
    # computed on the held-out model-correct subjects only
    own = np.asarray(r.details["model_logodds"]).argmax(axis=1)
    for form, key in (("dist", "predicted_logodds_dist"), ("refined", "predicted_logodds_refined")):
        S = np.asarray(r.details[key])
        want = float(np.mean(S[tc].argmax(axis=1) == own[tc]))
        assert mc[f"{form}_faithfulness"] == want
        lo, hi = mc["ci"][f"{form}_faithfulness"]
        assert lo <= want <= hi
    assert "kl_faithfulness" in mc and set(mc["ci"]) == {
        "refined_faithfulness",
        "kl_faithfulness",
        "dist_faithfulness",
    }
    # the unfiltered figures are those of the run without objects
    r0 = relational(p.model, _spec(), seed=0, kl=True)
    assert r0.identified["dist_faithfulness"] == r.identified["dist_faithfulness"]
    assert "model_correct" not in r0.details


def test_model_correct_filter_all_and_none() -> None:
    p = _relation(0)
    own = _own(p)
    every = relational(p.model, _spec(objects=[ANSWERS[o] for o in own]), seed=0, kl=False)
    mc = every.details["model_correct"]
    assert mc["n_subjects"] == N_S and mc["n_test"] == every.details["n_test"]
    assert mc["dist_faithfulness"] == every.identified["dist_faithfulness"]
    none = relational(
        p.model, _spec(objects=_objects_correct_on(p, np.zeros(N_S, bool))), seed=0, kl=False
    )
    mc = none.details["model_correct"]
    assert mc["n_subjects"] == 0 and mc["n_test"] == 0 and mc["decided"] is False
    assert np.isnan(mc["dist_faithfulness"])
