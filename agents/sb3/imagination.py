"""An SB3 ``VecEnv`` that steps a world model: any SB3 algorithm trains inside imagination."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from lewm_rl.data.replay import SequenceReplay, to_torch
from lewm_rl.world_models.model import EmotionalWorldModel, State

from .belief import belief_space

TERMINATIONS = ("threshold", "sample")


class ImaginationVecEnv(VecEnv):
    """``n_envs`` imagined episodes, stepped by a world model, under SB3's ``VecEnv`` contract.

    Each imagined episode starts from a posterior state of replayed real experience (a random row
    of a random replayed sequence, past its burn-in, that did not end an episode), so imagination
    starts where the real policy has been. A step is one ``world_model.imagine`` step: the
    observation is the belief ``world_model.features(state)`` (the same ``Box`` as
    :class:`~lewm_rl.agents.sb3.belief.LEWMBeliefWrapper`, so a policy trained here acts in the
    real env through that wrapper), the reward is the reward head's prediction, and the episode
    terminates where the continuation head says so. Episodes are truncated after ``horizon``
    steps. As SB3's ``DummyVecEnv``, a finished episode is reset at once: its ``info`` holds
    ``terminal_observation`` and ``TimeLimit.truncated`` (so PPO bootstraps truncated episodes),
    plus ``imagined_return`` and ``imagined_length``.

    Args:
        world_model: any world-model configuration (not owned: a callback may refit it; call
            :meth:`refresh_starts` afterwards).
        replay: real experience (:class:`~lewm_rl.data.SequenceReplay`); it must hold at least
            ``seq_len`` rows per stream.
        n_envs: imagined episodes stepped in parallel.
        horizon: truncation length of an imagined episode.
        start_sequences: replayed sequences per refresh of the start-state pool.
        seq_len: length of those sequences.
        burn_in: rows of each sequence that only warm up the posterior (never start an episode).
        termination: ``"threshold"`` (``cont < 0.5``) or ``"sample"`` (probability ``1 - cont``).
        seed: seed of the replay sampling and of the world model's sampling.

    Sub-environments: all ``n_envs`` share one world model and one random generator, so
    ``get_attr``/``set_attr``/``env_method`` act on this simulator: a per-env attribute
    (``episode_step``, ``episode_return``) comes back per index; any other attribute is shared
    (setting it for a subset of envs is refused), and a method runs once, its result repeated per
    index. ``seed(s)`` seeds the shared generators with ``s`` at the next ``reset()`` and returns
    ``[s, s + 1, ...]`` as SB3 does. Nothing is wrapped (``env_is_wrapped`` is all ``False``).
    """

    render_mode = None
    PER_ENV = ("episode_step", "episode_return")

    def __init__(
        self,
        world_model: EmotionalWorldModel,
        replay: SequenceReplay,
        n_envs: int = 16,
        horizon: int = 16,
        *,
        start_sequences: int = 64,
        seq_len: int = 32,
        burn_in: int = 8,
        termination: str = "threshold",
        seed: int | None = None,
    ) -> None:
        if termination not in TERMINATIONS:
            raise ValueError(f"unknown termination {termination!r}; allowed: "
                             f"{', '.join(TERMINATIONS)}")
        if horizon < 1 or n_envs < 1 or start_sequences < 1:
            raise ValueError("horizon, n_envs and start_sequences must be >= 1")
        if not 0 <= burn_in < seq_len:
            raise ValueError(f"burn_in must be in [0, seq_len={seq_len}), got {burn_in}")
        self.world_model = world_model
        self.replay = replay
        self.horizon = horizon
        self.start_sequences = start_sequences
        self.seq_len = seq_len
        self.burn_in = burn_in
        self.termination = termination
        self.episode_step = np.zeros(n_envs, dtype=np.int64)
        self.episode_return = np.zeros(n_envs, dtype=np.float32)
        self._rng = np.random.default_rng(seed)
        self._gen = torch.Generator(device=world_model.device)
        if seed is None:
            self._gen.seed()
        else:
            self._gen.manual_seed(seed)
        self._starts: State | None = None
        self._state: State | None = None
        self._actions: torch.Tensor | None = None
        super().__init__(n_envs, belief_space(world_model), world_model.action_space)

    # -- start states -----------------------------------------------------------------------------
    @torch.no_grad()
    def refresh_starts(self) -> int:
        """Re-encodes replayed sequences with the current world model; returns the pool size."""
        wm = self.world_model
        batch = to_torch(self.replay.sample(self.start_sequences, self.seq_len, self._rng),
                         wm.device)
        obs = {m.key: batch[m.key] for m in wm.mods}
        states, _, _ = wm.observe(obs, batch["action"], batch["is_first"].bool(),
                                  generator=self._gen)  # (B, T, ...)
        keep = ~batch["is_terminal"].bool()
        keep[:, : self.burn_in] = False
        if not bool(keep.any()):  # every row ended an episode: keep them rather than none
            keep[:, self.burn_in:] = True
        flat = states.flatten()  # (B*T, ...)
        self._starts = flat[keep.reshape(-1)]
        return len(self._starts.deter)

    def _draw_starts(self, n: int) -> State:
        if self._starts is None:
            self.refresh_starts()
        idx = self._rng.integers(0, len(self._starts.deter), n)
        return self._starts[torch.as_tensor(idx, device=self.world_model.device)]

    def _features(self, state: State) -> np.ndarray:
        return self.world_model.features(state).cpu().numpy().astype(np.float32)  # (N, F)

    # -- the VecEnv contract ----------------------------------------------------------------------
    def reset(self) -> VecEnvObs:
        """New start states for every env (``seed()`` applies here); returns ``(n_envs, F)``."""
        if self._seeds[0] is not None:
            self._rng = np.random.default_rng(self._seeds[0])
            self._gen.manual_seed(self._seeds[0])
            self._starts = None
        self._reset_seeds()
        self._reset_options()
        if self._starts is None:
            self.refresh_starts()
        with torch.no_grad():
            self._state = self._draw_starts(self.num_envs)
            obs = self._features(self._state)
        self.episode_step[:] = 0
        self.episode_return[:] = 0.0
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        a = np.asarray(actions).reshape(-1)
        if len(a) != self.num_envs:
            raise ValueError(f"expected {self.num_envs} actions, got shape {np.shape(actions)}")
        self._actions = torch.as_tensor(a.astype(np.int64), device=self.world_model.device)

    @torch.no_grad()
    def step_wait(self) -> VecEnvStepReturn:
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        if self._actions is None:
            raise RuntimeError("call step_async() before step_wait()")
        actions, self._actions = self._actions, None
        traj = self.world_model.imagine(self._state, lambda _: actions, horizon=1,
                                        generator=self._gen, decode_behaviour=False)
        self._state = traj.states[1]
        obs = traj.features[1].cpu().numpy().astype(np.float32)  # (N, F)
        reward = traj.reward[1].cpu().numpy().astype(np.float32)  # (N,)
        cont = traj.cont[1]
        if self.termination == "threshold":
            terminated = (cont < 0.5).cpu().numpy()
        else:
            u = torch.rand(cont.shape, generator=self._gen, device=cont.device)
            terminated = (u >= cont).cpu().numpy()
        self.episode_step += 1
        self.episode_return += reward
        truncated = (self.episode_step >= self.horizon) & ~terminated
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{"TimeLimit.truncated": bool(t)} for t in truncated]
        done_idx = np.flatnonzero(dones)
        if len(done_idx):
            for i in done_idx:
                infos[i]["terminal_observation"] = obs[i].copy()
                infos[i]["imagined_return"] = float(self.episode_return[i])
                infos[i]["imagined_length"] = int(self.episode_step[i])
            rows = torch.as_tensor(done_idx, device=self.world_model.device)
            fresh = self._draw_starts(len(done_idx))
            state = self._state
            for field in ("deter", "stoch", "emotion"):
                getattr(state, field)[rows] = getattr(fresh, field)
            obs[done_idx] = self._features(fresh)
            self.episode_step[done_idx] = 0
            self.episode_return[done_idx] = 0.0
        return obs, reward, dones.astype(bool), infos

    def close(self) -> None:
        self._state = self._starts = None

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        idx = list(self._get_indices(indices))
        value = getattr(self, attr_name)  # AttributeError if absent, as has_attr expects
        if attr_name in self.PER_ENV:
            return [value[i].item() for i in idx]
        return [value for _ in idx]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        idx = list(self._get_indices(indices))
        if attr_name in self.PER_ENV:
            getattr(self, attr_name)[idx] = value
            return
        if sorted(idx) != list(range(self.num_envs)):
            raise ValueError(f"{attr_name!r} is shared by every imagined env; set it for all")
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None,
                   **method_kwargs) -> list[Any]:
        idx = list(self._get_indices(indices))
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result for _ in idx]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
                       ) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None for _ in range(self.num_envs)]
