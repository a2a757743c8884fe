"""What-if imagination on the real envs: forcing anger makes the partner walk away, only where
emotions drive behaviour."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import lewm_rl  # noqa: F401
from lewm_rl.data import fill_replay, to_torch
from lewm_rl.envs import affect
from lewm_rl.envs import negotiation_core as C
from lewm_rl.world_models import (
    EmotionIntervention,
    WorldModelConfig,
    build_world_model,
    fit_step,
    make_optimizer,
)

CFG = WorldModelConfig(deter=64, hidden=64, embed=64, stoch=8, classes=8, label_key="emotion")


class Behaviour:
    """Random offers and tones, never accepting or walking itself: the partner's acts vary."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def reset(self, n):
        pass

    def reset_rows(self, rows):
        pass

    def act(self, obs):
        return self.rng.integers(0, C.NUM_OFFER_ACTIONS, len(obs["task"]))


def walk_probability(env_id: str) -> dict[int, float]:
    torch.manual_seed(0)
    env = gym.make(env_id)
    replay = fill_replay(env_id, Behaviour(0), 12_000, seed=0, num_envs=16)
    wm = build_world_model(CFG, env.observation_space, env.action_space,
                           env.unwrapped.emotion_space, behaviour_key="partner_act")
    opt = make_optimizer(wm)
    rng = np.random.default_rng(0)
    for _ in range(700):
        fit_step(wm, opt, to_torch(replay.sample(16, 24, rng)))
    batch = to_torch(replay.sample(64, 24, np.random.default_rng(1)))
    with torch.no_grad():
        states, _, _ = wm.observe({m.key: batch[m.key] for m in wm.mods}, batch["action"],
                                  batch["is_first"])
        start = states[:, 12:].flatten()  # mid-episode beliefs
        offer = torch.full((len(start.deter),), int(C.encode_offer(12, 0)))
        out = {}
        for emotion in (affect.NEUTRAL, affect.ANGER):
            probs = []
            for seed in range(4):
                traj = wm.imagine(start, lambda f: offer, 1, EmotionIntervention(emotion, step=1),
                                  generator=torch.Generator().manual_seed(seed))
                probs.append(traj.behaviour[1, :, 0, C.ACT_WALK].mean().item())
            out[emotion] = float(np.mean(probs))
    return out


@pytest.mark.slow
def test_forcing_anger_raises_walk_away_only_where_emotion_drives_behaviour():
    subjective = walk_probability("SocialNegotiation-v0")
    objective = walk_probability("ObjectiveNegotiation-v0")
    lift_s = subjective[affect.ANGER] - subjective[affect.NEUTRAL]
    lift_o = objective[affect.ANGER] - objective[affect.NEUTRAL]
    assert lift_s > 0.15, subjective  # anger walks away with probability 0.5 per round
    assert abs(lift_o) < 0.05, objective
    assert lift_s > 4 * abs(lift_o)
