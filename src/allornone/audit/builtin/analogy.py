"""The audit step of analogies: 3CosAdd per section, raw and identified, and its report
section (results.json ``analogy``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...predictor import NextTokenPredictor
from ...properties import analogy_accuracy
from ...properties.analogy import SPEC
from ...report import Block, Explanation, Table
from ..step import AuditStep, StepInputs, register_step, single


def run(inp: StepInputs) -> dict[str, Any]:
    """3CosAdd per section, raw (Euclidean g) and identified (Cov(f) cosines of centred g0).

    Every question whose four words are single tokens is scored (``n_questions`` of
    ``n_total``). For a word2vec model ``acc_raw`` is on the output vectors ``g = syn1neg``
    (the predictor's unembedding); ``acc_input_vectors`` is the same 3CosAdd on the input
    vectors ``wv.vectors``: the figure gensim's ``evaluate_word_analogies`` reports (words
    matched case-insensitively, as there), section by section.
    """
    return analogies(inp.lm, inp.geo, inp.inputs.questions)


def analogies(lm: Any, geo: Any, questions: dict[str, list[tuple]]) -> dict[str, Any]:
    """:func:`run` on explicit arguments (the model, the main geometry, the questions)."""
    if not questions:
        return {"sections": []}
    words = sorted({w for qs in questions.values() for q in qs for w in q})
    ids = single(lm, words)
    qidx = {
        sec: [tuple(ids[w] for w in q) for q in qs if all(w in ids for w in q)]
        for sec, qs in questions.items()
    }
    qidx = {s: q for s, q in qidx.items() if q}
    if not qidx:
        return {"sections": []}
    r = analogy_accuracy(geo.P, qidx, structure=geo.st)
    counts = r.details["counts"]
    w2v = getattr(getattr(lm, "wrapped", lm), "w2v", None)
    inp_acc: dict[str, float] = {}
    if w2v is not None:
        vecs = np.asarray(w2v.wv.vectors)
        P_in = NextTokenPredictor(geo.P.F[: min(geo.P.n, 2)], vecs, tokens=geo.P.tokens)
        inp_acc = dict(analogy_accuracy(P_in, qidx).raw)
    rows = [
        {
            "section": s,
            "n_questions": counts[s],
            "n_total": len(questions[s]),
            "acc_raw": r.raw[s],
            "acc_identified": r.identified[s],
            **({"acc_input_vectors": inp_acc[s]} if inp_acc else {}),
        }
        for s in qidx
    ]
    overall: dict[str, Any] = {
        "acc_raw": r.raw["overall"],
        "acc_identified": r.identified["overall"],
    }
    if inp_acc:
        overall["acc_input_vectors"] = inp_acc["overall"]
        overall["note"] = (
            "acc_raw: output vectors (syn1neg); acc_input_vectors: input vectors (wv), as "
            "gensim's evaluate_word_analogies"
        )
    overall["n_questions"] = int(sum(counts[s] for s in qidx))
    overall["n_total"] = int(sum(len(q) for q in questions.values()))
    return {"sections": rows, "overall": overall}


def _ex(key: str) -> Explanation:
    s = SPEC.statistic(key)
    assert s is not None
    return Explanation(s.meaning, s.identified)


def section(res: Any, figures: dict[str, str]) -> list[Block]:
    """The analogy table: accuracy per section and overall."""
    an = res.analogy
    if not an.sections:
        return []
    cols = ["n_questions", "acc_raw", "acc_identified"]
    w2v = any("acc_input_vectors" in s.extra for s in an.sections)
    rows: list[list[Any]] = [[s.section] + [getattr(s, c) for c in cols] for s in an.sections]
    overall = an.overall or {}
    rows.append(
        ["overall", sum(s.n_questions for s in an.sections)]
        + [overall.get("acc_raw"), overall.get("acc_identified")]
    )
    ex = {c: _ex(c) for c in cols[1:]} | {
        "n_questions": Explanation("questions with all four words single tokens", None)
    }
    if w2v:  # word2vec: gensim's figure (input vectors) beside the output-vector one
        cols.append("acc_input_vectors")
        for s, row in zip(an.sections, rows):
            row.append(s.extra.get("acc_input_vectors"))
        rows[-1].append(overall.get("acc_input_vectors"))
        ex["acc_raw"] = Explanation("3CosAdd on the output vectors g = syn1neg", False)
        ex["acc_input_vectors"] = Explanation(
            "3CosAdd on the input vectors (wv): gensim's evaluate_word_analogies", False
        )
    return [
        Block("h3", "Analogy accuracy (3CosAdd) per section"),
        Block("table", Table(["section"] + cols, rows, ex)),
    ]


STEP = register_step(
    AuditStep(
        name="analogies",
        property=SPEC.name,
        run=run,
        order=20,
        section_key=SPEC.name,
        section=section,
    )
)
