"""``allornone audit``: one model's report, or with ``--layers`` the per-layer logit lens."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .._validation import AllOrNoneError
from .options import (
    add_model_options,
    add_plugin_arg,
    add_step_options,
    out_path,
    safe_name,
    step_option_values,
)
from .output import prepare_out, publish

NAME = "audit"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    a = sub.add_parser(
        NAME,
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
    add_plugin_arg(a)
    add_step_options(a)
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
    add_model_options(a)
    return a


def run(args: argparse.Namespace) -> int:
    """``allornone audit``: checks --out and the inputs, runs the audit, publishes it."""
    from ..audit.pipeline import run_audit
    from ..audit.report import summary_table, write_report

    if getattr(args, "layers", None) is not None:
        return run_layers(args)
    out = out_path(args, f"audit-{safe_name(args.model)}")
    prepare_out(out, args.force)
    if args.labels is not None and not Path(args.labels).is_file():
        raise AllOrNoneError(f"--labels {args.labels}: no such file")
    cfg = audit_config(args)
    res = run_audit(cfg)
    return publish(out, lambda tmp: write_report(res, tmp), lambda: summary_table(res), args.force)


def audit_config(args: argparse.Namespace) -> Any:
    """The :class:`~allornone.audit.inputs.AuditConfig` of the audit options in ``args``."""
    from ..audit.inputs import AuditConfig

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
        options=step_option_values(args),
    )


def run_layers(args: argparse.Namespace) -> int:
    """``allornone audit --layers``: the per-layer logit-lens audit (audit/layers.py)."""
    from ..audit.layers import run_layers as run_layer_audit
    from ..audit.layers import summary_table, write_layers

    spec = str(args.layers).strip()
    if spec.lower() != "all":  # syntax and sign checked before the model loads
        parts = [p.strip() for p in spec.split(",")]
        if not parts or not all(p.isdigit() for p in parts):
            raise AllOrNoneError(
                f"--layers {spec!r}: give 'all' or comma-separated layer indices >= 0, e.g. 0,15,30"
            )
    out = out_path(args, f"layers-{safe_name(args.model)}")
    prepare_out(out, args.force)
    res = run_layer_audit(audit_config(args), spec)
    return publish(out, lambda tmp: write_layers(res, tmp), lambda: summary_table(res), args.force)
