"""Callbacks of the SB3 bridges: Dyna-style world-model refitting on real data, and evaluation.

Both write to the TensorBoard run of the model's SB3 logger, at the count of *real* env steps (the
x-axis of every run in the project; for training in imagination SB3's own ``num_timesteps`` counts
imagined steps). Without a TensorBoard output in the logger they record through
``logger.record`` instead, at SB3's step.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat

from lewm_rl.data.replay import SequenceReplay, to_torch
from lewm_rl.world_models.model import EmotionalWorldModel
from lewm_rl.world_models.training import fit_step

from .belief import LEWMBeliefWrapper, add_episodes
from .imagination import ImaginationVecEnv

ActFn = Callable[[np.ndarray], np.ndarray]


def write_scalars(logger: Logger, values: dict[str, float], step: int) -> None:
    """Writes scalars to the logger's TensorBoard run at ``step`` (see the module docstring)."""
    tb = [f for f in logger.output_formats if isinstance(f, TensorBoardOutputFormat)]
    for k, v in values.items():
        if not math.isfinite(v):
            continue
        if tb:
            tb[0].writer.add_scalar(k, v, step)
        else:
            logger.record(k, v)
    if tb:
        tb[0].writer.flush()


class RealCollector:
    """Plays the current policy in real envs, through their belief wrappers, into a replay.

    The envs are stepped in lockstep; an env whose episode ended is reset at its next turn (so every
    call to :meth:`collect` plays exactly ``steps`` env steps, resets not counted). Finished
    episodes go to the one-stream ``replay`` row by row.

    Args:
        envs: real envs wrapped by ``LEWMBeliefWrapper(..., record=True)``.
        replay: a one-stream replay.
        seed: episode ``k`` of env ``i`` is reset with seed ``seed + i + k * len(envs)``.
    """

    def __init__(self, envs: Sequence[LEWMBeliefWrapper], replay: SequenceReplay, seed: int = 0
                 ) -> None:
        if not all(isinstance(e, LEWMBeliefWrapper) and e.record for e in envs):
            raise ValueError("RealCollector needs envs wrapped by LEWMBeliefWrapper(record=True)")
        self.envs = list(envs)
        self.replay = replay
        self.seed = seed
        self.steps = 0
        self.episodes = 0
        self._resets = 0
        self._obs: list[np.ndarray | None] = [None] * len(self.envs)
        self._return = np.zeros(len(self.envs))

    def collect(self, steps: int, act: ActFn | None) -> list[float]:
        """Plays ``steps`` env steps with ``act`` (beliefs ``(N, F)`` to actions; ``None``: uniform
        random); returns the returns of the episodes that finished."""
        rng = np.random.default_rng(self.seed + self.steps)
        finished: list[float] = []
        done_steps = 0
        while done_steps < steps:
            for i, env in enumerate(self.envs):
                if self._obs[i] is None:
                    self._obs[i], _ = env.reset(seed=self.seed + self._resets)
                    self._resets += 1
                    self._return[i] = 0.0
            n = min(len(self.envs), steps - done_steps)
            beliefs = np.stack(self._obs[:n])  # (n, F)
            actions = (rng.integers(0, self.envs[0].action_space.n, n) if act is None
                       else np.asarray(act(beliefs)).reshape(n))
            for i in range(n):
                obs, reward, term, trunc, _ = self.envs[i].step(int(actions[i]))
                self._return[i] += reward
                self._obs[i] = obs
                if term or trunc:
                    finished.append(float(self._return[i]))
                    self._obs[i] = None
            done_steps += n
        for env in self.envs:
            add_episodes(self.replay, env.pop_episodes())
        self.steps += done_steps
        self.episodes += len(finished)
        return finished

    def state_dict(self) -> dict[str, int]:
        """The counters a resumed run goes on from (episodes in flight start afresh)."""
        return {"steps": self.steps, "episodes": self.episodes, "resets": self._resets}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.steps, self.episodes = int(state["steps"]), int(state["episodes"])
        self._resets = int(state["resets"])


class RealDataRefitCallback(BaseCallback):
    """Dyna / MBPO-style world-model refitting on real data during SB3 training.

    After every rollout it gathers new real experience, adds it to the replay, runs
    ``fit_step`` on ``(batch_size, seq_len)`` windows (``train_ratio`` replayed steps per new real
    step, the debt carried over), refreshes the imagination env's start states, and logs
    ``world_model/*`` (and, with a collector, ``train/episode_return`` of the collected episodes,
    and ``imag/return`` of the imagined ones). Where the real experience comes from:

    * ``collector`` given (training in imagination): it plays ``real_steps_per_rollout`` steps of
      the current policy (stochastic actions) in real envs through their belief wrappers;
    * otherwise (training on real beliefs): the training env's own episodes, recorded by its
      ``LEWMBeliefWrapper(record=True)`` envs (``env_method("pop_episodes")``).

    Training stops once ``max_real_steps`` real steps have been played.

    Args:
        world_model: the model to refit (shared with the envs that read its beliefs).
        optimizer: its optimiser (``lewm_rl.world_models.make_optimizer``).
        replay: one-stream replay of real experience.
        batch_size: sequences per world-model update.
        seq_len: steps per sequence.
        train_ratio: replayed steps per new real step.
        collector: see above.
        real_steps_per_rollout: real steps the collector plays after each rollout.
        imagination_env: refreshed after each refit (``refresh_starts``).
        real_steps: real steps already played before training (prefill); the count goes on.
        max_real_steps: stop training after this many real steps.
        seed: seed of the replay sampling and of the world model's sampling.
        max_skipped_updates: raise after this many non-finite world-model losses in a row.
    """

    def __init__(
        self,
        world_model: EmotionalWorldModel,
        optimizer: torch.optim.Optimizer,
        replay: SequenceReplay,
        *,
        batch_size: int = 16,
        seq_len: int = 32,
        train_ratio: float = 128.0,
        collector: RealCollector | None = None,
        real_steps_per_rollout: int = 0,
        imagination_env: ImaginationVecEnv | None = None,
        real_steps: int = 0,
        max_real_steps: int | None = None,
        seed: int = 0,
        max_skipped_updates: int = 20,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if collector is not None and real_steps_per_rollout < 1:
            raise ValueError("a collector needs real_steps_per_rollout >= 1")
        self.world_model = world_model
        self.optimizer = optimizer
        self.replay = replay
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.train_ratio = train_ratio
        self.collector = collector
        self.real_steps_per_rollout = real_steps_per_rollout
        self.imagination_env = imagination_env
        self.real_steps = real_steps
        self.max_real_steps = max_real_steps
        self.max_skipped_updates = max_skipped_updates
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator(device=world_model.device).manual_seed(seed)
        self.updates = 0
        self.update_debt = 0.0
        self.skipped_in_a_row = 0
        self._train_returns: list[float] = []
        self._imagined: list[float] = []
        self._steps_at_start = 0

    def _on_training_start(self) -> None:
        self._steps_at_start = self.model.num_timesteps

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", ()):
            if "imagined_return" in info:
                self._imagined.append(info["imagined_return"])
        if self.collector is None:  # the training env is the real env
            self.real_steps += self.training_env.num_envs
        return self.max_real_steps is None or self.real_steps < self.max_real_steps

    def _on_rollout_end(self) -> None:
        new = 0
        if self.collector is not None:
            steps = self.real_steps_per_rollout
            if self.max_real_steps is not None:
                steps = min(steps, self.max_real_steps - self.real_steps)
            if steps > 0:
                self._train_returns += self.collector.collect(steps, self._act)
                self.real_steps += steps
                new = steps
        else:
            for episodes in self.training_env.env_method("pop_episodes"):
                new += add_episodes(self.replay, episodes)
        metrics = self.refit(new)
        if self._train_returns:
            metrics["train/episode_return"] = float(np.mean(self._train_returns))
        if self._imagined:
            metrics["imag/return"] = float(np.mean(self._imagined))
        self._train_returns, self._imagined = [], []
        write_scalars(self.logger, metrics, self.real_steps)

    def _act(self, beliefs: np.ndarray) -> np.ndarray:
        actions, _ = self.model.predict(beliefs, deterministic=False)
        return actions

    def state_dict(self) -> dict[str, Any]:
        """Counters, update debt and sampling RNGs (the model, optimiser and replay are saved by
        their owner)."""
        return {"updates": self.updates, "update_debt": self.update_debt,
                "skipped_in_a_row": self.skipped_in_a_row, "real_steps": self.real_steps,
                "rng": json.dumps(self.rng.bit_generator.state),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates, self.update_debt = int(state["updates"]), float(state["update_debt"])
        self.skipped_in_a_row = int(state["skipped_in_a_row"])
        self.real_steps = int(state["real_steps"])
        self.rng.bit_generator.state = json.loads(state["rng"])
        self.generator.set_state(state["generator"].cpu())

    def refit(self, new_real_steps: int) -> dict[str, float]:
        """World-model updates owed for ``new_real_steps``; returns the mean metrics."""
        if self.replay.filled < self.seq_len:
            return {}
        self.update_debt += new_real_steps * self.train_ratio / (self.batch_size * self.seq_len)
        sums: dict[str, list[float]] = {}
        while self.update_debt >= 1.0:
            self.update_debt -= 1.0
            for k, v in self.fit_once(with_metrics=self.updates % 10 == 0).items():
                sums.setdefault(k, []).append(v)
        if self.imagination_env is not None and sums:
            self.imagination_env.refresh_starts()
        return {k: float(np.mean(v)) for k, v in sums.items()}

    def fit_once(self, with_metrics: bool = False) -> dict[str, float]:
        """One ``fit_step`` on a replayed batch."""
        batch = to_torch(self.replay.sample(self.batch_size, self.seq_len, self.rng),
                         self.world_model.device)
        metrics, _ = fit_step(self.world_model, self.optimizer, batch, with_metrics=with_metrics,
                              generator=self.generator)
        self.updates += 1
        if metrics.get("world_model/skipped", 0.0):
            self.skipped_in_a_row += 1
            if self.skipped_in_a_row >= self.max_skipped_updates:
                raise RuntimeError(f"the world-model loss was not finite for "
                                   f"{self.skipped_in_a_row} updates in a row")
        else:
            self.skipped_in_a_row = 0
        return metrics


def evaluate(model: BaseAlgorithm | Any, make_env: Callable[[], gym.Env], episodes: int,
             seed: int) -> np.ndarray:
    """Returns ``(episodes,)`` of the deterministic policy; episode ``i`` is reset with seed
    ``seed + i``. The episodes run in lockstep (one batched ``predict`` per step); ``info`` is
    never given to the policy."""
    envs = [make_env() for _ in range(episodes)]
    obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
    returns = np.zeros(episodes)
    active = np.ones(episodes, dtype=bool)
    # A recurrent policy (sb3-contrib's RecurrentPPO) carries an LSTM state per episode.
    lstm = getattr(getattr(model, "policy", None), "lstm_hidden_state_shape", None)
    state = None if lstm is None else tuple(np.zeros((lstm[0], episodes, lstm[2]), np.float32)
                                            for _ in range(2))
    first = np.ones(episodes, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        if isinstance(obs[0], dict):
            batch: Any = {k: np.stack([np.asarray(obs[i][k]) for i in idx]) for k in obs[0]}
        else:
            batch = np.stack([obs[i] for i in idx])
        if state is None:
            actions, _ = model.predict(batch, deterministic=True)
        else:
            actions, (h, c) = model.predict(batch, state=(state[0][:, idx], state[1][:, idx]),
                                            episode_start=first[idx], deterministic=True)
            state[0][:, idx], state[1][:, idx] = h, c
            first[idx] = False
        for j, i in enumerate(idx):
            obs[i], reward, term, trunc, _ = envs[i].step(actions[j])
            returns[i] += reward
            active[i] = not (term or trunc)
    for env in envs:
        env.close()
    return returns


class TrainReturnCallback(BaseCallback):
    """Logs ``train/episode_return`` of the training env's real episodes (from SB3's ``Monitor``
    infos) after every rollout, at ``real_steps()``."""

    def __init__(self, real_steps: Callable[[], int], verbose: int = 0) -> None:
        super().__init__(verbose)
        self.real_steps = real_steps
        self._returns: list[float] = []

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", ()):
            if "episode" in info:
                self._returns.append(float(info["episode"]["r"]))
        return True

    def _on_rollout_end(self) -> None:
        if self._returns:
            write_scalars(self.logger, {"train/episode_return": float(np.mean(self._returns))},
                          self.real_steps())
        self._returns = []


class StopAtRealSteps(BaseCallback):
    """Stops training once ``real_steps() >= budget`` (SB3 would otherwise finish the rollout)."""

    def __init__(self, real_steps: Callable[[], int], budget: int, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.real_steps = real_steps
        self.budget = budget

    def _on_step(self) -> bool:
        return self.real_steps() < self.budget


class SaveAndStop(BaseCallback):
    """Checkpoints every ``every`` real env steps, and stops training once ``stop_requested()``
    (Ctrl-C, SIGTERM).

    A checkpoint is taken as a rollout starts: the previous rollout has been trained on and the
    world model refitted, so what is saved is consistent. ``next_save`` is advanced before
    ``save_fn()`` runs, so the checkpoint holds the next one's step.

    Args:
        save_fn: writes the checkpoint.
        every: real env steps between checkpoints.
        real_steps: the current count of real env steps.
        stop_requested: whether to stop now (checked after every env step).
        next_save: real step of the first checkpoint (default ``every``; a resumed run's saved one).
    """

    def __init__(self, save_fn: Callable[[], Any], every: int, real_steps: Callable[[], int],
                 stop_requested: Callable[[], bool], next_save: int | None = None,
                 verbose: int = 0) -> None:
        super().__init__(verbose)
        self.save_fn = save_fn
        self.every = every
        self.real_steps = real_steps
        self.stop_requested = stop_requested
        self.next_save = every if next_save is None else next_save

    def _on_rollout_start(self) -> None:
        step = self.real_steps()
        if step >= self.next_save:
            while self.next_save <= step:
                self.next_save += self.every
            self.save_fn()

    def _on_step(self) -> bool:
        return not self.stop_requested()


class RealEvalCallback(BaseCallback):
    """Evaluates the policy every ``every`` real env steps on fixed seeds; logs
    ``eval/episode_return``.

    Args:
        evaluate_fn: the mean evaluation return of the current model.
        every: real env steps between evaluations.
        real_steps: the current count of real env steps.
        extra_fn: more figures to log at each evaluation (e.g. held-out populations' returns,
            ``{"eval/stoic/episode_return": ...}``); the last ones are kept in ``last_extras``.
    """

    def __init__(self, evaluate_fn: Callable[[], float], every: int,
                 real_steps: Callable[[], int], verbose: int = 0,
                 extra_fn: Callable[[], dict[str, float]] | None = None) -> None:
        super().__init__(verbose)
        self.evaluate_fn = evaluate_fn
        self.every = every
        self.real_steps = real_steps
        self.next_eval = every
        self.history: list[tuple[int, float]] = []
        self.extra_fn = extra_fn
        self.last_extras: dict[str, float] = {}

    def _on_step(self) -> bool:
        self._maybe_evaluate()
        return True

    def _on_rollout_end(self) -> None:
        self._maybe_evaluate()

    def _maybe_evaluate(self) -> None:
        step = self.real_steps()
        if step >= self.next_eval:
            self.log_eval(step)
            while self.next_eval <= step:
                self.next_eval += self.every

    def state_dict(self) -> dict[str, Any]:
        return {"next_eval": self.next_eval, "history": [list(h) for h in self.history],
                "last_extras": dict(self.last_extras)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.next_eval = int(state["next_eval"])
        self.history = [(int(s), float(v)) for s, v in state["history"]]
        self.last_extras = dict(state["last_extras"])

    def log_eval(self, step: int) -> float:
        """Evaluates now and logs the figure at ``step``."""
        value = float(self.evaluate_fn())
        self.history.append((step, value))
        self.last_extras = dict(self.extra_fn()) if self.extra_fn is not None else {}
        write_scalars(self.logger, {"eval/episode_return": value, **self.last_extras}, step)
        return value
