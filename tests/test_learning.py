"""The slow learning test: LEWM-Dreamer beats random by a clear margin within a CI-sized budget
(the training loop as a user runs it, evaluated on the fixed seeds)."""

from __future__ import annotations

import json

import pytest

from lewm_rl.train import TrainConfig, train

# The default agent and world model; only the budget is CI-sized (4,500 env steps, about 3 minutes
# on one core), with evaluation and checkpoints at the end alone.
BUDGET = dict(steps=4_500, eval_every=100_000, checkpoint_every=100_000, eval_episodes=64,
              eval_populations=(), threads=1, progress=False)


@pytest.mark.slow
def test_lewm_dreamer_beats_random_on_the_negotiation(tmp_path):
    results = train(TrainConfig(env="SocialNegotiation-v1", run_dir=str(tmp_path), **BUDGET))
    refs = json.loads((tmp_path / "references.json").read_text())["default"]
    # random earns 0.73 on these 64 evaluation episodes; a learner that has not learned the
    # values of the splits stays there
    assert results["eval/episode_return"] > refs["random"] + 0.25, (results, refs)
