"""The PettingZoo ``ParallelEnv`` shared by every environment: one core row, learner seats."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv
from pettingzoo.utils import wrappers
from pettingzoo.utils.conversions import parallel_to_aec

from lewm_rl.envs._checks import check_discrete_action
from lewm_rl.envs._state import core_state, generator_state, load_core_state, load_generator_state


class CoreParallelEnv(ParallelEnv):
    """Reset, step and render over a batched core with ``B = 1``.

    Subclasses set ``self.core``, ``self._seat`` (agent name -> seat), ``self.possible_agents``,
    ``self.max_cycles``, ``self.num_actions``, ``self._view`` (the seat renders are seen from),
    ``self.render_mode``, and implement ``_obs(seat)``, ``_info(seat)`` and the transcript and
    frame hooks below.
    """

    agents: list[str]
    _rng: np.random.Generator | None = None

    # Hooks ------------------------------------------------------------------------------------
    def _transcript_start(self) -> list[str]:
        """Transcript lines of a new episode."""
        return ["new episode"]

    def _before_step(self) -> Any:
        """What the transcript needs from before the step (e.g. the round being played)."""
        return None

    def _transcript_step(self, before: Any) -> list[str]:
        """Transcript lines of the step just played."""
        raise NotImplementedError

    def _frame(self) -> np.ndarray:
        """The ``rgb_array`` render."""
        raise NotImplementedError

    # The API ----------------------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None or self._rng is None:
            self._rng, _ = seeding.np_random(seed)
        self.core.reset_rows(np.array([0]), [self._rng])
        self.agents = list(self.possible_agents)
        self._transcript = self._transcript_start()
        return ({a: self._obs(s) for a, s in self._seat.items()},
                {a: self._info(s) for a, s in self._seat.items()})

    def step(self, actions: dict[str, Any]):
        if not self.agents:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"missing actions for {missing}; every live agent must act")
        for agent, action in actions.items():
            if agent not in self._seat:
                raise ValueError(f"unknown agent {agent!r}; agents: {self.possible_agents}")
            self._actions[0, self._seat[agent]] = check_discrete_action(action, self.num_actions)
        before = self._before_step() if self.render_mode == "ansi" else None
        reward = self.core.step(self._actions)
        terminated = bool(self.core.done[0])
        truncated = not terminated and int(self.core.t[0]) >= self.max_cycles
        if self.render_mode == "ansi":
            self._transcript += self._transcript_step(before)
        obs = {a: self._obs(s) for a, s in self._seat.items()}
        infos = {a: self._info(s) for a, s in self._seat.items()}
        rewards = {a: float(reward[0, s]) for a, s in self._seat.items()}
        terms = dict.fromkeys(self._seat, terminated)
        truncs = dict.fromkeys(self._seat, truncated)
        if terminated or truncated:
            self.agents = []
        return obs, rewards, terms, truncs, infos

    def get_state(self) -> dict[str, Any]:
        """A snapshot mid-episode: the core's arrays, the generator, the live agents and the
        transcript (numpy arrays, plain dicts, lists and strings only)."""
        return {"core": core_state(self.core),
                "generator": None if self._rng is None else generator_state(self._rng),
                "agents": list(getattr(self, "agents", [])),
                "transcript": list(getattr(self, "_transcript", []))}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores a :meth:`get_state` snapshot of an env built with the same arguments."""
        load_core_state(self.core, state["core"])
        if state["generator"] is None:
            self._rng = None
        else:
            self._rng, _ = seeding.np_random(0)
            load_generator_state(self._rng, state["generator"])
        self.agents = list(state["agents"])
        self._transcript = list(state["transcript"])

    def render(self):
        if self.render_mode == "ansi":
            return "\n".join(self._transcript) + "\n"
        if self.render_mode == "rgb_array":
            return self._frame()
        return None

    def close(self) -> None:
        """Nothing to release."""


def aec_constructors(parallel_env):
    """PettingZoo's ``raw_env`` (the AEC form) and ``env`` (AEC with action checks)."""

    def raw_env(**kwargs):
        """The AEC form (agents take turns; actions apply once every live agent has acted)."""
        return parallel_to_aec(parallel_env(**kwargs))

    def env(**kwargs):
        """The AEC form with PettingZoo's standard wrappers: actions checked against the space,
        calls checked for order (``reset`` first), outermost as PettingZoo's own envs do."""
        return wrappers.OrderEnforcingWrapper(wrappers.AssertOutOfBoundsWrapper(raw_env(**kwargs)))

    for fn in (raw_env, env):  # importable (and picklable) as the env module's own functions
        fn.__module__, fn.__qualname__ = parallel_env.__module__, fn.__name__
    return raw_env, env
