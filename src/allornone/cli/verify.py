"""``allornone verify REPORT_DIR``: re-run an audit from its certificate and say, figure by
figure, whether its identified numbers are reproduced (exit 0 reproduced, 1 not, 2 bad input)."""

from __future__ import annotations

import argparse
from typing import Any

NAME = "verify"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    v = sub.add_parser(
        NAME,
        help="re-run an audit from its certificate and check its identified figures",
        description="Re-run the audit recorded in REPORT_DIR/results.json (same model files, "
        "input files, settings and seed, all checked first) and compare every identified "
        "figure. Exit 0 when all are reproduced, 1 when some are not, 2 on bad input.",
    )
    v.add_argument("report", help="the folder of an audit report (holds results.json)")
    v.add_argument(
        "--quick",
        action="store_true",
        help="skip the slowest parts (relations, analogies, the equivalence class)",
    )
    v.add_argument(
        "--rtol",
        type=float,
        default=1e-4,
        help="relative tolerance of a figure (floor 1: |a - b| <= rtol max(1, |a|, |b|))",
    )
    v.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    v.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return v


def run(args: argparse.Namespace) -> int:
    from ..audit.verify import verify

    result = verify(args.report, quick=args.quick, rtol=args.rtol)
    print(result.summary())
    return 0 if result.reproduced else 1
