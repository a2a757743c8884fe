"""Contract tests over every registered Gymnasium id, and the shared emotion model."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import lewm_rl
from lewm_rl.envs import GYM_ENV_IDS, affect

IDS = list(GYM_ENV_IDS)


@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_check_env(env_id):
    env = gym.make(env_id)
    gym_check_env(env.unwrapped, skip_render_check=False)


@pytest.mark.parametrize("env_id", IDS)
def test_sb3_check_env(env_id):
    sb3_check_env(gym.make(env_id).unwrapped, warn=True)


def test_make_without_import():
    env = gym.make("lewm_rl:SocialNegotiation-v0")
    assert isinstance(env.unwrapped, lewm_rl.envs.SocialNegotiationEnv)


def _lengths(env, action: int, seeds: range) -> list[tuple[int, bool, bool]]:
    out = []
    for seed in seeds:
        env.reset(seed=seed)
        steps = 0
        while True:
            _, _, term, trunc, _ = env.step(action)
            steps += 1
            if term or trunc:
                break
        out.append((steps, term, trunc))
    return out


def test_episode_length_follows_the_env_arguments_not_a_fixed_registry_limit():
    # Regression: the registry's fixed 24-step limit truncated n_deals=8 (and n_rounds=30).
    action = 90  # a hard bargainer: deals often run to the round limit
    runs = _lengths(gym.make("SocialNegotiation-v0", n_deals=8), action, range(5))
    assert max(n for n, _, _ in runs) > 24
    assert all(term and not trunc and n <= 8 * 6 for n, term, trunc in runs), runs
    runs = _lengths(gym.make("SocialNegotiation-v0", round_limit=10), action, range(5))
    assert all(term and not trunc for _, term, trunc in runs), runs
    runs = _lengths(gym.make("PublicGoods-v0", n_rounds=30), 0, range(1))
    assert runs == [(30, True, False)]
    vec = gym.make_vec("SocialNegotiation-v0", num_envs=2, vectorization_mode="vector_entry_point",
                       n_deals=8)
    vec.reset(seed=2)
    for _ in range(30):
        _, _, term, trunc, _ = vec.step(np.full(2, action))
        assert not trunc.any()


SECTIONS = ("Description", "Action Space", "Observation Space", "Rewards", "Starting State",
            "Episode End", "Arguments", "Version History")


@pytest.mark.parametrize("env_id", IDS)
def test_docstring_has_gymnasium_sections(env_id):
    cls = type(gym.make(env_id).unwrapped)
    docs = [c.__doc__ or "" for c in cls.__mro__ if "## Description" in (c.__doc__ or "")]
    assert docs, f"{cls.__name__} documents no rules"
    for section in SECTIONS:
        assert f"## {section}" in docs[0], section
    assert "## Version History" in (cls.__doc__ or "")


@pytest.mark.parametrize("env_id", IDS)
def test_labels_declared_and_in_info(env_id):
    env = gym.make(env_id)
    obs, info = env.reset(seed=0)
    space = env.unwrapped.emotion_space
    assert env.unwrapped.emotion_names == affect.EMOTIONS
    for key in ("emotion", "emotion_annotated", "affect"):
        assert key in info
    assert space.contains(np.asarray(info["emotion"], dtype=space.dtype).reshape(space.shape)) or \
        space.contains(info["emotion"])
    # Labels never leak into the observation space.
    assert "emotion" not in env.observation_space.spaces


@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_same_trajectory(env_id):
    def rollout(seed):
        env = gym.make(env_id)
        obs, info = env.reset(seed=seed)
        env.action_space.seed(seed)
        out = []
        for _ in range(60):
            obs, r, term, trunc, info = env.step(env.action_space.sample())
            out.append((r, np.asarray(info["emotion"]).tolist(),
                        np.concatenate([np.ravel(v) for v in obs.values()]).tolist()))
            if term or trunc:
                obs, info = env.reset()
        return out

    assert rollout(3) == rollout(3)
    assert rollout(3) != rollout(4)


@pytest.mark.parametrize("env_id", IDS)
def test_vector_view_matches_gymnasium_view(env_id):
    n, seed = 4, 11
    venv = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point")
    vobs, vinfo = venv.reset(seed=seed)
    envs = [gym.make(env_id) for _ in range(n)]
    singles = [e.reset(seed=seed + i) for i, e in enumerate(envs)]
    rng = np.random.default_rng(0)
    done = np.zeros(n, dtype=bool)
    for _ in range(40):
        for i in range(n):
            for key in vobs:
                np.testing.assert_allclose(np.asarray(vobs[key][i]),
                                           np.asarray(singles[i][0][key]), rtol=0, atol=0)
            np.testing.assert_array_equal(vinfo["emotion"][i], singles[i][1]["emotion"])
            np.testing.assert_array_equal(vinfo["affect"][i], singles[i][1]["affect"])
        actions = rng.integers(0, venv.single_action_space.n, size=n)
        vobs, vrew, vterm, vtrunc, vinfo = venv.step(actions)
        for i, e in enumerate(envs):
            if done[i]:  # next-step autoreset: the vector env resets this sub-env now
                singles[i] = e.reset()
                assert vrew[i] == 0.0
            else:
                o, r, te, tr, inf = e.step(int(actions[i]))
                singles[i] = (o, inf)
                assert vrew[i] == pytest.approx(r)
                assert vterm[i] == te
        done = vterm | vtrunc


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("num_envs", [0, -1, 2.5])
def test_make_vec_refuses_a_bad_num_envs(env_id, num_envs):
    with pytest.raises(ValueError, match=f"num_envs must be an integer >= 1, got {num_envs}"):
        gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")


@pytest.mark.parametrize("env_id", IDS)
def test_vector_state_snapshot_carries_on_mid_episode(env_id):
    def play(env, actions):
        return [env.step(a) for a in actions]

    venv = gym.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point")
    venv.reset(seed=5)
    rng = np.random.default_rng(0)
    for _ in range(17):  # some sub-envs mid-episode, some about to autoreset
        venv.step(rng.integers(0, venv.single_action_space.n, 3))
    state = venv.get_state()
    actions = [rng.integers(0, venv.single_action_space.n, 3) for _ in range(60)]
    expected = play(venv, actions)
    other = gym.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point")
    other.reset(seed=99)
    other.set_state(state)
    for (o1, r1, te1, tr1, i1), (o2, r2, te2, tr2, i2) in zip(expected, play(other, actions),
                                                               strict=True):
        for key in o1:
            np.testing.assert_array_equal(o1[key], o2[key])
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(te1 | tr1, te2 | tr2)
        np.testing.assert_array_equal(i1["emotion"], i2["emotion"])
    with pytest.raises(ValueError, match="3 sub-environments"):
        gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point").set_state(state)


@pytest.mark.parametrize("env_id", IDS)
def test_invalid_action_names_valid_range(env_id):
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    n = env.action_space.n
    with pytest.raises(ValueError, match=rf"\[0, {n - 1}\]"):
        env.step(n)
    with pytest.raises(ValueError, match="integer"):
        env.step(1.5)


@pytest.mark.parametrize("env_id", IDS)
def test_unknown_keyword_names_allowed_ones(env_id):
    with pytest.raises(TypeError, match="allowed: .*population"):
        gym.make(env_id, temperature=3)


@pytest.mark.parametrize("env_id", IDS)
def test_bad_argument_values_say_what_is_allowed(env_id):
    with pytest.raises(ValueError, match="allowed: default, volatile, stoic"):
        gym.make(env_id, population="grumpy")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        gym.make(env_id, annotation_noise=1.5)


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("mode", ["ansi", "rgb_array"])
def test_render_modes(env_id, mode):
    env = gym.make(env_id, render_mode=mode)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    frame = env.render()
    if mode == "ansi":
        assert isinstance(frame, str) and any(e in frame for e in affect.EMOTIONS)
    else:
        assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
        assert frame.std() > 0


@settings(max_examples=25, deadline=None)
@given(env_index=st.integers(0, len(IDS) - 1), seed=st.integers(0, 2**31 - 1),
       population=st.sampled_from(affect.POPULATIONS),
       noise=st.floats(0.0, 1.0))
def test_random_episodes_are_well_formed(env_index, seed, population, noise):
    env = gym.make(IDS[env_index], population=population, annotation_noise=noise)
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    total, steps = 0.0, 0
    while True:
        assert env.observation_space.contains(obs)
        for v in obs.values():
            assert np.all(np.isfinite(v))
        labels = np.atleast_1d(info["emotion"])
        assert np.all((0 <= labels) & (labels < affect.NUM_EMOTIONS))
        assert np.all(np.abs(info["affect"]) <= 1.0)
        obs, r, term, trunc, info = env.step(int(rng.integers(env.action_space.n)))
        assert np.isfinite(r) and 0.0 <= r <= 1.0
        total += r
        steps += 1
        if term or trunc:
            break
        assert steps <= 4 * 6  # the defaults' bound, n_deals * round_limit or n_rounds
    assert np.isfinite(total)


# ---------------------------------------------------------------------------------------------
# The shared emotion model.


def test_categorize_reads_the_nearest_prototype():
    assert list(affect.categorize(affect.PROTOTYPES)) == list(range(affect.NUM_EMOTIONS))
    assert affect.categorize(np.array([0.05, -0.05, 0.0])) == affect.NEUTRAL
    assert affect.categorize(np.array([-0.6, 0.7, 0.4])) == affect.ANGER
    assert affect.categorize(np.array([-0.6, 0.7, -0.6])) == affect.FEAR


def test_update_affect_exact():
    a = np.array([0.5, -0.5, 0.0])
    base = np.zeros(3)
    out = affect.update_affect(a, base, np.array(0.1), np.array(2.0), np.array([0.1, 0.0, 0.9]))
    np.testing.assert_allclose(out, [0.5 - 0.05 + 0.2, -0.5 + 0.05, 1.0])  # clipped to 1


def test_annotator_noise_levels_and_neighbours():
    rng = np.random.default_rng(0)
    n = 200_000
    true = np.full(n, affect.ANGER)
    ann = affect.annotate(true, 0.3, rng.random(n), rng.random(n))
    assert abs((ann != true).mean() - 0.3) < 0.01
    wrong = ann[ann != true]
    # Mistakes land mostly on anger's PAD neighbours (disgust, fear), rarely on joy.
    frac = np.bincount(wrong, minlength=7) / len(wrong)
    assert frac[affect.DISGUST] + frac[affect.FEAR] > 0.6
    assert frac[affect.JOY] < 0.05
    assert np.all(affect.annotate(true, 0.0, rng.random(n), rng.random(n)) == true)


def test_single_step_reader_is_in_the_field_range():
    """Cue noise is fixed so the best single-step reader is ~60-70 % accurate (DESIGN.md)."""
    rng = np.random.default_rng(0)
    n = 50_000
    em = rng.integers(0, affect.NUM_EMOTIONS, n)
    s = rng.uniform(0.7, 1.0, n)
    x = affect.expression_cues(em, s, rng.standard_normal((n, affect.NUM_EMOTIONS)))
    tone = affect.draw_tone(em, rng.random(n), rng.random(n))
    acc = (affect.best_single_step_reader(x, tone, s) == em).mean()
    assert 0.55 <= acc <= 0.75, acc
