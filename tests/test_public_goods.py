"""Tests of the public-goods environments: API contracts, exact payoffs, determinism, twins."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers import FlattenObservation
from hypothesis import given, settings
from hypothesis import strategies as st
from pettingzoo.test import api_test, max_cycles_test, parallel_api_test, parallel_seed_test

import lewm_rl  # noqa: F401  (registers the ids)
from lewm_rl.agents.baselines import ScriptedContributor, make_policy
from lewm_rl.envs import affect as A
from lewm_rl.envs import public_goods_core as C
from lewm_rl.envs import public_goods_v0
from lewm_rl.envs.public_goods import PublicGoodsEnv, PublicGoodsVectorEnv
from lewm_rl.evaluation import run_policy

IDS = ["PublicGoods-v0", "ObjectivePublicGoods-v0"]


# ----------------------------------------------------------------------------------------------
# API contracts
# ----------------------------------------------------------------------------------------------

def test_registry_and_twins():
    from lewm_rl.envs import GYM_ENV_IDS, SUBJECTIVE_TWIN

    assert set(IDS) <= set(GYM_ENV_IDS)
    assert SUBJECTIVE_TWIN["ObjectivePublicGoods-v0"] == "PublicGoods-v0"
    env = gym.make("lewm_rl:PublicGoods-v0")
    assert isinstance(env.unwrapped, PublicGoodsEnv)
    assert env.unwrapped.emotion_space == gym.spaces.MultiDiscrete([7, 7, 7])
    assert env.unwrapped.emotion_names == A.EMOTIONS


def test_flatten_observation_and_sb3_multi_input_policy():
    from stable_baselines3 import PPO

    env = gym.make("PublicGoods-v0")
    flat = FlattenObservation(env)
    obs, _ = flat.reset(seed=0)
    assert obs.shape == flat.observation_space.shape == (16 + 3 * 7 + 3 * 4,)
    assert flat.observation_space.contains(obs)
    model = PPO("MultiInputPolicy", env, n_steps=16, batch_size=16, n_epochs=1, device="cpu")
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))


def test_pettingzoo_conformance():
    parallel_api_test(public_goods_v0.parallel_env(), num_cycles=50)
    parallel_api_test(public_goods_v0.parallel_env(background=(1, 3)), num_cycles=50)
    parallel_seed_test(lambda: public_goods_v0.parallel_env(), num_cycles=50)
    parallel_seed_test(lambda: public_goods_v0.parallel_env(background=(0,)), num_cycles=50)
    api_test(public_goods_v0.env(), num_cycles=50)
    api_test(public_goods_v0.env(background=(1, 2, 3), subjective=False), num_cycles=50)
    max_cycles_test(public_goods_v0)


def test_pettingzoo_agents_labels_and_background():
    env = public_goods_v0.parallel_env(background=(2, 3), n_rounds=5)
    assert env.possible_agents == ["player_0", "player_1"]
    assert env.metadata["name"] == "public_goods_v0" and env.metadata["is_parallelizable"]
    obs, infos = env.reset(seed=3)
    for agent in env.agents:
        space = env.emotion_space(agent)
        assert space.contains(infos[agent]["emotion"])
        assert infos[agent]["affect"].shape == (3, 3)
        assert "emotion" not in env.observation_space(agent).spaces
    # player_0's second other is seat 2: the info labels are those of the others, in seat order.
    np.testing.assert_array_equal(infos["player_0"]["emotion"], env.core.emotion[0, [1, 2, 3]])
    np.testing.assert_array_equal(infos["player_1"]["emotion"], env.core.emotion[0, [0, 2, 3]])
    steps = 0
    while env.agents:
        env.step({a: env.action_space(a).sample() for a in env.agents})
        steps += 1
    assert steps == 5


# ----------------------------------------------------------------------------------------------
# Exact answers on hand-made cases
# ----------------------------------------------------------------------------------------------

def test_round_payoffs_are_exact():
    given_tokens = np.array([12.0, 8.0, 4.0, 0.0])
    punishes = np.zeros((4, 4))
    punishes[0, 3] = punishes[1, 3] = punishes[3, 0] = 1.0  # 0 and 1 punish 3; 3 punishes 0
    pay = C.round_payoffs(given_tokens, punishes, 0.4)
    # Project: 0.4 * 24 = 9.6 for everyone.
    np.testing.assert_allclose(pay, [12 - 12 + 9.6 - 1 - 3, 12 - 8 + 9.6 - 1, 12 - 4 + 9.6,
                                     12 - 0 + 9.6 - 1 - 6])
    assert C.payoff_bounds(4, 0.4) == pytest.approx((4.8 - 1 - 9, 12 + 14.4))


def _all_learner_core(**kw):
    core = C.PublicGoodsCore(1, learners=(True,) * 4, annotation_noise=0.0, **kw)
    core.reset_rows(np.array([0]), [np.random.default_rng(0)])
    return core


def test_step_pays_the_exact_normalised_payoff_and_inequity_aversion():
    # Seat s gives level 3 - s; seats 0 and 1 punish seat 3 (relative 3 and 3), seat 3 punishes 0.
    actions = np.array([[C.encode_action(3, 3, 4), C.encode_action(2, 3, 4),
                         C.encode_action(1, 0, 4), C.encode_action(0, 1, 4)]])
    payoff = np.array([5.6, 12.6, 17.6, 14.6])
    norm = (payoff + 5.2) / 31.6
    core = _all_learner_core()
    np.testing.assert_allclose(core.step(actions)[0], norm)
    np.testing.assert_allclose(core.payoff[0], payoff)
    np.testing.assert_array_equal(core.target[0], [3, 3, C.NOBODY, 0])
    np.testing.assert_array_equal(core.received[0], [1, 0, 0, 2])
    alpha, beta = 0.5, 0.25
    core = _all_learner_core(inequity_aversion=(alpha, beta))
    r = core.step(actions)[0]
    for i in range(4):
        d = np.delete(norm, i) - norm[i]
        expected = norm[i] - alpha * np.maximum(d, 0).mean() - beta * np.maximum(-d, 0).mean()
        assert r[i] == pytest.approx(expected)


def test_observation_reports_last_round_from_each_seat():
    core = _all_learner_core()
    actions = np.array([[C.encode_action(3, 3, 4), C.encode_action(2, 3, 4),
                         C.encode_action(1, 0, 4), C.encode_action(0, 1, 4)]])
    core.step(actions)
    task = core.observation(3)["task"][0]
    fields = dict(zip(C.task_fields(4), task, strict=True))
    assert fields["round"] == pytest.approx(1 / 20)
    assert fields["my_contribution"] == 0.0
    np.testing.assert_allclose([fields[f"contribution_{k}"] for k in (1, 2, 3)], [1, 2 / 3, 1 / 3])
    assert [fields[f"i_punished_{k}"] for k in (1, 2, 3)] == [1, 0, 0]
    assert [fields[f"punished_me_{k}"] for k in (1, 2, 3)] == [1, 1, 0]
    assert fields["punishments_on_1"] == pytest.approx(1 / 3)
    assert fields["punishments_on_me"] == pytest.approx(2 / 3)
    assert fields["my_payoff"] == pytest.approx((14.6 + 5.2) / 31.6)


def _quiet_group(subjective=True):
    """A one-group core with known personas and no incidental moods."""
    core = C.PublicGoodsCore(1, subjective=subjective, annotation_noise=0.0)
    core.reset_rows(np.array([0]), [np.random.default_rng(0)])
    core.baseline[0] = 0.0
    core.reactivity[0] = 1.0
    core.decay[0] = 0.0
    core.affect[0] = 0.0
    core.emotion[0] = A.categorize(core.affect[0])
    core._u[0, :, :, C._SLOT_MOOD] = 1.0  # no incidental moods
    return core


def test_appraisal_of_a_free_rider_is_exact():
    core = _quiet_group()
    core._u[0, 0, :, C._SLOT_ROUND] = 0.0  # round down: characters give floor(0.6 * 3) = level 1
    core._u[0, 0, :, C._SLOT_PUNISH] = 1.0  # nobody punishes
    core.step(np.array([[C.encode_action(0, 0, 4), 0, 0, 0]]))  # the learner gives nothing
    np.testing.assert_allclose(core.given[0], [0, 1 / 3, 1 / 3, 1 / 3])
    # Seat 1 gave 1/3; one of its three others gave 1/3 less: exploited = 1/9. Others' mean 2/9 is
    # below the cooperation reference; nobody gave more than it; valence was 0, so lenience 1.
    exploited = 1 / 9
    np.testing.assert_allclose(core.affect[0, 1], exploited * C.EXPLOITED_IMPULSE, atol=1e-12)
    # The learner: every other gave 1/3 more (guilt 1/3); others' mean 1/3 < reference.
    np.testing.assert_allclose(core.affect[0, 0], C.GUILT_IMPULSE / 3, atol=1e-12)


def test_anger_punishes_the_free_rider_and_the_objective_twin_ignores_emotion():
    """Forcing anger changes what a subjective character does; an objective one acts the same."""
    def play(subjective, force):
        core = _quiet_group(subjective)
        core._u[0, 0, :, C._SLOT_PUNISH] = 0.5
        core._u[0, 0, :, C._SLOT_ROUND] = 0.9  # round up: even an angry character gives level 1
        if force:
            core.affect[0, 1:] = A.PROTOTYPES[A.ANGER]
            core.emotion[0] = A.categorize(core.affect[0])
        core.step(np.array([[C.encode_action(0, 0, 4), 0, 0, 0]]))
        return core.level[0].tolist(), core.target[0].tolist()

    calm, angry = play(True, False), play(True, True)
    assert calm != angry
    assert angry[1][1:] == [0, 0, 0]  # every angry character punishes the learner, who gave 0
    assert play(False, False) == play(False, True)


def test_forcing_emotions_changes_action_distribution_only_in_the_subjective_env():
    """Over many groups and draws: forcing every character to the anger prototype changes what
    subjective characters do, and leaves objective characters' actions identical."""
    B = 256
    for subjective in (True, False):
        core = C.PublicGoodsCore(B, subjective=subjective)
        core.reset_rows(np.arange(B), [np.random.default_rng(s) for s in range(B)])
        rng = np.random.default_rng(1)
        for _ in range(3):
            core.step(np.stack([rng.integers(0, 16, B), np.zeros(B, int), np.zeros(B, int),
                                np.zeros(B, int)], 1))
        forced = copy.deepcopy(core)
        forced.affect[:, 1:] = A.PROTOTYPES[A.ANGER]
        forced.emotion[:] = A.categorize(forced.affect)
        learner = np.stack([rng.integers(0, 16, B), np.zeros(B, int), np.zeros(B, int),
                            np.zeros(B, int)], 1)
        core.step(learner)
        forced.step(learner)
        same = (core.last_actions[:, 1:] == forced.last_actions[:, 1:]).all(1)
        if subjective:
            assert same.mean() < 0.5
            assert (forced.target[:, 1:] >= 0).mean() > (core.target[:, 1:] >= 0).mean()
        else:
            assert same.all()


# ----------------------------------------------------------------------------------------------
# Errors (determinism and the vector view: tests/test_envs.py, over every env)
# ----------------------------------------------------------------------------------------------

def test_invalid_actions_and_arguments_say_what_is_allowed():
    env = gym.make("PublicGoods-v0").unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"\[0, 15\]"):
        env.step(16)
    with pytest.raises(ValueError, match="integer"):
        env.step(0.5)
    venv = PublicGoodsVectorEnv(2)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"\[0, 15\]"):
        venv.step(np.array([0, 16]))
    penv = public_goods_v0.parallel_env()
    penv.reset(seed=0)
    with pytest.raises(ValueError, match=r"\[0, 15\]"):
        penv.step({a: 99 for a in penv.agents})
    with pytest.raises(TypeError, match="allowed: .*population"):
        gym.make("PublicGoods-v0", temperature=3)
    with pytest.raises(TypeError, match="allowed"):
        PublicGoodsVectorEnv(2, colour="blue")
    with pytest.raises(TypeError, match="allowed: .*background"):
        public_goods_v0.parallel_env(colour="blue")
    with pytest.raises(ValueError, match="background"):
        public_goods_v0.parallel_env(background=(0, 1, 2, 3))
    with pytest.raises(ValueError, match="background"):
        public_goods_v0.parallel_env(background=(7,))
    with pytest.raises(ValueError, match="allowed: default, volatile, stoic"):
        gym.make("PublicGoods-v0", population="grumpy")
    with pytest.raises(ValueError, match="mpcr"):
        gym.make("PublicGoods-v0", mpcr=0.2)


@pytest.mark.parametrize("mode", ["ansi", "rgb_array"])
def test_render_modes(mode):
    env = gym.make("PublicGoods-v0", render_mode=mode)
    env.reset(seed=0)
    env.step(C.encode_action(3, 1, 4))
    frame = env.render()
    if mode == "ansi":
        assert "punishes P1" in frame and any(e in frame for e in A.EMOTIONS)
    else:
        assert frame.dtype == np.uint8 and frame.shape == (150, 280, 3) and frame.std() > 0


# ----------------------------------------------------------------------------------------------
# Random episodes
# ----------------------------------------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(subjective=st.booleans(), seed=st.integers(0, 2**31 - 1),
       population=st.sampled_from(A.POPULATIONS), noise=st.floats(0.0, 1.0),
       n_players=st.integers(2, 6))
def test_random_episodes_are_well_formed(subjective, seed, population, noise, n_players):
    env_id = IDS[0] if subjective else IDS[1]
    env = gym.make(env_id, population=population, annotation_noise=noise, n_players=n_players)
    core = env.unwrapped.core
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    steps = 0
    while True:
        assert env.observation_space.contains(obs)
        assert all(np.all(np.isfinite(v)) for v in obs.values())
        assert env.unwrapped.emotion_space.contains(info["emotion"])
        assert env.unwrapped.emotion_space.contains(info["emotion_annotated"])
        assert np.all(np.abs(info["affect"]) <= 1.0)
        obs, r, term, trunc, info = env.step(int(rng.integers(env.action_space.n)))
        assert np.isfinite(r) and 0.0 <= r <= 1.0
        assert core.payoff_low - 1e-9 <= info["payoff"] <= core.payoff_high + 1e-9
        assert np.all(np.isin(core.given[0], C.LEVELS))
        steps += 1
        if term or trunc:
            break
    assert steps == 20 and term


# ----------------------------------------------------------------------------------------------
# Scripted reference policies
# ----------------------------------------------------------------------------------------------

def test_scripted_policies_play_both_twins():
    for env_id in IDS:
        for name in ("random", "greedy", "oracle"):
            policy = make_policy(name, env_id, n_actions=16, seed=0)
            log = run_policy(env_id, policy, episodes=8, seed=0, num_envs=4)
            assert len(log.returns) == 8
            assert all(0.0 <= r <= 20.0 for r in log.returns)
    oracle = make_policy("oracle", "PublicGoods-v0")
    assert isinstance(oracle, ScriptedContributor) and oracle.reads_emotion
    assert not make_policy("greedy", "PublicGoods-v0").reads_emotion
    obs, _ = PublicGoodsVectorEnv(2).reset(seed=0)
    with pytest.raises(ValueError, match="emotion"):
        oracle.act(obs)
