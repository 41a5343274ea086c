"""Statistics for a family study: bootstrap intervals, exact paired tests, decided or not.

The study measures, per concept family and model, a raw parallelism statistic (Euclidean
cosine of unembedding differences, not identified) and an identified one (log-odds
correlation). Every comparison between them is a question with a null value; this module
answers each with

- a point estimate over concept families (a mean of per-family effects);
- a percentile bootstrap interval that resamples **seeds and concept families** together
  (seeds with replacement, the same seeds for every concept family and width, since one
  model gives all of them; concept families with replacement), so it carries both sources
  of uncertainty;
- an exact paired test across concept families of the per-family effects: the Wilcoxon
  signed-rank test (exact distribution of the signed-rank sum over all 2^n sign patterns,
  midranks for ties, zeros dropped) and the sign test (exact binomial);
- one sentence saying whether the data decide the question: **yes** or **no** when the
  interval excludes the null (on one side or the other), **undecided** when it contains it.
  Fewer than 3 seeds give no interval: the point estimate only, and the sentence says so.

Numpy only; deterministic given ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: Fewest seeds for a bootstrap interval over seeds (with 2 a resample is one of 4 patterns).
MIN_SEEDS_FOR_CI = 3

__all__ = [
    "MIN_SEEDS_FOR_CI",
    "Interval",
    "PairedTest",
    "Question",
    "bootstrap_interval",
    "paired_test",
    "row_ratio_interval",
    "sign_test",
    "stability_questions",
    "wilcoxon_signed_rank",
]


@dataclass(frozen=True)
class Interval:
    """A point estimate and its percentile bootstrap interval (``low``/``high`` None when
    the data give none: ``reason`` says why)."""

    estimate: float
    low: float | None
    high: float | None
    level: float
    n_boot: int
    reason: str | None = None

    def excludes(self, null: float) -> bool:
        return self.low is not None and self.high is not None and not self.low <= null <= self.high


@dataclass(frozen=True)
class PairedTest:
    """Exact two-sided paired tests of per-concept-family differences against 0."""

    n: int  # non-zero differences used
    n_zero: int  # differences exactly 0 (dropped)
    wilcoxon_w_plus: float  # sum of the ranks of the positive differences
    wilcoxon_p: float
    sign_positive: int
    sign_negative: int
    sign_p: float


@dataclass(frozen=True)
class Question:
    """One raw-vs-identified comparison, its interval, paired test and answer."""

    key: str  # "steadier" | "larger" | "width_sensitive"
    kind: str  # "transformer" | "word2vec"
    width: int | None  # None: all widths pooled (or across widths for width_sensitive)
    question: str
    effect: str  # what the estimate measures
    null: float
    n_seeds: int
    n_families: int
    interval: Interval
    test: PairedTest | None
    answer: str  # "yes" | "no" | "undecided"
    sentence: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------ tests
def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``x``, ties given their mean rank."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(x.size, dtype=float)
    xs = x[order]
    i = 0
    while i < x.size:
        j = i
        while j + 1 < x.size and xs[j + 1] == xs[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def wilcoxon_signed_rank(d: Sequence[float] | np.ndarray) -> tuple[float, float, int]:
    """Exact two-sided Wilcoxon signed-rank test of ``d`` against 0.

    Zeros are dropped; ties among ``|d|`` get midranks, and the null distribution is the
    exact one of ``W+`` given those ranks (each sign + or - with probability 1/2, all 2^n
    patterns, counted by dynamic programming over doubled ranks, which are integers).
    Returns ``(W+, p, n)``; ``p = 1`` when no difference is non-zero.
    """
    x = np.asarray(d, dtype=float)
    x = x[np.isfinite(x) & (x != 0)]
    n = x.size
    if n == 0:
        return 0.0, 1.0, 0
    r2 = np.rint(2 * _ranks(np.abs(x))).astype(int)  # doubled midranks are integers
    w2 = int(r2[x > 0].sum())
    total = int(r2.sum())
    counts = np.zeros(total + 1, dtype=float)  # counts[s]: sign patterns with 2W+ = s
    counts[0] = 1.0
    for r in r2:
        counts[r:] = counts[r:] + counts[: total + 1 - r].copy()
    probs = counts / counts.sum()
    lo = probs[: min(w2, total - w2) + 1].sum()  # the tail on the side of the observation
    p = min(1.0, 2 * lo) if w2 != total - w2 else 1.0
    return w2 / 2, float(p), n


def sign_test(d: Sequence[float] | np.ndarray) -> tuple[int, int, float]:
    """Exact two-sided sign test of ``d`` against 0 (zeros dropped): ``(n+, n-, p)``."""
    x = np.asarray(d, dtype=float)
    x = x[np.isfinite(x)]
    pos, neg = int(np.sum(x > 0)), int(np.sum(x < 0))
    n = pos + neg
    if n == 0:
        return 0, 0, 1.0
    k = min(pos, neg)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return pos, neg, float(min(1.0, 2 * tail))


def paired_test(d: Sequence[float] | np.ndarray) -> PairedTest:
    """Both exact paired tests of the per-family differences ``d``."""
    x = np.asarray(d, dtype=float)
    x = x[np.isfinite(x)]
    w, p, n = wilcoxon_signed_rank(x)
    pos, neg, sp = sign_test(x)
    return PairedTest(n, int(np.sum(x == 0)), w, p, pos, neg, sp)


# ------------------------------------------------------------------------------ bootstrap
def bootstrap_interval(
    stat: Callable[[np.ndarray, np.ndarray], np.ndarray],
    n_seeds: int,
    n_families: int,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile interval of ``stat`` over resamples of seeds and concept families.

    ``stat(seed_idx, fam_idx)`` takes index arrays of shapes ``(B, n_seeds)`` and
    ``(B, n_families)`` (B resamples; the identity resample is ``B = 1``) and returns ``B``
    values. Seeds and families are resampled independently, with replacement. Fewer than
    :data:`MIN_SEEDS_FOR_CI` seeds: the point estimate only.
    """
    ident_s = np.arange(n_seeds)[None, :]
    ident_f = np.arange(n_families)[None, :]
    est = float(np.asarray(stat(ident_s, ident_f))[0])
    if n_seeds < MIN_SEEDS_FOR_CI:
        why = f"fewer than {MIN_SEEDS_FOR_CI} seeds ({n_seeds}): point estimate only, no interval"
        return Interval(est, None, None, level, 0, why)
    if n_families < 2:
        why = f"fewer than 2 concept families ({n_families}): point estimate only, no interval"
        return Interval(est, None, None, level, 0, why)
    rng = np.random.default_rng(seed)
    vals = []
    for start in range(0, n_boot, 500):  # chunks keep the index arrays small
        b = min(500, n_boot - start)
        si = rng.integers(0, n_seeds, size=(b, n_seeds))
        fi = rng.integers(0, n_families, size=(b, n_families))
        vals.append(np.asarray(stat(si, fi), dtype=float))
    v = np.concatenate(vals)
    v = v[np.isfinite(v)]
    if v.size < n_boot // 2:
        return Interval(est, None, None, level, 0, "the statistic is undefined on most resamples")
    a = (1 - level) / 2
    lo, hi = np.quantile(v, [a, 1 - a])
    return Interval(est, float(lo), float(hi), level, int(v.size))


def _std_seeds(X: np.ndarray, si: np.ndarray, fi: np.ndarray) -> np.ndarray:
    """Std over resampled seeds (ddof=1) per resampled family: ``(B, n_families)``."""
    Xb = X[si[:, :, None], fi[:, None, :]]  # (B, n_seeds, n_families)
    return Xb.std(axis=1, ddof=1)


_TINY = 1e-12


# ------------------------------------------------------------------------------ questions
def _tables(
    rows: list[dict[str, Any]], width: int
) -> tuple[list[int], list[str], np.ndarray, np.ndarray]:
    """``raw[s, f]`` and ``ide[s, f]`` of one width: seeds x concept families, complete only."""
    sel = [r for r in rows if r["width"] == width]
    seeds = sorted({int(r["seed"]) for r in sel})
    fams = sorted({str(r["family"]) for r in sel})
    raw = np.full((len(seeds), len(fams)), np.nan)
    ide = np.full((len(seeds), len(fams)), np.nan)
    si = {s: i for i, s in enumerate(seeds)}
    fi = {f: i for i, f in enumerate(fams)}
    for r in sel:
        i, j = si[int(r["seed"])], fi[str(r["family"])]
        raw[i, j] = _num(r.get("raw_euclid_cos"))
        ide[i, j] = _num(r.get("identified_logodds_corr"))
    keep = np.isfinite(raw).all(0) & np.isfinite(ide).all(0)
    return seeds, [f for f, k in zip(fams, keep) if k], raw[:, keep], ide[:, keep]


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _common(rows: list[dict[str, Any]], widths: list[int]):
    """The tables of several widths restricted to the seeds and families all of them have."""
    tabs = {w: _tables(rows, w) for w in widths}
    seeds = sorted(set.intersection(*(set(t[0]) for t in tabs.values())))
    fams = sorted(set.intersection(*(set(t[1]) for t in tabs.values())))
    out = {}
    for w, (ss, ff, raw, ide) in tabs.items():
        i = [ss.index(s) for s in seeds]
        j = [ff.index(f) for f in fams]
        out[w] = (raw[np.ix_(i, j)], ide[np.ix_(i, j)])
    return seeds, fams, out


_TEXT = {
    "steadier": (
        "Is the identified parallelism statistic steadier across seeds than the raw one",
        "geometric mean over concept families of std(raw) / std(identified) across seeds",
        1.0,
    ),
    "larger": (
        "Is the identified parallelism statistic larger than the raw one",
        "mean over concept families of mean(identified) - mean(raw)",
        0.0,
    ),
    "width_sensitive": (
        "Does width change the raw parallelism statistic more than the identified one",
        "mean over concept families of |raw(d_max) - raw(d_min)| - "
        "|identified(d_max) - identified(d_min)| (seed means)",
        0.0,
    ),
}


def _sentence(key: str, where: str, iv: Interval, test: PairedTest | None, n_s: int, n_f: int):
    question, _, null = _TEXT[key]
    fmt = ".2f" if key == "steadier" else ".3f"
    est = f"{iv.estimate:{fmt}}"
    tests = ""
    if test is not None and test.n:
        tests = (
            f"; paired across concept families: Wilcoxon p = {test.wilcoxon_p:.3g}, sign test "
            f"{test.sign_positive}+/{test.sign_negative}- p = {test.sign_p:.3g}"
        )
    size = f"{n_s} seeds x {n_f} concept families"
    if iv.low is None or iv.high is None:
        return "undecided", (
            f"{question} ({where})? Undecided: {iv.reason}; estimate {est} (null {null:g}, "
            f"{size}){tests}."
        )
    ci = f"{iv.estimate:{fmt}}, {int(round(iv.level * 100))}% CI [{iv.low:{fmt}}, {iv.high:{fmt}}]"
    if iv.low > null:
        answer, verdict = "yes", f"Yes: {ci} excludes {null:g}"
    elif iv.high < null:
        opposite = {
            "steadier": "the raw statistic is the steadier one",
            "larger": "the raw statistic is the larger one",
            "width_sensitive": "width changes the identified statistic more",
        }[key]
        answer, verdict = "no", f"No, {opposite}: {ci} excludes {null:g}"
    else:
        answer, verdict = "undecided", f"Undecided: {ci} contains {null:g}"
    return answer, f"{question} ({where})? {verdict} ({size}){tests}."


def _question(key, kind, width, where, n_s, n_f, stat, per_family, n_boot, level, seed):
    iv = bootstrap_interval(stat, n_s, n_f, n_boot=n_boot, level=level, seed=seed)
    if key == "steadier" and np.isfinite(iv.estimate):
        iv = Interval(
            math.exp(iv.estimate),
            None if iv.low is None else math.exp(iv.low),
            None if iv.high is None else math.exp(iv.high),
            iv.level,
            iv.n_boot,
            iv.reason,
        )
    test = paired_test(per_family) if per_family.size else None
    answer, sentence = _sentence(key, where, iv, test, n_s, n_f)
    q, effect, null = _TEXT[key]
    return Question(key, kind, width, q + "?", effect, null, n_s, n_f, iv, test, answer, sentence)


def stability_questions(
    rows: list[dict[str, Any]],
    *,
    kind: str = "transformer",
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> list[Question]:
    """Every raw-vs-identified comparison of a study's parallelism rows (one row per model
    and concept family: ``width``, ``seed``, ``family``, ``raw_euclid_cos``,
    ``identified_logodds_corr``), per width and pooled over widths."""
    widths = sorted({int(r["width"]) for r in rows})
    out: list[Question] = []
    if not widths:
        return out
    label = "word2vec" if kind == "word2vec" else "transformers"

    def log_ratio(raw: np.ndarray, ide: np.ndarray):
        def stat(si: np.ndarray, fi: np.ndarray) -> np.ndarray:
            if raw.shape[0] < 2:
                return np.full(si.shape[0], np.nan)
            sr = np.maximum(_std_seeds(raw, si, fi), _TINY)
            sd = np.maximum(_std_seeds(ide, si, fi), _TINY)
            return np.log(sr / sd).mean(axis=1)

        return stat

    def diff_means(raw: np.ndarray, ide: np.ndarray):
        def stat(si: np.ndarray, fi: np.ndarray) -> np.ndarray:
            d = ide[si[:, :, None], fi[:, None, :]] - raw[si[:, :, None], fi[:, None, :]]
            return d.mean(axis=(1, 2))

        return stat

    def fam_log_ratio(raw: np.ndarray, ide: np.ndarray) -> np.ndarray:
        if raw.shape[0] < 2:
            return np.zeros(0)
        sr = np.maximum(raw.std(axis=0, ddof=1), _TINY)
        sd = np.maximum(ide.std(axis=0, ddof=1), _TINY)
        return np.log(sr / sd)

    seeds_all, fams_all, tabs = _common(rows, widths)
    for w in widths:
        seeds, fams, raw, ide = _tables(rows, w)
        where = f"{label}, d = {w}"
        common: tuple[str, int | None, str, int, int] = (kind, w, where, len(seeds), len(fams))
        out.append(
            _question(
                "steadier",
                *common,
                log_ratio(raw, ide),
                fam_log_ratio(raw, ide),
                n_boot,
                level,
                seed,
            )
        )
        out.append(
            _question(
                "larger",
                *common,
                diff_means(raw, ide),
                (ide - raw).mean(axis=0),
                n_boot,
                level,
                seed,
            )
        )
    if len(widths) > 1 and fams_all and seeds_all:
        n_s, n_f = len(seeds_all), len(fams_all)
        where = f"{label}, all widths {', '.join(map(str, widths))}"
        stack_raw = [tabs[w][0] for w in widths]
        stack_ide = [tabs[w][1] for w in widths]

        def pooled(si: np.ndarray, fi: np.ndarray) -> np.ndarray:
            return np.mean([log_ratio(r, i)(si, fi) for r, i in zip(stack_raw, stack_ide)], 0)

        per_fam = np.mean([fam_log_ratio(r, i) for r, i in zip(stack_raw, stack_ide)], 0)
        common = (kind, None, where, n_s, n_f)
        out.append(_question("steadier", *common, pooled, per_fam, n_boot, level, seed))

        def pooled_diff(si: np.ndarray, fi: np.ndarray) -> np.ndarray:
            return np.mean([diff_means(r, i)(si, fi) for r, i in zip(stack_raw, stack_ide)], 0)

        per_fam_d = np.mean([(i - r).mean(axis=0) for r, i in zip(stack_raw, stack_ide)], 0)
        out.append(_question("larger", *common, pooled_diff, per_fam_d, n_boot, level, seed))
        (r0, i0), (r1, i1) = tabs[widths[0]], tabs[widths[-1]]

        def width_stat(si: np.ndarray, fi: np.ndarray) -> np.ndarray:
            def m(X: np.ndarray) -> np.ndarray:
                return X[si[:, :, None], fi[:, None, :]].mean(axis=1)  # (B, n_f)

            eff = np.abs(m(r1) - m(r0)) - np.abs(m(i1) - m(i0))
            return eff.mean(axis=1)

        per_fam_w = np.abs(r1.mean(0) - r0.mean(0)) - np.abs(i1.mean(0) - i0.mean(0))
        where = f"{label}, d = {widths[0]} vs {widths[-1]}"
        common = (kind, None, where, n_s, n_f)
        out.append(
            _question("width_sensitive", *common, width_stat, per_fam_w, n_boot, level, seed)
        )
    return out


def row_ratio_interval(
    raw: Sequence[float], ide: Sequence[float], *, n_boot: int = 2000, level: float = 0.95, seed=0
) -> Interval:
    """Bootstrap interval over seeds of one row's std(raw) / std(identified)."""
    r = np.asarray(raw, dtype=float)[:, None]
    i = np.asarray(ide, dtype=float)[:, None]

    def stat(si: np.ndarray, fi: np.ndarray) -> np.ndarray:
        sr = np.maximum(_std_seeds(r, si, fi)[:, 0], _TINY)
        sd = np.maximum(_std_seeds(i, si, fi)[:, 0], _TINY)
        return np.log(sr / sd)

    if r.shape[0] < 2:
        return Interval(float("nan"), None, None, level, 0, "one seed: no spread")
    n_s = r.shape[0]
    if n_s < MIN_SEEDS_FOR_CI:
        iv = bootstrap_interval(stat, n_s, 1, n_boot=n_boot, level=level, seed=seed)
    else:  # one concept family: resample seeds only
        iv = _seed_only(stat, n_s, n_boot, level, seed)
    return Interval(
        math.exp(iv.estimate),
        None if iv.low is None else math.exp(iv.low),
        None if iv.high is None else math.exp(iv.high),
        level,
        iv.n_boot,
        iv.reason,
    )


def _seed_only(stat, n_s: int, n_boot: int, level: float, seed: int) -> Interval:
    rng = np.random.default_rng(seed)
    est = float(stat(np.arange(n_s)[None, :], np.zeros((1, 1), dtype=int))[0])
    si = rng.integers(0, n_s, size=(n_boot, n_s))
    v = stat(si, np.zeros((n_boot, 1), dtype=int))
    v = v[np.isfinite(v)]
    a = (1 - level) / 2
    lo, hi = np.quantile(v, [a, 1 - a])
    return Interval(est, float(lo), float(hi), level, int(v.size))
