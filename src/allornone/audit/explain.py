"""The audit's glossary: the one-line meaning of every number it reports, and whether it is
identified (:class:`allornone.report.Explanation`).

``identified=True``: computed from the next-token distribution alone, so equal in every
model with the same distribution (THEORY.md 4). ``False``: depends on the parametrisation
(Euclidean geometry of ``f`` / ``g``), so an equivalent model can change it. ``None``: a
fact about the run or the model file rather than a statistic of the representation.

Here live the entries that belong to no property (the model, the structure, the equivalence
class, ``compare``); a property's statistics are declared once by its module
(:class:`allornone.registry.Statistic`) and :data:`EXPLAIN` holds them beside these (a
plugin's, registered later, are found by :func:`explain`).
"""

from __future__ import annotations

from .. import properties  # noqa: F401 - registers the built-in properties' statistics
from ..registry import find_statistic, property_specs
from ..report import Explanation, mark

__all__ = ["EXPLAIN", "Explanation", "explain", "mark"]

EXPLAIN: dict[str, Explanation] = {
    # model facts
    "d": Explanation("width of f(x) and g(y) (hidden size, +1 if a head bias is absorbed)", None),
    "V": Explanation("number of tokens in the vocabulary (rows of the LM head)", None),
    "n": Explanation("number of contexts the statistic was computed on", None),
    "logit_check": Explanation(
        "max |F G^T - model logits| on check prompts: small means softmax(f^T g) is exact", None
    ),
    # structure
    "k": Explanation(
        "effective complexity rank L: smallest width of any model with this distribution", True
    ),
    "energy_rank": Explanation(
        "smallest r keeping 99% of the squared spectrum of L (k for trained models)", True
    ),
    "dim_M": Explanation("dimension of span f(x) over the contexts (M)", False),
    "dim_N": Explanation("dimension of span of centred unembeddings g0(y) (N)", False),
    "dim_E": Explanation("dimension of E = P_N(M), always equal to k", True),
    "dim_J_f": Explanation(
        "junk in f: directions of M no logit reads (dim M - k); free in equivalent models", True
    ),
    "dim_J_g": Explanation(
        "junk in g: directions of N no context reads (dim N - k); free in equivalent models",
        True,
    ),
    "gap": Explanation(
        "sigma_k / max(sigma_(k+1), identified noise floor): how sharp the rank decision is",
        True,
    ),
    "condition_size": Explanation(
        "relative size of the part violating the transfer condition, measured in this model's "
        "coordinates: an equivalent model can change it (e.g. when the contexts do not span "
        "R^d); only the verdict, size <= tol, is read from it",
        False,
    ),
    # equivalence demo
    "equivalent": Explanation("equivalence() found the same distribution and a map A", True),
    "max_logodds_gap": Explanation("max |L - L~| over contexts and tokens", True),
    "mean_kl": Explanation("mean KL between the two next-token distributions", True),
    "residual_f": Explanation("relative residual of e~_f = A e_f", True),
    "residual_g": Explanation("relative residual of e~_g = A^-T e_g", True),
    "mean_norm_f": Explanation("mean Euclidean norm of f(x)", False),
    "cos_f01": Explanation("Euclidean cosine between f of the first two contexts", False),
    "log_odds_x0": Explanation("log p(y1|x0) - log p(y0|x0) for the first context", True),
    # compare
    "shared_tokens": Explanation("tokens whose strings are identical in both vocabularies", None),
    "map_residual_ab": Explanation(
        "relative residual of the best linear map A->B between the leading context coordinates "
        "F E' (top left singular vectors of L)",
        True,
    ),
    "map_residual_ba": Explanation(
        "relative residual of the best linear map B->A between the leading context coordinates "
        "F E' (top left singular vectors of L)",
        True,
    ),
}


def _with_properties() -> dict[str, Explanation]:
    """The general entries and every registered property's declared statistics."""
    out = dict(EXPLAIN)
    for spec in property_specs():
        for s in spec.statistics:
            if s.name.endswith("*"):
                continue
            known = out.get(s.name)
            # a name declared raw and identified (steering's shifts) reads as identified
            if known is None or (s.where == "identified" and s.name not in EXPLAIN):
                out[s.name] = Explanation(s.meaning, s.identified)
    return out


def explain(key: str) -> Explanation:
    """The explanation of ``key``: a general entry, else a registered property's declared
    statistic (identified first), else a generic one."""
    if key in EXPLAIN:
        return EXPLAIN[key]
    s = find_statistic(key, "identified") or find_statistic(key)
    if s is not None and not s.name.endswith("*"):
        return Explanation(s.meaning, s.identified)
    return Explanation(key.replace("_", " "), None)


EXPLAIN = _with_properties()
