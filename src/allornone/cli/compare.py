"""``allornone compare MODEL_A MODEL_B``: two models on shared contexts and shared tokens."""

from __future__ import annotations

import argparse
from typing import Any

from .options import add_model_options, add_plugin_arg, out_path, safe_name
from .output import prepare_out, publish

NAME = "compare"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    c = sub.add_parser(
        NAME,
        help="compare two models on shared contexts and shared tokens",
        description="Compare two models (possibly of different widths and tokenizers) on the "
        "same context texts and on their shared tokens.",
    )
    c.add_argument("model_a")
    c.add_argument("model_b")
    c.add_argument("--labels", default=None, help="labelled texts TSV used as contexts")
    c.add_argument("--relations", default=None, help="relations JSON (docs/DATA.md)")
    add_plugin_arg(c)
    add_model_options(c)
    return c


def run(args: argparse.Namespace) -> int:
    from ..audit.compare import CompareConfig, run_compare, summary_table, write_compare

    out = out_path(args, f"compare-{safe_name(args.model_a)}-{safe_name(args.model_b)}")
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
    return publish(out, lambda tmp: write_compare(res, tmp), lambda: summary_table(res), args.force)
