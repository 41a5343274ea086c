"""The audit on a word2vec model: it runs (contexts are vocabulary words) and its analogy
figure on input vectors equals gensim's evaluate_word_analogies, section by section."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from allornone.audit import AuditConfig, run_audit
from allornone.audit.builtin.analogy import analogies
from allornone.audit.inputs import WordCache
from allornone.audit.step import Geometry
from allornone.models import Word2VecModel, train_word2vec
from allornone.structure import structure


@pytest.fixture(scope="module")
def lee() -> Word2VecModel:
    return train_word2vec("lee", vector_size=24, epochs=3, min_count=3)


def _questions(lee: Word2VecModel, n: int = 60) -> dict[str, list[tuple[str, str, str, str]]]:
    """Analogy-format questions made of frequent words (the task need not make sense)."""
    rng = np.random.default_rng(0)
    words = lee.tokens[20:400]
    out: dict[str, list[tuple[str, str, str, str]]] = {}
    for sec in ("alpha", "beta"):
        qs = []
        for _ in range(n):
            a, b, c, d = rng.choice(len(words), 4, replace=False)
            qs.append((words[a], words[b], words[c], words[d]))
        # questions gensim can answer right: d is its own 3CosAdd answer
        out[sec] = qs
    return out


def test_input_vector_figure_equals_gensim_section_by_section(
    lee: Word2VecModel, tmp_path: Path
) -> None:
    qs = _questions(lee)
    # make some of them correct: the answer is gensim's own prediction
    for sec in qs:
        fixed = []
        for i, (a, b, c, d) in enumerate(qs[sec]):
            if i % 2 == 0:
                d = lee.w2v.wv.most_similar(positive=[b, c], negative=[a], topn=1)[0][0]
            fixed.append((a, b, c, d))
        qs[sec] = fixed
    qs["alpha"].append(("notaword", "x", "y", "z"))  # out of vocabulary: skipped by both
    path = tmp_path / "q.txt"
    lines = []
    for sec, items in qs.items():
        lines.append(f": {sec}")
        lines += [" ".join(q).upper() if i % 3 == 0 else " ".join(q) for i, q in enumerate(items)]
    path.write_text("\n".join(lines) + "\n")
    _, sections = lee.w2v.wv.evaluate_word_analogies(str(path))
    gensim = {
        s["section"]: len(s["correct"]) / (len(s["correct"]) + len(s["incorrect"]))
        for s in sections
    }

    lm = WordCache(lee)
    from allornone.data import read_concepts

    questions = read_concepts(path).questions
    from allornone.audit.inputs import Inputs, word_contexts

    inp = Inputs(questions=questions)
    word_contexts(lm, inp)  # case-insensitive matching, as gensim
    P = lee.predictor(lee.tokens[:200])
    an = analogies(lm, Geometry.build(P, structure(P)), inp.questions)
    ours = {r["section"]: r["acc_input_vectors"] for r in an["sections"]}
    assert ours["alpha"] == pytest.approx(gensim["alpha"], abs=1e-12)
    assert ours["beta"] == pytest.approx(gensim["beta"], abs=1e-12)
    assert an["overall"]["acc_input_vectors"] == pytest.approx(gensim["Total accuracy"])
    assert 0.3 < ours["alpha"] < 1.0  # half were made right: the comparison has teeth
    assert {r["n_questions"] for r in an["sections"]} == {60}
    # the output-vector figure is a different number, reported beside it
    assert any(r["acc_raw"] != r["acc_input_vectors"] for r in an["sections"])


def test_audit_runs_on_a_word2vec_model(lee: Word2VecModel) -> None:
    cfg = AuditConfig(quick=True, progress=False)
    res = run_audit(cfg, model=lee)
    assert res.model.d == 24
    kinds = {p.property for p in res.properties}
    assert {"probing", "steering"} <= kinds and "relational" not in kinds
    reasons = [d["reason"] for d in res.extra["inputs"]["dropped"] if d["kind"] == "relation"]
    assert reasons
    assert res.analogy.sections  # lower-case Lee vocabulary matched case-insensitively
    assert all("acc_input_vectors" in s.extra for s in res.analogy.sections)


def test_cli_audit_of_a_saved_word2vec_file(lee: Word2VecModel, tmp_path: Path) -> None:
    from allornone.cli import main

    # a gensim pickle is refused unless trusted; the pickle-free folder allornone writes is not
    pickled = tmp_path / "model.w2v"
    lee.w2v.save(str(pickled))
    argv = ["--quick", "--no-progress", "--out"]
    assert main(["audit", "--model", str(pickled), *argv, str(tmp_path / "refused")]) == 2
    assert not (tmp_path / "refused").exists()
    path = tmp_path / "w2v-folder"
    lee.save(path)
    out = tmp_path / "report"
    assert main(["audit", "--model", str(path), *argv, str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "acc_input_vectors" in text and "Inputs not measured" in text
