"""Benchmark: structure() and equivalence() from the factors vs the materialised log-odds.

Scale of SmolLM2 / GPT-2: n = 4096 contexts, V = 50257 tokens, d = 576 (float32 factors,
as extracted from a real model). Baselines, measured in the same run:

- the SVD of the materialised n x V log-odds matrix (singular values only), what a user
  without allornone would run to get k and the spectrum;
- the fastest dense route to the same spectrum: eigenvalues of the n x n Gram ``L L^T``.

Prints times, ratios and peak memory (tracemalloc of numpy allocations, measured in an
extra run so that tracing does not slow the timed ones). structure() and equivalence() are
timed ``--repeat`` times and the ratios use their median; the dense baselines run once
(each takes tens of seconds, far above timing noise). Run:

    .venv/bin/python benchmarks/bench_core.py            # full scale (a few minutes: the
                                                         # dense SVD baseline is the slow part)
    .venv/bin/python benchmarks/bench_core.py --n 1024 --V 8192   # quick
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

import allornone as aon


def timed(fn, *args, repeat: int = 1, **kw):
    """Run ``fn`` ``repeat`` times untraced (median and min wall time), then once under
    tracemalloc for the peak of NumPy allocations. Returns (output, median s, min s, peak)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(*args, **kw)
        times.append(time.perf_counter() - t)
    tracemalloc.start()
    out = fn(*args, **kw)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, float(np.median(times)), min(times), peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--V", type=int, default=50257)
    ap.add_argument("--d", type=int, default=576)
    ap.add_argument("--k", type=int, default=None, help="planted effective complexity (default d)")
    ap.add_argument("--skip-svd", action="store_true", help="skip the dense SVD baseline")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=5, help="runs of structure/equivalence")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    n, V, d = args.n, args.V, args.d
    k = args.k or d
    # float32 factors like a real extraction; a planted rank k when k < d
    Q, _ = np.linalg.qr(rng.standard_normal((d, k)))
    F = (rng.standard_normal((n, k)) @ Q.T).astype(np.float32)
    G = (rng.standard_normal((V, d)) / np.sqrt(d)).astype(np.float32)
    model = aon.NextTokenPredictor(F, G)
    inputs = model.F.nbytes + model.G.nbytes
    print(f"n={n} V={V} d={d} (planted k={k}); factors {inputs / 2**20:.0f} MiB as float64")

    st, t_struct, t_struct_min, m_struct = timed(aon.structure, model, repeat=args.repeat)
    print(
        f"structure():   {t_struct:7.2f} s   (min {t_struct_min:.2f} s of {args.repeat})   "
        f"peak {m_struct / 2**20:5.0f} MiB   k={st.k}"
    )
    smp = aon.sample_equivalent(model, seed=1, dim=d + 8, structure=st)
    # a second float32 model (as extracted from another real model of the same distribution)
    other = aon.NextTokenPredictor(smp.model.F.astype(np.float32), smp.model.G.astype(np.float32))
    eq, t_eq, t_eq_min, m_eq = timed(aon.equivalence, model, other, repeat=args.repeat)
    print(
        f"equivalence(): {t_eq:7.2f} s   (min {t_eq_min:.2f} s of {args.repeat})   "
        f"peak {m_eq / 2**20:5.0f} MiB   equivalent={eq.equivalent} "
        f"residuals f={eq.residual_f:.1e} g={eq.residual_g:.1e}"
    )

    def dense_gram():
        L = model.log_odds(allow_large=True)
        return np.sqrt(np.clip(np.linalg.eigvalsh(L @ L.T)[::-1], 0, None))

    s_gram, t_gram, _, m_gram = timed(dense_gram)
    print(f"dense L L^T eig: {t_gram:5.2f} s   peak {m_gram / 2**20:7.0f} MiB")
    rows = [("dense Gram eig of L L^T", t_gram, m_gram)]
    if not args.skip_svd:

        def dense_svd():
            L = model.log_odds(allow_large=True)
            return np.linalg.svd(L, compute_uv=False)

        s_svd, t_svd, _, m_svd = timed(dense_svd)
        print(f"dense SVD of L:  {t_svd:5.2f} s   peak {m_svd / 2**20:7.0f} MiB")
        err = np.abs(s_svd[: st.k] - st.singular_values[: st.k]).max() / s_svd[0]
        print(f"spectrum agreement (max rel diff of top-k singular values): {err:.2e}")
        rows.insert(0, ("dense SVD of L", t_svd, m_svd))
    print()
    print(f"{'baseline':28s} {'time s':>8s} {'structure speed-up':>19s} {'equiv. speed-up':>16s}")
    for name, t, _ in rows:
        print(f"{name:28s} {t:8.2f} {t / t_struct:18.1f}x {t / t_eq:15.1f}x")
    print(
        f"peak memory / factor size: structure {m_struct / inputs:.2f}, "
        f"equivalence {m_eq / (inputs + other.F.nbytes + other.G.nbytes):.2f}"
    )
    if not args.skip_svd:
        print(
            f"equivalence vs the dense route for two models (two SVDs of materialised L): "
            f"{2 * t_svd / t_eq:.1f}x"
        )


if __name__ == "__main__":
    main()
