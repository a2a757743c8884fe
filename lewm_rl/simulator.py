"""The actor-critic's rollouts run in copies of the real env: a diagnostic, a perfect model.

``--imagination simulator`` replaces the world model's imagination by the environment itself:
each actor-critic update rolls a pool of env copies ``horizon`` steps forward under the actor's
sampled policy, the actor and critic reading the world model's belief about the real
observations (its posterior, exactly what they read when acting), and learning from the real
rewards and endings. The world model still learns from the replay of the counted env steps, and
its features are all the actor sees; only the dynamics are perfect. Beside the same run with
imagination it separates the world model's errors from the actor-critic's own learning at a
budget: if the actor-critic cannot pass a reference with a perfect model, no better world model
will make it.

The pool's steps are not interactions the agent is charged for (they are the simulator a perfect
model would be); a run reports them as ``imag/simulator_steps`` and is never a sample-efficiency
result. Labels in the pool's ``info`` are read by nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lewm_rl.agents.dreamer.agent import Carry, DreamerAgent, carry_from_tensors, carry_tensors
from lewm_rl.checkpoint import to_arrays, to_tensors
from lewm_rl.world_models.codec import to_tensor_obs
from lewm_rl.world_models.model import State, Trajectory

SEED_OFFSET = 500_000_000
"""The pool's env seeds start here (+ the run's env seed): apart from the training envs' and the
evaluation seeds (from 1,000,000,000)."""


class SimulatorRollouts:
    """A pool of env copies that the actor-critic learns in, one ``horizon`` at a time.

    The pool goes on where the last rollout stopped (next-step autoreset, as the training envs),
    so its starts are the states the policy itself visits. At a step that starts an episode the
    continuation is 0 (the step before it ended one).

    Args:
        adapter: a single-seat env adapter (:func:`~lewm_rl.env_adapters.make_adapter`) of the
            pool's copies, built as the training envs (population, annotation noise, cue filter).
        agent: the actor-critic (its world model gives the belief).
        seed: the pool's env seed.
    """

    def __init__(self, adapter, agent: DreamerAgent, seed: int) -> None:
        if len(adapter.seats) != 1:
            raise ValueError(f"the simulator imagination runs single-learner envs; this one has "
                             f"seats {adapter.seats} (allowed: the Gymnasium ids)")
        self.adapter = adapter
        self.agent = agent
        self.seat = adapter.seats[0]
        self.seed = seed
        self.steps = 0
        self._done = np.zeros(adapter.num_envs, dtype=bool)
        self._carry: Carry | None = None
        """The belief of each copy's current observation and the action chosen in it (``None``
        until the first rollout resets the pool)."""

    def _act(self, obs, is_first: np.ndarray, generator) -> Carry:
        wm = self.agent.world_model
        tobs = to_tensor_obs(obs, wm.mods, wm.device)
        _, carry = self.agent.act(self._carry, tobs, torch.as_tensor(is_first, device=wm.device),
                                  explore=True, generator=generator)
        return carry

    @torch.no_grad()
    def rollout(self, horizon: int, generator: torch.Generator | None = None) -> Trajectory:
        """``horizon`` real steps of every copy under the actor's sampled policy.

        Returns:
            A :class:`~lewm_rl.world_models.model.Trajectory` of ``(horizon + 1, N)`` posterior
            states and their features, the actions taken, the real rewards and continuations
            (``1 - terminated``, 0 where a step starts an episode); index 0 is the start.
        """
        if self._carry is None:
            obs, _ = self.adapter.reset(seed=self.seed)
            self._carry = self._act(obs[self.seat], np.ones(self.adapter.num_envs, dtype=bool),
                                    generator)
        wm = self.agent.world_model
        n = self.adapter.num_envs
        states, actions = [self._carry[0]], []
        rewards = [np.zeros(n, dtype=np.float32)]
        conts = [np.ones(n, dtype=np.float32)]
        for _ in range(horizon):
            action = self._carry[1]
            actions.append(action)
            obs, reward, term, trunc, _ = self.adapter.step({self.seat: action.cpu().numpy()})
            is_first, self._done = self._done, term | trunc
            self._carry = self._act(obs[self.seat], is_first, generator)
            states.append(self._carry[0])
            rewards.append(reward[self.seat])
            conts.append((~(term | is_first)).astype(np.float32))
        self.steps += horizon * n
        traj = State.stack(states, 0)

        def tensor(rows: list[np.ndarray]) -> torch.Tensor:
            return torch.as_tensor(np.stack(rows), device=wm.device)

        return Trajectory(states=traj, features=wm.features(traj), actions=torch.stack(actions),
                          emotion=traj.emotion, reward=tensor(rewards), cont=tensor(conts),
                          behaviour=None)

    def state_dict(self) -> dict[str, Any]:
        """Where the pool stands (its envs and their beliefs), to resume mid-rollout."""
        if self._carry is None:
            return {"steps": self.steps}
        return {"steps": self.steps, "env": to_tensors(self.adapter.get_state()),
                "done": torch.from_numpy(self._done.copy()), "carry": carry_tensors(self._carry)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = int(state["steps"])
        if "env" not in state:
            return
        self.adapter.set_state(to_arrays(state["env"]))
        self._done = state["done"].numpy().copy()
        self._carry = carry_from_tensors(state["carry"], self.agent.world_model.device)


__all__ = ["SEED_OFFSET", "SimulatorRollouts"]
