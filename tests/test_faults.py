"""Faults a user can cause, or a machine can: the CLI never deletes a user's file, never
leaves its temporary folders behind, and answers every user error in one line.

Most tests call :func:`allornone.cli.main` in process with the tiny stand-in model (seconds);
the signal tests run the CLI in a subprocess (tests/fault_cli.py) and kill it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from audit_helpers import tiny_args, tiny_model

from allornone import AllOrNoneError, AllOrNoneTypeError
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
    # _loading/_fs: their own temporary folders (pid-tagged); _gguf: a damaged entry of the
    # model cache it wrote itself (inside ALLORNONE_CACHE, checked against its manifest)
    allowed = {"_io.py", "_loading.py", "_fs.py", "_gguf.py"}
    hits = [
        p.relative_to(SRC)
        for p in (SRC / "allornone").rglob("*.py")
        if "rmtree" in p.read_text(encoding="utf-8") and p.name not in allowed
    ]
    assert hits == []


# ------------------------------------------------------------------ subprocess helpers
def _default_sigint() -> None:
    # a shell starts background jobs with SIGINT ignored, and a child inherits that (Python
    # then installs no KeyboardInterrupt handler): give the child the terminal's default, as
    # a user's foreground command has, whatever started pytest
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _spawn(mode: str, args: list[str], stdin: int | None = None) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(TESTS)]))
    return subprocess.Popen(
        [sys.executable, str(FAULT_CLI), mode, *args],
        env=env,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )


def _wait_for(stream, word: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    t0 = time.monotonic()
    for line in stream:
        if line.strip() == word:
            return
        assert time.monotonic() - t0 < timeout, f"no {word} within {timeout}s"
    raise AssertionError(f"process ended (rc {proc.wait()}) before printing {word}")


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# ------------------------------------------------------------------ case 8: leftovers
def test_sigkill_while_writing_leaves_nothing_after_the_next_run(tmp_path: Path, capsys) -> None:
    out = tmp_path / "rep"
    assert main(tiny_args(out) + ["--seed", "1"]) == 0
    before = _tree(out)
    proc = _spawn("slow-write", tiny_args(out) + ["--force", "--seed", "2"])
    try:
        _wait_for(proc.stdout, "WRITING", proc)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    left = _leftovers(tmp_path)
    assert len(left) == 1 and left[0].startswith(".rep.tmp-"), left  # SIGKILL: no cleanup
    assert _tree(out) == before  # the previous report is intact
    capsys.readouterr()
    # the next run (even one that stops at "already exists") removes the dead run's folder
    assert main(tiny_args(out)) == 2
    assert _leftovers(tmp_path) == [] and _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


def test_sigterm_while_writing_cleans_up(tmp_path: Path) -> None:
    out = tmp_path / "rep"
    assert main(tiny_args(out)) == 0
    before = _tree(out)
    proc = _spawn("slow-write", tiny_args(out) + ["--force", "--seed", "2"])
    _wait_for(proc.stdout, "WRITING", proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and err.strip().count("\n") == 0, err
    assert "allornone: terminated; nothing was written" in err
    assert _leftovers(tmp_path) == [] and _tree(out) == before


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_sweep_touches_only_dead_writers_folders(tmp_path: Path) -> None:
    from allornone._io import _host_tag, sweep_leftovers

    tag, dead, alive = _host_tag(), _dead_pid(), os.getpid()
    ours_dead = tmp_path / f".rep.tmp-{tag}-{dead}-abc123"
    ours_alive = tmp_path / f".rep.tmp-{tag}-{alive}-abc123"  # a run in progress
    other_host = tmp_path / f".rep.tmp-ffffff-{dead}-abc123"
    users = tmp_path / ".rep.tmp-mine"  # not a name the tool writes
    other_name = tmp_path / f".other.tmp-{tag}-{dead}-abc123"
    for d in (ours_dead, ours_alive, other_host, users, other_name):
        d.mkdir()
        (d / "f").write_text("x")
    if other_host.name == ours_dead.name:  # pragma: no cover - this host hashes to ffffff
        pytest.skip("host tag collides with the test's foreign tag")
    assert sweep_leftovers(tmp_path / "rep") == [ours_dead]
    assert not ours_dead.exists()
    assert all(d.exists() for d in (ours_alive, other_host, users, other_name))


def test_sweep_puts_back_a_report_moved_aside(tmp_path: Path) -> None:
    """Killed between the two renames of the swap: the old report is aside, --out missing."""
    from allornone._io import _host_tag, sweep_leftovers

    aside = tmp_path / f".rep.old-{_host_tag()}-{_dead_pid()}-0123abcd"
    assert main(tiny_args(aside.with_name("first"))) == 0
    (tmp_path / "first").rename(aside)
    before = _tree(aside)
    assert sweep_leftovers(tmp_path / "rep") == [aside]
    assert _tree(tmp_path / "rep") == before and not aside.exists()
    # with --out present again, a moved-aside copy is only a leftover: deleted
    aside.mkdir()
    assert sweep_leftovers(tmp_path / "rep") == [aside] and not aside.exists()
    assert _tree(tmp_path / "rep") == before


# ------------------------------------------------------------------ issue 25 case 1: publish
def _go_on(proc: subprocess.Popen) -> tuple[str, str]:
    """Let a ``pause-write`` child publish; returns its (stdout, stderr)."""
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    return proc.communicate(timeout=120)


def _new_beside(parent: Path, name: str) -> list[Path]:
    return sorted(p for p in parent.iterdir() if p.name.startswith(f"{name}.new-"))


def _refused_one_line(err: str, out: Path, kept: Path) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"allornone: error: {out.resolve()} was not replaced: ")
    assert "It is left as it was; the new report is kept beside it, in " in lines[0]
    assert lines[0].endswith(str(kept.resolve()))


def test_folder_made_at_out_during_the_run_is_kept(tmp_path: Path) -> None:
    """A user's folder created at --out while the audit runs survives: the new report is
    kept beside it, with one line saying where, exit 2 (it used to be deleted, exit 0)."""
    out = tmp_path / "rep"
    proc = _spawn("pause-write", tiny_args(out), stdin=subprocess.PIPE)
    _wait_for(proc.stdout, "WRITING", proc)
    out.mkdir()  # another process: the user's shell
    (out / "precious.txt").write_text("draft\n")
    _, err = _go_on(proc)
    assert proc.returncode == 2, err
    assert sorted(p.name for p in out.iterdir()) == ["precious.txt"]
    assert (out / "precious.txt").read_text() == "draft\n"
    (kept,) = _new_beside(tmp_path, "rep")
    assert "results.json" in {p.name for p in kept.iterdir()}
    assert (kept / "report.html").is_file()
    _refused_one_line(err, out, kept)
    assert "a folder appeared there while this run was writing its report" in err
    assert _leftovers(tmp_path) == []


def test_force_keeps_user_files_added_during_the_run(tmp_path: Path) -> None:
    """--force: the previous report is checked again right before it is replaced; a user's
    file added meanwhile makes it not replaceable (nothing of it is deleted)."""
    out = tmp_path / "rep"
    assert main(tiny_args(out)) == 0
    before = _tree(out)
    proc = _spawn("pause-write", tiny_args(out) + ["--force", "--seed", "2"], stdin=subprocess.PIPE)
    _wait_for(proc.stdout, "WRITING", proc)
    (out / "notes.txt").write_text("mine")
    _, err = _go_on(proc)
    assert proc.returncode == 2, err
    assert _tree(out) == {**before, "notes.txt": b"mine"}
    (kept,) = _new_beside(tmp_path, "rep")
    _refused_one_line(err, out, kept)
    assert "it now holds files allornone did not write (notes.txt)" in err


def test_two_runs_publishing_to_one_out(tmp_path: Path) -> None:
    """Two audits with the same --out, publishing at the same moment: exactly one report
    is at --out, the other is kept beside it with the one-line message; nothing is lost."""
    out = tmp_path / "rep"
    procs = [
        _spawn("pause-write", tiny_args(out) + ["--seed", str(seed)], stdin=subprocess.PIPE)
        for seed in (1, 2)
    ]
    for proc in procs:
        _wait_for(proc.stdout, "WRITING", proc)
    for proc in procs:  # both go on at once
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = [proc.communicate(timeout=120) for proc in procs]
    codes = sorted(proc.returncode for proc in procs)
    assert codes == [0, 2], results
    (kept,) = _new_beside(tmp_path, "rep")
    loser = next(err for proc, (_, err) in zip(procs, results) if proc.returncode == 2)
    _refused_one_line(loser, out, kept)
    seeds = {json.loads((d / "results.json").read_text())["config"]["seed"] for d in (out, kept)}
    assert seeds == {1, 2}  # both reports, one each
    assert _leftovers(tmp_path) == []


def test_publish_dir_in_process(tmp_path: Path) -> None:
    """publish_dir: an absent place is claimed; a refused one is untouched and the folder
    kept beside; an accepted one is replaced and the old one deleted."""
    from allornone._io import PublishRefused, publish_dir

    def fresh(name: str) -> Path:
        d = tmp_path / name
        d.mkdir()
        (d / "f").write_text(name)
        return d

    final = tmp_path / "x"
    assert publish_dir(fresh("a"), final, lambda p: "never") == final
    assert (final / "f").read_text() == "a"
    with pytest.raises(PublishRefused, match="x was not replaced: never") as e:
        publish_dir(fresh("b"), final, lambda p: "never", what="report")
    assert (final / "f").read_text() == "a" and (e.value.kept / "f").read_text() == "b"
    assert e.value.kept.name.startswith("x.new-") and "new report" in str(e.value)
    publish_dir(fresh("c"), final, lambda p: None)
    assert (final / "f").read_text() == "c"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x", e.value.kept.name]


# ------------------------------------------------------------------ case 5: Ctrl-C, errors
@pytest.mark.parametrize(
    "module",
    [
        "allornone.linalg",  # while the package itself is imported (numpy, scipy)
        "allornone.audit.pipeline",  # a lazy import inside the command (torch comes later)
    ],
)
def test_ctrl_c_during_import_is_one_line(tmp_path: Path, module: str) -> None:
    proc = _spawn(f"slow-import:{module}", tiny_args(tmp_path / "rep"))
    _wait_for(proc.stderr, "IMPORTING", proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().startswith("allornone: interrupted"), err
    assert err.strip().count("\n") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_ctrl_c_at_any_moment_is_one_line(tmp_path: Path) -> None:
    """SIGINT at several moments of a real run: never a traceback, always 130 (or 0 if the
    run was already done)."""
    codes: list[int] = []
    for i, delay in enumerate((0.0, 0.1, 0.3, 0.6, 1.2, 2.5)):
        out = tmp_path / f"rep{i}"
        proc = _spawn("run", tiny_args(out))
        _wait_for(proc.stderr, "READY", proc)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert "Traceback" not in err, (delay, err)
        assert proc.returncode in (0, 130), (delay, proc.returncode, err)
        codes.append(proc.returncode)
    assert codes[0] == 130  # interrupted while importing
    assert _leftovers(tmp_path) == []


def test_ctrl_c_in_train_says_what_it_kept(tmp_path: Path, monkeypatch) -> None:
    """Issue 25 case 10: Ctrl-C in ``train`` after a checkpoint names the checkpoint it kept
    and says that the next run resumes from it (it used to say that nothing was written)."""
    from allornone.family import train

    fam = tmp_path / "fam"
    args = ["train", "--out", str(fam), "--corpus", "lee", "--widths", "16", "--seeds", "0"]
    args += ["--steps", "4", "--layers", "1", "--no-word2vec", "--no-progress"]
    args += ["--device", "cpu"]
    proc = _spawn("train-ckpt", args)
    _wait_for(proc.stdout, "CHECKPOINT", proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    line = err.strip()
    assert "Traceback" not in err and line.count("\n") == 0, err
    assert "nothing was written" not in line
    assert line.startswith(f"allornone: interrupted; kept in {fam}: the tokenizer and data")
    assert "the checkpoint(s) tf-d16-s0/checkpoint.pt" in line
    assert "rerun the same command and it resumes from the checkpoint(s)" in line
    assert (fam / "tf-d16-s0" / "checkpoint.pt").is_file()
    # ... and it does: the next run reads that checkpoint and goes on from step 2
    resumed: list[int] = []
    real = train.load_checkpoint

    def spy(ckpt, device):  # type: ignore[no-untyped-def]
        state = real(ckpt, device)
        resumed.append(state["step"])
        return state

    monkeypatch.setattr(train, "load_checkpoint", spy)
    assert main(args) == 0
    assert resumed == [2] and (fam / "tf-d16-s0" / "final").is_dir()
    assert not (fam / "tf-d16-s0" / "checkpoint.pt").exists()


def test_ctrl_c_in_extract_names_the_shards_it_kept(tmp_path: Path) -> None:
    import argparse

    from allornone.cli.extract import interrupted_note
    from allornone.cli.process import interrupted_note as line

    args = argparse.Namespace(command="extract", out=str(tmp_path / "store"))
    assert line(args) == "nothing was written (any previous report is intact)"
    (tmp_path / "store").mkdir()
    for i in range(2):
        (tmp_path / "store" / f"F-{i:05d}.safetensors").write_bytes(b"x")
    assert line(args) == interrupted_note(args)
    assert line(args).startswith(f"kept in {tmp_path / 'store'}: 2 finished shard(s); rerun")


def test_ctrl_c_before_train_wrote_anything_says_so(tmp_path: Path, monkeypatch, capsys) -> None:
    from allornone.family import train

    def stop(*a, **k):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "prepare_family", stop)
    fam = tmp_path / "fam"
    assert main(["train", "--out", str(fam), "--prepare-only"]) == 130
    err = capsys.readouterr().err.strip()
    assert err == "allornone: interrupted; nothing was written (any previous report is intact)"


@pytest.mark.parametrize(
    ("exc", "needle"),
    [
        (AllOrNoneError("--labels x.tsv: line 3 has no tab"), "line 3 has no tab"),
        (AllOrNoneTypeError("pairs must be a list of (a, b)"), "pairs must be a list"),
        (FileNotFoundError(2, "No such file", "/data/model.gguf"), "/data/model.gguf: no such"),
        (PermissionError(13, "Permission denied", "/out/rep"), "/out/rep: permission denied"),
        (OSError(28, "No space left on device", "/out/x"), "No space left on device"),
        (ModuleNotFoundError("No module named 'gguf'"), "pip install 'allornone[audit]'"),
        (type("OutOfMemoryError", (RuntimeError,), {})("CUDA out of memory"), "--batch-size"),
    ],
)
def test_user_errors_are_one_line_exit_2(tmp_path, monkeypatch, capsys, exc, needle) -> None:
    def fail(cfg):
        raise exc

    monkeypatch.setattr(pipeline, "load_model", fail)
    assert main(tiny_args(tmp_path / "rep")) == 2
    err = capsys.readouterr().err
    assert err.startswith("allornone: error:") and err.count("\n") == 1, err
    assert needle in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_permission_error_while_writing_out(tmp_path, monkeypatch, capsys) -> None:
    from allornone.audit import report

    def denied(res, folder):
        raise PermissionError(13, "Permission denied", str(folder / "report.html"))

    monkeypatch.setattr(report, "write_report", denied)
    assert main(tiny_args(tmp_path / "rep")) == 2
    err = capsys.readouterr().err
    assert "permission denied" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # its temporary folder removed


def test_out_below_a_file_is_refused_before_load(tmp_path, monkeypatch, capsys) -> None:
    f = tmp_path / "file.txt"
    f.write_text("x")
    _never_load(monkeypatch)
    assert main(tiny_args(f / "rep")) == 2
    err = capsys.readouterr().err
    assert f"cannot create its parent folder {f}" in err and err.count("\n") == 1
    assert f.read_text() == "x"


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch) -> None:
    def bug(cfg):
        return 1 / 0

    monkeypatch.setattr(pipeline, "load_model", bug)
    with pytest.raises(ZeroDivisionError):
        main(tiny_args(tmp_path / "rep"))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "tree",
    [
        {"schema_version": "1.0", "kind": "compare", "tool": {"name": "allornone"}},
        {"schema_version": "study-1", "members": [], "pairs": []},
    ],
)
def test_compare_and_study_reports_are_replaceable(tmp_path: Path, tree: dict) -> None:
    from allornone.cli import check_replaceable

    out = tmp_path / "rep"
    (out / "figures").mkdir(parents=True)
    (out / "results.json").write_text(json.dumps(tree))
    (out / "report.html").write_text("<html>")
    (out / "figures" / "spectra.png").write_bytes(b"png")
    check_replaceable(out)  # no error: a previous report
    (out / "figures" / "data.csv").write_text("mine")
    with pytest.raises(AllOrNoneError, match="figures/data.csv"):
        check_replaceable(out)


# ------------------------------------------------------------------ case 6: analogy numerics
def _analogy_model(scale: float = 1.0, seed: int = 0):
    """Countries + offset = capitals (exact analogies) among random other words."""
    from allornone import NextTokenPredictor

    rng = np.random.default_rng(seed)
    d, k = 12, 5
    E = np.linalg.qr(rng.standard_normal((d, d)))[0]
    G = np.vstack([E[:, :k].T, E[:, :k].T + E[:, -1], 0.3 * rng.standard_normal((30, d))])
    qs = [(j, k + j, i, k + i) for i in range(k) for j in range(k) if i != j]
    F = rng.standard_normal((40, d))
    return NextTokenPredictor(F * scale, G * scale), qs


@pytest.mark.parametrize("scale", [1e-200, 1e-100, 1e-8, 1.0, 1e8, 1e100, 1e200])
def test_analogy_accuracy_is_scale_free(scale: float) -> None:
    from allornone.properties import analogy_accuracy

    m, qs = _analogy_model(scale)
    ref = analogy_accuracy(_analogy_model(1.0)[0], qs)
    res = analogy_accuracy(m, qs)
    assert res.raw["all"] == 1.0 and res.identified["all"] == ref.identified["all"]
    assert np.array_equal(res.details["predictions"]["all"], ref.details["predictions"]["all"])
    assert np.array_equal(
        res.details["identified_predictions"]["all"], ref.details["identified_predictions"]["all"]
    )


def test_analogy_one_tiny_row_is_still_answered() -> None:
    """A row of norm 1e-200 used to underflow to a 'zero vector' (question dropped)."""
    from allornone import NextTokenPredictor
    from allornone.properties import analogy_accuracy

    m, qs = _analogy_model()
    G = m.G.copy()
    G[5] *= 1e-200  # the answer of every question about word 0
    res = analogy_accuracy(NextTokenPredictor(m.F, G), qs)
    assert res.raw["all"] == 1.0 and res.excluded == ()


def test_analogy_refuses_non_finite_rows() -> None:
    """A model whose G was edited after validation: one inf row is refused (it used to turn
    every score of its chunk into NaN, argmax picked it, and a correct answer scored 0)."""
    from allornone.properties import analogy_accuracy

    for bad in (np.inf, np.nan):
        m, qs = _analogy_model()
        m.G[20, 3] = bad
        with pytest.raises(AllOrNoneError, match=r"model\.G has 1 row\(s\) with NaN or inf"):
            analogy_accuracy(m, qs)


def test_analogy_refuses_integer_vectors_and_float_questions() -> None:
    from allornone.properties import analogy_accuracy

    m, qs = _analogy_model()
    with pytest.raises(AllOrNoneTypeError, match="NextTokenPredictor"):
        analogy_accuracy(m.G, qs)
    m.G = np.round(m.G * 10).astype(np.int64)  # bypassing the constructor's check
    with pytest.raises(AllOrNoneTypeError, match=r"model\.G has dtype int64.*astype\(float\)"):
        analogy_accuracy(m, qs)
    m, qs = _analogy_model()
    with pytest.raises(AllOrNoneTypeError, match="shape \\(m, 4\\)"):
        analogy_accuracy(m, np.asarray(qs, dtype=float))
    with pytest.raises(AllOrNoneTypeError, match=r"holds 3\.0 \(float\)"):
        analogy_accuracy(m, [(0, 5, 1, 3.0)])
    with pytest.raises(AllOrNoneTypeError, match="holds True"):
        analogy_accuracy(m, [(0, 5, 1, True)])
    res = analogy_accuracy(m, {"capitals": np.asarray(qs)})  # an integer array is fine
    assert res.raw["capitals"] == 1.0


# ------------------------------------------------------------------ case 9: umask, escaping
@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_report_follows_the_umask(tmp_path: Path, mask: int) -> None:
    old = os.umask(mask)
    try:
        out = tmp_path / "rep"
        assert main(tiny_args(out)) == 0
        assert main(tiny_args(out) + ["--force"]) == 0  # a replaced report too
    finally:
        os.umask(old)
    want_dir, want_file = 0o777 & ~mask, 0o666 & ~mask
    assert out.stat().st_mode & 0o777 == want_dir
    assert (out / "figures").stat().st_mode & 0o777 == want_dir
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) >= 8
    assert {p.name: p.stat().st_mode & 0o777 for p in files} == {p.name: want_file for p in files}


EVIL = "<script>alert(1)</script>"
EVIL_LINK = "[click](javascript:alert(1))"


def test_user_strings_are_escaped_end_to_end(tmp_path: Path) -> None:
    """A family name and a label from the user's files reach report.md / .html as text."""
    from audit_helpers import CONCEPTS, LABELS

    concepts = tmp_path / "concepts.tsv"
    concepts.write_text(CONCEPTS.read_text().replace("\tgender", f"\t{EVIL}"))
    labels = tmp_path / "labels.tsv"
    labels.write_text(LABELS.read_text().replace("\tplain", f"\t{EVIL_LINK}"))
    args = tiny_args(tmp_path / "rep")
    args[args.index("--concepts") + 1] = str(concepts)
    args[args.index("--labels") + 1] = str(labels)
    assert main(args) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    page = (tmp_path / "rep" / "report.html").read_text()
    res = json.loads((tmp_path / "rep" / "results.json").read_text())
    names = {p["name"] for p in res["properties"]}
    assert EVIL in names and any(EVIL_LINK in n for n in names)  # the data keeps them
    assert "<script" not in md and "&lt;script>alert(1)&lt;/script>" in md
    assert EVIL not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "](javascript:" not in md.replace("\\](javascript:", "")
    assert "\\[click\\](javascript:alert(1))" in md
