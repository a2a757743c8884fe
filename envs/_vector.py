"""The batched vector env shared by every environment: one core, ``num_envs`` rows, one step."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from lewm_rl.envs._state import core_state, generator_state, load_core_state, load_generator_state


class CoreVectorEnv(gym.vector.VectorEnv):
    """A ``VectorEnv`` over a batched core whose seat 0 is the learner.

    Follows Gymnasium's conventions with ``AutoresetMode.NEXT_STEP``: the step after an episode
    ends resets that sub-environment (reward 0, not terminal). ``reset(seed=s)`` seeds
    sub-environment ``i`` with ``s + i``, so it follows exactly the trajectory of the single env
    reset with seed ``s + i``.

    ``get_state()`` / ``set_state(state)`` snapshot and restore every sub-environment mid-episode
    (the core's arrays, the generators, the pending autoresets), so a stopped training run carries
    on exactly where it was.

    Subclasses build ``self.core`` (with ``reset_rows(rows, generators)``, ``step(actions)``,
    ``observation(seat)``, ``info(seat)``, ``done`` and ``t``) and call :meth:`_setup`.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}
    restart_in_step = False
    """Whether ``core.step`` takes ``restart=`` (autoresets folded into the step, one pass)."""

    def _setup(self, num_envs: int, observation_space: spaces.Space, num_actions: int,
               emotion_space: spaces.Space, emotion_names: tuple[str, ...], num_seats: int,
               max_episode_steps: int | None, render_mode: str | None,
               action_structure: tuple[tuple[int, ...], ...] | None = None,
               action_features: np.ndarray | None = None) -> None:
        if render_mode is not None:
            raise ValueError("the batched vector env does not render; use SyncVectorEnv for videos")
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self.num_actions = num_actions
        self.single_observation_space = observation_space
        self.single_action_space = spaces.Discrete(num_actions)
        self.observation_space = batch_space(observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.single_emotion_space = emotion_space
        self.emotion_space = batch_space(emotion_space, num_envs)
        self.emotion_names = emotion_names
        self.action_structure = action_structure or ((num_actions,),)
        """The flat actions as kinds of factors (``lewm_rl.distributions.ActionStructure``)."""
        self.action_features = action_features
        """``(num_actions, d)`` every flat action described in numbers, or ``None``."""
        self._generators: list[np.random.Generator] = [
            seeding.np_random(None)[0] for _ in range(num_envs)]
        self._autoreset = np.zeros(num_envs, dtype=bool)
        self._actions = np.zeros((num_envs, num_seats), dtype=np.int64)
        self._all = np.arange(num_envs)

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        """Resets every sub-environment, or only those of ``options["reset_mask"]``.

        ``reset_mask`` (a ``(num_envs,)`` bool array, Gymnasium's partial-reset option) starts new
        episodes in the masked sub-environments alone, each drawing from its own generator's
        stream, and clears their pending autoreset: an SB3-style same-step autoreset is a step
        followed by ``reset(options={"reset_mask": terminated | truncated})``. It cannot be combined
        with ``seed``.
        """
        mask = None if options is None else options.get("reset_mask")
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                raise ValueError(f"reset_mask must be a bool array of shape ({self.num_envs},), "
                                 f"got {mask.dtype} {mask.shape}")
            if seed is not None:
                raise ValueError("reset_mask cannot be combined with seed")
            rows = np.flatnonzero(mask)
            if rows.size:
                self.core.reset_rows(rows, [self._generators[i] for i in rows])
                self._autoreset[rows] = False
            return self.core.observation(0), self.core.info(0)
        if seed is not None:
            seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else seed
            if len(seeds) != self.num_envs:
                raise ValueError(f"expected {self.num_envs} seeds, got {len(seeds)}")
            self._generators = [seeding.np_random(s)[0] for s in seeds]
        self.core.reset_rows(self._all, self._generators)
        self._autoreset[:] = False
        return self.core.observation(0), self.core.info(0)

    def step(self, actions):
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(
                f"actions must be an integer array of shape ({self.num_envs},), got "
                f"{actions.dtype} {actions.shape}")
        if actions.min() < 0 or actions.max() >= self.num_actions:
            raise ValueError(f"invalid action: expected integers in [0, {self.num_actions - 1}]")
        reset_rows = np.flatnonzero(self._autoreset)
        self._actions[:, 0] = actions
        # Sub-environments whose episode ended last step start anew instead (reward 0).
        restart = [self._generators[i] for i in reset_rows]
        if self.restart_in_step:
            reward = self.core.step(self._actions, restart=restart)[:, 0].copy()
        else:
            reward = self.core.step(self._actions)[:, 0].copy()
            if reset_rows.size:
                self.core.reset_rows(reset_rows, restart)
                reward[reset_rows] = 0.0
        terminated = self.core.done.copy()
        terminated[reset_rows] = False
        truncated = np.zeros(self.num_envs, dtype=bool)
        if self.max_episode_steps is not None:
            truncated = ~terminated & (self.core.t >= self.max_episode_steps)
            truncated[reset_rows] = False
            self.core.done |= truncated
        self._autoreset = terminated | truncated
        return self.core.observation(0), reward, terminated, truncated, self.core.info(0)

    def get_state(self) -> dict[str, Any]:
        """A snapshot of every sub-environment: ``{"core": {name: array}, "generators": [dict],
        "autoreset": (num_envs,) bool}`` (numpy arrays and plain dicts only)."""
        return {"core": core_state(self.core),
                "generators": [generator_state(g) for g in self._generators],
                "autoreset": self._autoreset.copy()}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores a :meth:`get_state` snapshot of an env built with the same arguments.

        Raises:
            ValueError: the snapshot is of another env or another ``num_envs``.
        """
        if len(state["generators"]) != self.num_envs:
            raise ValueError(f"env state holds {len(state['generators'])} sub-environments, the "
                             f"env {self.num_envs}")
        load_core_state(self.core, state["core"])
        self._generators = [seeding.np_random(0)[0] for _ in range(self.num_envs)]
        for g, saved in zip(self._generators, state["generators"], strict=True):
            load_generator_state(g, saved)
        self._autoreset[:] = np.asarray(state["autoreset"], dtype=bool)
