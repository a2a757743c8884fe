"""Loading a trained run (``lewm_rl.load_run``) and ``python -m lewm_rl.evaluate``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import lewm_rl
from lewm_rl import train as T


@pytest.fixture(scope="module", params=["lewm", "blind"])
def tiny_run(request, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp(request.param)
    cfg = T.TrainConfig(world_model=request.param, steps=192, prefill=64, num_envs=4,
                        batch_size=4, seq_len=8, train_ratio=8, eval_every=10_000,
                        checkpoint_every=10_000, eval_episodes=4, eval_populations=("stoic",),
                        threads=1, progress=False, run_dir=str(run_dir),
                        wm=T.WorldModelConfig(deter=32, hidden=32, embed=32),
                        dreamer=T.DreamerConfig(hidden=32, horizon=4))
    T.train(cfg)
    return run_dir


def test_load_run_rebuilds_the_trained_models(tiny_run):
    wm, agent, config = lewm_rl.load_run(tiny_run)
    saved = torch.load(tiny_run / "checkpoint.pt", weights_only=True)["learners"][0]
    assert config.world_model == tiny_run.name.rstrip("0123456789")
    for k, v in saved["wm"].items():
        assert torch.equal(wm.state_dict()[k], v), k
    assert torch.equal(agent.actor.state_dict()["0.weight"], saved["agent"]["actor"]["0.weight"])
    run = lewm_rl.load_run(tiny_run)
    assert (run.learners[0].probe is None) == bool(wm.P)  # the blind model carries a probe


def test_a_loaded_run_evaluates_as_training_did_every_time(tiny_run):
    from lewm_rl.evaluate import evaluate_run

    results = json.loads((tiny_run / "results.json").read_text())
    returns = []
    for seed in range(2):
        torch.manual_seed(seed)
        res = evaluate_run(lewm_rl.load_run(tiny_run), "default", 4)
        returns.append(res["return"].point)
        assert res["emotion_accuracy"] is not None  # both models read the partner's emotion
    assert returns[0] == returns[1]
    assert returns[0] == pytest.approx(results["eval/episode_return"], abs=1e-6)
    assert "eval/emotion_accuracy" in results and "eval/reference/oracle" in results


def test_evaluate_cli_prints_returns_references_and_a_transcript(tiny_run, capsys):
    from lewm_rl.evaluate import main

    assert main([str(tiny_run), "--episodes", "3", "--population", "volatile",
                 "--render", "ansi"]) == 0
    out = capsys.readouterr().out
    for text in ("population volatile", "oracle", "greedy", "normalised return",
                 "emotion read-out", "model reads", "deal 1/4"):
        assert text in out, text


def test_evaluate_cli_names_a_missing_run(tmp_path, capsys):
    from lewm_rl.evaluate import main

    assert main([str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config.json" in err[0]


def test_read_scalars_keeps_the_last_value_of_a_repeated_step_and_is_empty_when_never_logged(
        tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    from lewm_rl.tensorboard import read_scalars

    with SummaryWriter(str(tmp_path)) as w:  # a run, then its resume from the step-2 checkpoint
        for step, value in ((1, 0.1), (2, 0.2), (3, 0.3), (3, 0.35), (4, 0.4)):
            w.add_scalar("eval/episode_return", value, step)
    steps, values, wall = read_scalars(tmp_path, "eval/episode_return")
    assert steps.tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(values, [0.1, 0.2, 0.35, 0.4], rtol=1e-6)
    assert len(wall) == 4 and (np.diff(wall) >= 0).all()
    steps, values, wall = read_scalars(tmp_path, "never/logged")
    assert steps.size == values.size == wall.size == 0
