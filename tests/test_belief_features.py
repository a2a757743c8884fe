"""The belief-features benchmark's table: exact on hand-built curves."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.belief_features import BeliefConfig, cells, markdown, side_by_side


def test_side_by_side_averages_each_arm_at_the_steps_both_evaluated():
    belief = [(np.array([10, 20, 30]), np.array([1.0, 2.0, 3.0])),
              (np.array([10, 20, 30]), np.array([3.0, 4.0, 5.0]))]
    raw = [([10, 20], [0.5, 1.5]), ([10, 20, 40], [1.5, 2.5, 9.0])]
    rows = side_by_side(belief, raw)
    assert [r["steps"] for r in rows] == [10, 20]  # 30 and 40: one arm has no evaluation
    assert rows[1] == pytest.approx({"steps": 20, "belief": 3.0, "raw": 2.0, "belief_s0": 2.0,
                                     "belief_s1": 4.0})
    text = markdown(BeliefConfig(), rows, greedy=2.5, raw_seeds=2, command="cmd")
    assert "| 20 | 2.000 | 4.000 | 3.000 | 2.000 |" in text
    assert "at 20 env steps PPO earns 3.000 on the belief and 2.000 on raw" in text


def test_cells_are_ppo_on_the_belief_at_the_named_train_ratio():
    from lewm_rl.train import TrainConfig

    for cell in cells(BeliefConfig()):
        config = TrainConfig(env=cell.env, agent=cell.agent, seed=cell.seed, steps=cell.steps,
                             **dict(cell.overrides))
        config.validate()
        assert (config.agent, config.train_ratio, config.eval_every) == ("ppo-belief", 4.0,
                                                                        25_000)
        assert config.wm.decoder_targets == "symlog"  # the earlier recipe's world model
    for cell in cells(BeliefConfig(world_model="earlier+standardised")):
        config = TrainConfig(env=cell.env, agent=cell.agent, seed=cell.seed, steps=cell.steps,
                             **dict(cell.overrides))
        assert config.wm.decoder_targets == "standardised"
        assert cell.name not in {c.name for c in cells(BeliefConfig())}
    with pytest.raises(SystemExit, match="unknown recipe 'nope' for --world-model"):
        cells(BeliefConfig(world_model="nope"))


def test_r_squared_is_one_for_a_linear_field_zero_for_noise_and_nan_for_a_constant():
    from benchmarks.belief_features import r_squared

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = np.c_[2 * x[:, 0] - x[:, 2] + 1, rng.normal(size=400), np.full(400, 0.5)]
    train = np.arange(400) % 2 == 0
    r2 = r_squared(x, y, train, ridge=1e-6)
    assert r2[0] == pytest.approx(1.0, abs=1e-6)
    assert abs(r2[1]) < 0.05 and np.isnan(r2[2])


def test_probe_table_shows_linear_and_decoded_per_run_and_dashes_constants():
    from benchmarks.belief_features import probe_table

    lines = probe_table({"a s0": {"round": {"linear": 0.5, "decoded": 0.75},
                                  "count": {"linear": np.nan, "decoded": np.nan}}})
    assert lines[0] == "| field | a s0 |"
    assert lines[2:] == ["| round | 0.50 / 0.75 |", "| count | - / - |"]
