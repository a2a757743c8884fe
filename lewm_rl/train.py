"""``python -m lewm_rl.train``: the one training loop.

It owns env stepping, replay, world-model updates (``fit_step``), agent updates, evaluation on
fixed seeds, TensorBoard logging and checkpoints; components are configured by their own frozen
dataclasses, nested on the command line (``--wm.consistency-weight 0.1``, ``--dreamer.horizon 10``).

Examples::

    python -m lewm_rl.train --env SocialNegotiation-v0             # LEWM + Dreamer
    python -m lewm_rl.train --env SocialNegotiation-v0 --compare   # LEWM and blind, same seeds
    python -m lewm_rl.train --env social_negotiation_v0            # PettingZoo: every seat learns
    python -m lewm_rl.train --resume runs/<run dir>                # continue a stopped run
    tensorboard --logdir runs

Nothing is lost and nothing fails silently: Ctrl-C and SIGTERM (a scheduler's preemption) save a
checkpoint and print how to resume; a checkpoint is written only when the models in it are finite
and sound, and keeps the one before it (``checkpoint.prev.pt``); a divergence (a NaN or infinity in
a loss, a sampled probability, the actor or the critic) stops the run with one line naming the step,
what went non-finite and the last good checkpoint. A resumed run carries on exactly where it
stopped (envs mid-episode, beliefs, replay, optimisers, every RNG): a seeded run interrupted and
resumed ends as the uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from lewm_rl.agents.dreamer import DreamerAgent, DreamerConfig
from lewm_rl.agents.dreamer.agent import ADDED_LATER as DREAMER_ADDED_LATER
from lewm_rl.agents.dreamer.agent import carry_from_tensors, carry_tensors, check_penalties
from lewm_rl.agents.sb3.config import SB3Config
from lewm_rl.agents.sb3.runner import MODEL_FREE
from lewm_rl.checkpoint import (
    CheckpointError,
    find_nonfinite,
    load,
    previous_path,
    remove_stale_temporaries,
    save_keeping_previous,
    to_arrays,
    to_tensors,
)
from lewm_rl.data.replay import SequenceReplay, to_torch
from lewm_rl.distributions import ActionStructure
from lewm_rl.env_adapters import available_envs, check_env_id, make_adapter
from lewm_rl.envs import GYM_ENV_IDS
from lewm_rl.evaluation import normalised, reference_returns
from lewm_rl.metrics import f1_scores
from lewm_rl.simulator import SEED_OFFSET as SIMULATOR_SEEDS
from lewm_rl.simulator import SimulatorRollouts
from lewm_rl.world_models import (
    EmotionalWorldModel,
    WorldModelConfig,
    build_world_model,
    explained,
    fit_step,
    make_optimizer,
)
from lewm_rl.world_models.codec import to_tensor_obs
from lewm_rl.world_models.config import ADDED_LATER as WM_ADDED_LATER
from lewm_rl.world_models.config import Kind
from lewm_rl.world_models.probe import EmotionProbe

EVAL_SEED = 1_000_000_000
"""Evaluation episodes are seeded ``EVAL_SEED + i``: fixed, and never used for training."""


@dataclass(frozen=True)
class TrainConfig:
    """Training run. Every figure in the defaults is sized for a 2-core CPU."""

    env: str = "SocialNegotiation-v0"
    """Environment: a Gymnasium id or a PettingZoo module (lewm_rl.envs.GYM_ENV_IDS,
    lewm_rl.envs.PETTINGZOO_MODULES)."""
    world_model: Kind = "lewm"
    """World model: lewm (emotion first), blind, state_first or parallel."""
    agent: Literal["dreamer", "ppo", "recurrent-ppo", "ppo-belief", "ppo-imagination"] = "dreamer"
    """Agent: dreamer (actor-critic in the world model's imagination); ppo (SB3 PPO on raw
    observations, no world model); recurrent-ppo (sb3-contrib RecurrentPPO, an LSTM policy on raw
    observations, no world model; needs the benchmarks extra); ppo-belief (SB3 PPO on the world
    model's belief); ppo-imagination (SB3 PPO trained inside the world model, refitted on real
    data)."""
    steps: int = 12_000
    """Env steps to train for (per seat); --resume continues to the run's saved value unless
    --steps is given."""
    seed: int = 0
    """Seed of training (env seeds, network initialisation, sampling)."""
    logdir: str = "runs"
    """Directory that receives the run directories (TensorBoard: tensorboard --logdir runs)."""
    compare: bool = False
    """Train lewm and blind with the same seeds, in parallel, into sibling run directories."""
    resume: str | None = None
    """Run directory (or --compare parent directory) to continue from its last checkpoint."""
    device: str = "cpu"
    """Torch device, e.g. cpu, cuda or cuda:1 (checked to exist before anything is created)."""
    num_envs: int = 8
    """Parallel env copies."""
    population: str = "default"
    """Partner population of the training envs."""
    annotation_noise: float = 0.1
    """Annotator noise of the labels that train the emotion heads."""
    filter_cues: bool = False
    """Neutralise the partners' emotional cues (expression, tone) in every observation the agent
    sees, in training and evaluation (lewm_rl.envs.wrappers.FilterEmotionCues): the control of
    the value of emotional information in returns. The labels still train the emotion heads."""
    eval_populations: tuple[str, ...] = ("volatile", "stoic")
    """Held-out partner populations, evaluated at every evaluation beside the training one."""
    shared_parameters: bool = False
    """PettingZoo: one world model and agent shared by all learner seats."""
    prefill: int = 1_000
    """Random env steps before the first update."""
    train_ratio: float = 128.0
    """Replayed steps per env step (each update replays batch_size * seq_len steps)."""
    batch_size: int = 16
    """Sequences per world-model batch."""
    seq_len: int = 32
    """Steps per sequence."""
    replay_recency: float = 0.0
    """Share of the world model's replayed windows drawn by recency (probability proportional to
    ``1 / (1 + age)``, DreamerV3's recency selector) instead of uniformly: the model keeps up
    with the moves the policy makes now. 0: uniform, as DreamerV3's default ``replay.fracs``."""
    eval_every: int = 3_000
    """Env steps between evaluations."""
    eval_episodes: int = 32
    """Evaluation episodes (one per fixed evaluation seed)."""
    checkpoint_every: int = 3_000
    """Env steps between checkpoints (one is also written at the end, on Ctrl-C and on SIGTERM)."""
    log_every: int = 500
    """Env steps between scalar logs."""
    max_skipped_updates: int = 20
    """Stop with an error after this many updates in a row with a non-finite loss or gradient
    (world model or actor-critic; such an update is not applied)."""
    threads: int = 0
    """torch threads (0: torch's default)."""
    progress: bool = True
    """Show a progress bar."""
    run_dir: str | None = None
    """Write into this run directory instead of a new one under --logdir."""
    imagination: Literal["world-model", "simulator"] = "world-model"
    """Where the Dreamer actor-critic's rollouts come from: world-model (its imagination, the
    method) or simulator (a diagnostic: copies of the real env, a perfect model of the dynamics,
    the actor still reading the world model's belief; their steps are not counted as the
    agent's interactions; single-learner envs; lewm_rl.simulator)."""
    wm: WorldModelConfig = field(default_factory=WorldModelConfig)
    """World-model hyperparameters (its kind is set by --world-model)."""
    dreamer: DreamerConfig = field(default_factory=DreamerConfig)
    """Dreamer actor-critic hyperparameters."""
    sb3: SB3Config = field(default_factory=SB3Config)
    """Stable-Baselines3 agents' hyperparameters (--agent ppo, ppo-belief, ppo-imagination)."""

    def validate(self) -> None:
        """Raises ``ValueError`` naming what is wrong and what is allowed."""
        check_finite(self)
        check_env_id(self.env)
        from lewm_rl.envs.affect import check_annotation_noise, check_population

        check_population(self.population)
        for p in self.eval_populations:
            check_population(p)
        check_annotation_noise(self.annotation_noise)
        for name in ("steps", "num_envs", "batch_size", "seq_len", "eval_every", "eval_episodes",
                     "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got "
                                 f"{getattr(self, name)}")
        if self.train_ratio <= 0:
            raise ValueError(f"--train-ratio must be > 0, got {self.train_ratio}")
        if not 0.0 <= self.replay_recency <= 1.0:
            raise ValueError(f"--replay-recency must be in [0, 1], got {self.replay_recency}")
        if self.prefill < 0:
            raise ValueError(f"--prefill must be >= 0, got {self.prefill}")
        if self.agent == "dreamer" and self.prefill < self.seq_len * self.num_envs:
            raise ValueError(f"--prefill must be >= --seq-len x --num-envs = "
                             f"{self.seq_len * self.num_envs} (each env's first --seq-len steps "
                             f"before the first update), got {self.prefill}")
        if self.agent == "dreamer":
            check_penalties(self.dreamer, self.wm)
        if self.imagination not in ("world-model", "simulator"):
            raise ValueError(f"--imagination must be world-model or simulator, got "
                             f"{self.imagination!r}")
        if self.imagination == "simulator" and (self.agent != "dreamer"
                                                or self.env not in GYM_ENV_IDS):
            raise ValueError(f"--imagination simulator runs the dreamer agent's rollouts in "
                             f"copies of a single-learner env (allowed: --agent dreamer with "
                             f"{', '.join(GYM_ENV_IDS)}), got --agent {self.agent} --env "
                             f"{self.env}")
        if self.compare and self.agent in MODEL_FREE:
            raise ValueError(f"--compare trains lewm and blind world models; --agent {self.agent} "
                             "uses none (allowed with --compare: dreamer, ppo-belief, "
                             "ppo-imagination)")
        check_device(self.device)


def check_finite(config: Any, prefix: str = "") -> None:
    """Raises ``ValueError`` naming the first float flag of ``config`` (nested configs included)
    that is NaN or infinite: ``nan`` would train with no updates, ``inf`` never end."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        flag = f"--{prefix}{f.name.replace('_', '-')}"
        if dataclasses.is_dataclass(value):
            check_finite(value, f"{prefix}{f.name}.")
            continue
        values = value if isinstance(value, (tuple, list)) else (value,)
        for v in values:
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"{flag} must be a finite number, got {value}")


def check_device(device: str) -> None:
    """Raises ``ValueError`` unless ``device`` names a torch device present on this machine."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"--device {device!r} is not a torch device; use e.g. cpu, cuda or "
                         f"cuda:0") from None
    if dev.type == "cpu":
        return
    backend = getattr(torch, dev.type, None)
    if dev.type == "mps":
        backend = getattr(torch.backends, "mps", None)
    available = backend is not None and hasattr(backend, "is_available") and backend.is_available()
    if not available:
        raise ValueError(f"--device {device}: no {dev.type} device is available on this machine "
                         f"(torch.{dev.type}.is_available() is False); use --device cpu")
    count = getattr(backend, "device_count", lambda: 1)()
    if dev.index is not None and dev.index >= count:
        raise ValueError(f"--device {device}: this machine has {count} {dev.type} device(s) "
                         f"(indices 0 to {count - 1})")


def resolved(config: TrainConfig) -> TrainConfig:
    """Fills derived fields: the world-model kind comes from --world-model."""
    return dataclasses.replace(config, wm=dataclasses.replace(config.wm, kind=config.world_model))


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    d = dataclasses.asdict(config)
    d["eval_populations"] = list(config.eval_populations)
    return d


ADDED_LATER: dict[str, dict[str, Any]] = {"wm": WM_ADDED_LATER, "dreamer": DREAMER_ADDED_LATER}
"""Fields added after runs were written, at the values that rebuild those runs: a config.json
without them is a run of the earlier recipe (so it still loads and resumes)."""


def config_from_dict(d: dict[str, Any]) -> TrainConfig:
    """The inverse of :func:`config_to_dict` (JSON lists become the tuples they were).

    Raises:
        ValueError: ``d`` is not such a dict, or holds keys no config field has (one line naming
            every one of them).
    """
    nested = {"wm": WorldModelConfig, "dreamer": DreamerConfig, "sb3": SB3Config}
    if not isinstance(d, dict) or not all(isinstance(d.get(k, {}), dict) for k in nested):
        raise ValueError("not a TrainConfig: expected a JSON object with wm, dreamer and sb3 "
                         "objects")
    unknown = [k for k in d if k not in {f.name for f in dataclasses.fields(TrainConfig)}]
    for key, cls in nested.items():
        names = {f.name for f in dataclasses.fields(cls)}
        unknown += [f"{key}.{k}" for k in d.get(key, {}) if k not in names]
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)}: not fields of this version's "
                         f"TrainConfig (written by another version?)")

    def tuples(x: dict[str, Any]) -> dict[str, Any]:
        return {k: tuple(v) if isinstance(v, list) else v for k, v in x.items()}

    d = tuples(d)
    for key, cls in nested.items():
        d[key] = cls(**{**ADDED_LATER.get(key, {}), **tuples(d.get(key, {}))})
    d["eval_populations"] = tuple(d.get("eval_populations", ()))
    return TrainConfig(**d)


class TrainingError(RuntimeError):
    """Training cannot go on; the message says why."""


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal (Ctrl-C, SIGTERM) after saving a checkpoint.

    Attributes:
        signum: the signal; a CLI exits with ``128 + signum`` (130 for Ctrl-C, 143 for SIGTERM).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""Signals that stop a run cleanly: at the end of the current step, after a checkpoint."""


@contextlib.contextmanager
def stop_on_signals(on_signal) -> Iterator[None]:
    """Calls ``on_signal(signum)`` on Ctrl-C or SIGTERM instead of dying; a second signal raises
    ``KeyboardInterrupt`` at once. Handlers are installed only in the main thread (elsewhere, e.g.
    in a worker thread, this does nothing), never over a signal that is ignored (a background
    job's Ctrl-C), and restored on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    seen: list[int] = []

    def handler(signum, frame):
        if seen:
            raise KeyboardInterrupt
        seen.append(signum)
        on_signal(signum)

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS
                if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def divergence_error(step: int, what: str, checkpoint: Path,
                     last_good: tuple[Path, int] | None,
                     lower: str = "--wm.lr, --dreamer.actor-lr or --dreamer.critic-lr"
                     ) -> TrainingError:
    """The one-line error of a diverged run: the step, what went non-finite, the last good
    checkpoint (and the one kept before it, ``checkpoint.prev.pt``) and what to try.

    Args:
        step: env steps (per seat) when it was found.
        what: what went non-finite, e.g. ``"the world-model loss was not finite for 20 updates in a
            row"``.
        checkpoint: the run's ``checkpoint.pt``.
        last_good: the newest checkpoint written (or resumed from) and its step.
        lower: the flags worth lowering.
    """
    if last_good is None:
        good = "no checkpoint had been written yet"
    else:
        good = f"the last good checkpoint is {last_good[0]} (step {last_good[1]})"
        prev = previous_path(checkpoint)
        if prev.is_file():
            good += f", the one before it {prev.name}"
    return TrainingError(f"training diverged at step {step}: {what}; {good}; lower {lower}, or "
                         f"check the data")


def is_nonfinite_sampling(err: BaseException) -> bool:
    """Whether ``err`` is torch refusing non-finite probabilities: ``torch.multinomial`` sampling
    from them (``RuntimeError``), or a distribution built on them (``ValueError``)."""
    text = str(err)
    return ((isinstance(err, RuntimeError) and "probability tensor contains either" in text)
            or (isinstance(err, ValueError) and "Expected parameter" in text
                and "found invalid values" in text))


# ----------------------------------------------------------------------------------------------
def build_models(config: TrainConfig, adapter, seat: str, device: str
                 ) -> tuple[EmotionalWorldModel, DreamerAgent]:
    """The world model and Dreamer agent of ``seat``, as a run builds them (weights fresh)."""
    wm = build_world_model(config.wm, adapter.observation_space(seat), adapter.action_space(seat),
                           adapter.emotion_space(seat), adapter.emotion_names,
                           adapter.behaviour_key, adapter.action_structure,
                           adapter.action_features).to(device)
    structure = adapter.action_structure
    return wm, DreamerAgent(wm, config.dreamer,
                            ActionStructure(structure) if structure is not None else None)


class Learner:
    """A world model, its optimiser, an agent and a replay buffer serving one or more seats."""

    def __init__(self, seats: tuple[str, ...], adapter, config: TrainConfig, device: str) -> None:
        self.seats = seats
        seat = seats[0]
        obs_space = adapter.observation_space(seat)
        emotion_space = adapter.emotion_space(seat)
        self.wm, self.agent = build_models(config, adapter, seat, device)
        self.wm_opt = make_optimizer(self.wm)
        # A blind model's emotion read-out, for the charts only: never an input of the policy.
        self.probe = (None if self.wm.P else EmotionProbe(
            self.wm.feature_dim, self.wm.labels.partners, self.wm.labels.classes).to(device))
        streams = adapter.num_envs * len(seats)
        self.replay = SequenceReplay.for_spaces(
            max(config.steps + config.prefill, 4 * config.seq_len) * len(seats) + streams,
            streams, obs_space, emotion_space)
        self.carry = None
        self.device = device
        self.simulator: SimulatorRollouts | None = None
        """Where the actor-critic's rollouts run with ``--imagination simulator``."""

    def state_dict(self) -> dict[str, Any]:
        return {"wm": self.wm.state_dict(), "wm_opt": self.wm_opt.state_dict(),
                "agent": self.agent.state_dict(), "replay": self.replay.state_dict(),
                **({"probe": self.probe.full_state_dict()} if self.probe is not None else {}),
                **({"simulator": self.simulator.state_dict()} if self.simulator else {})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.wm.load_state_dict(state["wm"])
        self.wm_opt.load_state_dict(state["wm_opt"])
        self.agent.load_state_dict(state["agent"])
        self.replay.load_state_dict(state["replay"])
        if self.probe is not None and "probe" in state:
            self.probe.load_full_state_dict(state["probe"])
        if self.simulator is not None:
            self.simulator.load_state_dict(state["simulator"])


def _concat_seats(per_seat: dict[str, dict[str, np.ndarray]], seats) -> dict[str, np.ndarray]:
    keys = per_seat[seats[0]].keys()
    return {k: np.concatenate([np.asarray(per_seat[s][k]) for s in seats]) for k in keys}


def _labels(info: dict[str, dict[str, Any]], seats) -> dict[str, dict[str, np.ndarray]]:
    """The labels of ``info`` the replay keeps (training targets, never a policy input)."""
    return {s: {"emotion": np.asarray(info[s]["emotion"]),
                "emotion_annotated": np.asarray(info[s]["emotion_annotated"])} for s in seats}


class Trainer:
    """The training loop for one world-model configuration (see the module docstring)."""

    def __init__(self, config: TrainConfig, run_dir: Path) -> None:
        self.config = config
        self.run_dir = run_dir
        c = config
        if c.threads:
            torch.set_num_threads(c.threads)
        torch.manual_seed(c.seed)
        self.rng = np.random.default_rng(c.seed)
        self.torch_gen = torch.Generator(device=c.device).manual_seed(c.seed)
        self.env_kwargs = {"population": c.population, "annotation_noise": c.annotation_noise}
        self.adapter = make_adapter(c.env, c.num_envs, self.env_kwargs, c.filter_cues)
        seats = self.adapter.seats
        groups = [tuple(seats)] if c.shared_parameters else [(s,) for s in seats]
        self.learners = [Learner(g, self.adapter, c, c.device) for g in groups]
        self.step = 0  # env steps per seat
        self.updates = 0
        self.update_debt = 0.0
        self.episodes = 0
        self.skipped_in_a_row = 0
        self.next_eval = c.eval_every
        self.next_ckpt = c.checkpoint_every
        self.next_log = c.log_every
        self.env_seed = c.seed * 100_003
        if c.imagination == "simulator":
            (ln,) = self.learners
            ln.simulator = SimulatorRollouts(
                make_adapter(c.env, c.dreamer.max_starts, self.env_kwargs, c.filter_cues),
                ln.agent, self.env_seed + SIMULATOR_SEEDS)
        self.metrics: dict[str, list[float]] = {}
        self.writer = None
        self.live: dict[str, Any] | None = None
        """What the loop carries from one env step to the next (observations, rewards, flags,
        labels, episode returns); saved with the envs' own state, so a resumed run goes on
        mid-episode."""
        self.last_good: tuple[Path, int] | None = None
        """The newest checkpoint written (or resumed from) and its step."""
        self._stop_signal: int | None = None
        self._last_eval: tuple[int, dict[str, float]] | None = None
        self._last_return = float("nan")

    # -- persistence ----------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoint.pt"

    def save(self) -> Path:
        """Writes ``checkpoint.pt`` (keeping the one it replaces as ``checkpoint.prev.pt``).

        Raises:
            TrainingError: the models are not healthy (:meth:`health`); nothing is written, so the
                last good checkpoint is never replaced by a diverged one.
        """
        problem = self.health()
        if problem is not None:
            raise self.diverged(f"{problem}, so no checkpoint was written")
        payload = {
            "step": self.step, "updates": self.updates, "update_debt": self.update_debt,
            "episodes": self.episodes, "next_eval": self.next_eval, "next_ckpt": self.next_ckpt,
            "next_log": self.next_log, "env_seed": self.env_seed,
            "skipped_in_a_row": self.skipped_in_a_row,
            "learners": [ln.state_dict() for ln in self.learners],
            "carry": [carry_tensors(ln.carry) for ln in self.learners],
            "live": to_tensors(self.live), "env": to_tensors(self.adapter.get_state()),
            "metrics": {k: list(v) for k, v in self.metrics.items()},
            "rng": json.dumps(self.rng.bit_generator.state),
            "torch_gen": self.torch_gen.get_state(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": (torch.cuda.get_rng_state_all()
                         if torch.device(self.config.device).type == "cuda" else []),
        }
        path = save_keeping_previous(payload, self.checkpoint_path)
        self.last_good = (path, self.step)
        return path

    def restore(self) -> None:
        state = load(self.checkpoint_path, map_location="cpu")  # modules copy to their device
        try:
            for ln, s in zip(self.learners, state["learners"], strict=True):
                ln.load_state_dict(s)
            for k in ("step", "updates", "update_debt", "episodes", "next_eval", "next_ckpt",
                      "next_log", "env_seed"):
                setattr(self, k, state[k])
            self.skipped_in_a_row = state.get("skipped_in_a_row", 0)
            self.rng.bit_generator.state = json.loads(state["rng"])
            self.torch_gen.set_state(state["torch_gen"].cpu())  # RNG states are CPU tensors
            torch.set_rng_state(state["torch_rng"].cpu())
            if state.get("cuda_rng"):
                torch.cuda.set_rng_state_all(state["cuda_rng"])
            if state.get("live") is not None and state.get("env") is not None:
                self.adapter.set_state(to_arrays(state["env"]))
                self.live = to_arrays(state["live"])
                for ln, carry in zip(self.learners, state["carry"], strict=True):
                    ln.carry = carry_from_tensors(carry, ln.device)
                self.metrics = {k: list(v) for k, v in state.get("metrics", {}).items()}
        except (KeyError, ValueError, RuntimeError, TypeError) as err:
            raise CheckpointError(f"checkpoint {self.checkpoint_path} does not match this run "
                                  f"({str(err).splitlines()[0][:100]})") from None
        if self.live is None:  # an older checkpoint without the envs' state: episodes start afresh
            self.env_seed += 7919 * (self.step + 1)
        self.last_good = (self.checkpoint_path, self.step)

    # -- health ---------------------------------------------------------------------------------
    def health(self) -> str | None:
        """What is not finite in the models, or ``None`` if they are healthy.

        Checks every parameter and optimiser state (world model, actor, critic, probe) and the
        beliefs the loop carries, then, once there have been updates, runs the models as the loop
        would next, with private generators (no training RNG moves): the next step's belief and
        action probabilities, the world-model loss on a replayed batch, the probabilities it
        samples, an imagined rollout and the critic's values. Weights that are finite but have
        exploded fail the second part as soon as what they compute is not.
        """
        for ln in self.learners:
            seat = "" if len(self.learners) == 1 else f" of {'/'.join(ln.seats)}"
            parts = {"world model": ln.wm.state_dict(), "world-model optimiser":
                     ln.wm_opt.state_dict(), "actor-critic": ln.agent.state_dict(),
                     "belief": carry_tensors(ln.carry)}
            if ln.probe is not None:
                parts["probe"] = ln.probe.full_state_dict()
            found = find_nonfinite(parts)
            if found is not None:
                return f"{found}{seat} is not finite"
            if self.updates:
                problem = self._probe_models(ln)
                if problem is not None:
                    return f"{problem}{seat}"
        return None

    @torch.no_grad()
    def _probe_models(self, ln: Learner) -> str | None:
        c = self.config
        generator = self._eval_generator()
        batch = to_torch(ln.replay.sample(c.batch_size, c.seq_len, np.random.default_rng(0)),
                         ln.device)

        def act(features: torch.Tensor) -> torch.Tensor:
            return torch.multinomial(ln.agent.policy(features).probs, 1,
                                     generator=generator).squeeze(-1)

        try:
            if self.live is not None:  # the next step's belief and action probabilities
                obs = to_tensor_obs(_concat_seats(self.live["obs"], ln.seats), ln.wm.mods,
                                    ln.device)
                first = torch.as_tensor(np.concatenate([self.live["is_first"]] * len(ln.seats)),
                                        device=ln.device)
                _, (belief, _) = ln.agent.act(ln.carry, obs, first, explore=True,
                                              generator=generator)
                features = ln.wm.features(belief)
                if find_nonfinite([features, ln.agent.policy(features).probs]) is not None:
                    return "the belief or the action probabilities of the next step are not finite"
            loss, _, states = ln.wm.loss_and_states(batch, generator, with_metrics=False)
            if not torch.isfinite(loss):
                return "the world-model loss on a replayed batch is not finite"
            start = states.flatten()[: c.batch_size]
            traj = ln.wm.imagine(start, act, c.dreamer.horizon, generator=generator,
                                 decode_behaviour=False)
            value = ln.agent.critic(traj.features)
            if find_nonfinite([traj.features, traj.reward, traj.cont, value]) is not None:
                return "the imagined rollouts (features, rewards, values) are not finite"
        except (RuntimeError, ValueError) as err:
            if is_nonfinite_sampling(err):
                return "the probabilities the models sample from are not finite"
            raise
        return None

    def diverged(self, what: str) -> TrainingError:
        """:func:`divergence_error` at this step."""
        return divergence_error(self.step, what, self.checkpoint_path, self.last_good)

    @contextlib.contextmanager
    def guard(self, where: str) -> Iterator[None]:
        """Turns torch's refusal of NaN or inf probabilities into :meth:`diverged` (one line)."""
        try:
            yield
        except (RuntimeError, ValueError) as err:
            if is_nonfinite_sampling(err):
                raise self.diverged(f"the probabilities sampled {where} were not finite") from None
            raise

    # -- logging --------------------------------------------------------------------------------
    def log(self, key: str, value: float) -> None:
        self.metrics.setdefault(key, []).append(float(value))

    def flush(self) -> None:
        if self.writer is None:
            return
        for k, v in self.metrics.items():
            vals = [x for x in v if math.isfinite(x)]
            if vals:
                self.writer.add_scalar(k, float(np.mean(vals)), self.step)
        self.metrics.clear()
        self.writer.flush()

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> dict[str, float]:
        """Trains to ``config.steps`` (from the checkpoint, if the run directory holds one).

        Raises:
            Interrupted: Ctrl-C or SIGTERM; a checkpoint was saved (or the run had diverged).
            TrainingError: the run diverged (one line; see :meth:`diverged`).
        """
        from torch.utils.tensorboard import SummaryWriter

        from lewm_rl.tensorboard import comparison_layout, hyperparameter_table

        c = self.config
        resuming = self.checkpoint_path.exists()
        if resuming:
            self.restore()
        # Events after the checkpoint's step are purged; those at it were logged before the save.
        self.writer = SummaryWriter(str(self.run_dir),
                                    purge_step=self.step + 1 if resuming else None)
        if not resuming:
            self.writer.add_text("hyperparameters", hyperparameter_table(config_to_dict(c)))
            for ln in self.learners:
                self.writer.add_text("world_model/architecture", explained(ln.wm))
            self.writer.add_custom_scalars(comparison_layout(self._eval_populations))
        if self.live is None:
            self._start_episodes()
        bar = None
        if c.progress:
            from tqdm import tqdm

            bar = tqdm(total=c.steps, initial=self.step, unit="step", dynamic_ncols=True,
                       desc=f"{c.world_model} {c.env}", position=_bar_position(), leave=True)
        t0, s0 = time.perf_counter(), self.step
        results: dict[str, float] = {}
        try:
            with stop_on_signals(self._request_stop):
                while self.step < c.steps and self._stop_signal is None:
                    self._env_step()
                    n = self.adapter.num_envs
                    if self.step > c.prefill:
                        self.update_debt += n * c.train_ratio / (c.batch_size * c.seq_len)
                        while self.update_debt >= 1.0:
                            self._update()
                            self.update_debt -= 1.0
                    if bar is not None:
                        bar.update(n)
                        fps = (self.step - s0) / max(time.perf_counter() - t0, 1e-9)
                        bar.set_postfix(ret=f"{self._last_return:.2f}", fps=f"{fps:.0f}",
                                        refresh=False)
                    if self.step >= self.next_log:
                        self.log("train/fps",
                                 (self.step - s0) / max(time.perf_counter() - t0, 1e-9))
                        self.log("train/episodes", self.episodes)
                        self.flush()
                        self.next_log += c.log_every
                    if self.step >= self.next_eval:
                        results = self.evaluate()
                        self.next_eval += c.eval_every
                    if self.step >= self.next_ckpt:
                        self.save()
                        self.next_ckpt += c.checkpoint_every
                if self._stop_signal is not None:
                    raise Interrupted(self._stop_signal)
                if bar is not None:
                    bar.close()
                    bar = None
                # A signal from here on lets the run finish: it is saving anyway.
                results = self.evaluate(final=True)
                self.flush()
                self.save()
        except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM (at a step's end), or a second one
            signum = err.signum if isinstance(err, Interrupted) else signal.SIGINT
            if bar is not None:
                bar.close()
                bar = None
            self._save_on_interrupt(signum)
            raise Interrupted(signum) from None
        finally:
            if bar is not None:
                bar.close()
            if self.writer is not None:
                self.writer.flush()
        self.writer.close()
        (self.run_dir / "results.json").write_text(json.dumps(
            {"step": self.step, "world_model": c.world_model, "env": c.env, "seed": c.seed,
             "compute_dtype": self.learners[0].agent.compute_dtype,  # auto, resolved
             **results}, indent=2))
        return results

    def _request_stop(self, signum: int) -> None:
        self._stop_signal = signum

    def _save_on_interrupt(self, signum: int) -> None:
        """Saves and prints the resume hint (or, if the models went bad, that nothing was saved)."""
        name = signal.Signals(signum).name
        # The scalars of the unfinished log window travel in the checkpoint (not logged here at an
        # off-cadence step), so a resumed run logs the same curve as an uninterrupted one.
        try:
            path = self.save()
        except TrainingError as err:
            self.flush()  # nothing to resume from: what was measured is logged now
            print(f"\n{name} at step {self.step}: {err}", file=sys.stderr)
            return
        print(f"\n{name}: interrupted at step {self.step}: saved {path}; continue with "
              f"--resume {self.run_dir}", file=sys.stderr)

    def _start_episodes(self) -> None:
        """Resets every env copy (seeded by ``env_seed``) and the loop's carried state."""
        obs, info = self.adapter.reset(seed=self.env_seed)
        n = self.adapter.num_envs
        seats = self.adapter.seats
        self.live = {
            "obs": obs, "info": _labels(info, seats),
            "reward": {s: np.zeros(n, dtype=np.float32) for s in seats},
            "is_first": np.ones(n, dtype=bool), "is_terminal": np.zeros(n, dtype=bool),
            "done": np.zeros(n, dtype=bool), "ep_return": {s: np.zeros(n) for s in seats},
        }
        for ln in self.learners:
            ln.carry = None

    def _env_step(self) -> None:
        """Acts in every env copy, writes the replay rows, steps the envs, counts episodes."""
        lv = self.live
        seats = self.adapter.seats
        obs, info, reward = lv["obs"], lv["info"], lv["reward"]
        with self.guard("while acting"):
            actions = self._act(obs, lv["is_first"])
        for ln in self.learners:
            row = _concat_seats({s: {**obs[s], "action": actions[s], "reward": reward[s],
                                     "is_first": lv["is_first"], "is_terminal": lv["is_terminal"],
                                     **info[s]} for s in ln.seats}, ln.seats)
            ln.replay.add(row)
        obs, reward, term, trunc, info = self.adapter.step(actions)
        # Next-step autoreset: envs that were done have just been reset.
        is_first, is_terminal = lv["done"], term
        ep_return = lv["ep_return"]
        for s in seats:
            ep_return[s][is_first] = 0.0
            ep_return[s] += np.where(is_first, 0.0, reward[s])
        done = term | trunc
        if done.any():
            finished = [float(np.mean([ep_return[s][i] for s in seats]))
                        for i in np.flatnonzero(done)]
            for r in finished:
                self.log("train/episode_return", r)
            if len(seats) > 1:
                for s in seats:
                    for i in np.flatnonzero(done):
                        self.log(f"train/{s}/episode_return", ep_return[s][i])
            self._last_return = float(np.mean(finished))
            self.episodes += len(finished)
        self.live = {"obs": obs, "info": _labels(info, seats), "reward": reward,
                     "is_first": is_first, "is_terminal": is_terminal, "done": done,
                     "ep_return": ep_return}
        self.step += self.adapter.num_envs

    def _act(self, obs, is_first) -> dict[str, np.ndarray]:
        c = self.config
        n = self.adapter.num_envs
        actions: dict[str, np.ndarray] = {}
        if self.step < c.prefill:
            for s in self.adapter.seats:
                space = self.adapter.action_space(s)
                actions[s] = self.rng.integers(0, space.n, n)
        for ln in self.learners:
            o = _concat_seats(obs, ln.seats)
            first = np.concatenate([is_first] * len(ln.seats))
            tobs = to_tensor_obs(o, ln.wm.mods, ln.device)
            a, ln.carry = ln.agent.act(ln.carry, tobs, torch.as_tensor(first, device=ln.device),
                                       explore=True, generator=self.torch_gen, behaviour=True)
            if self.step < c.prefill:  # the belief still tracks the random prefill actions
                forced = np.concatenate([actions[s] for s in ln.seats])
                a = torch.as_tensor(forced, device=ln.device)
                ln.carry = (ln.carry[0], a)
            a = a.cpu().numpy()
            for i, s in enumerate(ln.seats):
                actions[s] = a[i * n:(i + 1) * n]
        return actions

    def _update(self) -> None:
        c = self.config
        for ln in self.learners:
            batch = to_torch(ln.replay.sample(c.batch_size, c.seq_len, self.rng,
                                              c.replay_recency), ln.device)
            with_metrics = self.updates % 10 == 0
            with self.guard("in the world-model update"):
                metrics, states = fit_step(ln.wm, ln.wm_opt, batch, with_metrics=with_metrics,
                                           generator=self.torch_gen)
            if metrics.get("world_model/skipped", 0.0):
                self._skipped("the world-model loss (or its gradient)")
                continue
            for k, v in metrics.items():
                self.log(k, v)
            with self.guard("in the actor-critic's imagination"):
                if ln.simulator is None:
                    agent_metrics = ln.agent.update(states, generator=self.torch_gen)
                else:
                    agent_metrics = ln.agent.learn(ln.simulator.rollout(c.dreamer.horizon,
                                                                        self.torch_gen))
                    agent_metrics["imag/simulator_steps"] = float(ln.simulator.steps)
            for k, v in agent_metrics.items():
                self.log(k, v)
            if agent_metrics.get("actor/skipped") or agent_metrics.get("critic/skipped"):
                which = [k.split("/")[0] for k in ("actor/skipped", "critic/skipped")
                         if agent_metrics.get(k)]
                self._skipped(f"the {' and '.join(which)} loss (or its gradient)")
                continue
            self.skipped_in_a_row = 0
            if ln.probe is not None:  # detached features: the probe trains nothing else
                for k, v in ln.probe.update(ln.wm.features(states.detach()),
                                            batch[c.wm.label_key]).items():
                    self.log(k, v)
        self.updates += 1

    def _skipped(self, what: str) -> None:
        """Counts an update that was not applied; too many in a row stop the run."""
        self.skipped_in_a_row += 1
        self.log("train/skipped_updates", 1.0)
        if self.skipped_in_a_row >= self.config.max_skipped_updates:
            raise self.diverged(f"{what} was not finite for {self.skipped_in_a_row} updates in a "
                                f"row")

    # -- evaluation -----------------------------------------------------------------------------
    def evaluate(self, final: bool = False) -> dict[str, float]:
        """Mode actions on fixed evaluation seeds, against the training population and every
        held-out one; logs ``eval/...`` and returns the figures.

        Deterministic: the latent is sampled from a generator seeded with ``EVAL_SEED``, so the
        same weights give the same figures (``final`` changes nothing but the caller's intent).
        Beside each return: the scripted references on the same seeds (``reference/{random,
        greedy,oracle}``, computed once per run) and ``normalised_return`` (random 0, oracle 1).
        """
        if self._last_eval is not None and self._last_eval[0] == self.step:
            out = self._last_eval[1]  # this step is evaluated already: not logged twice
            if final:
                self._log_hparams(out)
            return out
        out: dict[str, float] = {}
        for i, pop in enumerate(self._eval_populations):
            prefix = "eval" if i == 0 else f"eval/{pop}"
            with self.guard("while evaluating"):
                figures = self._eval_population(pop)
            ret = figures["episode_return"]
            out.update({f"{prefix}/{k}": v for k, v in figures.items()})
            refs = self._references(pop)
            out.update({f"{prefix}/reference/{name}": v for name, v in refs.items()})
            if refs:
                out[f"{prefix}/normalised_return"] = normalised(ret, refs)
        for k, v in out.items():
            self.writer.add_scalar(k, v, self.step)
        with self.guard("while evaluating"):
            self._eval_media()
        self._last_eval = (self.step, out)
        if final:
            self._log_hparams(out)
        self.writer.flush()
        return out

    def _log_hparams(self, figures: dict[str, float]) -> None:
        """The HParams tab: this run's flattened config beside its final figures."""
        from lewm_rl.tensorboard import hparams

        self.writer.add_hparams(hparams(config_to_dict(self.config)),
                                {f"hparam/{k}": v for k, v in figures.items()}, run_name=".",
                                global_step=self.step)

    @property
    def _eval_populations(self) -> list[str]:
        """The training population first, then the held-out ones (no repeats)."""
        return list(dict.fromkeys((self.config.population, *self.config.eval_populations)))

    def _eval_generator(self) -> torch.Generator:
        """A fresh generator for evaluation, so it neither reads nor moves the training RNGs."""
        return torch.Generator(device=self.config.device).manual_seed(EVAL_SEED)

    def _references(self, population: str) -> dict[str, float]:
        """The scripted references on the evaluation seeds, cached in ``references.json``."""
        path = self.run_dir / "references.json"
        cache = json.loads(path.read_text()) if path.exists() else {}
        if population not in cache:
            c = self.config
            cache[population] = reference_returns(c.env, c.eval_episodes, EVAL_SEED,
                                                  {**self.env_kwargs, "population": population})
            path.write_text(json.dumps(cache, indent=2))
        return cache[population]

    def _eval_returns(self, population: str) -> float:
        return self._eval_population(population)["episode_return"]

    def _eval_population(self, population: str) -> dict[str, float]:
        """``episode_return``, and the emotion read-out's ``emotion_accuracy`` and
        ``emotion_macro_f1`` against the true labels of the evaluation episodes."""
        c = self.config
        played = play_episodes(self.learners, c.env, {**self.env_kwargs, "population": population},
                               c.eval_episodes, c.device, filter_cues=c.filter_cues)
        out = {"episode_return": float(played["returns"].mean())}
        if "imagined_returns" in played:  # model exploitation: imagined minus real, same policy
            out["imagined_return"] = float(played["imagined_returns"].mean())
            out["imagination_gap"] = out["imagined_return"] - out["episode_return"]
        if "emotion_true" in played:
            f = f1_scores(played["emotion_true"].ravel(), played["emotion_pred"].ravel(),
                          self.learners[0].wm.labels.classes)
            out["emotion_accuracy"], out["emotion_macro_f1"] = f["accuracy"], f["macro_f1"]
        return out

    def _eval_media(self) -> None:
        """One rendered evaluation episode: emotion figure, transcript (with each step's reward
        and the model's read of the emotion beside the true one), a labelled GIF, and the
        what-if figure (emotion models)."""
        from lewm_rl.tensorboard import emotion_figure, gif_summary, label_frame

        c = self.config
        seat = self.adapter.seats[0]
        ln = next(ln for ln in self.learners if seat in ln.seats)
        try:
            ansi, rgb = (self._make_render_env(m) for m in ("ansi", "rgb_array"))
        except Exception:  # noqa: BLE001 - an env without renders simply logs no media
            return
        names = self.adapter.emotion_names
        o1, i1 = _reset_single(ansi, EVAL_SEED)
        _reset_single(rgb, EVAL_SEED)
        carry, first = None, True
        generator = self._eval_generator()
        frames, true, pred, rows = [label_frame(rgb.render(), "t=0")], [], [], []
        what_if_state = None
        done = False
        while not done:
            obs = {k: np.asarray(v)[None] for k, v in o1.items()}
            tobs = to_tensor_obs(obs, ln.wm.mods, ln.device)
            a, carry = ln.agent.act(carry, tobs, torch.tensor([first], device=ln.device),
                                   explore=False, generator=generator)
            t = len(true)
            if t <= 2:  # the what-if start: the belief two steps into the first deal
                what_if_state = carry[0]
            label = int(np.asarray(i1["emotion"]).ravel()[0])  # for the figures only
            true.append(label)
            dist = _emotion_distribution(ln, carry[0])
            if dist is not None:
                pred.append(dist)
            o1, i1, done, reward = _step_single(ansi, int(a[0]), seat, with_reward=True)
            _step_single(rgb, int(a[0]), seat)
            read = names[int(np.argmax(dist))] if dist is not None else "-"
            rows.append(f"| {t} | {reward:.3f} | {read} | {names[label]} |")
            frames.append(label_frame(rgb.render(), f"t={t + 1} r={reward:.2f} "
                                                    f"true {names[label]} read {read}"))
            first = False
        fig = emotion_figure(np.stack(pred) if pred else None, np.array(true), names,
                             f"{c.world_model}: predicted (blue) vs true emotion")
        self.writer.add_figure("eval/emotion_prediction", fig, self.step)
        table = "| step | reward | model reads | true emotion |\n|-|-|-|-|\n" + "\n".join(rows)
        self.writer.add_text("eval/transcript", "```\n" + ansi.render() + "\n```\n\n" + table,
                             self.step)
        self.writer._get_file_writer().add_summary(gif_summary("eval/video", frames[:48]),
                                                   self.step)
        if ln.wm.P and ln.wm.behaviour_key is not None and what_if_state is not None:
            self._what_if(ln, what_if_state)

    def _what_if(self, ln: Learner, state) -> None:
        """The predicted partner response one step ahead, from a fixed evaluation state, with
        the partner's emotion forced to each class (the agent's mode action)."""
        from lewm_rl.tensorboard import what_if_figure
        from lewm_rl.world_models import EmotionIntervention

        wm, samples = ln.wm, 32
        start = state[0:1].map(lambda x: x.expand(samples, *x.shape[1:]))  # (samples, ...)
        act = ln.agent.policy(wm.features(start)).probs.argmax(-1)
        probs = []
        with torch.no_grad():
            for k in range(wm.K):
                traj = wm.imagine(start, lambda f, act=act: act, 1, EmotionIntervention(k, step=1),
                                  generator=self._eval_generator())
                probs.append(traj.behaviour[1, :, 0].mean(0).cpu().numpy())  # (classes,)
        fig = what_if_figure(np.stack(probs), self.adapter.emotion_names,
                             _behaviour_names(wm.behaviour_key, len(probs[0])),
                             f"{self.config.world_model}: what if the partner felt ...")
        self.writer.add_figure("eval/what_if", fig, self.step)

    def _make_render_env(self, mode: str):
        import gymnasium as gym

        from lewm_rl.envs import GYM_ENV_IDS

        c = self.config
        if c.env in GYM_ENV_IDS:
            return gym.make(c.env, render_mode=mode, **self.env_kwargs)
        import importlib

        mod = importlib.import_module(f"lewm_rl.envs.{c.env}")
        # Render the first seat's view with the other seats as background characters.
        others = tuple(range(1, len(self.adapter.seats)))
        return mod.parallel_env(render_mode=mode, background=others, **self.env_kwargs)


IMAGINED_HORIZON = 32
"""Steps of the imagined rollout whose return is compared with an evaluation episode's: longer
than any episode of the bundled envs (the negotiation's ``n_deals * round_limit`` is 24)."""


PLAY_POLICIES: tuple[str, ...] = ("mode", "sample", "random")
"""How :func:`play_episodes` acts: the actor's mode (evaluation), a sample from the actor (as in
training), or uniformly at random (as the prefill; the belief is still updated)."""


def play_episodes(learners, env_id: str, env_kwargs: dict[str, Any], episodes: int,
                  device: str = "cpu", seed: int = EVAL_SEED, filter_cues: bool = False,
                  one_step: bool = False, policy: str = "mode", record: str | None = None
                  ) -> dict[str, np.ndarray]:
    """Plays one episode per seed ``seed + i`` with the learners' actions (their mode by default),
    deterministically.

    The latent is sampled from a generator seeded with ``seed``, so the same weights give the same
    episodes; the global torch generator is neither read nor moved. The true emotion labels of
    ``info`` are read only after acting, to score the learners' emotion read-outs.

    Args:
        learners: objects with ``seats``, ``wm``, ``agent``, ``device`` and optionally ``probe``
            (:class:`Learner`, or a loaded run's).
        episodes: ``N``, the number of episodes (and of parallel env copies).
        filter_cues: the learners see the observations with the partners' cues neutralised (as
            they were trained with ``TrainConfig.filter_cues``).
        one_step: also return, for every live step and seat, the action taken, the reward and
            the continuation probability the world model predicted for it from the belief it was
            chosen in (one draw of the prior, as imagination makes), and the reward it earned and
            whether the episode ended: where on the policy's own moves the model is wrong.
        policy: one of :data:`PLAY_POLICIES`; ``sample`` and ``random`` draw from generators
            seeded with ``seed``, so they too are deterministic.
        record: an observation key: also return, for every live step and seat, the belief that
            has just read the observation, what the world model decodes of that key from it and
            the key's observed value: what the belief holds of the observation.

    Returns:
        ``returns`` ``(N,)`` (mean over seats) and ``lengths`` ``(N,)`` (steps); where a learner
        reads the partners' emotion (its posterior, or a blind model's probe) ``emotion_true``
        and ``emotion_pred``
        ``(M, P)`` over every live step and seat; for agents that imagine, with the mode policy,
        ``imagined_returns`` ``(N,)``: what their world model expected the same policy to earn
        from each episode's first observation, and ``imagined_lengths`` ``(N,)``, how long it
        expected the episode to last; with ``one_step``, ``step_actions``,
        ``step_reward_predicted``, ``step_reward``, ``step_cont_predicted`` and ``step_terminal``
        ``(M,)``; with ``record``, ``step_features`` ``(M, F)``, ``step_decoded`` (symlog space)
        and ``step_observed`` ``(M, d)``, and ``step_episode`` ``(M,)``, the episode's index.
    """
    if policy not in PLAY_POLICIES:
        raise ValueError(f"unknown policy {policy!r}; allowed: {', '.join(PLAY_POLICIES)}")
    adapter = make_adapter(env_id, episodes, env_kwargs, filter_cues)
    obs, info = adapter.reset(seed=seed)
    n = adapter.num_envs
    seats = adapter.seats
    generator = torch.Generator(device=device).manual_seed(seed)
    # The imagined returns draw from their own generator: the real episodes are the same with or
    # without them.
    imagination_gen = torch.Generator(device=device).manual_seed(seed + 1)
    one_step_gen = torch.Generator(device=device).manual_seed(seed + 2)
    random_gen = torch.Generator(device=device).manual_seed(seed + 3)
    carry = {id(ln): None for ln in learners}
    moves: list[tuple[np.ndarray, ...]] = []  # live (action, predicted, got, cont, terminal)
    pending: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []  # before its outcomes
    is_first = np.ones(n, dtype=bool)
    total = np.zeros(n)
    finished = np.zeros(n, dtype=bool)
    true, pred = [], []
    recorded: list[tuple[np.ndarray, ...]] = []  # (features, decoded, observed, episode)
    imagined, imagined_length = [], []
    length = np.zeros(n, dtype=np.int64)
    while not finished.all():
        actions = {}
        for ln in learners:
            o = to_tensor_obs(_concat_seats(obs, ln.seats), ln.wm.mods, ln.device)
            first = torch.as_tensor(np.concatenate([is_first] * len(ln.seats)), device=ln.device)
            a, carry[id(ln)] = ln.agent.act(carry[id(ln)], o, first, explore=policy == "sample",
                                            generator=generator)
            if policy == "random":  # the belief goes on with the action really taken
                a = torch.randint(0, ln.wm.num_actions, a.shape, generator=random_gen,
                                  device=a.device)
                carry[id(ln)] = (carry[id(ln)][0], a)
            if is_first.all() and policy == "mode" and hasattr(ln.agent, "imagined_episode"):
                i_ret, i_len = ln.agent.imagined_episode(carry[id(ln)][0], IMAGINED_HORIZON,
                                                         imagination_gen)
                imagined.append(i_ret.reshape(len(ln.seats), n).cpu().numpy())
                imagined_length.append(i_len.reshape(len(ln.seats), n).cpu().numpy())
            read = emotion_readout(ln, carry[id(ln)][0])  # (n * seats, P) or None
            if read is not None:
                live = np.concatenate([~finished] * len(ln.seats))
                labels = np.concatenate([np.asarray(info[s]["emotion"]).reshape(n, -1)
                                         for s in ln.seats])
                true.append(labels[live])
                pred.append(read[live])
            if record is not None:
                live = np.concatenate([~finished] * len(ln.seats))
                state = carry[id(ln)][0]
                with torch.no_grad():
                    decoded = ln.wm.decode(state)[record]
                observed = np.concatenate([np.asarray(obs[s][record]).reshape(n, -1)
                                           for s in ln.seats])
                recorded.append((ln.wm.features(state).cpu().numpy()[live],
                                 decoded.cpu().numpy()[live], observed[live],
                                 np.tile(np.arange(n), len(ln.seats))[live]))
            if one_step:  # the reward its model expects for the action it chose, here
                with torch.no_grad():
                    traj = ln.wm.imagine(carry[id(ln)][0], lambda f, a=a: a, 1,
                                         generator=one_step_gen, decode_behaviour=False)
                predicted = traj.reward[1].cpu().numpy()
                cont = traj.cont[1].cpu().numpy()
            a = a.cpu().numpy()
            for i, s in enumerate(ln.seats):
                actions[s] = a[i * n:(i + 1) * n]
                if one_step:
                    rows = slice(i * n, (i + 1) * n)
                    pending.append((s, actions[s], predicted[rows], cont[rows]))
        obs, reward, term, trunc, info = adapter.step(actions)
        live = ~finished
        moves += [(a_[live], p_[live], reward[s][live], c_[live], term[live])
                  for s, a_, p_, c_ in pending]
        pending.clear()
        total[live] += np.mean([reward[s] for s in seats], 0)[live]
        length[live] += 1
        finished |= term | trunc
        is_first = np.zeros(n, dtype=bool)
    adapter.close()
    out = {"returns": total, "lengths": length}
    if imagined and len(imagined) == len(learners):
        out["imagined_returns"] = np.concatenate(imagined).mean(0)
        out["imagined_lengths"] = np.concatenate(imagined_length).mean(0)
    if true:
        out["emotion_true"], out["emotion_pred"] = np.concatenate(true), np.concatenate(pred)
    if one_step:
        for i, key in enumerate(("step_actions", "step_reward_predicted", "step_reward",
                                 "step_cont_predicted", "step_terminal")):
            out[key] = np.concatenate([m[i] for m in moves])
    if record is not None:
        for i, key in enumerate(("step_features", "step_decoded", "step_observed",
                                 "step_episode")):
            out[key] = np.concatenate([r[i] for r in recorded])
    return out


def emotion_readout(learner, state) -> np.ndarray | None:
    """The partners' current emotion as a learner reads it: ``(N, P)`` labels, or ``None``.

    An emotion model reads its posterior; a blind model its linear probe on the detached latent
    (``learner.probe``), which never feeds the policy.
    """
    if learner.wm.P:
        return state.emotion.argmax(-1).cpu().numpy()
    probe = getattr(learner, "probe", None)
    if probe is None:
        return None
    with torch.no_grad():
        return probe(learner.wm.features(state.detach())).argmax(-1).cpu().numpy()


def _emotion_distribution(learner, state) -> np.ndarray | None:
    """The first partner's emotion distribution ``(K,)`` as a learner reads it (posterior, or a
    blind model's probe), for the figures; ``None`` if it reads none."""
    if learner.wm.P:
        return state.emotion[0, 0].cpu().numpy()
    probe = getattr(learner, "probe", None)
    if probe is None:
        return None
    with torch.no_grad():
        return torch.softmax(probe(learner.wm.features(state.detach()))[0, 0], -1).cpu().numpy()


def _behaviour_names(key: str, classes: int) -> tuple[str, ...]:
    if key == "partner_act":
        from lewm_rl.envs.negotiation_core import ACTS

        if len(ACTS) == classes:
            return ACTS
    return tuple(str(i) for i in range(classes))


def _reset_single(env, seed):
    out = env.reset(seed=seed)
    if isinstance(out[0], dict) and all(isinstance(v, dict) for v in out[0].values()):
        agent = next(iter(out[0]))
        return out[0][agent], out[1][agent]
    return out


def _step_single(env, action: int, seat: str, with_reward: bool = False):
    if hasattr(env, "possible_agents"):
        agent = env.agents[0]
        o, r, te, tr, i = env.step({agent: action})
        out = o[agent], i[agent], not env.agents
        return (*out, float(r[agent])) if with_reward else out
    o, r, te, tr, i = env.step(action)
    return (o, i, te or tr, float(r)) if with_reward else (o, i, te or tr)


def _bar_position() -> int:
    return int(os.environ.get("LEWM_BAR_POSITION", "0"))


# ----------------------------------------------------------------------------------------------
def new_run_dir(config: TrainConfig, stamp: str | None = None) -> Path:
    """``{logdir}/{env}__{agent}__s{seed}__{time}/{world_model}`` (compare siblings share it)."""
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    model = "none" if config.agent in MODEL_FREE else config.world_model
    return Path(config.logdir) / f"{config.env}__{config.agent}__s{config.seed}__{stamp}" / model


def train(config: TrainConfig) -> dict[str, float]:
    """Trains one configuration; returns the final evaluation figures.

    A run directory that holds a checkpoint is continued from it. Nothing is created when the
    configuration is invalid (``ValueError``).

    Raises:
        ValueError: an invalid configuration (one line naming the flag).
        TrainingError: the run diverged (one line; the last good checkpoint is kept).
        Interrupted: Ctrl-C or SIGTERM stopped the run after saving a checkpoint.
    """
    config.validate()
    config = resolved(config)
    run_dir = Path(config.run_dir) if config.run_dir else new_run_dir(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(run_dir)  # left by a write that was killed
    cfg_path = run_dir / "config.json"
    if not cfg_path.exists():
        cfg_path.write_text(json.dumps(config_to_dict(config), indent=2))
    if config.agent != "dreamer":
        from lewm_rl.agents import sb3  # SB3 agents train in agents/sb3/runner.py

        return sb3.run(config, run_dir)
    return Trainer(config, run_dir).run()


def read_run_config(run_dir: str | Path) -> TrainConfig:
    """A run directory's ``config.json``, or :class:`CheckpointError` in one line."""
    path = Path(run_dir) / "config.json"
    try:
        d = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path} is not a readable run config ({err})") from None
    try:
        return config_from_dict(d)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path} cannot be read: {str(err).splitlines()[0]}") from None


def _resume(config: TrainConfig, steps_given: bool = False) -> int:
    """Continues a run (or every run of a --compare directory) from its last checkpoint, to the
    saved --steps unless ``steps_given`` (then to ``config.steps``)."""
    root = Path(config.resume)
    runs = [root] if (root / "config.json").exists() else sorted(
        p.parent for p in root.glob("*/config.json"))
    if not runs:
        raise CheckpointError(f"no run to resume at {root} (no config.json there or below)")
    if len(runs) == 1:
        saved = read_run_config(runs[0])
        merged = dataclasses.replace(saved, steps=config.steps if steps_given else saved.steps,
                                     run_dir=str(runs[0]), progress=config.progress,
                                     resume=None, compare=False)
        merged.validate()
        if merged.steps != saved.steps:  # the new budget is the run's: a later --resume keeps it
            path = runs[0] / "config.json"
            path.write_text(json.dumps({**json.loads(path.read_text()), "steps": merged.steps},
                                       indent=2))
        train(merged)
        return 0
    for run in runs:  # every config is sound before any child starts
        read_run_config(run).validate()
    procs = [_spawn(run, config.steps if steps_given else None, i, config.progress)
             for i, run in enumerate(runs)]
    _wait(procs)
    return next((p.returncode for p in procs if p.returncode), 0)


def _spawn(run: Path, steps: int | None, position: int, progress: bool = True
           ) -> subprocess.Popen:
    """A child process continuing ``run`` (its progress bar, if any, on line ``position``), to
    ``steps`` or, if ``None``, to its saved --steps."""
    env = {**os.environ, "LEWM_BAR_POSITION": str(position)}
    return subprocess.Popen([sys.executable, "-m", "lewm_rl.train", "--resume", str(run),
                             *([] if steps is None else ["--steps", str(steps)]),
                             *([] if progress else ["--no-progress"])], env=env)


def _wait(procs: list[subprocess.Popen]) -> list[float]:
    """Waits for every child; returns each one's wall time (seconds).

    SIGTERM is forwarded to the children (each saves its checkpoint and exits); Ctrl-C is left to
    them (a terminal sends it to the whole process group), so this process waits on while they
    save.
    """
    t0 = time.perf_counter()
    wall: list[float | None] = [None] * len(procs)

    def forward(signum, frame):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    main_thread = threading.current_thread() is threading.main_thread()
    previous = ({signal.SIGTERM: signal.signal(signal.SIGTERM, forward),
                 signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN)}
                if main_thread else {})
    try:
        while any(w is None for w in wall):
            for i, p in enumerate(procs):
                if wall[i] is None and p.poll() is not None:
                    wall[i] = time.perf_counter() - t0
            time.sleep(0.2)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    return [float(w) for w in wall]


def _compare(config: TrainConfig) -> int:
    """Trains lewm and blind with the same seeds, in parallel processes, into sibling dirs."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    procs = []
    threads = config.threads or max(1, (os.cpu_count() or 2) // 2)
    kinds = ("lewm", "blind")
    for i, kind in enumerate(kinds):
        run = new_run_dir(dataclasses.replace(config, world_model=kind), stamp)
        run.mkdir(parents=True, exist_ok=True)
        cfg = dataclasses.replace(config, world_model=kind, compare=False, run_dir=str(run),
                                  threads=threads)
        (run / "config.json").write_text(json.dumps(config_to_dict(resolved(cfg)), indent=2))
        procs.append(_spawn(run, None, i, config.progress))
    print(f"training lewm and blind into {run.parent}; watch: tensorboard --logdir "
          f"{config.logdir}", file=sys.stderr)
    wall = dict(zip(kinds, _wait(procs), strict=True))
    codes = [p.returncode for p in procs]
    if not any(codes):
        print(compare_table({k: run.parent / k for k in kinds}, wall))
    return next((c for c in codes if c), 0)


def compare_table(runs: dict[str, Path], wall: dict[str, float] | None = None) -> str:
    """A markdown table of a ``--compare`` run's final figures, LEWM beside blind.

    Rows: evaluation return per population, normalised return, emotion accuracy (every model's
    read-out on evaluation episodes), wall time; the last column is lewm - blind.

    Args:
        runs: ``{"lewm": run_dir, "blind": run_dir}``, each holding ``results.json``.
        wall: wall-clock seconds per run.
    """
    results = {k: json.loads((d / "results.json").read_text()) for k, d in runs.items()}
    keys = [k for k in results["lewm"] if k.startswith("eval/") and "/reference/" not in k
            and (k.endswith("episode_return") or k.endswith("normalised_return")
                 or k.endswith("emotion_accuracy"))]
    rows = [(k, results["lewm"].get(k), results["blind"].get(k)) for k in keys]
    if wall:
        rows.append(("wall time (s)", wall.get("lewm"), wall.get("blind")))

    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    lines = ["| | lewm | blind | lewm - blind |", "|---|---|---|---|"]
    for name, a, b in rows:
        diff = None if a is None or b is None else a - b
        lines.append(f"| {name} | {fmt(a)} | {fmt(b)} | {fmt(diff)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import tyro

    description = __doc__.split("\n\n")[0] + f" Environments: {', '.join(available_envs())}."
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        config = tyro.cli(TrainConfig, args=args, description=description,
                          prog="python -m lewm_rl.train")
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        if config.resume:
            steps_given = any(a == "--steps" or a.startswith("--steps=") for a in args)
            return _resume(config, steps_given)
        if config.compare:
            config.validate()
            return _compare(config)
        train(config)
        return 0
    except Interrupted as err:  # saved, and the resume hint printed
        return 128 + err.signum
    except KeyboardInterrupt:
        return 130
    except (ValueError, CheckpointError, TrainingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    # The package's own module, not this __main__ copy: its exception classes are the ones the SB3
    # runner raises.
    from lewm_rl.train import main as _main

    sys.exit(_main())
