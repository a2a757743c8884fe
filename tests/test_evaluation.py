"""Confidence intervals and aggregate statistics."""

from __future__ import annotations

import numpy as np
import pytest

from lewm_rl.evaluation import interval, iqm, performance_profile, stratified_interval
from lewm_rl.metrics import class_frequencies, f1_scores


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm(np.array([0.0, 1, 2, 3, 4, 5, 6, 100])) == pytest.approx(np.mean([2, 3, 4, 5]))


def test_interval_contains_the_point_and_shrinks_with_data():
    rng = np.random.default_rng(0)
    small = interval(rng.normal(1.0, 1.0, 20))
    large = interval(rng.normal(1.0, 1.0, 2000))
    assert small.low <= small.point <= small.high
    assert (large.high - large.low) < (small.high - small.low)
    assert large.low < 1.0 < large.high
    assert interval(np.ones(5)).low == 1.0
    with pytest.raises(ValueError, match="allowed: mean, iqm"):
        interval(np.ones(3), "median")


def test_stratified_interval_resamples_within_tasks():
    scores = {"a": np.array([0.0, 0.0, 0.0, 0.0]), "b": np.array([1.0, 1.0, 1.0, 1.0])}
    ci = stratified_interval(scores, "mean")
    # Every resample keeps four runs of each task: the pooled mean is always exactly 0.5.
    assert ci.point == ci.low == ci.high == 0.5
    noisy = {"a": np.array([0.0, 1.0, 0.0, 1.0]), "b": np.array([1.0, 1.0, 1.0, 1.0])}
    ci = stratified_interval(noisy, "mean")
    assert ci.low < 0.75 < ci.high


def test_performance_profile_counts_runs_above_each_threshold():
    prof = performance_profile(np.array([0.1, 0.5, 0.9, 1.2]), np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(prof, [1.0, 0.5, 0.25])


def test_f1_exact_on_a_tiny_case():
    y_true = np.array([0, 0, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 0])
    f = f1_scores(y_true, y_pred, 7)
    # class 0: p=1/2 r=1/2 f=1/2; class 1: p=2/3 r=1 f=0.8; class 2: p=0 r=0 f=0
    assert f["accuracy"] == pytest.approx(3 / 5)
    assert f["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert f["weighted_f1"] == pytest.approx((2 * 0.5 + 2 * 0.8 + 0.0) / 5)
    np.testing.assert_allclose(class_frequencies(y_true, 3), [0.4, 0.4, 0.2])
