"""Planted float64 models for the property tests (helpers + a check of the helper itself).

A planted model is built in canonical coordinates (THEORY.md 4):
``f(x) = T [e_f(x); u(x); 0; 0]``, ``g(y) = T^{-T} [e_g(y); 0; w(y); 0] + c``, so that
``E``-coordinates, ``J_f = T span(u-coords)`` and ``J_g = T^{-T} span(w-coords)`` are known.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from allornone import NextTokenPredictor, equivalence, sample_equivalent, structure
from allornone.linalg import random_invertible

JUNKS = ("random", "shuffle", "adversarial")


@dataclass
class Planted:
    model: NextTokenPredictor
    T: np.ndarray
    k: int
    d_u: int
    d_w: int
    d0: int

    @property
    def d(self) -> int:
        return self.model.d

    def f_dir(self, z: np.ndarray) -> np.ndarray:
        """Ambient f-side vector with canonical coordinates z (d,): ``T z``."""
        return self.T @ z

    def g_dir(self, z: np.ndarray) -> np.ndarray:
        """Ambient g-side vector with canonical coordinates z (d,): ``T^{-T} z``."""
        return np.linalg.solve(self.T.T, z)

    def unit(self, i: int) -> np.ndarray:
        z = np.zeros(self.d)
        z[i] = 1.0
        return z


def planted(
    e_f: np.ndarray,
    e_g: np.ndarray,
    u: np.ndarray,
    w: np.ndarray,
    d0: int = 1,
    seed: int = 0,
) -> Planted:
    """Model from canonical blocks e_f (n,k), e_g (V,k), u (n,d_u), w (V,d_w)."""
    rng = np.random.default_rng([seed, 314159])
    n, k = e_f.shape
    V = e_g.shape[0]
    d_u, d_w = u.shape[1], w.shape[1]
    d = k + d_u + d_w + d0
    T = random_invertible(d, 5.0, rng)
    Zf = np.hstack([e_f, u, np.zeros((n, d_w + d0))])
    Zg = np.hstack([e_g, np.zeros((V, d_u)), w, np.zeros((V, d0))])
    c = rng.standard_normal(d)
    F = Zf @ T.T
    G = np.linalg.solve(T.T, Zg.T).T + c
    tokens = [f"t{i}" for i in range(V)]
    model = NextTokenPredictor(F, G, tokens=tokens, contexts=[f"x{i}" for i in range(n)])
    return Planted(model=model, T=T, k=k, d_u=d_u, d_w=d_w, d0=d0)


def random_planted(
    n: int = 60, V: int = 40, k: int = 4, d_u: int = 2, d_w: int = 2, d0: int = 1, seed: int = 0
) -> Planted:
    # a seed sequence distinct from the samplers' integer seeds (same seed, same draws!)
    rng = np.random.default_rng([seed, 271828])
    return planted(
        rng.standard_normal((n, k)),
        rng.standard_normal((V, k)),
        rng.standard_normal((n, d_u)),
        rng.standard_normal((V, d_w)),
        d0=d0,
        seed=seed + 1,
    )


def sample(model: NextTokenPredictor, dim: int, seed: int, junk: str):
    """An equivalent model and the verified equivalence."""
    s = sample_equivalent(model, dim=dim, seed=seed, junk=junk)
    eq = equivalence(model, s.model)
    assert eq.equivalent, eq.reasons
    return s.model, eq


def dim_of(width: str, k: int, d: int) -> int:
    """Width spec ("k+2", "d-1", "d+3", ...) -> an int, never below k + 2."""
    base, off = width[0], int(width[1:])
    return max(k + 2, (k if base == "k" else d) + off)


def close(a: float, b: float, rtol: float = 1e-9, atol: float = 1e-9) -> bool:
    if np.isnan(a) and np.isnan(b):
        return True
    return abs(a - b) <= atol + rtol * abs(b)


def test_planted_structure_is_as_built():
    p = random_planted(seed=3)
    st = structure(p.model)
    assert (st.k, st.dim_J_f, st.dim_J_g, st.dim_M, st.dim_N) == (4, 2, 2, 6, 6)
    # J_f is T span(u coordinates): f-side vectors there are never read by a logit
    jf = p.f_dir(p.unit(p.k))
    assert np.abs(p.model.G0() @ jf).max() < 1e-10 * np.abs(p.model.G0()).max()


def test_every_property_result_is_json_ready():
    import json

    from allornone.properties import RelationSpec, parallelism, probe, relational, steering

    p = random_planted(seed=2)
    m = p.model
    spec = RelationSpec(subjects=range(0, 30), queries=range(30, 60), answers=[0, 1, 2])
    results = [
        parallelism(m, [(0, 1), (2, 3), (4, 5)], baseline_draws=2),
        probe(m, (m.F[:, 0] > 0).astype(int)),
        relational(m, spec, kl=False),
        steering(m, m.F[0] - m.F[1], targets=[0]),
    ]
    for r in results:
        d = json.loads(json.dumps(r.to_dict()))
        assert d["property"] == r.property and isinstance(d["all_or_none"], bool)
