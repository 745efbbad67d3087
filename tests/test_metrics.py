"""Metrics against hand-computed values and reference formulas."""

import numpy as np
import pytest

from mottling.metrics import (bland_altman, cohen_kappa, confusion_matrix,
                              expected_calibration_error, exact_accuracy, icc_2_1, mae,
                              quadratic_weighted_kappa, within_one_accuracy)


def test_qwk_hand_table():
    # 3 classes; computed by hand: O = [[1,1,0],[0,1,0],[0,0,1]], weights (i-j)^2/4
    a = [0, 0, 1, 2]
    b = [0, 1, 1, 2]
    # observed weighted disagreement = 1 * 1/4 = 0.25
    # row marginals [2,1,1], col marginals [1,2,1], n=4 -> E = outer/4
    row, col = np.array([2, 1, 1]), np.array([1, 2, 1])
    e = np.outer(row, col) / 4
    w = (np.arange(3)[:, None] - np.arange(3)[None, :]) ** 2 / 4
    expected = 1 - 0.25 / (w * e).sum()
    assert quadratic_weighted_kappa(a, b, n_classes=3) == pytest.approx(expected)
    assert quadratic_weighted_kappa(a, b, n_classes=3) == pytest.approx(0.8)


def test_qwk_perfect_and_reversed():
    a = [0, 1, 2, 3, 4, 5]
    assert quadratic_weighted_kappa(a, a) == pytest.approx(1.0)
    assert quadratic_weighted_kappa(a, a[::-1]) == pytest.approx(-1.0)


def test_cohen_kappa_unweighted_known_value():
    a = [1] * 35 + [0] * 15
    b = [1] * 25 + [0] * 10 + [1] * 5 + [0] * 10
    # po = (25+10)/50 = 0.7; pa1=0.7, pb1=0.6 -> pe = .42+.12 = .54; k = (.7-.54)/.46
    assert cohen_kappa(a, b, n_classes=2) == pytest.approx((0.7 - 0.54) / 0.46)


def test_confusion_and_simple_scores():
    a, b = [0, 1, 2, 5], [0, 2, 2, 3]
    m = confusion_matrix(a, b)
    assert m.sum() == 4 and m[1, 2] == 1 and m[5, 3] == 1 and m[0, 0] == 1
    assert mae(a, b) == pytest.approx(0.75)
    assert exact_accuracy(a, b) == pytest.approx(0.5)
    assert within_one_accuracy(a, b) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        confusion_matrix([0, 6], [0, 1])


def test_ece_perfectly_calibrated_and_overconfident():
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    ece, bins = expected_calibration_error(probs, labels)
    assert ece == pytest.approx(0.0) and len(bins) == 10
    # always 0.9 confident, right half the time -> ECE 0.4
    probs = np.array([[0.9, 0.1]] * 4)
    ece, _ = expected_calibration_error(probs, labels)
    assert ece == pytest.approx(0.4)


def test_bland_altman_and_icc():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    ba = bland_altman(a, a + 0.5)
    assert ba["bias"] == pytest.approx(0.5) and ba["sd"] == pytest.approx(0.0) and ba["n"] == 4
    assert icc_2_1(a, a) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    t = rng.normal(size=50)
    icc = icc_2_1(t + rng.normal(0, 0.1, 50), t + rng.normal(0, 0.1, 50))
    assert 0.95 < icc <= 1.0
    assert icc_2_1(t, rng.normal(size=50)) < 0.4
