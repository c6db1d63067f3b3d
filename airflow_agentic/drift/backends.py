"""Other libraries behind the same DriftReport: ``alibi`` (alibi-detect, BSL 1.1, optional extra ``alibi``) and
``evidently`` (Evidently 0.7).

Both need raw reference data. The profile's ``sorted_values`` *is* the raw finite numeric data when the column
is exact (<= ``max_exact`` values; otherwise the quantile sketch stands in for it, with a warning); categorical
references are rebuilt from the counts. The batch goes through the same cleaning as the builtin path
(``prepare_column``: nulls/inf/unparsable counted and excluded), so the report shape is identical.

Each library computes the per-column p-values (alibi: ``KSDrift`` / ``ChiSquareDrift`` one detector per column;
Evidently: ``DataDriftPreset(num_method="ks", cat_method="chisquare")``). The multiple-testing correction across
columns is then applied by us, the same way as for the builtin backend, so verdicts are comparable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from airflow_agentic.drift import stats
from airflow_agentic.drift.columns import PreparedColumn, apply_correction, effect_scale, n_ref, untested
from airflow_agentic.drift.report import ColumnDrift

if TYPE_CHECKING:
    from airflow_agentic.drift.profile import ReferenceProfile

BACKEND_NOTES = {
    "alibi": "backend alibi: per-column KSDrift/ChiSquareDrift from alibi-detect (BSL 1.1); correction applied here",
    "evidently": "backend evidently: Evidently DataDriftPreset ks/chisquare p-values; correction applied here",
}


def _base(col: PreparedColumn, test: str, statistic: float | None, p_value: float | None) -> ColumnDrift:
    warnings = list(col.warnings)
    if col.profile.kind == "numeric" and not col.profile.exact:
        warnings.append(f"{col.name}: reference is a quantile sketch of {col.profile.n_finite} values, "
                        f"used as the raw reference by the backend")
    return ColumnDrift(
        column=col.name, kind=col.profile.kind, test=test, statistic=statistic, p_value=p_value, p_adjusted=None,
        drifted=False, effect=None, n_ref=n_ref(col.profile), n_cur=col.n_used, nulls_cur=col.nulls,
        nonfinite_cur=col.nonfinite, unparsable_cur=col.unparsable, unseen_categories=col.unseen, warnings=warnings)


def _codes(col: PreparedColumn) -> tuple[np.ndarray, np.ndarray, int]:
    keys, table = stats.count_table(col.profile.categories or {}, col.counts or {})
    ref = np.repeat(np.arange(len(keys)), table[0].astype(np.int64))
    cur = np.repeat(np.arange(len(keys)), table[1].astype(np.int64))
    return ref.reshape(-1, 1), cur.reshape(-1, 1), len(keys)


def _categorical_reference(col: PreparedColumn) -> np.ndarray:
    cats = col.profile.categories or {}
    return np.repeat(np.array(list(cats.keys()), dtype=object), list(cats.values()))


def _alibi(col: PreparedColumn, alpha: float) -> ColumnDrift:
    import logging

    from airflow_agentic.extras import require

    logging.getLogger("alibi_detect").setLevel(logging.ERROR)
    require("alibi_detect.cd", "alibi", "The alibi drift backend")
    from alibi_detect.cd import ChiSquareDrift, KSDrift

    if col.profile.kind == "numeric":
        detector = KSDrift(col.profile.sorted_values.reshape(-1, 1), p_val=alpha)
        out = detector.predict(col.values.reshape(-1, 1), return_p_val=True, return_distance=True)["data"]
        result = _base(col, "alibi-ks", float(out["distance"][0]), float(out["p_val"][0]))
    else:
        ref, cur, k = _codes(col)
        detector = ChiSquareDrift(ref, p_val=alpha, categories_per_feature={0: k})
        out = detector.predict(cur, return_p_val=True, return_distance=True)["data"]
        result = _base(col, "alibi-chi2", float(out["distance"][0]), float(out["p_val"][0]))
    return result


def _evidently(prepared: list[PreparedColumn], alpha: float) -> dict[str, tuple[str, float]]:
    import pandas as pd

    from airflow_agentic.extras import require

    require("evidently", "evidently", "The evidently drift backend")
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    # one column per frame: columns have different lengths once nulls are excluded
    out: dict[str, tuple[str, float]] = {}
    for col in prepared:
        if col.profile.kind == "numeric":
            ref = pd.DataFrame({col.name: col.profile.sorted_values})
            cur = pd.DataFrame({col.name: col.values})
            definition = DataDefinition(numerical_columns=[col.name])
        else:
            ref = pd.DataFrame({col.name: _categorical_reference(col)})
            cur = pd.DataFrame({col.name: np.repeat(np.array(list((col.counts or {}).keys()), dtype=object),
                                                    list((col.counts or {}).values()))})
            definition = DataDefinition(categorical_columns=[col.name])
        report = Report([DataDriftPreset(num_method="ks", cat_method="chisquare", threshold=alpha)])
        snapshot = report.run(Dataset.from_pandas(cur, data_definition=definition),
                              Dataset.from_pandas(ref, data_definition=definition))
        for metric in snapshot.dict()["metrics"]:
            config = metric.get("config", {})
            if config.get("type", "").endswith("ValueDrift") and config.get("column") == col.name:
                out[col.name] = (str(config.get("method")), float(metric["value"]))
    return out


def run_backend(backend: str, profile: ReferenceProfile, prepared: list[PreparedColumn], *, alpha: float,
                correction: str) -> list[ColumnDrift]:
    testable = [c for c in prepared if c.n_used > 0 and n_ref(c.profile) > 0]
    results: dict[str, ColumnDrift] = {}
    if backend == "alibi":
        for col in testable:
            results[col.name] = _alibi(col, alpha)
    elif backend == "evidently":
        pvals = _evidently(testable, alpha)
        for col in testable:
            method, p = pvals[col.name]
            results[col.name] = _base(col, f"evidently-{method}", None, p)
    else:
        raise ValueError(f"unknown backend {backend!r}")
    # effects are ours (same definition across backends)
    for col in testable:
        res = results[col.name]
        if col.profile.kind == "numeric":
            w1 = stats.wasserstein_sorted(col.profile.sorted_values, col.sorted_values)
            res.wasserstein, res.effect = w1, w1 / effect_scale(col.profile)
        else:
            res.psi = res.effect = stats.psi_counts(col.profile.categories or {}, col.counts or {})
    out = []
    for col in prepared:
        if col.name in results:
            out.append(results[col.name])
        else:
            out.append(untested(col, "no usable value in the batch (all null / non-finite)" if col.n_used == 0
                                 else "no usable value in the reference"))
    apply_correction(out, alpha, correction)
    return out
