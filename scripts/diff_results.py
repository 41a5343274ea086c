"""Compare two audit folders figure by figure: max |difference| over every number they share.

    python scripts/diff_results.py REPORT_A REPORT_B [--ignore KEY ...]

Reads both with ``allornone.audit.read_tree`` (results.json with its arrays resolved), walks
the trees together and prints the largest absolute difference over the numbers present in
both, the paths where values differ, and the paths present in only one of them. Run times,
timestamps and timings are ignored by default (they are not figures).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from allornone.audit import read_tree

IGNORED = {"created", "runtime_s", "timings_s", "kl_seconds", "figures"}


def walk(a: Any, b: Any, path: str, out: dict[str, Any], ignore: set[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k in ignore:
                continue
            p = f"{path}/{k}"
            if k not in a or k not in b:
                out["only"].append(p + (" (only in B)" if k not in a else " (only in A)"))
            else:
                walk(a[k], b[k], p, out, ignore)
        return
    if isinstance(a, list) and isinstance(b, list):
        keyed = all(isinstance(x, dict) and "name" in x for x in a + b)
        if keyed:  # results matched by (property or kind, name), not by position
            ka = {(x.get("property", x.get("kind")), x["name"]): x for x in a}
            kb = {(x.get("property", x.get("kind")), x["name"]): x for x in b}
            for key in sorted(set(ka) | set(kb), key=str):
                p = f"{path}/{key[0]}/{key[1]}" if key[0] else f"{path}/{key[1]}"
                if key not in ka or key not in kb:
                    out["only"].append(p + (" (only in B)" if key not in ka else " (only in A)"))
                else:
                    walk(ka[key], kb[key], p, out, ignore)
            return
        if len(a) != len(b):
            out["differ"].append(f"{path}: lengths {len(a)} vs {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            walk(x, y, f"{path}/{i}", out, ignore)
        return
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        if x.shape != y.shape:
            out["differ"].append(f"{path}: shapes {x.shape} vs {y.shape}")
            return
        both = np.isfinite(x) & np.isfinite(y)
        if (np.isfinite(x) != np.isfinite(y)).any():
            out["differ"].append(f"{path}: NaN/inf in other places")
        d = float(np.abs(x[both] - y[both]).max()) if both.any() else 0.0
        out["n"] += int(x.size)
        if d > 0:
            out["all"].append((d, path))
        if d > out["max"]:
            out["max"], out["where"] = d, path
        return
    if isinstance(a, bool) or isinstance(b, bool) or not (
        isinstance(a, (int, float)) and isinstance(b, (int, float))
    ):
        if a != b:
            out["differ"].append(f"{path}: {a!r} vs {b!r}"[:200])
        return
    out["n"] += 1
    fa, fb = float(a), float(b)
    if np.isnan(fa) and np.isnan(fb):
        return
    d = abs(fa - fb)
    if d > 0:
        out["all"].append((d, path))
    if d > out["max"]:
        out["max"], out["where"] = d, path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--ignore", nargs="*", default=[], help="more keys to ignore")
    p.add_argument("--top", type=int, default=20, help="largest differences to list")
    args = p.parse_args(argv)
    out: dict[str, Any] = {"max": 0.0, "where": None, "n": 0, "differ": [], "only": [], "all": []}
    walk(read_tree(args.a), read_tree(args.b), "", out, IGNORED | set(args.ignore))
    print(f"numbers compared: {out['n']}; max |diff| = {out['max']:.3g} at {out['where']}")
    print(f"numbers that differ: {len(out['all'])}")
    for d, where in sorted(out["all"], reverse=True)[: args.top]:
        print(f"  {d:.3g}  {where}")
    for line in out["differ"][:40]:
        print("differs:", line)
    for line in out["only"][:40]:
        print("only in one:", line)
    return 0 if out["max"] == 0 and not out["differ"] else 1


if __name__ == "__main__":
    sys.exit(main())
