"""``allornone extract``: F of many contexts into a sharded, resumable representation store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .._validation import AllOrNoneError
from .options import add_allow_nonlinear_head

NAME = "extract"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    e = sub.add_parser(
        NAME,
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
    add_allow_nonlinear_head(e)
    e.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    e.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return e


def run(args: argparse.Namespace) -> int:
    from ..models import load
    from ..models.extract import extract, read_contexts

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
        from ..models.ray_engine import extract_ray

        res = extract_ray(
            args.model,
            ctx,
            out,
            workers=args.workers,
            shard_rows=args.shard_rows,
            load_options={
                "device": args.device,
                "batch_size": args.batch_size,
                "allow_nonlinear_head": True if args.allow_nonlinear_head else None,
            },
        )
    else:
        head = {"allow_nonlinear_head": True} if args.allow_nonlinear_head else {}
        lm = load(args.model, device=args.device, batch_size=args.batch_size, **head)
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


def interrupted_note(args: argparse.Namespace) -> str | None:
    """What an interrupted ``extract`` kept in its store (None: no shard was written)."""
    out = Path(args.out)
    shards = sorted(out.glob("F-*.safetensors")) if out.is_dir() else []
    if not shards:
        return None
    return (
        f"kept in {out}: {len(shards)} finished shard(s); rerun the same command to resume "
        "(the finished shards are checked and reused)"
    )
