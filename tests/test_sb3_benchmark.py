"""The SB3 sample-efficiency benchmark's arithmetic: steps to threshold, censoring, the verdict."""

from __future__ import annotations

import pytest

from benchmarks import sb3 as B


def run(arm, seed, budget, curve):
    return {"arm": arm, "seed": seed, "steps": budget, "curve": curve, "final": curve[-1][1]}


def test_steps_to_is_the_first_evaluation_at_or_above_the_target():
    curve = [(100, 0.5), (200, 0.8), (300, 0.7), (400, 0.9)]
    assert B.steps_to(curve, 0.8) == 200
    assert B.steps_to(curve, 0.85) == 400
    assert B.steps_to(curve, 1.0) is None


def test_summary_counts_censored_seeds_as_their_budget_and_bounds_the_ratio():
    cfg = B.Config(seeds=2)
    runs = [run("raw", 0, 1000, [(500, 1.0), (1000, 1.0)]),        # never reaches 1.6: censored
            run("raw", 1, 1000, [(500, 1.0), (1000, 1.7)]),        # reaches at 1000
            run("imagination", 0, 400, [(200, 1.6), (400, 1.0)]),  # reaches at 200
            run("imagination", 1, 400, [(200, 1.0), (400, 1.9)])]  # reaches at 400
    s = B.summarise(cfg, runs, oracle=2.0)  # target 0.8 x 2.0 = 1.6
    assert s["target_return"] == pytest.approx(1.6)
    raw, imag = s["arms"]["raw"], s["arms"]["imagination"]
    assert raw["steps_to_threshold"] == [None, 1000] and raw["censored"] == 1
    assert imag["steps_to_threshold"] == [200, 400] and imag["censored"] == 0
    assert raw["steps_mean"]["point"] == 1000 and imag["steps_mean"]["point"] == 300
    assert s["imagination_over_raw"] == pytest.approx(0.3)
    # a censored raw seed makes raw's figure a lower bound, so the ratio an upper bound: 0.3 >
    # 0.2 settles nothing
    assert s["ratio_is"] == "upper bound" and s["target_met"] is None


def test_cells_share_the_grid_names_of_the_suite():
    from benchmarks.suite import SuiteConfig, trained_cells

    sb3 = {c.name for c in B.cells(B.Config(seeds=1, raw_steps=6000, belief_steps=6000,
                                             imagination_steps=6000))}
    suite = {c.name for c in trained_cells(SuiteConfig(envs=("SocialNegotiation-v0",), seeds=1,
                                                       steps=6000))}
    assert len(sb3) == 3 and sb3 <= suite


def test_arms_select_cells_without_changing_their_names():
    every = {c.name for c in B.cells(B.Config(seeds=1))}
    raw = B.cells(B.Config(seeds=1, arms=("raw",)))
    assert [c.agent for c in raw] == ["ppo"] and {c.name for c in raw} <= every
    with pytest.raises(ValueError, match="allowed: raw, belief, imagination"):
        B.Config(arms=("dreamer",))
