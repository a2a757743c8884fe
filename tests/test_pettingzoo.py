"""PettingZoo conformance over every PettingZoo module of lewm_rl.envs."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from pettingzoo.test import api_test, max_cycles_test, parallel_api_test, parallel_seed_test

from lewm_rl.envs import PETTINGZOO_MODULES, affect

MODULES = [importlib.import_module(f"lewm_rl.envs.{m}") for m in PETTINGZOO_MODULES]
IDS = list(PETTINGZOO_MODULES)


@pytest.mark.parametrize("mod", MODULES, ids=IDS)
def test_parallel_api(mod):
    parallel_api_test(mod.parallel_env(), num_cycles=200)


@pytest.mark.parametrize("mod", MODULES, ids=IDS)
def test_parallel_api_with_background_characters(mod):
    env = mod.parallel_env(background=(1,))
    parallel_api_test(env, num_cycles=100)
    assert len(env.possible_agents) == len(mod.parallel_env().possible_agents) - 1


@pytest.mark.parametrize("mod", MODULES, ids=IDS)
def test_parallel_seed(mod):
    parallel_seed_test(lambda: mod.parallel_env(), num_cycles=100)


@pytest.mark.parametrize("mod", MODULES, ids=IDS)
def test_aec_api(mod):
    api_test(mod.env(), num_cycles=100)


@pytest.mark.parametrize("mod", MODULES, ids=IDS)
def test_env_wears_pettingzoos_standard_wrappers_and_checks_actions(mod):
    from pettingzoo.utils import wrappers

    env = mod.env()
    assert isinstance(env, wrappers.OrderEnforcingWrapper)
    assert isinstance(env.env, wrappers.AssertOutOfBoundsWrapper)
    with pytest.raises(AttributeError, match="reset"):  # order: reset before anything else
        env.agent_selection  # noqa: B018
    env.reset(seed=0)
    with pytest.raises(AssertionError):  # an action outside the space
        env.step(env.action_space(env.agent_selection).n + 5)


class _Seeded:
    """``mod`` whose envs reset from ``seed`` and sample seeded actions. PettingZoo's
    ``max_cycles_test`` plays unseeded random actions; in the v1 negotiation a walk-away ends the
    episode, so an unseeded draw could end it before ``max_cycles`` (a flaky failure that says
    nothing about truncation)."""

    def __init__(self, mod, seed: int = 0) -> None:
        self.mod, self.seed = mod, seed

    def _seeded(self, env):
        for i, agent in enumerate(env.possible_agents):
            env.action_space(agent).seed(self.seed + i)
        reset = env.reset
        env.reset = lambda seed=None, options=None: reset(seed=self.seed, options=options)
        return env

    def parallel_env(self, **kwargs):
        return self._seeded(self.mod.parallel_env(**kwargs))

    def env(self, **kwargs):
        return self._seeded(self.mod.env(**kwargs))


@pytest.mark.parametrize("mod", MODULES, ids=IDS)
def test_max_cycles(mod):
    max_cycles_test(_Seeded(mod))


def test_action_spaces_are_one_object_per_seat_so_seeding_them_holds():
    for mod in MODULES:
        env = mod.parallel_env()
        for agent in env.possible_agents:
            assert env.action_space(agent) is env.action_space(agent)
            env.action_space(agent).seed(7)
            first = [env.action_space(agent).sample() for _ in range(5)]
            env.action_space(agent).seed(7)
            assert [env.action_space(agent).sample() for _ in range(5)] == first


@pytest.mark.parametrize("mod", MODULES, ids=IDS)
def test_infos_carry_the_others_labels(mod):
    env = mod.parallel_env()
    obs, infos = env.reset(seed=0)
    for agent in env.agents:
        space = env.emotion_space(agent)
        label = np.asarray(infos[agent]["emotion"])
        assert space.contains(label.astype(space.dtype).reshape(space.shape))
        assert np.all((label >= 0) & (label < affect.NUM_EMOTIONS))
        assert "emotion" not in env.observation_space(agent).spaces


@pytest.mark.parametrize("mod", MODULES, ids=IDS)
def test_unknown_keyword_and_bad_background(mod):
    with pytest.raises(TypeError, match="allowed"):
        mod.parallel_env(colour="blue")
    with pytest.raises(ValueError, match="background"):
        mod.parallel_env(background=(99,))


def test_negotiation_learners_reward_has_inequity_aversion():
    from lewm_rl.envs import negotiation_core as C
    from lewm_rl.envs import social_negotiation_v0 as m

    env = m.parallel_env(inequity_aversion=(0.5, 0.25))
    env.reset(seed=0)
    core = env.core
    core.values[0] = ((2, 1, 2), (0, 2, 2))
    core.utility[0] = np.einsum("si,sji->sj", core.values[0], core._keep) / C.POOL_VALUE
    core._u[0, :, :, 0] = 0.99
    # Seat 0 offers keep (1,0,1): worth 0.4 to seat 0 and 0.8 to seat 1; seat 1 offers too.
    a0 = int(C.encode_offer(C.split_index(np.array([1, 0, 1])), 0))
    env.step({"negotiator_0": a0, "negotiator_1": a0})
    _, rewards, *_ = env.step({"negotiator_0": 0, "negotiator_1": C.ACCEPT})  # seat 1 accepts
    assert rewards["negotiator_0"] == pytest.approx(0.4 - 0.5 * (0.8 - 0.4))
    assert rewards["negotiator_1"] == pytest.approx(0.8 - 0.25 * (0.8 - 0.4))


@pytest.mark.parametrize("mod", MODULES, ids=IDS)
def test_state_snapshot_carries_on_mid_episode(mod):
    def play(env, steps):
        out = []
        for t in range(steps):
            if not env.agents:
                break
            obs, rewards, *_ = env.step({a: (7 * t) % 5 for a in env.agents})
            out.append((rewards, {a: {k: np.asarray(v).tolist() for k, v in o.items()}
                                  for a, o in obs.items()}))
        return out

    env = mod.parallel_env()
    env.reset(seed=3)
    play(env, 4)
    state = env.get_state()
    expected = play(env, 30)
    other = mod.parallel_env()
    other.reset(seed=8)
    other.set_state(state)
    assert play(other, 30) == expected
