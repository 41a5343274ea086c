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


# ---------------------------------------------------------------------------- audit path
SINGLE_OBJ = ["said", "have", "were", "will"]
MULTI_OBJ = ["accept", "acceptable", "alarm"]  # 'accept' and 'acceptable' share a first token
SUBJECTS = [
    "river", "mountain", "forest", "desert", "ocean", "valley", "island", "canyon",
    "glacier", "meadow", "prairie", "swamp", "volcano", "lagoon", "plateau", "delta",
    "harbour", "reef", "tundra", "savanna", "marsh", "fjord",
]  # fmt: skip


def _tiny_lm():  # type: ignore[no-untyped-def]
    from test_models_hf import _bpe_tokenizer, _llama

    from allornone.models import load

    tok = _bpe_tokenizer()
    return load(_llama(len(tok)), tokenizer=tok)


def _relation_file(tmp_path):  # type: ignore[no-untyped-def]
    import json

    objs = [SINGLE_OBJ[i % 4] for i in range(16)] + [MULTI_OBJ[i % 3] for i in range(6)]
    samples = [{"subject": s, "object": o} for s, o in zip(SUBJECTS, objs)]
    path = tmp_path / "rel.json"
    path.write_text(json.dumps([{"name": "toy", "templates": ["The {} is"], "samples": samples}]))
    return path, list(zip(SUBJECTS, objs))


def test_audit_keeps_multi_token_objects_and_reports_model_correct(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from audit_helpers import CONCEPTS, LABELS

    from allornone.audit import AuditConfig, run_audit, write_report
    from allornone.audit.builtin.relational import CONTINUATION_SUBJECTS

    lm = _tiny_lm()
    wt = lm.word_tokens(SINGLE_OBJ + MULTI_OBJ)
    assert set(wt.single) == set(SINGLE_OBJ) and set(wt.multi) == set(MULTI_OBJ)
    first = {w: ids[0] for w, ids in zip(wt.words, wt.ids)}
    assert first["accept"] == first["acceptable"]
    path, pairs = _relation_file(tmp_path)
    cfg = AuditConfig(
        concepts=str(CONCEPTS), relations=str(path), labels=str(LABELS), progress=False, kl=False
    )
    res = run_audit(cfg, model=lm)
    (p,) = [q for q in res.properties if q.property == "relational"]
    d = p.details
    assert d["n_subjects"] == 22 and d["n_multi_token_objects"] == 6
    assert d["n_multi_token_available"] == 6 and d["n_first_token_collisions"] == 2
    # first-token answer set: 4 single tokens + 2 first tokens (accept/acceptable merged)
    answers = list(d["answers"])
    assert sorted(answers) == sorted({first[o] for _, o in pairs})
    # model-correct subjects: the true object's first token is the model's own argmax
    obj = np.array([answers.index(first[o]) for _, o in pairs])
    own = np.asarray(d["model_logodds"]).argmax(axis=1)
    mc = d["model_correct"]
    assert mc["subjects"] == np.flatnonzero(own == obj).tolist()
    # the model's own answers: a direct next-token forward over the answer set
    prompts = [f"The {s} is" for s, _ in pairs]
    lp = lm.logprobs(prompts)[:, answers]
    assert (lp.argmax(axis=1) == own).all()
    # continuation log-prob of the whole object, as continuation_logprob computes it
    cont = d["continuation"]
    assert cont["n_scored"] == min(22, CONTINUATION_SUBJECTS) and cont["n_scored_multi_token"] == 6
    assert sorted(cont["subjects"][:6]) == list(range(16, 22))  # multi-token objects first
    pick = cont["subjects"]
    direct = lm.continuation_logprob([prompts[i] for i in pick], [" " + pairs[i][1] for i in pick])
    np.testing.assert_allclose(cont["logprob"], direct, rtol=1e-6, atol=1e-6)
    assert np.isclose(cont["mean_logprob"], float(np.mean(direct)))
    assert np.isclose(cont["mean_logprob_multi_token"], float(np.mean(direct[:6])))
    # results.json and the report carry the new fields
    out = tmp_path / "out"
    out.mkdir()
    write_report(res, out)
    import json

    saved = json.loads((out / "results.json").read_text())
    (rp,) = [q for q in saved["properties"] if q["property"] == "relational"]
    assert rp["details"]["model_correct"]["subjects"] == mc["subjects"]
    assert rp["details"]["n_multi_token_objects"] == 6
    assert np.isclose(rp["details"]["continuation"]["mean_logprob"], cont["mean_logprob"])
    md = (out / "report.md").read_text()
    assert "faithfulness (model-correct subjects)" in md and "mean log p(object)" in md
    assert f"held out of {mc['n_subjects']} model-correct" in md


def test_multi_token_subjects_stay_out_of_the_main_context_set(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from allornone.audit import AuditConfig
    from allornone.audit.inputs import ContextSets, WordCache, load_inputs, select_subjects

    path, _ = _relation_file(tmp_path)
    lm = WordCache(_tiny_lm())
    cfg = AuditConfig(relations=str(path), progress=False)
    plain, multi = load_inputs(cfg), load_inputs(cfg)
    select_subjects(lm, plain, cfg)
    select_subjects(lm, multi, cfg, multi_token=True)
    assert plain.multi_samples == {} and [s for s, _ in multi.relations[0].samples] == SUBJECTS[:16]
    assert [(s, o) for s, o, _ in multi.multi_samples["toy"]] == list(
        zip(SUBJECTS[16:], MULTI_OBJ * 2)
    )
    assert multi.subject_counts["toy"]["multi_token_objects"] == 6
    a, b = ContextSets.build(plain), ContextSets.build(multi)
    main_a = [a.all[i] for i in a.rows("main")]
    assert [b.all[i] for i in b.rows("main")] == main_a
    assert b.all[: len(a.all)] == a.all  # multi-token contexts are appended after the rest
    assert [b.all[i] for i in b.rows("prompts_multi:toy")] == [f"The {s} is" for s in SUBJECTS[16:]]
