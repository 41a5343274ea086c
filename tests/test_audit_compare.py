"""``allornone compare`` on two tiny models of different widths (seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from audit_helpers import LABELS, RELATIONS, tiny_model

from allornone.audit.compare import CompareConfig, run_compare, shared_tokens, write_compare


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
