"""The certificate and ``allornone verify`` (issue 26): a report records what made it, and a
re-run says figure by figure whether its identified numbers are reproduced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from audit_helpers import tiny_args, tiny_model

import allornone as aon
from allornone.audit import pipeline
from allornone.audit.verify import identified_figures, verify


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    from allornone.cli import main

    out = tmp_path_factory.mktemp("verify") / "rep"
    real = pipeline.load_model
    pipeline.load_model = lambda cfg: tiny_model()
    try:
        assert main(tiny_args(out)) == 0
    finally:
        pipeline.load_model = real
    return out


def test_the_certificate_records_what_made_the_report(report: Path) -> None:
    cert = json.loads((report / "results.json").read_text())["certificate"]
    assert cert["versions"]["allornone"] == aon.__version__ and cert["versions"]["numpy"]
    assert len(cert["contexts_sha256"]) == 64 and cert["n_contexts"] > 10
    assert {Path(p).name for p in cert["input_files"]} == {
        "concepts.tsv",
        "relations.json",
        "labels.tsv",
    }
    assert all(len(v) == 64 for v in cert["input_files"].values())
    assert cert["seed"] == 0 and cert["argv"]


def test_verify_reproduces_the_identified_figures(report: Path) -> None:
    v = verify(report, model=tiny_model())
    assert v.reproduced and v.compared > 20 and v.max_difference <= 1e-9, v.summary()
    q = verify(report, model=tiny_model(), quick=True)
    assert q.reproduced and 0 < q.compared < v.compared


def test_verify_finds_a_changed_figure(report: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(report, copy)
    tree = json.loads((copy / "results.json").read_text())
    p = next(p for p in tree["properties"] if p["property"] == "probing")
    key = next(iter(p["identified"]))
    p["identified"][key] = (p["identified"][key] or 0) + 0.25
    (copy / "results.json").write_text(json.dumps(tree))
    v = verify(copy, model=tiny_model())
    assert not v.reproduced
    assert [c.figure for c in v.failed] == [f"properties/probing/{p['name']}/{key}"]


def test_verify_refuses_in_one_line(report: Path, tmp_path: Path) -> None:
    import shutil

    with pytest.raises(aon.AllOrNoneError, match="no results.json: pass the folder of an audit"):
        verify(tmp_path)
    other = tmp_path / "other"
    shutil.copytree(report, other)
    tree = json.loads((other / "results.json").read_text())
    tree["tool"]["version"] = "0.0.9"
    (other / "results.json").write_text(json.dumps(tree))
    with pytest.raises(aon.AllOrNoneError, match=r"made by allornone 0.0.9, this is"):
        verify(other)
    changed = tmp_path / "changed"
    shutil.copytree(report, changed)
    tree = json.loads((changed / "results.json").read_text())
    labels = tmp_path / "labels.tsv"
    labels.write_text("a\tx\n")
    path = next(p for p in tree["certificate"]["input_files"] if p.endswith("labels.tsv"))
    tree["certificate"]["input_files"] = {str(labels): "0" * 64}
    (changed / "results.json").write_text(json.dumps(tree))
    with pytest.raises(aon.AllOrNoneError, match=r"input file .*labels.tsv differs"):
        verify(changed)
    assert path


def test_identified_figures_are_only_identified(report: Path) -> None:
    res = aon.audit.load_results(report)
    figs = identified_figures(res)
    assert "structure/k" in figs and not any("/raw/" in k for k in figs)
    for key in figs:
        if key.startswith("properties/"):
            _, kind, name, stat = key.split("/", 3)
            rec = next(p for p in res.of_kind(kind) if p.name == name)
            assert stat in rec.identified


def test_verify_command(report: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """``allornone verify REPORT``: exit 0 and 'reproduced'; a folder that is not a report is
    one line and exit 2."""
    from allornone.cli import main

    monkeypatch.setattr(pipeline, "load_model", lambda cfg: tiny_model())
    assert main(["verify", str(report), "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("reproduced: ")
    assert main(["verify", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no results.json" in err[0]
