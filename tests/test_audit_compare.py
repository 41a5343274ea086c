"""``allornone compare`` on two tiny models of different widths (seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from audit_helpers import LABELS, RELATIONS, tiny_model

from allornone.audit.compare import (
    CompareConfig,
    run_compare,
    shared_tokens,
    summary_table,
    write_compare,
)


def test_compare_tiny_models(tmp_path: Path) -> None:
    a, b = tiny_model(d=24), tiny_model(d=32)
    b.tokens = b.tokens[:-5] + [f"<other{i}>" for i in range(5)]  # vocabularies differ a bit
    ia, ib, labels = shared_tokens(a, b)
    assert len(labels) == a.V - 5 and np.array_equal(ia, ib)
    cfg = CompareConfig("a", "b", labels=str(LABELS), relations=str(RELATIONS), progress=False)
    res = run_compare(cfg, models=(a, b))
    assert res["shared_tokens"]["count"] == a.V - 5
    assert res["structure"][0]["d"] == 24 and res["structure"][1]["d"] == 32
    assert res["distance"]["mean_kl"] > 0
    assert 0 <= res["map"]["map_residual_ab"]
    assert {p["property"] for p in res["properties"]} >= {"parallelism", "probing"}
    write_compare(res, tmp_path)
    assert json.loads((tmp_path / "results.json").read_text())["kind"] == "compare"
    assert (tmp_path / "report.html").read_text().count("<img") == 1


class _Reparametrised:
    """``base`` with ``f -> A f`` and ``g -> A^{-T} g``: the same distribution, other factors."""

    def __init__(self, base, A: np.ndarray) -> None:
        self.base, self.A = base, A
        self.name, self.tokens, self.d, self.V = "copy", base.tokens, base.d, base.V
        self.logit_check, self.word_tokens = 0.0, base.word_tokens

    def embed(self, texts, batch_size=None, progress=None):
        return self.base.embed(texts) @ self.A.T

    def unembedding(self):
        return self.base.unembedding() @ np.linalg.inv(self.A)


@pytest.mark.parametrize("kind", ["diagonal", "dense"])
def test_equivalent_pair_maps_exactly_and_reports_the_recovered_map(kind: str) -> None:
    # the maps use F E' (top left singular vectors of L first), not F E: an equivalent copy
    # must give residual 0 and similarity 1 (with F E the residual was 0.12-0.20 here)
    rng = np.random.default_rng(3)
    D = np.exp(0.3 * rng.standard_normal(24))
    A = np.diag(D) if kind == "diagonal" else np.eye(24) + 0.3 * rng.standard_normal((24, 24))
    cfg = CompareConfig("a", "b", labels=str(LABELS), relations=str(RELATIONS), progress=False)
    res = run_compare(cfg, models=(tiny_model(d=24), _Reparametrised(tiny_model(d=24), A)))
    mp = res["map"]
    assert mp["r"] >= 2
    assert mp["map_residual_ab"] < 1e-6 and mp["map_residual_ba"] < 1e-6
    ms = res["similarity"]["map_similarity"]
    assert ms["raw"] == pytest.approx(1, abs=1e-6) and ms["calibrated"] == pytest.approx(
        1, abs=1e-6
    )
    rec = mp["recovered"]
    assert rec["residual_f"] < 1e-6 and rec["residual_g"] < 1e-6
    assert rec["ambient_shape"] == [24, 24]
    if kind == "diagonal":
        assert rec["off_diagonal_share"] < 1e-8
        np.testing.assert_allclose(rec["diagonal"], D, rtol=1e-8)
    else:
        assert rec["off_diagonal_share"] > 0.1
    text = summary_table(res)
    assert "recovered map residual" in text
    dist = res["similarity"]["distances"]
    pp = dist["paper_d_llv"]
    assert dist["d_llv"] < 1e-6 and pp["d_llv"] < 1e-6 and pp["d_llv_worst"] < 1e-6
    assert dist["logit"]["d_logit"] < 1e-6 and dist["logit"]["d_rep"] < 1e-6


def test_compare_reports_the_papers_d_llv_beside_the_default(tmp_path: Path) -> None:
    cfg = CompareConfig("a", "b", labels=str(LABELS), relations=str(RELATIONS), progress=False)
    res = run_compare(cfg, models=(tiny_model(d=24), tiny_model(d=32)))
    dist = res["similarity"]["distances"]
    pp = dist["paper_d_llv"]
    assert 0 < pp["d_llv"] <= pp["d_llv_worst"] and 0 < dist["d_llv"]
    assert pp["label_terms_min"] <= pp["label_terms_max"] and pp["pivots_tried"] == 16
    write_compare(res, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "The paper's estimator" in md and "Logit distance" in md
    lg = dist["logit"]
    assert 0 < lg["d_rep_sq"] <= lg["bound"] and lg["d_logit"] > 0
