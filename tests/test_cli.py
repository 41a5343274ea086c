"""The command line: options, bad input, safe writes, exit codes (tiny model, seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from audit_helpers import tiny_args, tiny_model

from allornone import AllOrNoneError
from allornone.audit import pipeline
from allornone.cli import main


@pytest.fixture(autouse=True)
def _tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--model tiny`` loads the tiny stand-in model; other names go to the real loader."""
    real = pipeline.load_model

    def load(cfg: pipeline.AuditConfig):
        return tiny_model() if cfg.model == "tiny" else real(cfg)

    monkeypatch.setattr(pipeline, "load_model", load)


def test_audit_writes_all_outputs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "rep"
    assert main(tiny_args(out)) == 0
    names = {p.name for p in out.iterdir()}
    assert {"report.html", "report.md", "results.json", "figures"} <= names
    figs = {p.name for p in (out / "figures").iterdir()}
    assert figs == {
        f"{n}.png"
        for n in [
            "spectrum",
            "parallelism",
            "relations",
            "probing",
            "steering",
            "orders",
            "equivalence",
        ]
    }
    res = json.loads((out / "results.json").read_text())
    assert res["schema_version"] == "2.0"
    assert {p["property"] for p in res["properties"]} == {
        "parallelism",
        "relational",
        "probing",
        "steering",
        "cyclic",
    }
    assert all(m["equivalent"] for m in res["equivalence_demo"]["models"])
    text = capsys.readouterr().out
    assert "k / energy rank" in text and "report:" in text
    # no temporary folders left next to --out
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]


def test_unknown_option_exits_2(capsys: pytest.CaptureFixture) -> None:
    assert main(["audit", "--frobnicate"]) == 2
    assert "unrecognized arguments: --frobnicate" in capsys.readouterr().err


def test_no_command_exits_2() -> None:
    assert main([]) == 2


def test_existing_out_refused_unless_force(tmp_path: Path, capsys) -> None:
    out = tmp_path / "rep"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    assert main(tiny_args(out)) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err and "Traceback" not in err
    assert (out / "keep.txt").read_text() == "old"
    # --force replaces only a previous report: a folder of other files is refused
    assert main(tiny_args(out) + ["--force"]) == 2
    assert "not an allornone report folder" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "old"
    (out / "keep.txt").unlink()
    assert main(tiny_args(out) + ["--force"]) == 0  # an empty folder is replaced
    assert (out / "report.html").exists()
    assert main(tiny_args(out) + ["--force", "--seed", "3"]) == 0  # so is a report
    assert json.loads((out / "results.json").read_text())["config"]["seed"] == 3


def test_ctrl_c_keeps_previous_report(tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "rep"
    assert main(tiny_args(out)) == 0
    before = (out / "results.json").read_text()

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "equivalence_demo", boom)
    assert main(tiny_args(out) + ["--force", "--seed", "5"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert (out / "results.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


def test_interrupt_while_writing_keeps_previous_report(tmp_path: Path, monkeypatch) -> None:
    from allornone.audit import report

    out = tmp_path / "rep"
    assert main(tiny_args(out)) == 0
    before = (out / "report.md").read_text()

    def half(res, folder):
        (folder / "report.md").write_text("half")
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "write_report", half)
    assert main(tiny_args(out) + ["--force"]) == 130
    assert (out / "report.md").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


def test_error_is_one_line_exit_2(tmp_path: Path, monkeypatch, capsys) -> None:
    def bad(*a, **k):
        raise AllOrNoneError("smollm2: F G^T does not reproduce the model's own logits:\n detail")

    monkeypatch.setattr(pipeline, "load_model", bad)
    assert main(tiny_args(tmp_path / "rep")) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not reproduce" in err and "Traceback" not in err
    assert not (tmp_path / "rep").exists()
    with pytest.raises(AllOrNoneError):
        main(tiny_args(tmp_path / "rep") + ["--debug"])


@pytest.mark.parametrize(
    ("opt", "content", "needle"),
    [
        ("--concepts", "a\tb\nking\tqueen\nman\n", "line 3"),
        ("--labels", "text\tlabel\nhello there\tx\nbad row without tab\n", "line 3"),
        ("--relations", '[{"name": "r", "templates": ["no slot"], "samples": []}]', "r"),
    ],
)
def test_bad_user_file_names_the_line(tmp_path: Path, capsys, opt, content, needle) -> None:
    f = tmp_path / "user.txt"
    f.write_text(content)
    args = tiny_args(tmp_path / "rep")
    args[args.index(opt) + 1] = str(f)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "rep").exists()


def test_missing_user_file(tmp_path: Path, capsys) -> None:
    args = tiny_args(tmp_path / "rep")
    args[args.index("--labels") + 1] = str(tmp_path / "nope.tsv")
    assert main(args) == 2
    assert "no such file" in capsys.readouterr().err


def test_unknown_model_is_a_clear_error(tmp_path: Path, capsys) -> None:
    args = tiny_args(tmp_path / "rep")
    args[args.index("--model") + 1] = str(tmp_path / "no-such-model.gguf")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "allornone: error:" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["audit", "--model", "gemma-2-like"],
        ["audit", "--model", "gemma-2-like", "--layers", "all"],
        ["compare", "gemma-2-like", "other"],
    ],
)
def test_allow_nonlinear_head_reaches_load(tmp_path: Path, monkeypatch, capsys, argv) -> None:
    """--allow-nonlinear-head is passed to models.load (allow_nonlinear_head=True) by every
    command that loads a model, for that command only; without it nothing is passed."""
    from allornone import models

    real = models.load
    seen: list[dict] = []

    def fake(name, **options):
        seen.append(dict(options, name=name))
        raise AllOrNoneError("stop after recording the options")

    monkeypatch.setattr(models, "load", fake)
    args = argv + ["--out", str(tmp_path / "r"), "--no-progress"]
    assert main(args) == 2
    assert seen and "allow_nonlinear_head" not in seen[0]
    seen.clear()
    assert main(args + ["--allow-nonlinear-head"]) == 2
    assert seen[0]["allow_nonlinear_head"] is True and seen[0]["name"] == "gemma-2-like"
    assert models.load is fake  # put back after the command
    assert "stop after recording the options" in capsys.readouterr().err
    monkeypatch.setattr(models, "load", real)
