"""Collecting EWH-style emotional transitions from any env and any behaviour policy.

Each transition holds ``(S_t, E_t true and annotated, A_t, S_t+1, E_t+1, reward, termination)``.
Gymnasium envs are recorded as Minari datasets (the standard for offline RL data: open them with
``minari.load_dataset``), with the labels in each episode's ``infos``. Minari does not take
multi-agent data, so PettingZoo envs are written in a per-agent ``.npz`` layout:

``{agent}/{key}`` arrays concatenated over episodes, ``(N, ...)`` per step, where ``key`` is an
observation key, ``action``, ``reward``, ``is_first``, ``is_terminal``, ``emotion`` (true labels
of the others), ``emotion_annotated``; plus ``agents`` (names) and ``episode_starts`` (indices of
the first row of each episode).

Both readers hand back the replay layout of :mod:`lewm_rl.data.replay` (row ``t`` holds ``S_t``,
the reward received on arriving there, the labels of ``S_t`` and the action taken at ``S_t``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from lewm_rl.data.replay import SequenceReplay

Policy = Callable[[dict[str, np.ndarray]], int]


def _minari():
    try:
        import minari
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "Minari datasets need the data extra: pip install 'lewm_rl[data]'") from err
    return minari


def collect_minari(
    env_id: str,
    policy: Policy | None,
    episodes: int,
    dataset_id: str,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
) -> Any:
    """Records ``episodes`` episodes of ``policy`` (random if ``None``) as a Minari dataset.

    Episodes are built as Minari ``EpisodeBuffer``s and written with
    ``minari.create_dataset_from_buffers`` (Minari's step-by-step ``DataCollector`` would need JAX).

    Args:
        env_id: a Gymnasium id.
        policy: maps one observation to an action; it must not read ``info``.
        episodes: number of episodes.
        dataset_id: Minari id, ``namespace/name-vN`` (e.g. ``lewm/negotiation-random-v0``).
        seed: the first episode's seed; episode ``i`` uses ``seed + i``.
        env_kwargs: passed to ``gym.make``; stored in the dataset's env spec, so
            ``recover_environment()`` builds the same env.

    Returns:
        The ``minari.MinariDataset``. Labels are in each episode's ``infos['emotion']`` and
        ``infos['emotion_annotated']`` (one row per observation, the reset's included).
    """
    minari = _minari()
    from minari.data_collector.episode_buffer import EpisodeBuffer

    env = gym.make(env_id, **(env_kwargs or {}))
    buffers = []
    for i in range(episodes):
        obs, info = env.reset(seed=seed + i)
        env.action_space.seed(seed + i)
        observations, infos = [obs], [info]
        actions, rewards, terms, truncs = [], [], [], []
        done = False
        while not done:
            action = env.action_space.sample() if policy is None else policy(obs)
            obs, reward, term, trunc, info = env.step(action)
            for lst, v in ((observations, obs), (infos, info), (actions, action),
                           (rewards, reward), (terms, term), (truncs, trunc)):
                lst.append(v)
            done = term or trunc
        buffers.append(EpisodeBuffer(
            id=i, seed=seed + i,
            observations=_stack_dicts(observations),
            actions=np.asarray(actions), rewards=list(map(float, rewards)),
            terminations=list(map(bool, terms)), truncations=list(map(bool, truncs)),
            infos=_stack_dicts(infos),
        ))
    # The spec with the env's kwargs, so recover_environment() builds the same env.
    spec = dataclasses.replace(gym.spec(env_id), kwargs={**gym.spec(env_id).kwargs,
                                                         **(env_kwargs or {})})
    dataset = minari.create_dataset_from_buffers(
        dataset_id=dataset_id, buffer=buffers, env=spec, eval_env=spec,
        algorithm_name="scripted" if policy else "random", author="lewm_rl",
        author_email="lewm_rl@users.noreply.github.com",
        code_permalink="https://github.com/lewm-rl/lewm_rl/blob/main/lewm_rl/data/collect.py",
        description=f"{episodes} episodes of {env_id}: EWH-style emotional transitions",
    )
    env.close()
    return dataset


def _stack_dicts(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    return {k: np.stack([np.asarray(r[k]) for r in rows]) for k in rows[0]}


def minari_to_replay(dataset: Any, capacity: int | None = None) -> SequenceReplay:
    """Loads a Minari dataset of one of our envs into a :class:`SequenceReplay` (one stream).

    Minari stores ``observations`` with one more row than ``actions`` per episode (the final
    observation); the replay keeps every observation, with the terminal row's action set to 0.
    """
    env = dataset.recover_environment()
    space = env.observation_space
    emotion_space = getattr(env.unwrapped, "emotion_space", None)
    episodes = list(dataset.iterate_episodes())
    total = sum(len(ep.actions) + 1 for ep in episodes)
    replay = SequenceReplay.for_spaces(capacity or total, 1, space, emotion_space)
    for ep in episodes:
        n = len(ep.actions)
        for t in range(n + 1):
            row = {k: np.asarray(v[t])[None] for k, v in ep.observations.items()} if isinstance(
                ep.observations, dict) else {"obs": np.asarray(ep.observations[t])[None]}
            row["action"] = np.array([ep.actions[t] if t < n else 0])
            row["reward"] = np.array([ep.rewards[t - 1] if t > 0 else 0.0])
            row["is_first"] = np.array([t == 0])
            row["is_terminal"] = np.array([t == n and bool(ep.terminations[-1])])
            for k in ("emotion", "emotion_annotated"):
                row[k] = np.asarray(ep.infos[k][t])[None]
            replay.add(row)
    return replay


def collect_pettingzoo(
    parallel_env: Any,
    policies: dict[str, Callable[[dict[str, np.ndarray]], int]] | None,
    episodes: int,
    path: str | Path,
    seed: int = 0,
) -> Path:
    """Records PettingZoo episodes in the per-agent ``.npz`` layout (see the module docstring).

    Args:
        parallel_env: a PettingZoo ``ParallelEnv``.
        policies: per agent, a map from its observation to an action (random if ``None``).
        episodes: number of episodes; episode ``i`` is reset with ``seed + i``.
        path: the ``.npz`` file to write.
    """
    rows: dict[str, dict[str, list]] = {a: {} for a in parallel_env.possible_agents}
    starts: list[int] = []
    n = 0
    for i in range(episodes):
        obs, infos = parallel_env.reset(seed=seed + i)
        for a in parallel_env.possible_agents:
            parallel_env.action_space(a).seed(seed + i)
        starts.append(n)
        reward = dict.fromkeys(parallel_env.possible_agents, 0.0)
        first, terminal = True, dict.fromkeys(parallel_env.possible_agents, False)
        while True:
            live = list(parallel_env.agents)
            actions = {a: (parallel_env.action_space(a).sample() if policies is None
                           else policies[a](obs[a])) for a in live}
            for a in parallel_env.possible_agents:
                r = rows[a]
                for k, v in obs[a].items():
                    r.setdefault(k, []).append(np.asarray(v))
                r.setdefault("action", []).append(actions.get(a, 0))
                r.setdefault("reward", []).append(reward[a])
                r.setdefault("is_first", []).append(first)
                r.setdefault("is_terminal", []).append(terminal[a])
                r.setdefault("emotion", []).append(np.asarray(infos[a]["emotion"]))
                r.setdefault("emotion_annotated", []).append(
                    np.asarray(infos[a]["emotion_annotated"]))
            n += 1
            obs, reward, terminal, trunc, infos = parallel_env.step(actions)
            first = False
            if not parallel_env.agents:  # record the final observation, then stop
                for a in parallel_env.possible_agents:
                    r = rows[a]
                    for k, v in obs[a].items():
                        r[k].append(np.asarray(v))
                    r["action"].append(0)
                    r["reward"].append(reward[a])
                    r["is_first"].append(False)
                    r["is_terminal"].append(bool(terminal[a]))
                    r["emotion"].append(np.asarray(infos[a]["emotion"]))
                    r["emotion_annotated"].append(np.asarray(infos[a]["emotion_annotated"]))
                n += 1
                break
    arrays = {f"{a}/{k}": np.stack(v) for a, r in rows.items() for k, v in r.items()}
    arrays["agents"] = np.array(parallel_env.possible_agents)
    arrays["episode_starts"] = np.array(starts)
    path = Path(path)
    np.savez_compressed(path, **arrays)
    return path


def fill_replay(
    env_id: str,
    policy: Any,
    steps: int,
    seed: int,
    num_envs: int = 16,
    env_kwargs: dict[str, Any] | None = None,
    capacity: int | None = None,
) -> SequenceReplay:
    """Collects ``steps`` env steps (over ``num_envs`` batched envs) into a fresh replay buffer.

    Args:
        env_id: a Gymnasium id with a batched ``vector_entry_point``.
        policy: an object with ``reset(n)``, ``reset_rows(rows)`` and ``act(obs)`` over batches
            (e.g. :mod:`lewm_rl.agents.baselines`); it never receives labels.
        steps: total steps to record (rounded up to a multiple of ``num_envs``).
        seed: sub-env ``i`` is seeded ``seed + i``.
    """
    env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point",
                       **(env_kwargs or {}))
    rows = -(-steps // num_envs)
    replay = SequenceReplay.for_spaces(capacity or rows * num_envs, num_envs,
                                       env.single_observation_space,
                                       getattr(env, "single_emotion_space", None))
    obs, info = env.reset(seed=seed)
    policy.reset(num_envs)
    reward = np.zeros(num_envs, dtype=np.float32)
    is_first = np.ones(num_envs, dtype=bool)
    is_terminal = np.zeros(num_envs, dtype=bool)
    done = np.zeros(num_envs, dtype=bool)  # the current observation ended its episode
    for _ in range(rows):
        action = np.asarray(policy.act(obs))
        replay.add({**obs, "action": action, "reward": reward, "is_first": is_first,
                    "is_terminal": is_terminal, "emotion": info["emotion"],
                    "emotion_annotated": info["emotion_annotated"]})
        obs, reward, term, trunc, info = env.step(action)
        # Next-step autoreset: envs that were done have just been reset (reward 0, not terminal).
        if done.any():
            policy.reset_rows(np.flatnonzero(done))
        is_first, is_terminal = done, term
        reward = reward.astype(np.float32)
        done = term | trunc
    env.close()
    return replay
