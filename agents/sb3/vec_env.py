"""Gymnasium's batched vector envs under SB3's ``VecEnv`` contract (no Python loop over envs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)


class GymnasiumVecEnv(VecEnv):
    """An SB3 ``VecEnv`` over a Gymnasium ``VectorEnv`` that supports partial resets.

    SB3 resets a finished sub-environment in the step that ends it (its ``info`` holds
    ``terminal_observation`` and ``TimeLimit.truncated``); Gymnasium's vector envs here reset it on
    the next step. This adapter steps the vector env, then resets the finished rows at once with
    ``reset(options={"reset_mask": done})`` (Gymnasium's partial-reset option, which
    :class:`lewm_rl.envs._vector.CoreVectorEnv` and the wrappers over it support), so one step of
    ``num_envs`` tables is one numpy pass, as in the vector env itself. Sub-environment ``i``
    follows the single env reset with seed ``s + i`` after ``seed(s)``.

    Wrap it in SB3's ``VecMonitor`` for episode statistics.

    Args:
        env: a Gymnasium ``VectorEnv`` with a ``reset_mask`` option (for example
            ``gym.make_vec("SocialNegotiation-v0", num_envs=16,
            vectorization_mode="vector_entry_point")``, or it wrapped in
            :class:`~lewm_rl.envs.wrappers.FilterEmotionCuesVector`).
    """

    def __init__(self, env: gym.vector.VectorEnv) -> None:
        self.env = env
        self.render_mode = None
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> VecEnvObs:
        seed = self._seeds[0] if self._seeds and self._seeds[0] is not None else None
        obs, _ = self.env.reset(seed=seed)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)

    def step_wait(self) -> VecEnvStepReturn:
        obs, reward, terminated, truncated, _ = self.env.step(self._actions)
        done = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if done.any():
            rows = np.flatnonzero(done)
            final = obs
            obs, _ = self.env.reset(options={"reset_mask": done})
            for i in rows:
                infos[i]["terminal_observation"] = _row(final, i)
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return obs, np.asarray(reward, dtype=np.float32), done, infos

    def close(self) -> None:
        self.env.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self.env, attr_name)  # AttributeError if absent, as has_attr expects
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        if sorted(self._get_indices(indices)) != list(range(self.num_envs)):
            raise ValueError(f"{attr_name!r} is shared by every sub-environment; set it for all")
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None,
                   **method_kwargs) -> list[Any]:
        result = getattr(self.env, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
                       ) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None for _ in range(self.num_envs)]


def _row(obs: Any, i: int) -> Any:
    """Sub-environment ``i``'s observation out of a batched (possibly ``Dict``) observation."""
    if isinstance(obs, dict):
        return {k: np.array(v[i]) for k, v in obs.items()}
    return np.array(obs[i])


__all__ = ["GymnasiumVecEnv"]
