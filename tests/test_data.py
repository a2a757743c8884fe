"""Replay windows, EWH-style collection into Minari, and the PettingZoo per-agent layout."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import lewm_rl  # noqa: F401
from lewm_rl.data import (
    SequenceReplay,
    collect_minari,
    collect_pettingzoo,
    fill_replay,
    minari_to_replay,
)


def counting_replay(capacity=12, streams=2):
    r = SequenceReplay(capacity, streams, {"x": ((), np.float32)})
    return r


def add(r, t, first=False):
    r.add({"x": np.array([t, 100 + t]), "action": np.array([t, t]), "reward": np.zeros(2),
           "is_first": np.array([first, first]), "is_terminal": np.zeros(2, bool)})


def test_windows_are_contiguous_and_start_fresh():
    r = counting_replay()
    for t in range(9):  # 6 rows per stream: wraps around
        add(r, t, first=(t == 4))
    assert len(r) == 12
    batch = r.sample(50, 4, np.random.default_rng(0))
    x = batch["x"]
    assert np.all(np.diff(x, axis=1) == 1)  # consecutive rows of one stream
    assert np.all((x[:, 0] >= 3) & (x[:, -1] <= 108))  # only the 6 newest rows (t = 3..8)
    assert np.all(batch["is_first"][:, 0])
    has4 = (x == 4) | (x == 104)
    assert np.all(batch["is_first"][has4])
    with pytest.raises(ValueError, match="at least 7 rows"):
        r.sample(1, 7, np.random.default_rng(0))
    with pytest.raises(KeyError, match="missing 'reward'"):
        r.add({"x": np.zeros(2), "action": np.zeros(2), "is_first": np.zeros(2),
               "is_terminal": np.zeros(2)})


def test_recency_draws_windows_by_one_over_one_plus_age_and_zero_draws_as_before():
    from lewm_rl.data.replay import recency_probs

    np.testing.assert_allclose(recency_probs(3), np.array([1, 1 / 2, 1 / 3]) / (11 / 6))
    r = counting_replay(capacity=40, streams=2)  # 20 rows per stream
    for t in range(25):  # wraps: rows t = 5..24 kept
        add(r, t)
    before = r.sample(64, 4, np.random.default_rng(3))
    same = r.sample(64, 4, np.random.default_rng(3), recency=0.0)
    np.testing.assert_array_equal(before["x"], same["x"])
    # all by recency: window starts have ages 0..16 (17 starts), chosen as 1 / (1 + age)
    x = r.sample(20_000, 4, np.random.default_rng(0), recency=1.0)["x"]
    last = (x[:, -1] % 100).astype(int)  # the window's newest row
    assert np.all(np.diff(x, axis=1) == 1) and last.min() >= 8 and last.max() == 24
    age = 24 - last
    freq = np.bincount(age, minlength=17) / len(age)
    np.testing.assert_allclose(freq, recency_probs(17), atol=0.01)
    # half by recency: the newest window is drawn as often as the mixture says
    x = r.sample(20_000, 4, np.random.default_rng(1), recency=0.5)["x"]
    newest = np.mean(x[:, -1] % 100 == 24)
    assert newest == pytest.approx(0.5 / 17 + 0.5 * recency_probs(17)[0], abs=0.01)
    with pytest.raises(ValueError, match=r"recency must be in \[0, 1\]"):
        r.sample(1, 4, np.random.default_rng(0), recency=1.5)


def test_state_dict_loads_as_data(tmp_path):
    r = counting_replay()
    for t in range(5):
        add(r, t)
    torch.save(r.state_dict(), tmp_path / "r.pt")
    other = counting_replay()
    other.load_state_dict(torch.load(tmp_path / "r.pt", weights_only=True))
    for k in r.data:
        np.testing.assert_array_equal(r.data[k], other.data[k])
    assert (other.cursor, other.filled) == (r.cursor, r.filled)


def test_a_saved_buffer_loads_into_a_larger_or_smaller_one_oldest_first():
    r = counting_replay(capacity=8)  # 4 rows per stream
    for t in range(6):  # wraps: keeps t = 2..5, stored as 4, 5, 2, 3
        add(r, t)
    bigger = counting_replay(capacity=20)  # a run resumed with a larger --steps
    bigger.load_state_dict(r.state_dict())
    assert (bigger.cursor, bigger.filled) == (4, 4)
    np.testing.assert_array_equal(bigger.data["x"][0, :4], [2, 3, 4, 5])
    np.testing.assert_array_equal(bigger.data["x"][1, :4], [102, 103, 104, 105])
    add(bigger, 6)  # and it goes on where the old one stopped
    np.testing.assert_array_equal(bigger.data["x"][0, :5], [2, 3, 4, 5, 6])
    smaller = counting_replay(capacity=4)  # a run resumed with a smaller --steps: the newest
    smaller.load_state_dict(r.state_dict())
    assert (smaller.cursor, smaller.filled) == (0, 2)
    np.testing.assert_array_equal(smaller.data["x"][0], [4, 5])
    add(smaller, 6)
    np.testing.assert_array_equal(smaller.data["x"][0], [6, 5])
    state = r.state_dict()
    state["data"] = {k: v[:1] for k, v in state["data"].items()}  # another number of streams
    with pytest.raises(ValueError, match="expected"):
        counting_replay(capacity=8).load_state_dict(state)


class Scripted:
    def __init__(self):
        self.rng = np.random.default_rng(0)

    def reset(self, n):
        pass

    def reset_rows(self, rows):
        pass

    def act(self, obs):
        return self.rng.integers(0, 98, len(obs["task"]))


def test_fill_replay_follows_the_row_convention():
    r = fill_replay("SocialNegotiation-v0", Scripted(), 200, seed=3, num_envs=4)
    d = {k: v[0] for k, v in r.data.items()}  # stream 0, in time order (no wrap)
    env = gym.make("SocialNegotiation-v0")
    obs, info = env.reset(seed=3)
    for t in range(50):
        np.testing.assert_array_equal(d["task"][t], obs["task"])
        assert d["emotion"][t] == info["emotion"]
        obs, reward, term, trunc, info = env.step(int(d["action"][t]))
        assert d["reward"][t + 1] == pytest.approx(reward)  # received on arriving at row t+1
        if term or trunc:
            assert d["is_terminal"][t + 1] == term
            # Next-step autoreset: the row after the terminal one starts the next episode.
            assert d["is_first"][t + 2] and d["reward"][t + 2] == 0.0
            assert not d["is_terminal"][t + 2]
            break
    else:
        pytest.fail("no episode ended within 50 steps")


def test_minari_dataset_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    import minari

    collect_minari("SocialNegotiation-v0", None, 3, "lewm/negotiation-test-v0", seed=5)
    ds = minari.load_dataset("lewm/negotiation-test-v0")
    assert ds.total_episodes == 3
    ep = next(ds.iterate_episodes())
    n = len(ep.actions)
    assert ep.observations["task"].shape == (n + 1, 18)
    assert ep.infos["emotion"].shape == (n + 1,) and ep.infos["emotion_annotated"].shape == (n + 1,)
    env = gym.make("SocialNegotiation-v0")
    obs, info = env.reset(seed=5)
    assert ep.infos["emotion"][0] == info["emotion"]
    np.testing.assert_array_equal(ep.observations["expression"][0], obs["expression"])
    replay = minari_to_replay(ds)
    assert len(replay) == ds.total_steps + ds.total_episodes
    row = {k: v[0] for k, v in replay.data.items()}
    assert row["is_first"][0] and row["is_first"][n + 1]
    assert row["reward"][1] == pytest.approx(ep.rewards[0])
    assert row["emotion"][n] == ep.infos["emotion"][n]


def test_pettingzoo_per_agent_layout(tmp_path):
    from lewm_rl.envs import social_negotiation_v0

    path = collect_pettingzoo(social_negotiation_v0.parallel_env(), None, 2, tmp_path / "pz.npz")
    data = np.load(path)
    agents = list(data["agents"])
    assert agents == ["negotiator_0", "negotiator_1"]
    n = len(data["negotiator_0/action"])
    for a in agents:
        for key in ("task", "expression", "action", "reward", "is_first", "is_terminal",
                    "emotion", "emotion_annotated"):
            assert len(data[f"{a}/{key}"]) == n, key
    starts = data["episode_starts"]
    assert list(starts) == list(np.flatnonzero(data["negotiator_0/is_first"]))


def test_minari_dataset_recovers_the_env_with_its_kwargs(tmp_path, monkeypatch):
    # Regression: env_kwargs were lost, so the recovered env had the default population.
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    ds = collect_minari("SocialNegotiation-v0", None, 1, "lewm/negotiation-volatile-v0", seed=0,
                        env_kwargs={"population": "volatile", "n_deals": 2})
    for eval_env in (False, True):
        env = ds.recover_environment(eval_env=eval_env)
        assert env.unwrapped.population == "volatile"
        assert env.unwrapped.core.n_deals == 2
