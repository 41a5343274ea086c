"""The CLI in a subprocess, with a fault injected, for tests/test_faults.py.

    python fault_cli.py MODE CLI-ARGS...

MODE is one of
  ``run``            the CLI through the console entry (allornone_cli, which guards the first
                     import), ``--model tiny`` loading the tiny stand-in model; prints
                     ``READY`` on stderr just before (the test sends SIGINT at some moment);
  ``slow-write``     as ``run``, but the report, once written into its temporary folder,
                     prints ``WRITING`` and sleeps (the test kills the process there);
  ``pause-write``    as ``slow-write``, but after ``WRITING`` it waits for a line on stdin,
                     then publishes (the test changes ``--out`` meanwhile);
  ``train-ckpt``     ``allornone train`` with a checkpoint every 2 steps; once the first
                     checkpoint is written it prints ``CHECKPOINT`` and sleeps (the test
                     sends SIGINT there);
  ``slow-import:M``  module ``M`` sleeps while it is imported, after printing ``IMPORTING``
                     (the test sends SIGINT there); the CLI runs through the console entry
                     (allornone_cli), so nothing of allornone is imported before.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


class _HookLoader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader, slow: bool) -> None:
        self.inner, self.slow = inner, slow

    def create_module(self, spec):  # type: ignore[no-untyped-def]
        return self.inner.create_module(spec)

    def exec_module(self, module) -> None:  # type: ignore[no-untyped-def]
        if self.slow:
            print("IMPORTING", file=sys.stderr, flush=True)
            time.sleep(60)
        self.inner.exec_module(module)
        if module.__name__ == "allornone.audit.pipeline":
            _tiny(module)


class _HookFinder(importlib.abc.MetaPathFinder):
    """Makes module ``name`` slow to import; patches the pipeline (tiny model) once loaded."""

    def __init__(self, name: str | None) -> None:
        self.name = name

    def find_spec(self, fullname, path, target=None):  # type: ignore[no-untyped-def]
        if fullname not in (self.name, "allornone.audit.pipeline"):
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        sys.meta_path.insert(0, self)
        if spec is not None and spec.loader is not None:
            spec.loader = _HookLoader(spec.loader, slow=fullname == self.name)
        return spec


def _tiny(pipeline) -> None:  # type: ignore[no-untyped-def]
    from audit_helpers import tiny_model

    real = pipeline.load_model
    pipeline.load_model = lambda cfg: tiny_model() if cfg.model == "tiny" else real(cfg)


def _slow_write() -> None:
    from allornone.audit import report

    real = report.write_report

    def slow(res, folder):  # type: ignore[no-untyped-def]
        out = real(res, folder)
        print("WRITING", flush=True)
        time.sleep(60)
        return out

    report.write_report = slow


def _pause_write() -> None:
    from allornone.audit import report

    real = report.write_report

    def paused(res, folder):  # type: ignore[no-untyped-def]
        out = real(res, folder)
        print("WRITING", flush=True)
        sys.stdin.readline()  # the test says when to go on
        return out

    report.write_report = paused


def _train_ckpt() -> None:
    from contextlib import contextmanager
    from dataclasses import replace

    from allornone.family import train

    real_preset, real_atomic_path = train.preset, train.atomic_path
    train.preset = lambda name, **kw: replace(real_preset(name, **kw), checkpoint_every=2)

    @contextmanager
    def atomic_path(path, **kw):  # type: ignore[no-untyped-def]
        with real_atomic_path(path, **kw) as tmp:
            yield tmp
        if path.name == "checkpoint.pt":
            print("CHECKPOINT", flush=True)
            time.sleep(60)

    train.atomic_path = atomic_path


def main() -> int:
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "run" or mode.startswith("slow-import:"):
        sys.meta_path.insert(0, _HookFinder(mode.split(":", 1)[1] if ":" in mode else None))
        import allornone_cli

        print("READY", file=sys.stderr, flush=True)
        allornone_cli.run(args)  # exits, as the console script does
    sys.meta_path.insert(0, _HookFinder(None))
    if mode == "slow-write":
        _slow_write()
    elif mode == "pause-write":
        _pause_write()
    elif mode == "train-ckpt":
        _train_ckpt()
    from allornone.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
