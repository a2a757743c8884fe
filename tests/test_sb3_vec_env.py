"""The batched vector envs under SB3's VecEnv contract, and Gymnasium's partial reset under it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

import lewm_rl  # noqa: F401  (registers the ids)
from lewm_rl.agents.sb3 import GymnasiumVecEnv
from lewm_rl.envs.wrappers import FilterEmotionCuesVector


def _vec(env_id: str, n: int, **kwargs) -> gym.vector.VectorEnv:
    return gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", **kwargs)


@pytest.mark.parametrize(("env_id", "kwargs"), [
    ("SocialNegotiation-v0", {"rules": ("accept_first", "walk_ends_relationship")}),
    ("PublicGoods-v0", {})])
def test_matches_dummy_vec_env_over_single_envs(env_id, kwargs):
    """Same seeds and actions: the same observations, rewards, dones and terminal observations as
    SB3's DummyVecEnv stepping one Gymnasium env per sub-environment (same-step autoreset; with
    walk-aways ending the relationship, episodes of different lengths)."""
    n, seed = 3, 7
    ours = GymnasiumVecEnv(_vec(env_id, n, **kwargs))
    ref = DummyVecEnv([lambda: gym.make(env_id, **kwargs) for _ in range(n)])
    ours.seed(seed)
    ref.seed(seed)
    a, b = ours.reset(), ref.reset()
    rng = np.random.default_rng(0)
    episodes = 0
    for _ in range(120):
        np.testing.assert_array_equal(a["task"], b["task"])
        np.testing.assert_array_equal(a["expression"], b["expression"])
        actions = rng.integers(ours.action_space.n, size=n)
        a, ra, da, ia = ours.step(actions)
        b, rb, db, ib = ref.step(actions)
        np.testing.assert_allclose(ra, rb)
        np.testing.assert_array_equal(da, db)
        for i in np.flatnonzero(da):
            episodes += 1
            for k in a:
                np.testing.assert_array_equal(ia[i]["terminal_observation"][k],
                                              ib[i]["terminal_observation"][k])
            assert ia[i]["TimeLimit.truncated"] == ib[i]["TimeLimit.truncated"]
    assert episodes >= n  # episodes ended and restarted along the way


def test_partial_reset_restarts_only_the_masked_rows():
    env = _vec("SocialNegotiation-v0", 4)
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        obs, *_ = env.step(np.full(4, 96))  # hold the turn: rounds advance
    before = env.core.t.copy()
    mask = np.array([False, True, False, True])
    obs2, _ = env.reset(options={"reset_mask": mask})
    np.testing.assert_array_equal(env.core.t, np.where(mask, 0, before))
    np.testing.assert_array_equal(obs2["task"][~mask], obs["task"][~mask])
    with pytest.raises(ValueError, match="reset_mask must be a bool array of shape"):
        env.reset(options={"reset_mask": np.ones(3, dtype=bool)})
    with pytest.raises(ValueError, match="cannot be combined with seed"):
        env.reset(seed=0, options={"reset_mask": mask})


def test_filtered_cues_reach_sb3_neutralised():
    venv = GymnasiumVecEnv(FilterEmotionCuesVector(_vec("SocialNegotiation-v0", 5)))
    venv.seed(0)
    obs = venv.reset()
    for _ in range(40):
        assert not obs["expression"].any() and not obs["tone"].any()
        obs, _, dones, infos = venv.step(np.random.default_rng(1).integers(98, size=5))
        for i in np.flatnonzero(dones):
            assert not infos[i]["terminal_observation"]["expression"].any()
