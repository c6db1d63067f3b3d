"""Performance estimated before labels arrive, and label-prior shift estimated from the champion's outputs.

At training time ``fit_calibration`` is fitted on held-out rows (the champion's ``predict_proba`` and the true labels):

* the calibration map is **bias-corrected temperature scaling with a label-noise floor**
  (``(1 - e) softmax(log p / T + b) + e / K``, K + 1 parameters; Platt scaling on the logit when K == 2 and e == 0).
  Why: with 300-1000 held-out rows it has far less variance than isotonic regression (whose plateaus hold a few dozen
  rows each, and whose step averages bias the posteriors once they are re-weighted for a prior shift), it keeps the
  champion's ranking, and BCTS is the calibration under which prior re-weighting is accurate (Alexandari et al., 2020,
  "Maximum likelihood with bias-corrected calibration is hard-to-beat at label shift adaptation"). The floor lets
  the posteriors level off at the label-noise rate where a boosted model's probabilities run to 0/1 (a temperature
  alone cannot, and then over-states confidence by ~2 points). Measured by benchmarks/estimation_error.py
  (``--calibration isotonic`` for the alternative), per stream and seed: MAE on stable batches 0.007-0.009 (isotonic
  0.008; BCTS without the floor 0.021-0.028), and under prior shift 0.012-0.019 (isotonic 0.019-0.030).
* the held-out confusion matrix ``P(predicted=i, true=j)`` for black-box shift estimation (BBSE, Lipton et al., 2018),
  and a finer one whose "predicted classes" are (predicted class, confidence quantile bin) cells;
* the priors the calibrated posteriors carry (the held-out label shares) and the held-out accuracy.

For a new batch without labels:

* ``estimate_priors``: from predicted labels, BBSE (solve ``C w = q``, clip, renormalise). From probabilities, the
  same linear model on the finer cells, solved by maximum likelihood (EM over the mixture weights, so it stays in the
  simplex) with a likelihood-ratio test of "no shift" and a goodness-of-fit test of "the change is a label shift"
  (a covariate shift that moves the confidence distribution in a way no re-weighting of the classes explains fails it).
* ``estimate_performance``: CBPE, the expected accuracy ``mean_i P(y_i = yhat_i | x_i)`` from calibrated posteriors,
  re-weighted by ``new_prior / train_prior`` when a label shift is estimated (plain CBPE assumes the posteriors still
  hold, which a prior shift breaks). A standard error and a one-sided test of a drop against the same estimate on
  the held-out rows come with it.
* ``prior_corrected``: the champion's calibrated posteriors re-weighted to new priors (the decision a prior-corrected
  champion makes is their argmax).

Everything returned is JSON-small (``to_dict``/``from_dict``). numpy at top level only; scipy inside functions.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from airflow_agentic.drift.performance import row_key as _key

_EPS = 1e-7  # floor for probabilities before the log (HGB can output exact 0/1)
MIN_HELDOUT_ROWS = 30
DEFAULT_BINS = 4  # confidence bins per predicted class: ~100+ held-out rows a cell at 1000 rows, K=2


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# --------------------------------------------------------------------------- input checks
def _check_proba(proba: Any, n_classes: int, what: str = "proba") -> np.ndarray:
    arr = np.asarray(proba, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be 2-D (rows x classes), got shape {arr.shape}")
    if arr.shape[1] != n_classes:
        raise ValueError(f"{what} has {arr.shape[1]} columns but the calibration knows {n_classes} classes")
    if arr.shape[0] == 0:
        raise ValueError(f"{what} has no rows")
    if not np.all(np.isfinite(arr)):
        bad = int(np.sum(~np.all(np.isfinite(arr), axis=1)))
        raise ValueError(f"{what} holds NaN or infinite values in {bad} row(s)")
    if np.any(arr < 0) or np.any(arr > 1 + 1e-9):
        raise ValueError(f"{what} must lie in [0, 1]")
    sums = arr.sum(axis=1)
    if np.any(np.abs(sums - 1.0) > 1e-3):
        raise ValueError(f"{what} rows must sum to 1 (found sums from {sums.min():.4f} to {sums.max():.4f})")
    return arr


def _label_index(labels: Any, classes: Sequence[Any], what: str = "labels") -> np.ndarray:
    index = {_key(c): i for i, c in enumerate(classes)}
    keys = [_key(v) for v in np.asarray(labels, dtype=object).ravel()]
    unknown = sorted({k for k in keys if k not in index})
    if unknown:
        raise ValueError(f"{what} hold classes unknown to the calibration: {unknown[:5]} (known: {list(index)})")
    return np.fromiter((index[k] for k in keys), dtype=np.int64, count=len(keys))


# --------------------------------------------------------------------------- calibration
def _log_proba(proba: np.ndarray) -> np.ndarray:
    return np.log(np.clip(proba, _EPS, 1.0))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _bcts_probs(logp: np.ndarray, scale: float, bias: np.ndarray, floor: float) -> np.ndarray:
    return (1.0 - floor) * _softmax(scale * logp + bias) + floor / logp.shape[1]


def _bcts_fit(logp: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, float]:
    """Temperature, per-class biases (class 0's fixed at 0) and a label-noise floor, by maximum likelihood."""
    from scipy.optimize import minimize

    n, k = logp.shape
    rows = np.arange(n)
    onehot = np.zeros((n, k))
    onehot[rows, y] = 1.0

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        scale, bias = math.exp(theta[0]), np.concatenate([[0.0], theta[1:k]])
        sig = 1.0 / (1.0 + math.exp(-theta[k]))
        floor = 0.5 * sig
        q = _softmax(scale * logp + bias)
        p_y = (1.0 - floor) * q[rows, y] + floor / k
        loss = float(-np.mean(np.log(p_y)))
        # d(-log p_y)/dz_j = -(1 - floor) q_y (onehot_j - q_j) / p_y
        dz = -((1.0 - floor) * q[rows, y] / p_y)[:, None] * (onehot - q) / n
        d_floor = float(-np.mean((1.0 / k - q[rows, y]) / p_y)) * 0.5 * sig * (1.0 - sig)
        grad = np.concatenate([[scale * float(np.sum(dz * logp))], dz.sum(axis=0)[1:], [d_floor]])
        return loss, grad

    theta0 = np.concatenate([np.zeros(k), [-4.0]])
    bounds = [(-4.0, 4.0)] + [(-20.0, 20.0)] * (k - 1) + [(-12.0, 12.0)]  # a separable held-out set stays bounded
    res = minimize(nll, theta0, jac=True, method="L-BFGS-B", bounds=bounds)
    theta = res.x if np.all(np.isfinite(res.x)) else theta0
    floor = 0.5 / (1.0 + math.exp(-theta[k]))
    return 1.0 / math.exp(theta[0]), np.concatenate([[0.0], theta[1:k]]), float(floor)


@dataclass
class Calibration:
    """What the champion's held-out rows tell about its probabilities (fitted once at training time)."""

    classes: list[Any]
    method: str  # "isotonic" or "bcts"
    temperature: float  # bcts: (1 - floor) softmax(log p / T + b) + floor / K
    biases: list[float]
    floor: float  # share of labels that look like uniform noise (the posteriors' plateau), bcts only
    knots: list[list[list[float]]]  # isotonic: per calibrated class [x knots, y knots] (one class when K == 2)
    train_priors: list[float]  # held-out label shares: the priors the calibrated posteriors carry
    confusion: list[list[float]]  # confusion[i][j] = P(predicted i, true j) on the held-out rows
    edges: list[list[float]]  # per predicted class: interior confidence-bin edges (calibrated confidence)
    cells: list[list[float]]  # P(cell | true class), cells = (predicted class, confidence bin) in order
    n_heldout: int
    reference_accuracy: float  # realised held-out accuracy of the champion's predictions
    expected_accuracy: float  # mean calibrated confidence on the held-out rows: the reference a drop is tested from
    expected_accuracy_var: float  # variance of the rows' calibrated confidence there
    log_loss_raw: float
    log_loss_calibrated: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        return cls(**data)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def calibrate(self, proba: Any) -> np.ndarray:
        """Calibrated posteriors (under the training priors) for the champion's raw ``predict_proba`` output."""
        arr = _check_proba(proba, self.n_classes)
        if self.method == "bcts":
            return _bcts_probs(_log_proba(arr), 1.0 / self.temperature, np.asarray(self.biases), self.floor)
        return _isotonic_apply(arr, self.knots)

    def cell_index(self, calibrated: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        conf = calibrated[np.arange(len(predicted)), predicted]
        offsets = np.cumsum([0] + [len(e) + 1 for e in self.edges])
        out = np.empty(len(predicted), dtype=np.int64)
        for i, edges in enumerate(self.edges):
            rows = predicted == i
            out[rows] = offsets[i] + np.searchsorted(np.asarray(edges), conf[rows], side="right")
        return out


def _isotonic_fit(proba: np.ndarray, y: np.ndarray) -> list[list[list[float]]]:
    from sklearn.isotonic import IsotonicRegression

    k = proba.shape[1]
    knots = []
    for c in ([1] if k == 2 else range(k)):  # binary: one map for class 1, class 0 is its complement
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(proba[:, c], (y == c).astype(float))
        knots.append([[round(float(v), 7) for v in iso.X_thresholds_], [round(float(v), 7) for v in iso.y_thresholds_]])
    return knots


def _isotonic_apply(proba: np.ndarray, knots: list[list[list[float]]]) -> np.ndarray:
    if proba.shape[1] == 2:
        p1 = np.interp(proba[:, 1], knots[0][0], knots[0][1])  # linear between knots, clipped: sklearn's predict
        return np.column_stack([1.0 - p1, p1])
    out = np.column_stack([np.interp(proba[:, c], xs, ys) for c, (xs, ys) in enumerate(knots)])
    sums = out.sum(axis=1, keepdims=True)
    return np.where(sums > 0, out / np.where(sums > 0, sums, 1.0), proba)  # all-zero row: keep the raw one


CALIBRATION_METHODS = ("bcts", "isotonic")


def fit_calibration(proba: Any, y: Any, classes: Sequence[Any], *, method: str = "bcts",
                    bins: int = DEFAULT_BINS) -> Calibration:
    """Fit on held-out rows: ``proba`` = the champion's ``predict_proba`` (columns in ``classes`` order), ``y`` the
    true labels. ``method``: "bcts" (default, see the module docstring) or "isotonic" (per class, one-vs-rest)."""
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"unknown calibration method {method!r}: {CALIBRATION_METHODS}")
    classes = [_plain(c) for c in classes]
    if len(classes) < 2:
        raise ValueError(f"need at least two classes, got {classes}")
    if len({_key(c) for c in classes}) != len(classes):
        raise ValueError(f"classes must be unique, got {classes}")
    k = len(classes)
    arr = _check_proba(proba, k)
    y_arr = np.asarray(y, dtype=object).ravel()
    if len(y_arr) != len(arr):
        raise ValueError(f"{len(arr)} probability rows but {len(y_arr)} labels")
    if len(arr) < MIN_HELDOUT_ROWS:
        raise ValueError(f"need at least {MIN_HELDOUT_ROWS} held-out rows to calibrate, got {len(arr)}")
    yi = _label_index(y_arr, classes)
    counts = np.bincount(yi, minlength=k)
    if np.any(counts == 0):
        missing = [classes[i] for i in np.flatnonzero(counts == 0)]
        raise ValueError(f"held-out labels hold no row of class(es) {missing}: a prior cannot be estimated for them"
                         + (" (one class only)" if np.count_nonzero(counts) == 1 else ""))
    n = len(arr)
    logp = _log_proba(arr)
    if method == "bcts":
        temperature, biases, floor = _bcts_fit(logp, yi)
        knots: list[list[list[float]]] = []
        calibrated = _bcts_probs(logp, 1.0 / temperature, biases, floor)
    else:
        temperature, biases, floor, knots = 1.0, np.zeros(k), 0.0, _isotonic_fit(arr, yi)
        calibrated = _isotonic_apply(arr, knots)
    predicted = arr.argmax(axis=1)

    confusion = np.zeros((k, k))
    np.add.at(confusion, (predicted, yi), 1.0)
    confusion /= n
    conf = calibrated[np.arange(n), predicted]
    edges: list[list[float]] = []
    for i in range(k):
        c = np.sort(conf[predicted == i])
        n_bins = int(min(bins, max(1, len(c) // 40)))  # at least ~40 rows a bin, else fewer bins
        qs = np.quantile(c, np.arange(1, n_bins) / n_bins) if n_bins > 1 else np.array([])
        edges.append([float(v) for v in np.unique(qs)])
    draft = Calibration(classes, method, float(temperature), [float(b) for b in biases], floor, knots, [], [], edges,
                        [], n, 0.0, 0.0, 0.0, 0.0, 0.0)
    cell = draft.cell_index(calibrated, predicted)
    n_cells = sum(len(e) + 1 for e in edges)
    table = np.full((n_cells, k), 0.5)  # half a row of pseudo-count: no cell is impossible for a class
    np.add.at(table, (cell, yi), 1.0)
    table /= table.sum(axis=0, keepdims=True)

    rows = np.arange(n)
    return Calibration(
        classes=classes,
        method=method,
        temperature=float(temperature),
        biases=[float(b) for b in biases],
        floor=float(floor),
        knots=knots,
        train_priors=[float(v) for v in counts / n],
        confusion=[[float(v) for v in row] for row in confusion],
        edges=edges,
        cells=[[float(v) for v in row] for row in table],
        n_heldout=n,
        reference_accuracy=float(np.mean(predicted == yi)),
        expected_accuracy=float(np.mean(conf)),
        expected_accuracy_var=float(np.var(conf)),
        log_loss_raw=float(-np.mean(logp[rows, yi])),
        log_loss_calibrated=float(-np.mean(np.log(np.clip(calibrated[rows, yi], _EPS, 1.0)))),
    )


# --------------------------------------------------------------------------- prior shift
@dataclass
class PriorEstimate:
    classes: list[Any]
    priors: list[float]  # estimated class priors of the batch
    train_priors: list[float]
    std_error: list[float]  # per class
    shift: float  # total variation distance between estimated and training priors
    p_value: float  # test of "no prior shift"
    fit_p_value: float | None  # test of "what changed is a label shift" (None from labels alone)
    significant: bool  # p_value < alpha
    consistent: bool  # the label-shift model fits (always True when it cannot be tested)
    bbse_priors: list[float]  # plain BBSE (confusion-matrix inversion on the predicted labels)
    method: str
    n: int
    alpha: float = 0.01
    covariance: list[list[float]] = field(default_factory=list, repr=False)

    @property
    def usable(self) -> bool:
        """A shift worth correcting for: significant, and explained by re-weighting the classes."""
        return self.significant and self.consistent

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PriorEstimate:
        return cls(**data)


def _chi2_sf(stat: float, dof: int) -> float:
    from scipy.special import chdtrc

    if dof <= 0:
        return 1.0
    return float(chdtrc(dof, max(stat, 0.0)))


def _bbse(calibration: Calibration, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lipton et al.: q = C w, w = new prior / train prior. Returns (clipped priors, covariance of the raw solve)."""
    k, n, m = calibration.n_classes, len(predicted), calibration.n_heldout
    conf = np.asarray(calibration.confusion)
    train = np.asarray(calibration.train_priors)
    q = np.bincount(predicted, minlength=k) / n
    inv = np.linalg.pinv(conf)  # pinv: a class the champion never predicts leaves C singular
    w = inv @ q
    priors = np.clip(w * train, 0.0, None)
    priors = priors / priors.sum() if priors.sum() > 0 else train.copy()
    cov_q = (np.diag(q) - np.outer(q, q)) * (1.0 / n + 1.0 / m)  # batch and held-out sampling both
    cov = np.diag(train) @ inv @ cov_q @ inv.T @ np.diag(train)
    return priors, cov


def _mixture_ml(cells: np.ndarray, counts: np.ndarray, start: np.ndarray, iters: int = 2000) -> np.ndarray:
    """Maximum-likelihood mixture weights of known components (EM; stays in the simplex)."""
    pi = np.clip(start, 1e-6, None)
    pi /= pi.sum()
    n = counts.sum()
    for _ in range(iters):
        mix = cells @ pi
        new = pi * (cells.T @ (counts / mix)) / n
        if np.max(np.abs(new - pi)) < 1e-10:
            return new
        pi = new
    return pi


def estimate_priors(calibration: Calibration, predicted_labels_or_proba: Any, *, alpha: float = 0.01,
                    fit_alpha: float = 0.001) -> PriorEstimate:
    """Class priors of a batch from the champion's outputs alone (labels: BBSE; probabilities: BBSE on cells, ML)."""
    k, m = calibration.n_classes, calibration.n_heldout
    train = np.asarray(calibration.train_priors)
    arr = np.asarray(predicted_labels_or_proba, dtype=object)
    if arr.ndim == 2:
        proba = _check_proba(predicted_labels_or_proba, k)
        predicted = proba.argmax(axis=1)
    elif arr.ndim == 1:
        if len(arr) == 0:
            raise ValueError("no predictions to estimate priors from")
        proba = None
        predicted = _label_index(arr, calibration.classes, "predicted labels")
    else:
        raise ValueError(f"expected predicted labels (1-D) or probabilities (2-D), got {arr.ndim}-D")
    n = len(predicted)
    bbse, bbse_cov = _bbse(calibration, predicted)
    scale = m / (n + m)  # the held-out reference is a sample too: shrink the statistics by n_eff / n

    if proba is None:
        from airflow_agentic.drift.stats import chi2_counts

        ref_counts = np.asarray(calibration.confusion).sum(axis=1) * m
        cur_counts = np.bincount(predicted, minlength=k)
        test = chi2_counts({str(i): float(v) for i, v in enumerate(ref_counts)},
                           {str(i): int(v) for i, v in enumerate(cur_counts)})
        priors, cov, p_value, fit_p, method = bbse, bbse_cov, test.p_value, None, "bbse"
    else:
        cells = np.asarray(calibration.cells)
        counts = np.bincount(calibration.cell_index(calibration.calibrate(proba), predicted),
                             minlength=cells.shape[0]).astype(np.float64)
        priors = _mixture_ml(cells, counts, 0.5 * bbse + 0.5 * train)
        fitted, null = cells @ priors, cells @ train
        seen = counts > 0
        lr = 2.0 * float(np.sum(counts[seen] * np.log(fitted[seen] / null[seen]))) * scale
        gof = 2.0 * float(np.sum(counts[seen] * np.log(counts[seen] / n / fitted[seen]))) * scale
        p_value = _chi2_sf(lr, k - 1)
        fit_p = _chi2_sf(gof, cells.shape[0] - k)
        # Fisher information of the K-1 free weights (the last one is 1 - sum of the others).
        jac = cells[:, :-1] - cells[:, -1:]
        info = n * jac.T @ (jac / np.clip(fitted, 1e-12, None)[:, None])
        a = np.vstack([np.eye(k - 1), -np.ones((1, k - 1))])
        cov = a @ np.linalg.pinv(info) @ a.T * (1.0 + n / m)
        method = "bbse-cells-ml"
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    return PriorEstimate(
        classes=list(calibration.classes),
        priors=[float(v) for v in priors],
        train_priors=[float(v) for v in train],
        std_error=[float(v) for v in se],
        shift=float(0.5 * np.abs(priors - train).sum()),
        p_value=float(p_value),
        fit_p_value=None if fit_p is None else float(fit_p),
        significant=bool(p_value < alpha),
        consistent=bool(fit_p is None or fit_p >= fit_alpha),
        bbse_priors=[float(v) for v in bbse],
        method=method,
        n=int(n),
        alpha=float(alpha),
        covariance=[[float(v) for v in row] for row in cov],
    )


def _prior_vector(calibration: Calibration, priors: Any) -> np.ndarray:
    if isinstance(priors, PriorEstimate):
        if [_key(c) for c in priors.classes] != [_key(c) for c in calibration.classes]:
            raise ValueError(f"prior estimate is for classes {priors.classes}, calibration for {calibration.classes}")
        priors = priors.priors
    elif isinstance(priors, dict):
        index = {_key(c): i for i, c in enumerate(calibration.classes)}
        unknown = [c for c in priors if _key(c) not in index]
        if unknown:
            raise ValueError(f"priors name classes unknown to the calibration: {unknown}")
        vec = np.zeros(calibration.n_classes)
        for c, v in priors.items():
            vec[index[_key(c)]] = float(v)
        priors = vec
    vec = np.asarray(priors, dtype=np.float64).ravel()
    if vec.shape != (calibration.n_classes,):
        raise ValueError(f"need {calibration.n_classes} priors, got {vec.shape[0]}")
    if not np.all(np.isfinite(vec)) or np.any(vec < 0) or vec.sum() <= 0:
        raise ValueError(f"priors must be finite, non-negative and not all zero, got {vec.tolist()}")
    return vec / vec.sum()


def _reweight(calibrated: np.ndarray, weights: np.ndarray) -> np.ndarray:
    adj = calibrated * weights
    return adj / adj.sum(axis=1, keepdims=True)


def prior_corrected(proba: Any, calibration: Calibration, priors: Any) -> np.ndarray:
    """The champion's calibrated posteriors re-weighted to ``priors`` (its argmax is the prior-corrected decision)."""
    vec = _prior_vector(calibration, priors)
    return _reweight(calibration.calibrate(proba), vec / np.asarray(calibration.train_priors))


# --------------------------------------------------------------------------- performance
@dataclass
class PerformanceEstimate:
    accuracy: float  # estimated accuracy of the champion's predictions on the batch
    std_error: float  # of the estimate (batch sampling, calibration, prior estimate)
    realised_spread: float  # expected |realised - estimated| scale: sqrt(sum a(1-a)) / n
    reference_accuracy: float  # the same estimate on the held-out rows (calibration.expected_accuracy)
    drop: float  # reference_accuracy - accuracy
    z: float
    p_value: float  # one-sided: accuracy below the reference (the calibration's own error cancels in the difference)
    n: int
    prior_corrected: bool
    priors: list[float]
    uncorrected_accuracy: float  # plain CBPE (posteriors under the training priors)
    prior_estimate: dict[str, Any] | None = None
    method: str = "cbpe"

    def drop_detected(self, alpha: float = 0.01, min_drop: float = 0.0) -> bool:
        return self.p_value < alpha and self.drop >= min_drop

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PerformanceEstimate:
        return cls(**data)


def _expected_accuracy(calibrated: np.ndarray, weights: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    return _reweight(calibrated, weights)[np.arange(len(predicted)), predicted]


def estimate_performance(calibration: Calibration, proba: Any, priors: Any = None, *,
                         predicted: Any = None, alpha: float = 0.01) -> PerformanceEstimate:
    """CBPE corrected for label shift.

    ``priors``: None estimates them from ``proba`` (``estimate_priors``) and corrects only for a shift that is
    significant and explained by re-weighting the classes; a PriorEstimate, a sequence in class order or a
    {class: prior} dict is used as given (``calibration.train_priors`` switches the correction off).
    ``predicted``: the labels the deployed model returned (default: argmax of ``proba``, what ``predict`` does).
    """
    calibrated = calibration.calibrate(proba)
    n, m = len(calibrated), calibration.n_heldout
    train = np.asarray(calibration.train_priors)
    if predicted is None:
        pred = np.asarray(proba, dtype=np.float64).argmax(axis=1)
    else:
        pred = _label_index(predicted, calibration.classes, "predicted labels")
        if len(pred) != n:
            raise ValueError(f"{n} probability rows but {len(pred)} predicted labels")
    estimate: PriorEstimate | None = None
    if priors is None:
        estimate = estimate_priors(calibration, proba, alpha=alpha)
        vec = np.asarray(estimate.priors) if estimate.usable else train
        cov = np.asarray(estimate.covariance) if estimate.usable else None
    else:
        if isinstance(priors, PriorEstimate):
            estimate = priors
            cov = np.asarray(priors.covariance) if priors.covariance else None
        else:
            cov = None
        vec = _prior_vector(calibration, priors)
    corrected = not np.allclose(vec, train, atol=1e-9)
    a = _expected_accuracy(calibrated, vec / train, pred)
    acc = float(a.mean())
    plain = acc if not corrected else float(_expected_accuracy(calibrated, np.ones_like(train), pred).mean())
    # Uncertainty of the estimated expected accuracy: rows sampled, priors estimated, calibration fitted on m rows.
    var = float(np.var(a)) / n
    if corrected and cov is not None and cov.size:
        grad = np.zeros(len(vec))
        for j in range(len(vec)):
            step = np.zeros(len(vec))
            step[j] = 1e-4
            shifted = np.clip(vec + step, 1e-12, None)
            grad[j] = (_expected_accuracy(calibrated, shifted / shifted.sum() / train, pred).mean() - acc) / 1e-4
        var += float(max(grad @ cov @ grad, 0.0))
    se = math.sqrt(var + acc * (1.0 - acc) / m)
    # A drop is tested against the same estimator on the held-out rows: the calibration map is shared, so its error
    # cancels and the held-out side adds only its rows' sampling variance.
    ref = calibration.expected_accuracy
    denom = math.sqrt(var + calibration.expected_accuracy_var / m)
    z = (ref - acc) / denom if denom > 0 else 0.0
    from scipy.special import ndtr

    return PerformanceEstimate(
        accuracy=acc,
        std_error=se,
        realised_spread=float(math.sqrt(float(np.sum(a * (1.0 - a)))) / n),
        reference_accuracy=float(ref),
        drop=float(ref - acc),
        z=float(z),
        p_value=float(1.0 - ndtr(z)),
        n=int(n),
        prior_corrected=bool(corrected),
        priors=[float(v) for v in vec],
        uncorrected_accuracy=plain,
        prior_estimate=None if estimate is None else estimate.to_dict(),
    )
