"""The drift result type used everywhere (XCom, trigger payloads, traces, UI): ``DriftReport`` of ``ColumnDrift``.

``score`` (in [0, 1]) is the share of tested feature columns that drifted after the multiple-testing correction;
``max_effect`` is the largest effect among them (numeric: Wasserstein-1 divided by the reference IQR, or by the
reference std when the IQR is 0; categorical: PSI). ``detected`` is true when any feature column drifted, the
multivariate test rejected, the prediction distribution drifted, or the performance monitor saw a change.
Label drift is reported but does not by itself set ``detected`` (labels often shift legitimately, e.g. seasonality).
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: store them as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class ColumnDrift:
    column: str
    kind: str  # "numeric" | "categorical"
    test: str  # "ks" | "chi2" | "none" | backend-specific ("alibi-ks", "evidently-...")
    statistic: float | None
    p_value: float | None
    p_adjusted: float | None
    drifted: bool
    effect: float | None
    n_ref: int
    n_cur: int  # values used by the statistic (finite / non-null)
    nulls_cur: int = 0
    nonfinite_cur: int = 0
    unparsable_cur: int = 0
    flagged: bool = False  # needs a human look although not drifted by statistics (all-null, no data, ...)
    wasserstein: float | None = None
    psi: float | None = None
    unseen_categories: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: _clean(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnDrift:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class DriftReport:
    detected: bool
    score: float
    alpha: float
    correction: str
    backend: str
    columns: list[ColumnDrift]
    n_ref: int
    n_cur: int
    max_effect: float | None = None
    multivariate: dict[str, Any] | None = None
    prediction: ColumnDrift | None = None
    label: ColumnDrift | None = None
    performance: dict[str, Any] | None = None
    created_at: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat())
    warnings: list[str] = field(default_factory=list)

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def flagged_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.flagged]

    def column(self, name: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == name:
                return c
        raise KeyError(name)

    def summary(self) -> str:
        tested = [c for c in self.columns if c.test != "none"]
        parts = [f"drift {'DETECTED' if self.detected else 'not detected'}",
                 f"{len(self.drifted_columns)}/{len(tested)} columns drifted"]
        if self.drifted_columns:
            top = sorted((c for c in self.columns if c.drifted), key=lambda c: -(c.effect or 0))[:3]
            parts.append("top: " + ", ".join(f"{c.column} ({c.test} p={c.p_adjusted:.2g})" for c in top))
        if self.prediction is not None:
            parts.append(f"prediction {'drifted' if self.prediction.drifted else 'stable'}")
        if self.label is not None:
            parts.append(f"label {'drifted' if self.label.drifted else 'stable'}")
        if self.multivariate:
            parts.append(f"{self.multivariate.get('method')} p={self.multivariate.get('p_value', float('nan')):.2g}")
        if self.performance:
            acc = self.performance.get("accuracy")
            parts.append(f"accuracy {acc:.3f}" if acc is not None else "accuracy n/a")
            if self.performance.get("change_detected"):
                parts.append("performance change")
        if self.flagged_columns:
            parts.append("flagged: " + ", ".join(self.flagged_columns))
        parts.append(f"score={self.score:.2f} n_ref={self.n_ref} n_cur={self.n_cur} ({self.backend}, "
                     f"{self.correction}, alpha={self.alpha})")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "columns":
                value = [c.to_dict() for c in value]
            elif isinstance(value, ColumnDrift):
                value = value.to_dict()
            out[f.name] = _clean(value)
        out["drifted_columns"] = self.drifted_columns
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftReport:
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["columns"] = [ColumnDrift.from_dict(c) for c in data.get("columns", [])]
        for key in ("prediction", "label"):
            if kwargs.get(key) is not None:
                kwargs[key] = ColumnDrift.from_dict(kwargs[key])
        return cls(**kwargs)
