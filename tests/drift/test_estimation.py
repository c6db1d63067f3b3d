from __future__ import annotations

import json

import numpy as np
import pytest

from airflow_agentic.drift.estimation import (Calibration, PerformanceEstimate, PriorEstimate, estimate_performance,
                                              estimate_priors, fit_calibration, prior_corrected)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def draw(rng: np.random.Generator, n: int, positive: float, spread: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian classes on a line, class 1 ``spread`` times wider; the share of class 1 is ``positive``."""
    y = (rng.random(n) < positive).astype(int)
    x = np.where(y == 1, 1.0 + spread * rng.normal(size=n), -1.0 + rng.normal(size=n))
    return x, y


def champion(x: np.ndarray, spread: float = 1.0) -> np.ndarray:
    """An over-confident, slightly biased model: the true balanced-prior log-odds times 3, plus 0.3."""
    logodds = -np.log(spread) - (x - 1.0) ** 2 / (2 * spread ** 2) + (x + 1.0) ** 2 / 2
    p1 = _sigmoid(3.0 * logodds + 0.3)
    return np.column_stack([1.0 - p1, p1])


def fitted(rng: np.random.Generator, spread: float = 1.0, n: int = 1000) -> Calibration:
    x, y = draw(rng, n, 0.5, spread)
    return fit_calibration(champion(x, spread), y, [0, 1])


def test_calibration_corrects_overconfidence_and_survives_json():
    rng = np.random.default_rng(0)
    cal = fitted(rng)
    assert cal.log_loss_calibrated < cal.log_loss_raw - 0.05
    assert 2.0 < cal.temperature < 4.5  # the champion's logits are 3x too large
    assert abs(cal.expected_accuracy - cal.reference_accuracy) < 0.01
    assert abs(sum(cal.train_priors) - 1.0) < 1e-12 and np.isclose(np.sum(cal.confusion), 1.0)
    again = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    x, _ = draw(rng, 200, 0.5)
    np.testing.assert_allclose(again.calibrate(champion(x)), cal.calibrate(champion(x)))
    assert len(json.dumps(cal.to_dict())) < 2000  # it goes into profiles, traces and XCom

    iso = fit_calibration(champion(x), (x > 0).astype(int), [0, 1], method="isotonic")
    assert iso.method == "isotonic" and iso.knots
    assert np.allclose(iso.calibrate(champion(x)).sum(axis=1), 1.0)


def test_bbse_recovers_a_prior_shift_from_labels_and_from_probabilities():
    rng = np.random.default_rng(1)
    cal = fitted(rng)
    x, _ = draw(rng, 2000, 0.1)
    proba = champion(x)
    from_labels = estimate_priors(cal, proba.argmax(axis=1))
    from_proba = estimate_priors(cal, proba)
    for est in (from_labels, from_proba):
        assert abs(est.priors[1] - 0.1) < 0.04, est.priors
        assert est.significant and est.p_value < 1e-6 and 0.3 < est.shift < 0.5
        assert est.std_error[1] < 0.04
    assert from_labels.method == "bbse" and from_labels.fit_p_value is None
    assert from_proba.consistent and from_proba.usable  # a pure label shift fits the label-shift model
    assert PriorEstimate.from_dict(json.loads(json.dumps(from_proba.to_dict()))) == from_proba

    x, _ = draw(rng, 2000, 0.5)
    same = estimate_priors(cal, champion(x))
    assert not same.significant and abs(same.priors[1] - 0.5) < 0.05


def test_bbse_three_classes():
    rng = np.random.default_rng(2)
    centres = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])

    def batch(n: int, priors: list[float]) -> tuple[np.ndarray, np.ndarray]:
        y = rng.choice(3, size=n, p=priors)
        x = centres[y] + rng.normal(size=(n, 2))
        logits = -0.5 * ((x[:, None, :] - centres[None]) ** 2).sum(axis=2)
        z = 2.0 * logits
        p = np.exp(z - z.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True), y

    proba, y = batch(1000, [1 / 3] * 3)
    cal = fit_calibration(proba, np.array(["a", "b", "c"])[y], ["a", "b", "c"])
    proba, _ = batch(2000, [0.6, 0.3, 0.1])
    est = estimate_priors(cal, proba)
    np.testing.assert_allclose(est.priors, [0.6, 0.3, 0.1], atol=0.05)
    assert estimate_priors(cal, np.array(["a", "b", "c"])[proba.argmax(axis=1)]).significant


def test_cbpe_error_is_small_on_a_stable_stream():
    rng = np.random.default_rng(3)
    cal = fitted(rng)
    errors = []
    for _ in range(10):
        x, y = draw(rng, 1000, 0.5)
        proba = champion(x)
        est = estimate_performance(cal, proba)
        assert isinstance(est, PerformanceEstimate) and not est.prior_corrected
        assert not est.drop_detected(0.01, 0.02)
        errors.append(abs(est.accuracy - np.mean(proba.argmax(axis=1) == y)))
        assert 0.005 < est.std_error < 0.03
    assert np.mean(errors) < 0.02
    json.dumps(est.to_dict())


def test_label_shift_correction_beats_plain_cbpe_under_prior_shift():
    rng = np.random.default_rng(4)
    spread = 2.0  # asymmetric classes: the champion's accuracy depends on the class mix
    cal = fitted(rng, spread)
    corrected, plain, flagged = [], [], 0
    for _ in range(5):
        x, y = draw(rng, 1000, 0.85, spread)
        proba = champion(x, spread)
        realised = np.mean(proba.argmax(axis=1) == y)
        est = estimate_performance(cal, proba)
        assert est.prior_corrected and est.prior_estimate["significant"] and est.prior_estimate["consistent"]
        corrected.append(abs(est.accuracy - realised))
        plain.append(abs(est.uncorrected_accuracy - realised))
        flagged += est.drop_detected(0.05, 0.02)
        # given priors are used as they are; the training priors switch the correction off
        assert estimate_performance(cal, proba, priors=cal.train_priors).accuracy == pytest.approx(
            est.uncorrected_accuracy)
    assert np.mean(corrected) < 0.02 and np.mean(corrected) < 0.5 * np.mean(plain)
    assert flagged >= 4  # the accuracy drop is seen before any label arrives

    # the prior-corrected champion decides better under the new priors
    x, y = draw(rng, 4000, 0.1, spread)
    proba = champion(x, spread)
    adjusted = prior_corrected(proba, cal, {0: 0.9, 1: 0.1})
    assert np.allclose(adjusted.sum(axis=1), 1.0)
    assert np.mean(adjusted.argmax(axis=1) == y) > np.mean(proba.argmax(axis=1) == y) + 0.01
    same = prior_corrected(proba, cal, estimate_priors(cal, proba))
    assert np.mean(same.argmax(axis=1) == y) > np.mean(proba.argmax(axis=1) == y)


def test_bad_input_is_refused_with_clear_errors():
    rng = np.random.default_rng(5)
    x, y = draw(rng, 400, 0.5)
    proba = champion(x)
    with pytest.raises(ValueError, match="400 probability rows but 399 labels"):
        fit_calibration(proba, y[:-1], [0, 1])
    with pytest.raises(ValueError, match="unknown to the calibration: \\['2'\\]"):
        fit_calibration(proba, np.where(np.arange(400) == 7, 2, y), [0, 1])
    bad = proba.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite values in 1 row"):
        fit_calibration(bad, y, [0, 1])
    with pytest.raises(ValueError, match="one class only"):
        fit_calibration(proba, np.zeros(400, dtype=int), [0, 1])
    with pytest.raises(ValueError, match="at least two classes"):
        fit_calibration(proba[:, :1], y, [0])
    with pytest.raises(ValueError, match="3 columns but the calibration knows 2"):
        fit_calibration(np.full((400, 3), 1 / 3), y, [0, 1])
    with pytest.raises(ValueError, match="sum to 1"):
        fit_calibration(proba * 0.5, y, [0, 1])
    with pytest.raises(ValueError, match="unknown calibration method"):
        fit_calibration(proba, y, [0, 1], method="spline")

    cal = fit_calibration(proba, y, [0, 1])
    with pytest.raises(ValueError, match="predicted labels hold classes unknown"):
        estimate_priors(cal, np.array(["0", "1", "yes"]))
    with pytest.raises(ValueError, match="NaN"):
        estimate_performance(cal, bad)
    with pytest.raises(ValueError, match="no rows"):
        estimate_performance(cal, np.zeros((0, 2)))
    with pytest.raises(ValueError, match="400 probability rows but 3 predicted labels"):
        estimate_performance(cal, proba, predicted=[0, 1, 1])
    with pytest.raises(ValueError, match="need 2 priors, got 3"):
        prior_corrected(proba, cal, [0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match="not all zero"):
        prior_corrected(proba, cal, [0.0, 0.0])
    with pytest.raises(ValueError, match="unknown to the calibration"):
        prior_corrected(proba, cal, {"cat": 1.0})
