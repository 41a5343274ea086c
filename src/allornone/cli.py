"""Command line: ``allornone audit|compare|train|study`` (also ``python -m allornone``).

Exit codes: 0 success, 2 a clear error (bad input, model refused, output folder exists),
130 interrupted (Ctrl-C). Outputs are written to a temporary folder next to ``--out`` and
moved into place only when complete, so a failed or interrupted run never leaves a
half-written report and never damages the previous one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from ._io import atomic_dir, sweep_leftovers
from ._validation import AllOrNoneError

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=None, help="output folder (default: audit-<model>)")
    p.add_argument(
        "--force", action="store_true", help="replace a previous allornone report in --out"
    )
    p.add_argument("--device", default=None, help="torch device, e.g. cpu, cuda or cuda:1")
    p.add_argument(
        "--dtype",
        default=None,
        choices=["float32", "bfloat16", "float16"],
        help="compute dtype of the model (default: the model's own; bfloat16 halves GPU memory)",
    )
    p.add_argument(
        "--device-map",
        default=None,
        choices=["auto"],
        help="auto: spread a model larger than one GPU over all GPUs (then CPU), with accelerate",
    )
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
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow gensim Word2Vec pickle files (unpickling runs code: only trusted files)",
    )


def _plugin_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--plugin",
        action="append",
        default=None,
        metavar="MODULE_OR_FILE",
        help="import a module or .py file that registers a property and its audit step "
        "(repeatable; docs/EXTENDING.md). Its code runs: only your own or trusted plugins",
    )


def _step_options(p: argparse.ArgumentParser) -> None:
    """The options the registered audit steps declare (built-in and plugins)."""
    from .audit.step import audit_steps

    for step in audit_steps():
        for o in step.options:
            p.add_argument(
                o.flag,
                dest=f"step_option_{o.dest}",
                action="append" if o.repeatable else "store",
                default=None,
                metavar=o.metavar,
                help=o.help,
            )


def _step_option_values(args: argparse.Namespace) -> dict[str, Any]:
    prefix = "step_option_"
    return {k[len(prefix) :]: v for k, v in vars(args).items() if k.startswith(prefix)}


def _load_plugins(argv: Sequence[str] | None) -> None:
    """Import the ``--plugin`` modules before the parser is built (they may add options)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--plugin", action="append", default=None)
    known, _ = pre.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    if known.plugin:
        from .audit.plugins import load_plugins

        load_plugins(known.plugin)


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
    _plugin_arg(a)
    _step_options(a)
    a.add_argument(
        "--layers",
        default=None,
        help="logit lens instead of the audit: 'all' or layer indices 0,15,30 (0 = embeddings); "
        "per-layer structure, KL to the model, parallelism, probes, steering and relational "
        "linearity (distribution form, KL probe)",
    )
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
    _plugin_arg(c)
    _common(c)
    t = sub.add_parser(
        "train",
        help="train a family of small models (transformers + word2vec) on real prose",
        description="Train a family: several seeds x widths of small GPT-2-style transformers "
        "and skip-gram word2vec models on KJV + Jane Austen, with one shared tokenizer. "
        "Resumable: rerun the same command to continue an interrupted family.",
    )
    t.add_argument("--out", required=True, help="family folder (created or resumed)")
    t.add_argument(
        "--preset",
        choices=["small", "reference"],
        default="small",
        help="small: 3 seeds x widths 64, 128, 1,200 steps (the default); reference: 8 seeds "
        "x widths 96, 128, 160, 800 steps (within 60 min on 2 CPU cores with --jobs 2)",
    )
    t.add_argument("--seeds", type=int, nargs="+", default=None, help="override the preset")
    t.add_argument("--widths", type=int, nargs="+", default=None, help="override the preset")
    t.add_argument("--steps", type=int, default=None, help="training steps per transformer")
    t.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="models trained at once, each in its own process with cpu_count/JOBS threads",
    )
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
    st.add_argument("--force", action="store_true", help="replace a previous study report in --out")
    st.add_argument("--seed", type=int, default=0)
    st.add_argument(
        "--cross-width-pairs",
        type=int,
        default=None,
        help="measure at most N pairs of models of different widths (seeded random choice; "
        "default all); every pair of one width is measured",
    )
    st.add_argument(
        "--bootstrap", type=int, default=2000, help="bootstrap resamples for the intervals"
    )
    st.add_argument(
        "--permutations",
        type=int,
        default=99,
        help="shuffled copies for the map similarity's permutation null (most of a pair's cost)",
    )
    st.add_argument("--no-progress", action="store_true")
    st.add_argument("--debug", action="store_true")
    st.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow gensim Word2Vec pickle files (unpickling runs code: only trusted files)",
    )
    _add_extract(sub)
    return parser


# ---------------------------------------------------------------------------- safe output
#: Every entry an allornone report folder holds (audit, compare and study write these only).
REPORT_ENTRIES = frozenset(
    {"report.html", "report.md", "results.json", "arrays.safetensors", "figures"}
)
#: What ``allornone train`` writes at the top of a family folder before its family.json.
FAMILY_ENTRIES = frozenset({"tokenizer", "data", "baseline.json"})
_MAX_MARKER_BYTES = 256 * 2**20  # a results.json larger than this is not one we wrote


def _written_by_allornone(results: Path) -> bool:
    """Whether ``results`` is a results.json an allornone audit, compare or study wrote."""
    import json

    try:
        if not results.is_file() or results.stat().st_size > _MAX_MARKER_BYTES:
            return False
        tree = json.loads(results.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    if not isinstance(tree, dict):
        return False
    tool = tree.get("tool")
    if isinstance(tool, dict) and tool.get("name") == "allornone":
        return True  # audit (schema 2.x) and compare
    return tree.get("schema_version") == "study-1" and isinstance(tree.get("pairs"), list)


def _foreign_entries(folder: Path, allowed: frozenset[str]) -> list[str]:
    """Entries of ``folder`` that allornone does not write there (``figures/`` holds PNGs)."""
    extra = []
    for p in sorted(folder.iterdir()):
        if p.name not in allowed or p.is_symlink():
            extra.append(p.name)
        elif p.name == "figures":
            if not p.is_dir():
                extra.append(p.name)
                continue
            extra += [
                f"figures/{f.name}"
                for f in sorted(p.iterdir())
                if f.is_symlink() or not f.is_file() or f.suffix != ".png"
            ]
    return extra


def _shown(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _refuse_cwd(out: Path, opt: str = "--out") -> None:
    here, target = Path.cwd().resolve(), out.resolve()
    if here == target or target in here.parents:
        raise AllOrNoneError(
            f"{opt} {out} is the current folder or contains it: choose a new folder"
        )


def check_replaceable(out: Path) -> None:
    """Raise unless ``out`` is empty or a previous allornone report with nothing else in it.

    ``--force`` replaces only such a folder: no user file is ever deleted.
    """
    if out.is_symlink():
        raise AllOrNoneError(f"--out {out} is a symbolic link: give the folder it points to")
    if not any(out.iterdir()):
        return
    if not _written_by_allornone(out / "results.json"):
        raise AllOrNoneError(
            f"--force refused: {out} is not an allornone report folder (it has no results.json "
            "written by allornone) and --force replaces only a previous report: choose a new "
            "--out folder"
        )
    extra = _foreign_entries(out, REPORT_ENTRIES)
    if extra:
        raise AllOrNoneError(
            f"--force refused: {out} holds files allornone did not write ({_shown(extra)}) and "
            "--force would delete them: move them out or choose a new --out folder"
        )


def prepare_out(out: Path, force: bool) -> None:
    """Check ``--out`` before any model loads: a new folder, or (with ``--force``) a previous
    report that may be replaced. Raises AllOrNoneError with a one-line reason otherwise."""
    sweep_leftovers(out)  # a killed earlier run's temporary folder (or its moved-aside report)
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise AllOrNoneError(f"--out {out} exists and is not a folder: choose a new --out")
        if not force:
            raise AllOrNoneError(
                f"output folder {out} already exists: choose another --out or pass --force to "
                "replace it (it is replaced only after the new report is complete)"
            )
        _refuse_cwd(out)
        check_replaceable(out)
    _check_parent(out)


def _check_parent(out: Path) -> None:
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise AllOrNoneError(
            f"--out {out}: cannot create its parent folder {parent} ({e.strerror or e})"
        ) from e
    if not os.access(parent, os.W_OK | os.X_OK):
        raise AllOrNoneError(
            f"--out {out}: no permission to write into {parent}: choose another --out"
        )


def prepare_family_out(out: Path) -> None:
    """``train --out``: a new or empty folder, or a family folder (resumed). A folder of
    other files is refused, so training never writes among (or replaces) a user's files."""
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise AllOrNoneError(f"--out {out} exists and is not a folder: choose a new --out")
        if not (out / "family.json").is_file():
            extra = [
                n
                for n in _foreign_entries(out, FAMILY_ENTRIES)
                if not (n.startswith(".") and ".tmp-" in n)
            ]
            if extra:
                raise AllOrNoneError(
                    f"--out {out} holds files that are not an allornone family "
                    f"({_shown(extra)}): train into a new or empty folder, or into a family "
                    "folder to resume it"
                )
    _check_parent(out)


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
    from .audit.pipeline import run_audit
    from .audit.report import summary_table, write_report

    if getattr(args, "layers", None) is not None:
        return cmd_audit_layers(args)
    out = _out_path(args, f"audit-{_safe_name(args.model)}")
    prepare_out(out, args.force)
    if args.labels is not None and not Path(args.labels).is_file():
        raise AllOrNoneError(f"--labels {args.labels}: no such file")
    cfg = _audit_config(args)
    res = run_audit(cfg)
    return _publish(out, lambda tmp: write_report(res, tmp), lambda: summary_table(res))


def _audit_config(args: argparse.Namespace) -> Any:
    """The :class:`~allornone.audit.inputs.AuditConfig` of the audit options in ``args``."""
    from .audit.inputs import AuditConfig

    return AuditConfig(
        model=args.model,
        concepts=args.concepts,
        relations=args.relations,
        labels=args.labels,
        device=args.device,
        dtype=args.dtype,
        device_map=args.device_map,
        batch_size=args.batch_size,
        seed=args.seed,
        quick=args.quick,
        progress=not args.no_progress,
        kl=not args.no_kl,
        prompts=args.prompts,
        plugins=list(args.plugin or []),
        options=_step_option_values(args),
    )


def cmd_audit_layers(args: argparse.Namespace) -> int:
    """``allornone audit --layers``: the per-layer logit-lens audit (audit/layers.py)."""
    from .audit.layers import run_layers, summary_table, write_layers

    spec = str(args.layers).strip()
    if spec.lower() != "all":  # syntax and sign checked before the model loads
        parts = [p.strip() for p in spec.split(",")]
        if not parts or not all(p.isdigit() for p in parts):
            raise AllOrNoneError(
                f"--layers {spec!r}: give 'all' or comma-separated layer indices >= 0, e.g. 0,15,30"
            )
    out = _out_path(args, f"layers-{_safe_name(args.model)}")
    prepare_out(out, args.force)
    res = run_layers(_audit_config(args), spec)
    return _publish(out, lambda tmp: write_layers(res, tmp), lambda: summary_table(res))


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
        dtype=args.dtype,
        device_map=args.device_map,
        batch_size=args.batch_size,
        seed=args.seed,
        quick=args.quick,
        progress=not args.no_progress,
    )
    res = run_compare(cfg)
    return _publish(out, lambda tmp: write_compare(res, tmp), lambda: summary_table(res))


def cmd_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .family.train import prepare_family, preset, train_family

    cfg = preset(
        args.preset,
        corpus=args.corpus,
        widths=None if args.widths is None else list(args.widths),
        seeds=None if args.seeds is None else list(args.seeds),
        word2vec=not args.no_word2vec,
        device=args.device,
    )
    if args.jobs < 1:
        raise AllOrNoneError(f"--jobs must be at least 1, got {args.jobs}")
    if args.scale > 1:
        cfg = cfg.scaled(args.scale)
    if args.steps is not None:
        cfg = replace(cfg, steps=args.steps)
    if args.layers is not None:
        cfg = replace(cfg, layers=args.layers)
    out = Path(args.out)
    prepare_family_out(out)
    if args.prepare_only:
        meta = prepare_family(out, cfg)
        print(
            f"family prepared in {out}: V={meta['vocab_size']}, "
            f"{meta['train_tokens']:,} train tokens, bigram ppl {meta['bigram_heldout_ppl']:.1f}"
        )
        return 0

    def finished(m: dict) -> None:
        if args.jobs > 1:  # the workers show no progress bars: a line per finished model
            ppl = m.get("heldout_ppl")
            shown = "" if ppl is None else f", held-out ppl {ppl:.1f}"
            print(f"done {m['name']} ({m['train_seconds']:.0f} s{shown})", flush=True)

    summary = train_family(
        out, cfg, progress=not args.no_progress, jobs=args.jobs, on_done=finished
    )
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
    if args.bootstrap < 1 or args.permutations < 1:
        raise AllOrNoneError(
            f"--bootstrap and --permutations must be at least 1, got {args.bootstrap} and "
            f"{args.permutations}"
        )
    prepare_out(out, args.force)
    res = study(
        family,
        n_contexts=args.contexts,
        seed=args.seed,
        progress=not args.no_progress,
        cross_width_pairs=args.cross_width_pairs,
        n_boot=args.bootstrap,
        permutations=args.permutations,
    )
    write_atomically(out, lambda tmp: write_study_report(res, tmp, family))
    print(f"study of {family}: {len(res['members'])} transformers, {len(res['pairs'])} pairs")
    for p in res["pairs"]:
        print(
            f"  {p['a']:14s} {p['b']:14s} mean KL {p['mean_kl']:.4f}  "
            f"map residual f {p['residual_f']:.3f} / reverse {p['residual_f_reverse']:.3f}"
        )
    for q in res.get("questions", []) + (res.get("word2vec") or {}).get("questions", []):
        print(f"  {q['answer']:9s} {q['sentence']}")
    print(f"report: {out / 'report.html'}")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "audit": cmd_audit,
    "compare": cmd_compare,
    "train": cmd_train,
    "study": cmd_study,
}


# ---------------------------------------------------------------------------- extract
def _add_extract(sub: Any) -> None:
    e = sub.add_parser(
        "extract",
        help="extract F of many contexts into a sharded, resumable representation store",
        description="Embed the contexts of a file (one text a line, JSON Lines with a text "
        "field, or a Parquet column) with a model and write F shard by shard to --out "
        "(safetensors + manifest.json, sha256-checked). Rerun the same command to resume.",
    )
    e.add_argument("--model", required=True, help="as for audit: smollm2, a path, a hub id")
    e.add_argument("--contexts", required=True, help="contexts file (.txt, .jsonl, .parquet)")
    e.add_argument("--out", required=True, help="store folder (created, or resumed)")
    e.add_argument("--column", default=None, help="JSONL field / Parquet column (default text)")
    e.add_argument("--shard-rows", type=int, default=None, help="contexts per shard")
    e.add_argument("--engine", choices=["local", "ray"], default="local")
    e.add_argument("--workers", type=int, default=2, help="Ray workers (--engine ray)")
    e.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda")
    e.add_argument("--batch-size", type=int, default=None, help="contexts per forward batch")
    e.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    e.add_argument("--debug", action="store_true", help="show tracebacks on errors")


def cmd_extract(args: argparse.Namespace) -> int:
    from .models import load
    from .models.extract import extract, read_contexts

    if args.shard_rows is not None and args.shard_rows < 1:
        raise AllOrNoneError(f"--shard-rows must be >= 1, got {args.shard_rows}")
    if args.workers < 1:
        raise AllOrNoneError(f"--workers must be >= 1, got {args.workers}")
    ctx = read_contexts(args.contexts, column=args.column)  # before the model loads
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise AllOrNoneError(f"--out {out} is a file: pass a folder")
    print(
        f"contexts: {len(ctx.texts):,} unique of {ctx.read:,} read "
        f"({ctx.duplicates:,} duplicates, {ctx.empty:,} empty skipped)"
    )
    if args.engine == "ray":
        from .models.ray_engine import extract_ray

        res = extract_ray(
            args.model,
            ctx,
            out,
            workers=args.workers,
            shard_rows=args.shard_rows,
            load_options={"device": args.device, "batch_size": args.batch_size},
        )
    else:
        lm = load(args.model, device=args.device, batch_size=args.batch_size)
        progress = not args.no_progress

        def done(i: int, total: int) -> None:
            if progress:
                print(f"  shard {i + 1}/{total} written", file=sys.stderr)

        res = extract(lm, ctx, out, shard_rows=args.shard_rows, progress=progress, on_shard=done)
    print(
        f"store {out}: n={res.n:,} x d={res.d}, {res.store.n_shards} shards "
        f"({res.shards_written} written now, {res.shards_reused} reused)"
    )
    return 0


COMMANDS["extract"] = cmd_extract


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so every ``finally`` removes its temporary files."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated(signum)


def _install_signal_handlers() -> dict[int, Any]:
    """SIGTERM/SIGHUP raise :class:`Terminated` (where they have no handler yet); returns
    the previous handlers, which :func:`main` puts back when it returns."""
    import signal

    previous: dict[int, Any] = {}
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        try:
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                previous[sig] = signal.signal(sig, _raise_terminated)
        except (ValueError, OSError):  # not the main thread, or not allowed here
            pass
    return previous


@contextlib.contextmanager
def _hide_library_progress() -> Iterator[None]:
    """``--no-progress`` also hides the bars huggingface_hub and transformers draw ("Loading
    weights", "Writing model shards", downloads) for the length of one command, then turns
    them back on. huggingface_hub is imported first (it reads its environment switch once, on
    import), then switched off by its own call; the switch is set in the environment only for
    train's worker processes. (A GGUF file's first conversion still shows a plain tqdm bar.)"""
    key = "HF_HUB_DISABLE_PROGRESS_BARS"
    saved = os.environ.get(key)
    try:
        import huggingface_hub.utils as hub
    except ImportError:  # the core install: nothing of theirs to hide
        yield
        return
    user_off = hub.are_progress_bars_disabled()
    os.environ[key] = "1"
    hub.disable_progress_bars()
    if "transformers.utils.logging" in sys.modules:  # else it starts off, from the hub's state
        sys.modules["transformers.utils.logging"].disable_progress_bar()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = saved
        if not user_off:
            hub.enable_progress_bars()
            if "transformers.utils.logging" in sys.modules:
                sys.modules["transformers.utils.logging"].enable_progress_bar()


def _restore_signal_handlers(previous: dict[int, Any]) -> None:
    import signal

    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def _user_error(e: BaseException) -> str | None:
    """The one-line message of an error that is the user's or the machine's (not a bug)."""
    if isinstance(e, AllOrNoneError):  # AllOrNoneTypeError included
        return _one_line(e)
    if isinstance(e, OSError):
        where = f"{e.filename}: " if e.filename else ""
        what = e.strerror or _one_line(e) or type(e).__name__
        if isinstance(e, PermissionError):
            return f"{where}permission denied: choose a folder you can write (--out) or read"
        if isinstance(e, FileNotFoundError):
            return f"{where}no such file or folder"
        return f"{where}{what} ({type(e).__name__})"
    if isinstance(e, ImportError):
        return f"{_one_line(e)} (a dependency is missing: pip install 'allornone[audit]')"
    if isinstance(e, MemoryError) or "OutOfMemory" in type(e).__name__:
        return f"out of memory ({_one_line(e)[:200]}): pass a smaller --batch-size or use --quick"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0, 2 for an error, 130 interrupted).

    A user error (bad input, a missing or unwritable path, a refused model, a missing
    dependency) is one line on stderr and exit 2; Ctrl-C (anywhere, imports included) is one
    line and exit 130 (128 + the signal for SIGTERM/SIGHUP). Any other exception is a bug
    and keeps its traceback (exit 1); ``--debug`` shows every traceback.
    """
    args: argparse.Namespace | None = None
    previous: dict[int, Any] = {}
    try:
        previous = _install_signal_handlers()
        _load_plugins(argv)
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # argparse: usage errors exit 2, --help/--version exit 0
            return int(e.code or 0) if not isinstance(e.code, str) else EXIT_ERROR
        with contextlib.ExitStack() as stack:
            if getattr(args, "no_progress", False):
                stack.enter_context(_hide_library_progress())
            if getattr(args, "trust_pickle", False):
                from .models import allow_pickle

                stack.enter_context(allow_pickle())
            return COMMANDS[args.command](args)
    except KeyboardInterrupt as e:
        if args is not None and args.debug:
            raise
        if isinstance(e, Terminated):
            code, what = 128 + e.signum, "terminated"
        else:
            code, what = EXIT_INTERRUPTED, "interrupted"
        print(
            f"\nallornone: {what}; nothing was written (any previous report is intact)",
            file=sys.stderr,
        )
        return code
    except Exception as e:
        msg = _user_error(e)
        if msg is None or (args is not None and args.debug):
            raise
        print(f"allornone: error: {msg}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        _restore_signal_handlers(previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
