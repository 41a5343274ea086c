"""The verified table (issue 24): a tiny random model of every architecture of the registry
is loaded exactly, runs ``structure`` and ``steering`` (with its forward-pass check in the
head's own coordinates); one model of each head kind runs ``audit --quick`` end to end;
docs/ARCHITECTURES.md is the table these tests produce."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import arch_zoo
import pytest

from allornone.models.architectures import REGISTRY, SUPPORTED_KINDS

DOC = Path(__file__).resolve().parents[1] / "docs" / "ARCHITECTURES.md"


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ALLORNONE_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def tok():
    return arch_zoo.tokenizer()


@pytest.fixture(scope="module")
def table(tok) -> dict[str, dict]:
    return {}


def _row(name: str, tok, table: dict) -> dict:
    if name not in table:
        table[name] = arch_zoo.verify(name, tok)
    return table[name]


@pytest.mark.parametrize("name", arch_zoo.names())
def test_architecture_is_read_exactly(name, tok, table):
    r = _row(name, tok, table)
    assert r["gap"] < arch_zoo.GAP_TOL and r["logit_check"] < arch_zoo.GAP_TOL
    assert r["steer_err"] < arch_zoo.steer_tol(r["kind"])
    assert 1 <= r["k"] <= min(r["d"], len(arch_zoo.CONTEXTS))
    # the declared head kind is what the head does
    if r["kind"] != "encoder-decoder":  # BART-style final_logits_bias, none for T5
        assert r["bias"] == (r["kind"] in ("biased", "masked-lm"))
    assert (r["scale"] != 1.0) == (r["kind"] == "scaled")
    assert (r["softcap"] is not None) == (r["kind"] == "softcapped")


def test_table_covers_every_kind_and_doc_is_current(tok, table):
    rows = [_row(n, tok, table) for n in arch_zoo.names()]
    per = Counter(r["kind"] for r in rows)
    assert len(rows) >= 35 and set(per) == set(SUPPORTED_KINDS)
    assert per["masked-lm"] >= 7 and per["encoder-decoder"] >= 6
    assert {a.model_type for a in REGISTRY.values() if a.supported} <= {
        r["model_type"] for r in rows
    }
    text = arch_zoo.render(rows)
    assert DOC.read_text(encoding="utf-8") == text, (
        "docs/ARCHITECTURES.md is stale: run python scripts/architectures_doc.py"
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", list(arch_zoo.AUDITED))
def test_audit_quick_on_each_head_kind(name, tok, tmp_path):
    folder = tmp_path / name
    arch_zoo.build(name, tok).save_pretrained(folder)
    tok.save_pretrained(folder)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "allornone", "audit", "--quick", "--no-progress",
         "--model", str(folder), "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "report.md").is_file()
    res = json.loads((out / "results.json").read_text())
    text = json.dumps(res)
    assert "real model forward" in text  # the steering check ran the model itself
    assert "error is larger than the shift" not in proc.stderr
