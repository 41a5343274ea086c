"""Faults a user can cause, or a machine can: the CLI never deletes a user's file, never
leaves its temporary folders behind, and answers every user error in one line.

Most tests call :func:`allornone.cli.main` in process with the tiny stand-in model (seconds);
the signal tests run the CLI in a subprocess (tests/fault_cli.py) and kill it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from audit_helpers import tiny_args, tiny_model

from allornone.audit import pipeline
from allornone.cli import main

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"
FAULT_CLI = TESTS / "fault_cli.py"


@pytest.fixture(autouse=True)
def _tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    real = pipeline.load_model

    def load(cfg: pipeline.AuditConfig):
        return tiny_model() if cfg.model == "tiny" else real(cfg)

    monkeypatch.setattr(pipeline, "load_model", load)


def _never_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the model is loaded: refusals must come before it."""

    def load(cfg):
        raise AssertionError("the model was loaded before --out was checked")

    monkeypatch.setattr(pipeline, "load_model", load)


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


# ------------------------------------------------------------------ case 1: --force data loss
def test_force_refuses_a_project_folder(tmp_path: Path, monkeypatch, capsys) -> None:
    """The issue's reproduction: ``--out . --force`` in a project must not replace it."""
    proj = tmp_path / "x"
    (proj / "src").mkdir(parents=True)
    (proj / "src" / "a.py").write_text("print('mine')\n")
    monkeypatch.chdir(proj)
    _never_load(monkeypatch)
    before = _tree(proj)
    assert main(tiny_args(Path(".")) + ["--force"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("allornone: error:") and err.count("\n") == 1, err
    assert "current folder" in err and "Traceback" not in err
    assert _tree(proj) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]


def test_force_refuses_a_folder_of_user_files(tmp_path: Path, monkeypatch, capsys) -> None:
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "thesis.tex").write_text("\\documentclass{article}")
    _never_load(monkeypatch)
    assert main(tiny_args(thesis) + ["--force"]) == 2
    err = capsys.readouterr().err
    assert f"--force refused: {thesis} is not an allornone report folder" in err
    assert err.count("\n") == 1
    assert (thesis / "thesis.tex").read_text() == "\\documentclass{article}"


def test_force_refuses_a_fake_results_json(tmp_path: Path, monkeypatch, capsys) -> None:
    """A results.json of another tool is not a marker."""
    out = tmp_path / "data"
    out.mkdir()
    (out / "results.json").write_text(json.dumps({"schema_version": "2.0", "rows": [1, 2]}))
    (out / "notes.txt").write_text("keep")
    _never_load(monkeypatch)
    assert main(tiny_args(out) + ["--force"]) == 2
    assert "not an allornone report folder" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "results.json"]


def test_force_refuses_a_report_with_user_files_added(tmp_path: Path, capsys) -> None:
    out = tmp_path / "rep"
    assert main(tiny_args(out)) == 0
    (out / "my-notes.md").write_text("keep")
    (out / "figures" / "edited.svg").write_text("<svg/>")
    assert main(tiny_args(out) + ["--force"]) == 2
    err = capsys.readouterr().err
    assert "allornone did not write (figures/edited.svg, my-notes.md)" in err
    assert (out / "my-notes.md").read_text() == "keep"
    assert (out / "figures" / "edited.svg").exists()


def test_force_replaces_a_previous_report(tmp_path: Path) -> None:
    out = tmp_path / "rep"
    assert main(tiny_args(out) + ["--seed", "1"]) == 0
    assert main(tiny_args(out) + ["--force", "--seed", "2"]) == 0
    assert json.loads((out / "results.json").read_text())["config"]["seed"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


def test_force_refuses_a_symlink_and_a_file(tmp_path: Path, capsys) -> None:
    real = tmp_path / "real"
    assert main(tiny_args(real)) == 0
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    assert main(tiny_args(link) + ["--force"]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert link.is_symlink() and (real / "results.json").exists()
    f = tmp_path / "file.txt"
    f.write_text("x")
    assert main(tiny_args(f) + ["--force"]) == 2
    assert "is not a folder" in capsys.readouterr().err and f.read_text() == "x"


def test_compare_force_refuses_user_folder(tmp_path: Path, monkeypatch, capsys) -> None:
    import allornone.audit.compare as compare

    def never(*a, **k):
        raise AssertionError("models loaded before --out was checked")

    monkeypatch.setattr(compare, "run_compare", never)
    out = tmp_path / "paper"
    out.mkdir()
    (out / "paper.tex").write_text("x")
    assert main(["compare", "a", "b", "--out", str(out), "--force"]) == 2
    assert "not an allornone report folder" in capsys.readouterr().err
    assert (out / "paper.tex").read_text() == "x"


def test_study_force_refuses_user_folder(tmp_path: Path, capsys) -> None:
    out = tmp_path / "figs"
    out.mkdir()
    (out / "plot.py").write_text("x")
    assert main(["study", str(tmp_path / "fam"), "--out", str(out), "--force"]) == 2
    assert "not an allornone report folder" in capsys.readouterr().err
    assert (out / "plot.py").read_text() == "x"


def test_train_refuses_a_folder_of_user_files(tmp_path: Path, monkeypatch, capsys) -> None:
    from allornone.family import train

    def never(*a, **k):
        raise AssertionError("training started before --out was checked")

    monkeypatch.setattr(train, "prepare_family", never)
    monkeypatch.setattr(train, "train_family", never)
    home = tmp_path / "thesis"
    home.mkdir()
    (home / "thesis.tex").write_text("x")
    (home / "data").mkdir()
    assert main(["train", "--out", str(home), "--prepare-only"]) == 2
    err = capsys.readouterr().err
    assert "not an allornone family (thesis.tex)" in err and err.count("\n") == 1
    assert (home / "thesis.tex").read_text() == "x"


def test_train_accepts_new_empty_and_family_folders(tmp_path: Path, monkeypatch) -> None:
    from allornone.family import train

    seen: list[Path] = []

    def fake_prepare(out: Path, cfg) -> dict:
        seen.append(out)
        return {"vocab_size": 1, "train_tokens": 1, "bigram_heldout_ppl": 1.0}

    monkeypatch.setattr(train, "prepare_family", fake_prepare)
    empty = tmp_path / "empty"
    empty.mkdir()
    fam = tmp_path / "fam"
    (fam / "tf-d64-s0").mkdir(parents=True)
    (fam / "family.json").write_text("{}")
    (fam / "my-notes.txt").write_text("notes in a family folder are never touched")
    for out in (tmp_path / "new", empty, fam):
        assert main(["train", "--out", str(out), "--prepare-only"]) == 0
    assert seen == [tmp_path / "new", empty, fam]
    assert (fam / "my-notes.txt").exists()


def test_no_rmtree_outside_io() -> None:
    """Every deletion of a folder in src goes through allornone._io (which deletes only its
    own temporary and moved-aside folders) or a temporary folder the caller just made."""
    allowed = {"_io.py", "_loading.py"}  # _loading: its own mkdtemp folder, see there
    hits = [
        p.relative_to(SRC)
        for p in (SRC / "allornone").rglob("*.py")
        if "rmtree" in p.read_text(encoding="utf-8") and p.name not in allowed
    ]
    assert hits == []
