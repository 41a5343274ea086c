"""Command line: ``allornone audit`` and ``allornone compare`` (also ``python -m allornone``).

Exit codes: 0 success, 2 a clear error (bad input, model refused, output folder exists),
130 interrupted (Ctrl-C). Outputs are written to a temporary folder next to ``--out`` and
moved into place only when complete, so a failed or interrupted run never leaves a
half-written report and never damages the previous one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from ._validation import AllOrNoneError

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=None, help="output folder (default: audit-<model>)")
    p.add_argument("--force", action="store_true", help="replace an existing --out folder")
    p.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda")
    p.add_argument("--batch-size", type=int, default=None, help="contexts per forward batch")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    p.add_argument("--quick", action="store_true", help="small sets (smoke test, ~1-2 min)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="allornone",
        description="Which linear properties of a language model are facts about its "
        "next-token distribution (identified, all-or-none), and which are accidents of "
        "its parametrisation.",
    )
    parser.add_argument("--version", action="version", version=f"allornone {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    a = sub.add_parser(
        "audit",
        help="audit one model: structure, properties, equivalence class; writes a report",
        description="Audit one model. Writes report.html, report.md, results.json and "
        "figures/*.png to --out.",
    )
    a.add_argument(
        "--model",
        default="smollm2",
        help="smollm2 (default, embedded), gemma-3-270m, a Hugging Face name or path, or a "
        ".gguf file",
    )
    a.add_argument("--concepts", default=None, help="word pairs TSV: a<TAB>b[<TAB>family]")
    a.add_argument("--relations", default=None, help="relations JSON (docs/DATA.md)")
    a.add_argument("--labels", default=None, help="labelled texts TSV: text<TAB>label")
    _common(a)
    c = sub.add_parser(
        "compare",
        help="compare two models on shared contexts and shared tokens",
        description="Compare two models (possibly of different widths and tokenizers) on the "
        "same context texts and on their shared tokens.",
    )
    c.add_argument("model_a")
    c.add_argument("model_b")
    c.add_argument("--labels", default=None, help="labelled texts TSV used as contexts")
    c.add_argument("--relations", default=None, help="relations JSON (docs/DATA.md)")
    _common(c)
    return parser


# ---------------------------------------------------------------------------- safe output
def prepare_out(out: Path, force: bool) -> None:
    if out.exists() and not force:
        raise AllOrNoneError(
            f"output folder {out} already exists: choose another --out or pass --force to "
            "replace it (it is replaced only after the new report is complete)"
        )
    if out.exists() and not out.is_dir():
        raise AllOrNoneError(f"--out {out} exists and is not a folder")
    parent = out.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    if not os.access(parent, os.W_OK):
        raise AllOrNoneError(f"cannot write into {parent}")


def write_atomically(out: Path, write: Callable[[Path], Any]) -> Any:
    """Run ``write(tmp)`` on a temporary folder next to ``out``; then move it to ``out``.

    An existing ``out`` is swapped away only after ``write`` succeeded, and removed after
    the new folder is in place. On any error or interrupt the temporary folder is removed
    and ``out`` is untouched.
    """
    out = out.resolve()
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        value = write(tmp)
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
        try:
            os.replace(tmp, out)
        except BaseException:
            if old is not None:
                os.replace(old, out)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return value
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------- commands
def _out_path(args: argparse.Namespace, default: str) -> Path:
    return Path(args.out) if args.out else Path(default)


def _safe_name(s: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in Path(s).name)[:60]


def cmd_audit(args: argparse.Namespace) -> int:
    from .audit.pipeline import AuditConfig, run_audit
    from .audit.report import summary_table, write_report

    out = _out_path(args, f"audit-{_safe_name(args.model)}")
    prepare_out(out, args.force)
    for opt in ("concepts", "relations", "labels"):
        p = getattr(args, opt)
        if p is not None and not Path(p).is_file():
            raise AllOrNoneError(f"--{opt} {p}: no such file")
    cfg = AuditConfig(
        model=args.model,
        concepts=args.concepts,
        relations=args.relations,
        labels=args.labels,
        device=args.device,
        batch_size=args.batch_size,
        seed=args.seed,
        quick=args.quick,
        progress=not args.no_progress,
    )
    res = run_audit(cfg)
    write_atomically(out, lambda tmp: write_report(res, tmp))
    print(summary_table(res))
    print(f"\nreport: {out / 'report.html'}  (also report.md, results.json, figures/)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .audit.compare import CompareConfig, run_compare, summary_table, write_compare

    out = _out_path(args, f"compare-{_safe_name(args.model_a)}-{_safe_name(args.model_b)}")
    prepare_out(out, args.force)
    cfg = CompareConfig(
        model_a=args.model_a,
        model_b=args.model_b,
        labels=args.labels,
        relations=args.relations,
        device=args.device,
        batch_size=args.batch_size,
        seed=args.seed,
        quick=args.quick,
        progress=not args.no_progress,
    )
    res = run_compare(cfg)
    write_atomically(out, lambda tmp: write_compare(res, tmp))
    print(summary_table(res))
    print(f"\nreport: {out / 'report.html'}  (also report.md, results.json, figures/)")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "audit": cmd_audit,
    "compare": cmd_compare,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: usage errors exit 2, --help/--version exit 0
        return int(e.code or 0)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(
            "\nallornone: interrupted; nothing was written (any previous report is intact)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except AllOrNoneError as e:
        if args.debug:
            raise
        msg = " ".join(str(e).split())
        print(f"allornone: error: {msg}", file=sys.stderr)
        return EXIT_ERROR
    except (OSError, ValueError, RuntimeError, ImportError) as e:
        if args.debug:
            raise
        msg = " ".join(str(e).split())
        print(
            f"allornone: error: {type(e).__name__}: {msg} (rerun with --debug for details)",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
