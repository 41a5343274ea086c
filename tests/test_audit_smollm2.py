"""End to end: ``allornone audit --quick`` on the real embedded SmolLM2 (slow: ~2 min)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from allornone.cli import main

pytestmark = pytest.mark.slow


def test_quick_audit_on_smollm2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "audit"
    assert main(["audit", "--quick", "--out", str(out), "--no-progress"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["model"]["d"] == 576 and res["model"]["V"] == 49152
    assert res["model"]["logit_check"] < 1e-2
    assert 0 < res["structure"]["k"] <= res["structure"]["n"]
    kinds = {p["property"] for p in res["properties"]}
    assert {"parallelism", "probing", "steering"} <= kinds
    demo = res["equivalence_demo"]
    assert all(m["equivalent"] for m in demo["models"] if m["junk"] == "random")
    ident = [s for s, i in demo["stat_identified"].items() if i and s != "k"]
    for s in ident:  # identified statistics are the same in every equivalent model
        vals = [m["stats"][s] for m in demo["models"] if m["junk"] == "random"] + [
            demo["models"][0]["stats"][s]
        ]
        assert max(vals) - min(vals) <= 1e-6 * max(1.0, max(abs(v) for v in vals))
    for name in ("report.html", "report.md", "figures/spectrum.png"):
        assert (out / name).stat().st_size > 0
    assert "k / energy rank" in capsys.readouterr().out
