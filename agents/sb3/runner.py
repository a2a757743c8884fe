"""``run(config, run_dir)``: the SB3 agents of the training CLI (``--agent ppo | ppo-belief |
ppo-imagination``).

* ``ppo``: plain PPO, ``MultiInputPolicy`` on the raw Dict observations (no world model).
* ``ppo-belief``: PPO (``MlpPolicy``) on the world model's belief (:class:`LEWMBeliefWrapper`). The
  world model is fitted on ``prefill`` random real steps, then (``--sb3.refit-belief``) refitted on
  the episodes PPO plays.
* ``ppo-imagination``: PPO trained inside the world model (:class:`ImaginationVecEnv`); after every
  imagined rollout, :class:`RealDataRefitCallback` plays the current policy in the real env for
  ``imagination_envs * n_steps / imagination_ratio`` steps and refits the world model.

``config.steps`` counts *real* env steps, prefill included, for every agent. Everything is logged
by SB3's logger into ``run_dir`` (TensorBoard), at real env steps for the keys the bridges write
(``eval/episode_return`` on the fixed seeds ``EVAL_SEED + i``, and each held-out population's
``eval/{population}/episode_return`` at every evaluation, ``train/episode_return``,
``world_model/*``, ``imag/return``); SB3's own keys (``train/loss``, ``rollout/*``, ``time/*``) are
at SB3's ``num_timesteps``, which for ``ppo-imagination`` counts imagined steps.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import TensorBoardOutputFormat, configure

from lewm_rl.data.replay import SequenceReplay
from lewm_rl.world_models import build_world_model, explained, make_optimizer

from .belief import LEWMBeliefWrapper
from .callbacks import (
    RealCollector,
    RealDataRefitCallback,
    RealEvalCallback,
    StopAtRealSteps,
    TrainReturnCallback,
    evaluate,
    write_scalars,
)
from .config import SB3Config
from .imagination import ImaginationVecEnv

if TYPE_CHECKING:  # train.py dispatches to run(): importing it here at run time would be circular
    from lewm_rl.train import TrainConfig

AGENTS: tuple[str, ...] = ("ppo", "ppo-belief", "ppo-imagination")
"""The SB3 agents ``run`` trains."""
SB3_WORLD_MODELS: tuple[str, ...] = ("lewm", "blind")
"""World models the SB3 agents accept."""
BEHAVIOUR_KEYS = ("partner_act", "others_act")


def _check(config: TrainConfig) -> None:
    from lewm_rl.envs import GYM_ENV_IDS

    if config.agent not in AGENTS:
        raise ValueError(f"unknown SB3 agent {config.agent!r}; allowed: {', '.join(AGENTS)}")
    if config.env not in GYM_ENV_IDS:
        raise ValueError(f"the SB3 agents train on Gymnasium ids ({', '.join(GYM_ENV_IDS)}), "
                         f"got {config.env!r}")
    if config.agent != "ppo" and config.world_model not in SB3_WORLD_MODELS:
        raise ValueError(f"--world-model {config.world_model!r} is not available to the SB3 "
                         f"agents; allowed: {', '.join(SB3_WORLD_MODELS)}")


def ppo_kwargs(sb3: SB3Config, seed: int, device: str) -> dict[str, Any]:
    """``PPO(...)`` keyword arguments from the config."""
    arch = list(sb3.net_arch)
    return dict(n_steps=sb3.n_steps, batch_size=sb3.batch_size, n_epochs=sb3.n_epochs,
                learning_rate=sb3.learning_rate, gamma=sb3.gamma, gae_lambda=sb3.gae_lambda,
                clip_range=sb3.clip_range, ent_coef=sb3.ent_coef, seed=seed, device=device,
                policy_kwargs=dict(net_arch=dict(pi=arch, vf=arch)), verbose=0)


def run(config: TrainConfig, run_dir: Path) -> dict[str, float]:
    """Trains ``config.agent`` for ``config.steps`` real env steps; returns the final evaluation.

    Args:
        config: a ``lewm_rl.train.TrainConfig`` (its ``sb3`` field, if any, an :class:`SB3Config`).
        run_dir: the run directory; receives the TensorBoard events, ``sb3_model.zip``,
            ``world_model.pt`` (agents with a world model), ``config.json`` and ``results.json``.

    Returns:
        ``eval/episode_return`` on the training population and ``eval/{population}/episode_return``
        on each held-out population, each the mean over ``config.eval_episodes`` episodes of the
        deterministic policy on seeds ``EVAL_SEED + i``.
    """
    from lewm_rl.tensorboard import hyperparameter_table
    from lewm_rl.train import EVAL_SEED, config_to_dict

    _check(config)
    sb3: SB3Config = getattr(config, "sb3", None) or SB3Config()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    env_seed = config.seed * 100_003
    env_kwargs = {"population": config.population, "annotation_noise": config.annotation_noise}

    def make_raw(population: str = config.population) -> gym.Env:
        return gym.make(config.env, **{**env_kwargs, "population": population})

    cfg_dict = config_to_dict(config)
    cfg_dict.setdefault("sb3", dataclasses.asdict(sb3))
    cfg_path = run_dir / "config.json"
    if not cfg_path.exists():
        cfg_path.write_text(json.dumps(cfg_dict, indent=2, default=str))
    logger = configure(str(run_dir), ["tensorboard"])
    tb = next(f for f in logger.output_formats if isinstance(f, TensorBoardOutputFormat))
    tb.writer.add_text("hyperparameters", hyperparameter_table(cfg_dict))
    kwargs = ppo_kwargs(sb3, config.seed, config.device)

    wm = None
    if config.agent == "ppo":
        venv = make_vec_env(make_raw, n_envs=config.num_envs, seed=env_seed)
        model = PPO("MultiInputPolicy", venv, **kwargs)
        model.set_logger(logger)

        def real_steps() -> int:
            return model.num_timesteps

        def make_eval(population: str) -> gym.Env:
            return make_raw(population)

        callbacks: list[BaseCallback] = [TrainReturnCallback(real_steps),
                                         StopAtRealSteps(real_steps, config.steps)]
        total, reset = config.steps, True
    else:
        probe = make_raw()
        emotion_space = probe.get_wrapper_attr("emotion_space")
        spaces_dict = probe.observation_space.spaces
        behaviour = next((k for k in BEHAVIOUR_KEYS if k in spaces_dict), None)
        wm_config = dataclasses.replace(config.wm, kind=config.world_model)
        wm = build_world_model(wm_config, probe.observation_space, probe.action_space,
                               emotion_space, tuple(probe.get_wrapper_attr("emotion_names")),
                               behaviour).to(config.device)
        probe.close()
        tb.writer.add_text("world_model/architecture", explained(wm))
        replay = SequenceReplay.for_spaces(2 * config.steps + 4 * config.seq_len, 1,
                                           probe.observation_space, emotion_space)
        collector = RealCollector(
            [LEWMBeliefWrapper(make_raw(), wm, record=True) for _ in range(config.num_envs)],
            replay, seed=env_seed + 50_000)
        prefill = max(min(config.prefill, config.steps // 2), config.seq_len)
        collector.collect(prefill, None)
        refit = RealDataRefitCallback(
            wm, make_optimizer(wm), replay, batch_size=config.batch_size, seq_len=config.seq_len,
            train_ratio=config.train_ratio, real_steps=collector.steps,
            max_real_steps=config.steps, seed=config.seed,
            max_skipped_updates=config.max_skipped_updates)
        sums: dict[str, list[float]] = {}
        for i in range(sb3.pretrain_updates):
            for k, v in refit.fit_once(with_metrics=i % 10 == 0).items():
                sums.setdefault(k, []).append(v)
        write_scalars(logger, {k: float(np.mean(v)) for k, v in sums.items()}, collector.steps)

        def make_eval(population: str) -> gym.Env:
            return LEWMBeliefWrapper(make_raw(population), wm)

        if config.agent == "ppo-belief":
            venv = make_vec_env(
                lambda: LEWMBeliefWrapper(make_raw(), wm, record=sb3.refit_belief),
                n_envs=config.num_envs, seed=env_seed)
            model = PPO("MlpPolicy", venv, **kwargs)
            model.set_logger(logger)
            # SB3 counts on from the prefill, so its own keys share the real-step axis.
            model.num_timesteps = collector.steps

            def real_steps() -> int:
                return model.num_timesteps

            callbacks = [TrainReturnCallback(real_steps), StopAtRealSteps(real_steps, config.steps)]
            callbacks += [refit] if sb3.refit_belief else []
            total, reset = max(config.steps - collector.steps, 0), False
        else:
            imag = ImaginationVecEnv(
                wm, replay, n_envs=sb3.imagination_envs, horizon=sb3.horizon,
                start_sequences=sb3.start_sequences, seq_len=config.seq_len,
                burn_in=min(sb3.burn_in, config.seq_len - 1), termination=sb3.termination,
                seed=config.seed)
            model = PPO("MlpPolicy", imag, **kwargs)
            model.set_logger(logger)
            per_rollout = sb3.imagination_envs * sb3.n_steps
            refit.collector = collector
            refit.real_steps_per_rollout = max(1, round(per_rollout / sb3.imagination_ratio))
            refit.imagination_env = imag

            def real_steps() -> int:
                return refit.real_steps

            callbacks = [refit]
            rollouts = math.ceil(max(config.steps - collector.steps, 0)
                                 / refit.real_steps_per_rollout)
            total, reset = rollouts * per_rollout, True

    def eval_returns(population: str = config.population) -> float:
        return float(np.mean(evaluate(model, lambda: make_eval(population),
                                      config.eval_episodes, EVAL_SEED)))

    def held_out() -> dict[str, float]:  # at every evaluation, so their charts are curves
        return {f"eval/{p}/episode_return": eval_returns(p) for p in config.eval_populations}

    evaluator = RealEvalCallback(eval_returns, config.eval_every, real_steps, extra_fn=held_out)
    if total > 0:
        model.learn(total, callback=[*callbacks, evaluator], progress_bar=config.progress,
                    reset_num_timesteps=reset)
    step = int(real_steps())
    if evaluator.history and evaluator.history[-1][0] == step:  # just evaluated (deterministic)
        results = {"eval/episode_return": evaluator.history[-1][1], **evaluator.last_extras}
    else:
        results = {"eval/episode_return": eval_returns(), **held_out()}
        write_scalars(logger, results, step)
    model.save(run_dir / "sb3_model.zip")
    if wm is not None:
        wm.save(run_dir / "world_model.pt")
    logger.close()
    (run_dir / "results.json").write_text(json.dumps(
        {"step": step, "agent": config.agent,
         "world_model": "none" if config.agent == "ppo" else config.world_model,
         "env": config.env, "seed": config.seed, **results}, indent=2))
    return results


def load_models(run_dir: str | Path, config: TrainConfig, device: str = "cpu"):
    """An SB3 run's ``(PPO model, world model or None)``: SB3's own ``load`` of
    ``sb3_model.zip``, and :meth:`EmotionalWorldModel.load` of ``world_model.pt``."""
    from lewm_rl.checkpoint import CheckpointError
    from lewm_rl.world_models import EmotionalWorldModel

    run_dir = Path(run_dir)
    path = run_dir / "sb3_model.zip"
    if not path.is_file():
        raise CheckpointError(f"no SB3 model at {path} (an SB3 run writes it when it ends)")
    model = PPO.load(path, device=device)
    wm_path = run_dir / "world_model.pt"
    wm = EmotionalWorldModel.load(wm_path, map_location=device) if wm_path.is_file() else None
    return model, wm
