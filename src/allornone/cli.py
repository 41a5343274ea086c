"""Command line: ``allornone audit|compare|train|study`` (also ``python -m allornone``).

Exit codes: 0 success, 2 a clear error (bad input, model refused, output folder exists),
130 interrupted (Ctrl-C). Outputs are written to a temporary folder next to ``--out`` and
moved into place only when complete, so a failed or interrupted run never leaves a
half-written report and never damages the previous one.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from ._io import atomic_dir
from ._validation import AllOrNoneError

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=None, help="output folder (default: audit-<model>)")
    p.add_argument("--force", action="store_true", help="replace an existing --out folder")
    p.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda")
    p.add_argument("--batch-size", type=int, default=None, help="contexts per forward batch")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    p.add_argument(
        "--quick",
        action="store_true",
        help="small sets (smoke test, ~1-2 min): 12 passages and 10 nouns per class (user "
        "labels: 10 per class), 2 relations of 14 subjects, 40 analogy questions per "
        "section, 40 pairs per concept family, 2 equivalent models",
    )
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
    a.add_argument(
        "--concepts",
        nargs="+",
        action="extend",
        default=None,
        metavar="PATH",
        help="word-pair files or folders: TSV a<TAB>b[<TAB>family], Park et al. "
        "'[a - b].txt', BATS 3.0, or the gensim analogy format (docs/DATA.md)",
    )
    a.add_argument(
        "--relations",
        nargs="+",
        action="extend",
        default=None,
        metavar="PATH",
        help="relation JSON files or folders: the project's schema or LRE's (docs/DATA.md)",
    )
    a.add_argument("--labels", default=None, help="labelled texts TSV: text<TAB>label")
    a.add_argument(
        "--prompts",
        choices=["plain", "zero-shot", "few-shot"],
        default="plain",
        help="relation prompts: the first template (plain), the first zero-shot template "
        "(LRE prompt_templates_zs), or the template after 3 solved examples (few-shot)",
    )
    a.add_argument(
        "--no-kl",
        action="store_true",
        help="skip the KL probe of relational linearity (faster; THEORY.md 5.2)",
    )
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
    t = sub.add_parser(
        "train",
        help="train a family of small models (transformers + word2vec) on real prose",
        description="Train a family: several seeds x widths of small GPT-2-style transformers "
        "and skip-gram word2vec models on KJV + Jane Austen, with one shared tokenizer. "
        "Resumable: rerun the same command to continue an interrupted family.",
    )
    t.add_argument("--out", required=True, help="family folder (created or resumed)")
    t.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    t.add_argument("--widths", type=int, nargs="+", default=[64, 128])
    t.add_argument("--steps", type=int, default=None, help="training steps per transformer")
    t.add_argument("--layers", type=int, default=None)
    t.add_argument("--corpus", default="kjv+austen", help="kjv, austen, fortunes joined by +")
    t.add_argument("--no-word2vec", action="store_true", help="transformers only")
    t.add_argument(
        "--scale",
        type=int,
        default=1,
        help="GPU preset: widths and batch x SCALE, twice the layers, context and steps",
    )
    t.add_argument("--prepare-only", action="store_true", help="tokenizer and data only")
    t.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda")
    t.add_argument("--no-progress", action="store_true")
    t.add_argument("--debug", action="store_true")
    st = sub.add_parser(
        "study",
        help="compare the models of a trained family: distances, maps, properties",
        description="For every pair of models of a family: distance between their "
        "distributions, the recovered map, and agreement of raw vs identified statistics.",
    )
    st.add_argument("family", help="family folder written by `allornone train`")
    st.add_argument("--contexts", type=int, default=1000, help="held-out contexts")
    st.add_argument("--out", default=None, help="report folder (default FAMILY/study)")
    st.add_argument("--force", action="store_true")
    st.add_argument("--seed", type=int, default=0)
    st.add_argument("--no-progress", action="store_true")
    st.add_argument("--debug", action="store_true")
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

    An existing ``out`` is swapped away only after ``write`` succeeded. On any error or
    interrupt the temporary folder is removed and ``out`` is untouched (:func:`atomic_dir`).
    """
    return atomic_dir(out, write)


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
    if args.labels is not None and not Path(args.labels).is_file():
        raise AllOrNoneError(f"--labels {args.labels}: no such file")
    cfg = AuditConfig(
        model=args.model,
        concepts=args.concepts,
        relations=args.relations,
        labels=args.labels,
        device=args.device,
        batch_size=args.batch_size,
        seed=args.seed,
        quick=args.quick,
        kl=not args.no_kl,
        prompts=args.prompts,
        progress=not args.no_progress,
    )
    res = run_audit(cfg)
    return _publish(out, lambda tmp: write_report(res, tmp), lambda: summary_table(res))


def _publish(out: Path, write: Callable[[Path], Any], summary: Callable[[], str]) -> int:
    """Write a report atomically into ``out``, then print its summary and where it is."""
    write_atomically(out, write)
    print(summary())
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
    return _publish(out, lambda tmp: write_compare(res, tmp), lambda: summary_table(res))


def cmd_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .family.train import TrainConfig, prepare_family, train_family

    cfg = TrainConfig(
        corpus=args.corpus,
        widths=list(args.widths),
        seeds=list(args.seeds),
        word2vec=not args.no_word2vec,
        device=args.device,
    )
    if args.scale > 1:
        cfg = cfg.scaled(args.scale)
    if args.steps is not None:
        cfg = replace(cfg, steps=args.steps)
    if args.layers is not None:
        cfg = replace(cfg, layers=args.layers)
    out = Path(args.out)
    if args.prepare_only:
        meta = prepare_family(out, cfg)
        print(
            f"family prepared in {out}: V={meta['vocab_size']}, "
            f"{meta['train_tokens']:,} train tokens, bigram ppl {meta['bigram_heldout_ppl']:.1f}"
        )
        return 0
    summary = train_family(out, cfg, progress=not args.no_progress)
    print(f"family {out}: bigram held-out perplexity {summary['bigram_heldout_ppl']:.1f}")
    print(f"{'model':16s} {'held-out ppl':>12s} {'train s':>8s}")
    for m in summary["models"]:
        ppl = m.get("heldout_ppl")
        shown = "-" if ppl is None else f"{ppl:.1f}"  # word2vec has no held-out perplexity
        print(f"{m['name']:16s} {shown:>12s} {m['train_seconds']:8.0f}")
    print(f"total wall time {summary['wall_seconds']:.0f} s")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from .family.report import write_study_report
    from .family.study import study

    family = Path(args.family)
    out = Path(args.out) if args.out else family / "study"
    prepare_out(out, args.force)
    res = study(family, n_contexts=args.contexts, seed=args.seed, progress=not args.no_progress)
    write_atomically(out, lambda tmp: write_study_report(res, tmp, family))
    print(f"study of {family}: {len(res['members'])} transformers, {len(res['pairs'])} pairs")
    for p in res["pairs"]:
        print(
            f"  {p['a']:14s} {p['b']:14s} mean KL {p['mean_kl']:.4f}  "
            f"map residual f {p['residual_f']:.3f} / reverse {p['residual_f_reverse']:.3f}"
        )
    print(f"report: {out / 'report.html'}")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "audit": cmd_audit,
    "compare": cmd_compare,
    "train": cmd_train,
    "study": cmd_study,
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
