"""The audit's glossary: the one-line meaning of every number it reports, and whether it is
identified (:class:`allornone.report.Explanation`).

``identified=True``: computed from the next-token distribution alone, so equal in every
model with the same distribution (THEORY.md 4). ``False``: depends on the parametrisation
(Euclidean geometry of ``f`` / ``g``), so an equivalent model can change it. ``None``: a
fact about the run or the model file rather than a statistic of the representation.
"""

from __future__ import annotations

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
    "gap": Explanation("sigma_k / sigma_(k+1): how sharp the rank decision is", True),
    # parallelism
    "raw_cos": Explanation(
        "mean Euclidean cosine between the family's unembedding differences g(a)-g(b)", False
    ),
    "identified_cos": Explanation(
        "mean cosine under Cov(f): correlation across contexts of the log-ratio columns", True
    ),
    "baseline_raw_cos": Explanation("the same Euclidean cosine for random token pairs", False),
    "baseline_identified_cos": Explanation(
        "the same Cov(f) cosine for random token pairs (chance level)", True
    ),
    "outside_M": Explanation(
        "relative Euclidean size of the differences outside M, in this model's coordinates "
        "(an equivalent model can change it when M != R^d)",
        False,
    ),
    # analogy
    "acc_raw": Explanation("3CosAdd accuracy with Euclidean cosines of g(y)", False),
    "acc_identified": Explanation(
        "3CosAdd accuracy with Cov(f) cosines of centred g0(y) (distribution only)", True
    ),
    # relations
    "faithfulness": Explanation(
        "held-out share of subjects where the fitted map f(s) -> answer log-odds picks the "
        "model's own top answer",
        True,
    ),
    "r2_identified": Explanation(
        "held-out R^2 of the answers' log-odds predicted linearly from f(s) (refined form)", True
    ),
    "r2_strong": Explanation(
        "held-out R^2 of the whole vector f(s+q) predicted from f(s) (strong form)", False
    ),
    "condition_size": Explanation(
        "relative size of the part violating the transfer condition, measured in this model's "
        "coordinates: an equivalent model can change it (e.g. when the contexts do not span "
        "R^d); only the verdict, size <= tol, is read from it",
        False,
    ),
    # probing
    "probe_acc_raw": Explanation(
        "held-out accuracy of an L2 logistic probe on raw f(x) (penalty is Euclidean)", False
    ),
    "probe_acc_identified": Explanation(
        "held-out accuracy of the probe parametrised on log-odds rows of L", True
    ),
    # steering
    "target_shift": Explanation(
        "mean log-odds shift of the target tokens when alpha*v is added to f(x)", True
    ),
    "off_target_shift": Explanation(
        "mean absolute log-odds shift of the other tokens (off-target)", True
    ),
    "v_norm": Explanation("Euclidean norm of the steering vector v", False),
    "prediction_error": Explanation(
        "check of the computation, not a statistic of the property: max |predicted "
        "alpha g0^T v - log-odds shift measured by a forward pass| over contexts and tokens",
        None,
    ),
    "draws": Explanation("number of random draws the baseline statistics average over", None),
    # equivalence demo
    "equivalent": Explanation("equivalence() found the same distribution and a map A", True),
    "max_logodds_gap": Explanation("max |L - L~| over contexts and tokens", True),
    "mean_kl": Explanation("mean KL between the two next-token distributions", True),
    "residual_f": Explanation("relative residual of e~_f = A e_f", True),
    "residual_g": Explanation("relative residual of e~_g = A^-T e_g", True),
    # property-module statistics (raw dicts are NOT identified, identified dicts are)
    "euclid_cos": Explanation("mean Euclidean cosine between the unembedding differences", False),
    "causal_cos_raw": Explanation(
        "mean cosine under Park et al.'s causal inner product on raw g (Cov(g) whitening)", False
    ),
    "logodds_corr": Explanation(
        "mean cosine under Cov(f) = correlation across contexts of the log-ratio columns", True
    ),
    "causal_cos": Explanation("causal inner product computed on the effective unembeddings", True),
    "causal_loo_auc_raw": Explanation(
        "Park et al.'s leave-one-out test on raw g: share of (held-out pair, random pair) "
        "comparisons where the pair projects higher on the others' mean (0.5 = chance)",
        False,
    ),
    "causal_loo_auc": Explanation(
        "Park et al.'s leave-one-out test under the causal inner product of the effective "
        "unembeddings (0.5 = chance)",
        True,
    ),
    "logratio_residual": Explanation(
        "relative residual of the best lambda in L[:,b]-L[:,a] = lambda (L[:,b']-L[:,a'])", True
    ),
    "strong_r2_train": Explanation("train R^2 of f(s+q) ~ A f(s) + a (strong form)", False),
    "strong_r2_test": Explanation("held-out R^2 of f(s+q) ~ A f(s) + a (strong form)", False),
    "refined_r2_train": Explanation("train R^2 of the refined form on Gamma", False),
    "refined_r2_test": Explanation("held-out R^2 of the answers' log-odds, refined form", False),
    "refined_faithfulness": Explanation(
        "held-out share where the refined map picks the model's own top answer", False
    ),
    "refined_accuracy": Explanation(
        "held-out share where the refined map picks the true object", False
    ),
    "kl_mean_train": Explanation("train mean KL of the KL probe on the answer set", False),
    "kl_mean_test": Explanation("held-out mean KL of the KL probe on the answer set", False),
    "kl_faithfulness": Explanation(
        "held-out share where the KL probe picks the model's answer", False
    ),
    "dist_r2_train": Explanation(
        "train R^2 of L[s+q, Y] = C L[s, :] + beta (distribution form)", True
    ),
    "dist_r2_test": Explanation("held-out R^2 of the distribution form", True),
    "dist_faithfulness": Explanation(
        "held-out share where the distribution-form map picks the model's own top answer", True
    ),
    "dist_accuracy": Explanation(
        "held-out share where the distribution form picks the true object", True
    ),
    "model_accuracy": Explanation(
        "share of subjects where the model's top answer is the true object", True
    ),
    "w_norm": Explanation("Euclidean norm of the probe weights", False),
    "majority": Explanation(
        "accuracy of always answering the majority class of the held-out labels (the floor a "
        "probe must beat; no model involved)",
        None,
    ),
    "mean_norm_f": Explanation("mean Euclidean norm of f(x)", False),
    "cos_f01": Explanation("Euclidean cosine between f of the first two contexts", False),
    "log_odds_x0": Explanation("log p(y1|x0) - log p(y0|x0) for the first context", True),
    "train_accuracy": Explanation("train accuracy of the probe on raw f(x)", False),
    "test_accuracy": Explanation(
        "held-out accuracy of the probe on raw f(x) (Euclidean ridge)", False
    ),
    "logodds_train_accuracy": Explanation(
        "train accuracy of the probe on log-odds rows of L", True
    ),
    "logodds_test_accuracy": Explanation(
        "held-out accuracy of the probe parametrised on log-odds rows of L", True
    ),
    "selectivity": Explanation("target shift minus off-target shift (log-odds)", None),
    "mean_abs_shift": Explanation("mean |log-odds shift| over all tokens", None),
    # compare
    "shared_tokens": Explanation("tokens whose strings are identical in both vocabularies", None),
    "map_residual_ab": Explanation(
        "relative residual of the best linear map A->B between effective representations", True
    ),
    "map_residual_ba": Explanation(
        "relative residual of the best linear map B->A between effective representations", True
    ),
}


def explain(key: str) -> Explanation:
    """The explanation of ``key`` (an unknown key gets a generic one)."""
    return EXPLAIN.get(key, Explanation(key.replace("_", " "), None))
