"""``allornone study FAMILY``: every pair of models of a trained family."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .._validation import AllOrNoneError
from .output import prepare_out, write_atomically

NAME = "study"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    st = sub.add_parser(
        NAME,
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
    return st


def run(args: argparse.Namespace) -> int:
    from ..family.report import write_study_report
    from ..family.study import study

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
    write_atomically(out, lambda tmp: write_study_report(res, tmp, family), args.force)
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
