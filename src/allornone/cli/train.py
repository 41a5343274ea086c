"""``allornone train``: a family of small transformers and word2vec models (resumable)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .._validation import AllOrNoneError
from .output import prepare_family_out, shown

NAME = "train"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    t = sub.add_parser(
        NAME,
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
    return t


def family_config(args: argparse.Namespace) -> Any:
    """The :class:`~allornone.family.train.FamilyConfig` of the preset and its overrides."""
    from dataclasses import replace

    from ..family.train import preset

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
    return cfg


def run(args: argparse.Namespace) -> int:
    from ..family.train import prepare_family, train_family

    cfg = family_config(args)
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


def interrupted_note(args: argparse.Namespace) -> str | None:
    """What an interrupted ``train`` kept in its family folder, for the one line that
    :func:`~allornone.cli.process.main` prints (None: nothing was written there)."""
    out = Path(args.out)
    checkpoints = sorted(p.parent.name for p in out.glob("tf-*/checkpoint.pt"))
    finished = sorted(p.parent.name for p in out.glob("*/done.json"))
    if not (out / "family.json").is_file() and not checkpoints and not finished:
        return None
    kept = ["the tokenizer and data"]
    if finished:
        kept.append(f"{len(finished)} finished model(s) ({shown(finished)})")
    if checkpoints:
        names = [f"{n}/checkpoint.pt" for n in checkpoints]
        kept.append(f"the checkpoint(s) {shown(names)}")
    resume = "resumes from the checkpoint(s)" if checkpoints else "goes on from there"
    return (
        f"kept in {out}: {', '.join(kept)}; rerun the same command and it {resume} "
        "(no finished model is trained again)"
    )
