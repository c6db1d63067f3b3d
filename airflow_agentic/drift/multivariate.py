"""Multivariate two-sample tests on the numeric feature columns (reference side: the profile's row sample).

* ``mmd_test``: squared MMD (biased V-statistic) with an RBF kernel on standardised features (reference mean/std),
  bandwidth by the median heuristic (median pairwise distance of the pooled rows), p-value by a seeded permutation
  test ``(1 + #{perm >= observed}) / (1 + n_permutations)``. At most ``max_rows`` rows per side are used.
* ``classifier_test``: a domain classifier told reference from batch (``model="logistic"``, default: standardised
  features, NaN imputed by the reference mean plus missing-indicator columns; ``model="hgb"``: HistGradientBoosting,
  slower, catches non-linear shifts),
  out-of-fold probabilities from stratified k-fold, AUC; p-value from the Mann-Whitney normal approximation
  (AUC = U / (n1 n2), one-sided: is the classifier better than chance). This treats out-of-fold scores as
  independent, which is the usual approximation; use the MMD permutation test when an exact-level test is needed.

Rows with a NaN/inf in any column are dropped for MMD (counted in the result); the classifier keeps NaN.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from airflow_agentic.drift.columns import check_choice, check_positive_int, check_probability, check_unique_columns

if TYPE_CHECKING:
    import pandas as pd

    from airflow_agentic.drift.profile import ReferenceProfile


def _subsample(x: np.ndarray, max_rows: int, rng: np.random.Generator) -> np.ndarray:
    if len(x) <= max_rows:
        return x
    return x[rng.choice(len(x), size=max_rows, replace=False)]


def _sq_dists(z: np.ndarray) -> np.ndarray:
    sq = np.einsum("ij,ij->i", z, z)
    d = sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)
    np.maximum(d, 0, out=d)
    return d


def _matrices(x_ref: Any, x_cur: Any) -> tuple[np.ndarray, np.ndarray]:
    x_ref = np.asarray(x_ref, dtype=np.float64)
    x_cur = np.asarray(x_cur, dtype=np.float64)
    if x_ref.ndim != 2 or x_cur.ndim != 2 or x_ref.shape[1] != x_cur.shape[1]:
        raise ValueError(f"x_ref and x_cur must be 2-D with the same number of columns, got shapes "
                         f"{x_ref.shape} and {x_cur.shape}")
    return x_ref, x_cur


def mmd_test(x_ref: np.ndarray, x_cur: np.ndarray, *, n_permutations: int = 200, max_rows: int = 500,
             seed: int = 0, alpha: float = 0.05) -> dict[str, Any]:
    alpha = check_probability("alpha", alpha)
    check_positive_int("n_permutations", n_permutations)
    check_positive_int("max_rows", max_rows, minimum=2)
    rng = np.random.default_rng(seed)
    x_ref, x_cur = _matrices(x_ref, x_cur)
    ok_ref = np.isfinite(x_ref).all(axis=1)
    ok_cur = np.isfinite(x_cur).all(axis=1)
    dropped = int((~ok_ref).sum() + (~ok_cur).sum())
    x_ref = _subsample(x_ref[ok_ref], max_rows, rng)
    x_cur = _subsample(x_cur[ok_cur], max_rows, rng)
    if len(x_ref) < 2 or len(x_cur) < 2:
        return {"method": "mmd", "statistic": None, "p_value": None, "drifted": False, "dropped_rows": dropped,
                "warnings": ["mmd: fewer than 2 complete rows on one side; not tested"]}
    mean = x_ref.mean(axis=0)
    std = x_ref.std(axis=0)
    std[std == 0] = 1.0
    z = np.vstack([(x_ref - mean) / std, (x_cur - mean) / std])
    d2 = _sq_dists(z)
    n, m = len(x_ref), len(x_cur)
    median = float(np.median(d2[np.triu_indices(n + m, k=1)]))
    bandwidth = math.sqrt(median / 2) if median > 0 else 1.0
    kernel = np.exp(-d2 / (2 * bandwidth**2))

    def statistics(weights: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", weights @ kernel, weights)

    base = np.r_[np.full(n, 1.0 / n), np.full(m, -1.0 / m)]
    observed = float(statistics(base[None, :])[0])
    perms = np.stack([rng.permutation(base) for _ in range(n_permutations)])
    null = statistics(perms)
    p_value = float((1 + np.sum(null >= observed)) / (1 + n_permutations))
    return {"method": "mmd", "statistic": observed, "p_value": p_value, "drifted": p_value < alpha,
            "bandwidth": bandwidth, "n_ref": n, "n_cur": m, "n_permutations": n_permutations, "seed": seed,
            "dropped_rows": dropped, "warnings": []}


def classifier_test(x_ref: np.ndarray, x_cur: np.ndarray, *, folds: int = 5, max_rows: int = 2000, seed: int = 0,
                    alpha: float = 0.05, model: str = "logistic") -> dict[str, Any]:
    from scipy.special import ndtr
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    alpha = check_probability("alpha", alpha)
    check_positive_int("folds", folds, minimum=2)
    check_positive_int("max_rows", max_rows, minimum=2)
    check_choice("classifier model", model, ("logistic", "hgb"))
    rng = np.random.default_rng(seed)
    x_ref, x_cur = _matrices(x_ref, x_cur)
    x_ref = _subsample(x_ref, max_rows, rng)
    x_cur = _subsample(x_cur, max_rows, rng)
    x = np.vstack([x_ref, x_cur])
    x[~np.isfinite(x)] = np.nan
    y = np.r_[np.zeros(len(x_ref)), np.ones(len(x_cur))]
    n1, n2 = len(x_ref), len(x_cur)
    if min(n1, n2) < folds:
        return {"method": "classifier", "statistic": None, "p_value": None, "drifted": False,
                "warnings": [f"classifier: fewer than {folds} rows on one side; not tested"]}
    if model == "hgb":
        estimator = HistGradientBoostingClassifier(max_iter=30, random_state=seed)
    elif model == "logistic":
        from sklearn.linear_model import LogisticRegression

        missing = np.isnan(x)
        mean = np.nanmean(x[: len(x_ref)], axis=0)
        mean = np.where(np.isnan(mean), 0.0, mean)
        x = np.where(missing, mean, x)
        std = x.std(axis=0)
        x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
        if missing.any():
            x = np.hstack([x, missing[:, missing.any(axis=0)].astype(np.float64)])
        estimator = LogisticRegression(max_iter=200)
    else:
        raise ValueError(f"unknown classifier model {model!r} (logistic, hgb)")
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_predict(estimator, x, y, cv=cv, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(y, scores))
    u = auc * n1 * n2
    z = (u - n1 * n2 / 2) / math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    p_value = float(1 - ndtr(z))
    return {"method": "classifier", "statistic": auc, "auc": auc, "p_value": p_value, "drifted": p_value < alpha,
            "n_ref": n1, "n_cur": n2, "folds": folds, "seed": seed, "model": model, "p_value_method": "mann-whitney-normal",
            "warnings": []}


def multivariate_test(profile: ReferenceProfile, batch: pd.DataFrame, *, method: str = "mmd", alpha: float = 0.05,
                      **options: Any) -> dict[str, Any]:
    check_choice("multivariate method", method, ("mmd", "classifier"))
    alpha = check_probability("alpha", alpha)
    check_unique_columns(batch)
    if profile.sample is None or not profile.sample_columns:
        return {"method": method, "statistic": None, "p_value": None, "drifted": False,
                "warnings": ["multivariate: the profile has no row sample of numeric columns; not tested"]}
    import pandas as pd

    cols = profile.sample_columns
    x_cur = np.column_stack([pd.to_numeric(batch[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
                             for c in cols])
    if method == "mmd":
        out = mmd_test(profile.sample, x_cur, alpha=alpha, **options)
    elif method == "classifier":
        out = classifier_test(profile.sample, x_cur, alpha=alpha, **options)
    else:
        raise ValueError(f"unknown multivariate method {method!r} (mmd, classifier)")
    out["columns"] = list(cols)
    return out
