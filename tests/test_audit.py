"""The audit pipeline and report on the tiny model (seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from audit_helpers import CONCEPTS, LABELS, RELATIONS, tiny_model

from allornone import NextTokenPredictor, structure
from allornone.audit import SCHEMA_VERSION, AuditConfig, AuditResults, run_audit
from allornone.audit.explain import EXPLAIN
from allornone.audit.report import summary_table, write_report
from allornone.structure import reduced


@pytest.fixture(scope="module")
def res() -> AuditResults:
    cfg = AuditConfig(
        concepts=str(CONCEPTS), relations=str(RELATIONS), labels=str(LABELS), progress=False
    )
    return run_audit(cfg, model=tiny_model())


def test_results_are_json_and_versioned(res: AuditResults, tmp_path: Path) -> None:
    assert res.schema_version == SCHEMA_VERSION == "2.0"
    assert res.restricted and res.properties and res.equivalence_demo is not None
    assert all(r.k < r.d for r in res.restricted)
    write_report(res, tmp_path)
    tree = json.loads((tmp_path / "results.json").read_text())
    assert tree["schema_version"] == "2.0"
    for key in ("model", "structure", "restricted", "properties", "equivalence_demo"):
        assert key in tree
    assert tree["structure"]["k"] == res.structure.k


def test_equivalence_demo_identified_fixed_raw_moves(res: AuditResults) -> None:
    demo = res.equivalence_demo
    assert demo is not None
    models = [m for m in demo.models if m.junk != "adversarial"]
    assert all(m.equivalent for m in models)
    assert {m.width for m in models} >= {demo.problem.d, 2 * demo.problem.d}
    for s, ident in demo.stat_identified.items():
        vals = np.array([m.stats[s] for m in models], dtype=float)
        spread = np.ptp(vals) / max(1.0, np.abs(vals).max())
        if ident:
            assert spread < 1e-6, s
    raw_moves = [
        np.ptp([m.stats[s] for m in models]) > 1e-3
        for s, i in demo.stat_identified.items()
        if not i and s != "dim_M"
    ]
    assert all(raw_moves)


def test_reduced_is_exact() -> None:
    rng = np.random.default_rng(0)
    P = NextTokenPredictor(rng.standard_normal((7, 40)), rng.standard_normal((5, 40)))
    R = reduced(P)
    assert R.d <= 12
    np.testing.assert_allclose(R.log_odds(), P.log_odds(), atol=1e-10)
    a, b = structure(P).summary(), structure(R).summary()
    for k in ("k", "dim_M", "dim_N", "dim_J_f", "dim_J_g"):
        assert a[k] == b[k]


def test_every_report_number_is_explained(res: AuditResults, tmp_path: Path) -> None:
    write_report(res, tmp_path)
    md = (tmp_path / "report.md").read_text()
    html = (tmp_path / "report.html").read_text()
    assert "NOT identified" in md and "identified" in html
    # every column header of every markdown table has a "- `col`: meaning (mark)" line
    for block in md.split("\n\n"):
        lines = block.splitlines()
        if lines and lines[0].startswith("| ") and len(lines) > 1 and lines[1].startswith("|---"):
            headers = [h.strip() for h in lines[0].strip("|").split("|")]
            if "meaning" in headers:
                continue
            expl = md[md.index(block) + len(block) :][:6000]
            for h in headers[1:]:
                if h in (
                    "name",
                    "set",
                    "junk",
                    "property",
                    "statistic",
                    "verdict a",
                    "verdict b",
                    "agree",
                ):
                    continue
                assert f"- `{h}`:" in expl, h
    assert "src='data:image/png;base64," in html
    for key in ("k", "dim_J_f", "logodds_corr"):
        assert key in EXPLAIN


def test_summary_table_is_aligned(res: AuditResults) -> None:
    lines = summary_table(res).splitlines()
    assert lines[0].startswith("item") and set(lines[1]) <= {"-", " "}
    assert any("equivalent samples" in ln for ln in lines)
