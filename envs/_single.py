"""The Gymnasium ``Env`` shared by every environment: one core row, the learner in seat 0."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from lewm_rl.envs._checks import check_discrete_action


def first_row(batch: dict[str, np.ndarray]) -> dict[str, Any]:
    """Row 0 of a core's batched observation or info (``B = 1``), as the single-env views return
    it: a scalar entry becomes a Python ``int`` (integer dtype) or ``float``, an array stays an
    array (a view of the row)."""
    out: dict[str, Any] = {}
    for k, v in batch.items():
        row = v[0]
        if np.ndim(row) == 0:
            row = int(row) if np.issubdtype(np.asarray(row).dtype, np.integer) else float(row)
        out[k] = row
    return out


class CoreEnv(gym.Env):
    """Reset, step and render over a batched core with ``B = 1``.

    Subclasses set ``self.core``, ``self.action_space``, ``self.render_mode``,
    ``self._actions`` (``(1, seats)`` int64) and implement ``_obs()``, ``_info()``,
    ``_transcript_start()``, ``_transcript_step(before)`` and ``_frame()``; ``_before_step()``
    returns what the transcript needs from before the step (default ``None``).
    """

    def _before_step(self) -> Any:
        return None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.core.reset_rows(np.array([0]), [self.np_random])
        self._transcript = self._transcript_start()
        return self._obs(), self._info()

    def step(self, action):
        if self.core.done[0]:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        self._actions[0, 0] = check_discrete_action(action, self.action_space.n)
        before = self._before_step() if self.render_mode == "ansi" else None
        reward = self.core.step(self._actions)
        terminated = bool(self.core.done[0])
        if self.render_mode == "ansi":
            self._transcript += self._transcript_step(before)
        return self._obs(), float(reward[0, 0]), terminated, False, self._info()

    def render(self):
        if self.render_mode == "ansi":
            return "\n".join(self._transcript) + "\n"
        if self.render_mode == "rgb_array":
            return self._frame()
        return None
