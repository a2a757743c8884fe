"""Uniform batched access to Gymnasium and PettingZoo envs for the training loop.

Both adapters expose *seats* (the learners: one for a Gymnasium env, every learner agent of a
PettingZoo env), each with batched observations ``(N, ...)`` over ``N`` parallel env copies, and
Gymnasium's next-step autoreset: the step after an episode ends resets that copy (its reward is 0
and its observation starts a new episode). ``get_state()`` / ``set_state()`` snapshot every copy
mid-episode (numpy arrays and plain data), so a checkpointed run carries on where it stopped.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym
import numpy as np

import lewm_rl.envs as envs_pkg
from lewm_rl.envs import GYM_ENV_IDS, PETTINGZOO_MODULES
from lewm_rl.envs.wrappers import FilterEmotionCuesVector
from lewm_rl.envs.wrappers import filter_cues as filter_cues_fn

BEHAVIOUR_KEYS = ("partner_act", "others_act")
"""Observation keys that hold the others' social behaviour, if an env has one."""


def available_envs() -> list[str]:
    """Every id the training CLI accepts: Gymnasium ids, then PettingZoo module names."""
    return list(GYM_ENV_IDS) + list(PETTINGZOO_MODULES)


def check_env_id(env_id: str) -> str:
    """Returns ``env_id`` or raises ``ValueError`` naming the available ones."""
    if env_id not in available_envs():
        raise ValueError(f"unknown env {env_id!r}; available: {', '.join(available_envs())}")
    return env_id


class GymVectorAdapter:
    """A Gymnasium id's batched vector env, as one seat named ``"learner"``; with
    ``filter_cues`` its observations have the partners' cues neutralised
    (:class:`~lewm_rl.envs.wrappers.FilterEmotionCuesVector`)."""

    def __init__(self, env_id: str, num_envs: int, env_kwargs: dict[str, Any],
                 filter_cues: bool = False) -> None:
        self.env_id = env_id
        self.env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point",
                                **env_kwargs)
        if filter_cues:
            self.env = FilterEmotionCuesVector(self.env)
        self.num_envs = num_envs
        self.seats = ("learner",)
        self._single = gym.make(env_id, **env_kwargs)  # spaces and rendering for evaluation

    def observation_space(self, seat: str):
        return self.env.single_observation_space

    def action_space(self, seat: str):
        return self.env.single_action_space

    def emotion_space(self, seat: str):
        return self.env.unwrapped.single_emotion_space

    @property
    def emotion_names(self) -> tuple[str, ...]:
        return tuple(self.env.unwrapped.emotion_names)

    @property
    def action_structure(self) -> tuple[tuple[int, ...], ...] | None:
        """The env's action structure (kinds of factors), or ``None`` if it declares none."""
        return getattr(self.env.unwrapped, "action_structure", None)

    @property
    def action_features(self) -> np.ndarray | None:
        """``(num_actions, d)`` the env's description of each flat action, or ``None``."""
        return getattr(self.env.unwrapped, "action_features", None)

    @property
    def behaviour_key(self) -> str | None:
        keys = self.env.single_observation_space.spaces
        return next((k for k in BEHAVIOUR_KEYS if k in keys), None)

    def reset(self, seed: int):
        obs, info = self.env.reset(seed=seed)
        return {"learner": obs}, {"learner": info}

    def step(self, actions: dict[str, np.ndarray]):
        obs, reward, term, trunc, info = self.env.step(actions["learner"])
        return ({"learner": obs}, {"learner": reward.astype(np.float32)}, term, trunc,
                {"learner": info})

    def get_state(self) -> dict[str, Any]:
        return self.env.unwrapped.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        self.env.unwrapped.set_state(state)

    def close(self) -> None:
        self.env.close()


class PettingZooAdapter:
    """``num_envs`` copies of a PettingZoo parallel env, one seat per learner agent; with
    ``filter_cues`` every seat's observations have the others' cues neutralised
    (:func:`~lewm_rl.envs.wrappers.filter_cues`)."""

    def __init__(self, module: str, num_envs: int, env_kwargs: dict[str, Any],
                 filter_cues: bool = False) -> None:
        self.env_id = module
        mod = importlib.import_module(f"{envs_pkg.__name__}.{module}")
        self.envs = [mod.parallel_env(**env_kwargs) for _ in range(num_envs)]
        self.num_envs = num_envs
        self.seats = tuple(self.envs[0].possible_agents)
        self.filter_cues = filter_cues
        if filter_cues:  # raises, naming the keys, where a seat's observation has no cues
            for seat in self.seats:
                filter_cues_fn(self.observation_space(seat).sample(), self.observation_space(seat))
        self._done = np.zeros(num_envs, dtype=bool)
        self._last: list[tuple[dict, dict]] = [({}, {})] * num_envs

    def observation_space(self, seat: str):
        return self.envs[0].observation_space(seat)

    def action_space(self, seat: str):
        return self.envs[0].action_space(seat)

    def emotion_space(self, seat: str):
        return self.envs[0].emotion_space(seat)

    @property
    def emotion_names(self) -> tuple[str, ...]:
        return tuple(self.envs[0].emotion_names)

    @property
    def action_structure(self) -> tuple[tuple[int, ...], ...] | None:
        """The env's action structure (kinds of factors), or ``None`` if it declares none."""
        return getattr(self.envs[0], "action_structure", None)

    @property
    def action_features(self) -> np.ndarray | None:
        """``(num_actions, d)`` the env's description of each flat action, or ``None``."""
        return getattr(self.envs[0], "action_features", None)

    @property
    def behaviour_key(self) -> str | None:
        keys = self.observation_space(self.seats[0]).spaces
        return next((k for k in BEHAVIOUR_KEYS if k in keys), None)

    def _stack(self, per_env: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, np.ndarray]]:
        out = {}
        for seat in self.seats:
            keys = per_env[0][seat].keys()
            out[seat] = {k: np.stack([np.asarray(d[seat][k]) for d in per_env]) for k in keys}
        return out

    def _observations(self, per_env: list[dict[str, dict[str, Any]]]
                      ) -> dict[str, dict[str, np.ndarray]]:
        out = self._stack(per_env)
        if self.filter_cues:
            out = {seat: filter_cues_fn(o, self.observation_space(seat), batched=True)
                   for seat, o in out.items()}
        return out

    def reset(self, seed: int):
        results = [env.reset(seed=seed + i) for i, env in enumerate(self.envs)]
        self._done[:] = False
        self._last = results
        return self._observations([r[0] for r in results]), self._stack([r[1] for r in results])

    def step(self, actions: dict[str, np.ndarray]):
        obs, infos = [], []
        reward = {s: np.zeros(self.num_envs, dtype=np.float32) for s in self.seats}
        term = np.zeros(self.num_envs, dtype=bool)
        trunc = np.zeros(self.num_envs, dtype=bool)
        for i, env in enumerate(self.envs):
            if self._done[i]:  # next-step autoreset
                o, inf = env.reset()
                self._done[i] = False
            else:
                o, r, te, tr, inf = env.step({s: int(actions[s][i]) for s in env.agents})
                for s in self.seats:
                    reward[s][i] = r.get(s, 0.0)
                term[i] = any(te.values())
                trunc[i] = any(tr.values()) and not term[i]
                self._done[i] = not env.agents
            obs.append(o)
            infos.append(inf)
        return self._observations(obs), reward, term, trunc, self._stack(infos)

    def get_state(self) -> dict[str, Any]:
        return {"envs": [env.get_state() for env in self.envs], "done": self._done.copy()}

    def set_state(self, state: dict[str, Any]) -> None:
        if len(state["envs"]) != self.num_envs:
            raise ValueError(f"env state holds {len(state['envs'])} envs, the run {self.num_envs}")
        for env, saved in zip(self.envs, state["envs"], strict=True):
            env.set_state(saved)
        self._done[:] = np.asarray(state["done"], dtype=bool)

    def close(self) -> None:
        for env in self.envs:
            env.close()


def make_adapter(env_id: str, num_envs: int, env_kwargs: dict[str, Any],
                 filter_cues: bool = False):
    """The adapter for a Gymnasium id or a PettingZoo module name; ``filter_cues`` neutralises
    the partners' emotional cues in every observation it returns (the info's labels are left)."""
    check_env_id(env_id)
    if env_id in GYM_ENV_IDS:
        return GymVectorAdapter(env_id, num_envs, env_kwargs, filter_cues)
    return PettingZooAdapter(env_id, num_envs, env_kwargs, filter_cues)
