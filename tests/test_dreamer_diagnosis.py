"""The Dreamer diagnosis' statistics: exact answers on hand-made moves."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.dreamer_diagnosis import moves_by_kind
from lewm_rl.envs import negotiation_core as C


def test_moves_by_kind_splits_offers_accepts_and_walk_aways():
    actions = np.array([0, 5, C.NUM_OFFER_ACTIONS - 1, C.ACCEPT])  # three offers, one accept
    predicted = np.array([0.5, 0.3, 0.1, 0.9])
    earned = np.array([0.0, 0.6, 0.0, 0.7])
    out = moves_by_kind(actions, predicted, earned)
    assert set(out) == {"offer", "accept"}  # never walked away: left out
    assert out["offer"]["share"] == pytest.approx(0.75)
    assert out["offer"]["predicted"] == pytest.approx(0.3)
    assert out["offer"]["earned"] == pytest.approx(0.2)
    assert out["accept"] == pytest.approx({"share": 0.25, "predicted": 0.9, "earned": 0.7})
    assert moves_by_kind(np.array([C.WALK_AWAY]), np.zeros(1), np.zeros(1))["walk"]["share"] == 1


def test_report_shows_the_heads_spread_and_the_real_and_imagined_episode_lengths():
    from benchmarks.dreamer_diagnosis import markdown

    base = {"return": [1.0, 1.5], "final_real": 1.4, "final_imagined": 2.0, "final_gap": 0.6,
            "final_corr": 0.1, "reward_error_paid": 0.05, "end_recall": 0.8,
            "critic_error": 0.1, "entropy": 3.0,
            "final_moves": {"offer": {"share": 1.0, "predicted": 0.3, "earned": 0.2}}}
    rows = [{**base, "recipe": "earlier+pessimism", "seed": 0, "reward_std": 0.047,
             "disagreement": 0.12,
             "final_length": 5.9, "final_imagined_length": 7.4},
            {**base, "recipe": "earlier", "seed": 0, "reward_std": float("nan")}]
    report = {"command": "python -m benchmarks.dreamer_diagnosis", "machine": "test",
              "references": {"random": 0.7, "greedy": 2.1, "oracle": 2.2}, "rows": rows,
              "config": {"env": "SocialNegotiation-v1", "steps": 12000, "eval_episodes": 64,
                         "episodes": 200, "recipes": ["earlier+pessimism", "earlier"],
                         "one_seed": []}}
    text = markdown(report)
    first, second = [ln for ln in text.splitlines() if ln.startswith("| earlier")][:2]
    assert first.endswith("| 3.00 | 0.047 | 0.120 |") and second.endswith("| 3.00 | - | - |")
    moves = [ln for ln in text.splitlines() if ln.startswith("| earlier")][2:]
    assert moves[0].endswith("| never | never | 5.9 / 7.4 |")
    assert moves[1].endswith("| never | never | - |")


def test_endings_count_the_ends_the_model_expects_against_those_that_happen():
    from benchmarks.dreamer_diagnosis import endings

    # two episodes of 3 and 2 moves; the model gives every move a 10 % chance of ending it
    played = {"step_cont_predicted": np.full(5, 0.9),
              "step_terminal": np.array([False, False, True, False, True])}
    out = endings(played, 2)
    assert out["predicted"] == pytest.approx(0.25)  # 5 x 0.1 / 2 episodes
    assert out["real"] == 1.0
    assert out["on_ends"] == pytest.approx(0.1) and out["elsewhere"] == pytest.approx(0.1)
    played["step_cont_predicted"] = np.array([1.0, 1.0, 0.2, 1.0, 0.4])
    out = endings(played, 2)
    assert out["predicted"] == pytest.approx(0.7)
    assert out["on_ends"] == pytest.approx(0.7) and out["elsewhere"] == pytest.approx(0.0)


def test_report_shows_the_endings_under_each_way_of_acting():
    from benchmarks.dreamer_diagnosis import markdown

    e = {"predicted": 0.3, "real": 1.0, "on_ends": 0.12, "elsewhere": 0.04, "return": 1.49}
    row = {"return": [1.0, 1.5], "final_real": 1.4, "final_imagined": 2.0, "final_gap": 0.6,
           "final_corr": 0.1, "reward_error_paid": 0.05, "end_recall": 0.8,
           "critic_error": 0.1, "entropy": 3.0, "recipe": "earlier", "seed": 1,
           "final_endings": {"mode": e, "sample": {**e, "predicted": 0.56, "return": 1.335},
                             "random": {**e, "predicted": 1.18, "return": 0.7}}}
    report = {"command": "c", "machine": "test", "rows": [row],
              "references": {"random": 0.7, "greedy": 2.1, "oracle": 2.2},
              "config": {"env": "SocialNegotiation-v1", "steps": 12000, "eval_episodes": 64,
                         "episodes": 200, "recipes": ["earlier"], "one_seed": []}}
    line = [ln for ln in markdown(report).splitlines() if ln.startswith("| earlier")][-1]
    assert line == ("| earlier | 1 | 0.30 / 1.00 | 0.56 / 1.00 | 1.18 / 1.00 | 0.120 / 0.040 | "
                    "1.490 | 1.335 | 0.700 |")


def test_endings_by_the_emotion_the_partner_felt():
    from benchmarks.dreamer_diagnosis import endings, markdown

    played = {"step_cont_predicted": np.array([0.9, 0.5, 1.0, 0.8]),
              "step_terminal": np.array([True, False, False, True]),
              "emotion_true": np.array([[3], [3], [0], [6]])}  # anger, anger, neutral, fear
    by = endings(played, 2)["by_emotion"]
    assert set(by) == {"anger", "neutral", "fear"}
    assert by["anger"] == pytest.approx({"share": 0.5, "real": 0.5, "predicted": 0.3})
    assert by["fear"] == pytest.approx({"share": 0.25, "real": 1.0, "predicted": 0.2})
    e = {**endings(played, 2), "return": 1.0}
    row = {"return": [1.0], "final_real": 1.0, "final_imagined": 2.0, "final_gap": 1.0,
           "final_corr": 0.0, "reward_error_paid": 0.05, "end_recall": 0.8,
           "critic_error": 0.1, "entropy": 3.0, "recipe": "earlier", "seed": 0,
           "final_endings": {"mode": e}}
    report = {"command": "c", "machine": "test", "rows": [row],
              "references": {"random": 0.7, "greedy": 2.1, "oracle": 2.2},
              "config": {"env": "SocialNegotiation-v1", "steps": 12000, "eval_episodes": 64,
                         "episodes": 2, "recipes": ["earlier"], "one_seed": []}}
    line = [ln for ln in markdown(report).splitlines() if ln.startswith("| earlier")][-1]
    # columns in label order: neutral, anger, fear
    assert line == "| earlier | 0 | 25% / 0.00 / 0.00 | 50% / 0.50 / 0.30 | 25% / 1.00 / 0.20 |"


def test_every_recipe_is_a_valid_run_named_by_what_it_changes():
    from benchmarks.dreamer_diagnosis import RECIPES, DiagnosisConfig, cells
    from lewm_rl.train import TrainConfig

    named = cells(DiagnosisConfig(recipes=tuple(RECIPES), one_seed=()))
    assert len(named) == 2 * len(RECIPES)
    assert len({c.name for _, c in named}) == len(named)  # no two recipes train the same cell
    for recipe, cell in named:
        config = TrainConfig(env=cell.env, seed=cell.seed, steps=cell.steps,
                             **dict(cell.overrides))
        config.validate()
        _, wm, agent, *train = RECIPES[recipe]
        for field, value in {**wm, **agent, **(train[0] if train else {})}.items():
            where = (config.wm if field in wm else config.dreamer if field in agent else config)
            assert getattr(where, field) == value, (recipe, field)
    simulated = {r for r, c in named if dict(c.overrides).get("imagination") == "simulator"}
    assert simulated == {r for r in RECIPES if "simulator" in r}


def test_a_judge_rates_the_actors_own_episodes_with_its_own_model(tmp_path):
    import torch

    from benchmarks.dreamer_diagnosis import Judged, _judged_table
    from lewm_rl import train as T

    def learner(seed: int, reward: float, cont: float):
        torch.manual_seed(seed)
        cfg = T.resolved(T.TrainConfig(env="SocialNegotiation-v1", num_envs=2, prefill=16,
                                       seq_len=8, progress=False, seed=seed,
                                       run_dir=str(tmp_path / str(seed)),
                                       wm=T.WorldModelConfig(deter=32, hidden=32, embed=32),
                                       dreamer=T.DreamerConfig(hidden=32)))
        (ln,) = T.Trainer(cfg, tmp_path / str(seed)).learners
        with torch.no_grad():  # the model expects `reward` for every move, goes on with `cont`
            ln.wm.reward_head[-1].weight.zero_()
            ln.wm.reward_head[-1].bias.fill_(reward)
            ln.wm.cont_head[-1].weight.zero_()
            ln.wm.cont_head[-1].bias.fill_(float(np.log(cont / (1 - cont))))
        return cfg, ln

    cfg, actor = learner(0, 0.25, 0.8)
    _, judge = learner(1, 0.4, 0.7)
    alone = T.play_episodes([actor], cfg.env, {}, 6, one_step=True)
    judged = T.play_episodes([Judged(actor, judge, seed=5)], cfg.env, {}, 6, one_step=True)
    # the actor's episodes and moves, whatever the judge draws; the judge's expectations
    np.testing.assert_array_equal(judged["returns"], alone["returns"])
    np.testing.assert_array_equal(judged["step_actions"], alone["step_actions"])
    np.testing.assert_allclose(alone["step_reward_predicted"], 0.25, rtol=1e-6)
    np.testing.assert_allclose(judged["step_reward_predicted"], 0.4, rtol=1e-6)
    np.testing.assert_allclose(judged["step_cont_predicted"], 0.7, rtol=1e-5)
    row = {"actor": "a", "judge": "j", "seed": 0, "real": 1.5, "predicted": 1.2,
           "moves": {"offer": {"share": 1.0, "predicted": 0.3, "earned": 0.2}},
           "endings": {"predicted": 0.8, "real": 1.0}}
    assert _judged_table([row], 200)[-1] == ("| a | j | 0 | 1.500 | 1.200 | 100% / 0.300 / "
                                             "0.200 | never | never | 0.80 / 1.00 |")
    assert _judged_table([], 200) == []


def test_every_speed_recipe_is_a_valid_run_and_earlier_pins_the_earlier_defaults():
    from benchmarks.dreamer_speed import RECIPES, _config

    configs = {r: _config("SocialNegotiation-v1", "lewm", r) for r in RECIPES}
    for config in configs.values():
        config.validate()
    assert (configs["earlier"].dreamer.compute_dtype, configs["earlier"].dreamer.horizon) == (
        "float32", 15)
    assert (configs["default"].dreamer.compute_dtype, configs["default"].dreamer.horizon) == (
        "auto", 8)
    assert (configs["batch32x16"].batch_size, configs["batch32x16"].seq_len) == (32, 16)
    assert configs["dreamerv3-heads"].dreamer.horizon == 15
