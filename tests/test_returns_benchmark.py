"""The returns benchmark's statistics: exact answers on hand-made curves."""

from __future__ import annotations

import pytest

from benchmarks.returns import (
    ReturnsConfig,
    budget,
    cell,
    censored_median,
    ratio_interval,
    steps_to_reach,
)


def test_steps_to_reach_is_the_first_evaluation_at_or_above_the_target():
    steps = [500, 1000, 1500, 2000]
    assert steps_to_reach(steps, [0.5, 1.9, 2.0, 1.0], 2.0) == 1500.0  # "at" counts
    assert steps_to_reach(steps, [0.5, 2.5, 1.0, 3.0], 2.0) == 1000.0  # first, not best
    assert steps_to_reach(steps, [0.5, 1.0, 1.5, 1.9], 2.0) is None  # censored


def test_censored_median_counts_misses_at_the_budget_and_says_so():
    out = censored_median([1000.0, 2000.0, 3000.0], 12_000)
    assert out["median"] == 2000.0 and out["reached"] == 3 and not out["censored"]
    assert 1000.0 <= out["low"] <= out["median"] <= out["high"] <= 3000.0
    out = censored_median([1000.0, None, None], 12_000)
    assert out["median"] == 12_000.0 and out["censored"] and out["reached"] == 1


def test_ratio_of_medians():
    r = ratio_interval([1000.0, 1000.0, 1000.0], [10_000.0, 10_000.0, 10_000.0])
    assert r == {"ratio": 0.1, "low": 0.1, "high": 0.1}


def test_budgets_and_cells_per_arm():
    cfg = ReturnsConfig(steps=12_000, model_free_steps=300_000, evaluations=24)
    assert budget(cfg, "lewm-dreamer") == 12_000 and budget(cfg, "recurrent-ppo") == 300_000
    c = cell(cfg, "SocialNegotiation-v1", "ppo", 3)
    assert (c.agent, c.seed, c.steps) == ("ppo", 3, 300_000)
    assert dict(c.overrides)["eval_every"] == 12_500
    assert cell(cfg, "SocialNegotiation-v1", "blind-dreamer", 0).world_model == "blind"
    with pytest.raises(ValueError, match="unknown arm"):
        ReturnsConfig(arms=("sac",))
