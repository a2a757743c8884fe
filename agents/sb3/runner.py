"""``run(config, run_dir)``: the SB3 agents of the training CLI (``--agent ppo | recurrent-ppo |
ppo-belief | ppo-imagination``).

* ``ppo``: plain PPO, ``MultiInputPolicy`` on the raw Dict observations (no world model).
* ``recurrent-ppo``: sb3-contrib's ``RecurrentPPO``, ``MultiInputLstmPolicy`` on the raw
  observations (no world model): the standard memory-based model-free baseline (it can read the
  cues over time). Needs sb3-contrib (``pip install -e ".[benchmarks]"``).
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
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import TensorBoardOutputFormat, configure

from lewm_rl.checkpoint import CheckpointError, find_nonfinite, load, save_keeping_previous
from lewm_rl.data.replay import SequenceReplay
from lewm_rl.envs.wrappers import FilterEmotionCues
from lewm_rl.world_models import build_world_model, explained, make_optimizer

from .belief import LEWMBeliefWrapper
from .callbacks import (
    RealCollector,
    RealDataRefitCallback,
    RealEvalCallback,
    SaveAndStop,
    StopAtRealSteps,
    TrainReturnCallback,
    evaluate,
    write_scalars,
)
from .config import SB3Config
from .imagination import ImaginationVecEnv

if TYPE_CHECKING:  # train.py dispatches to run(): importing it here at run time would be circular
    from lewm_rl.train import TrainConfig

AGENTS: tuple[str, ...] = ("ppo", "recurrent-ppo", "ppo-belief", "ppo-imagination")
"""The SB3 agents ``run`` trains."""
MODEL_FREE: tuple[str, ...] = ("ppo", "recurrent-ppo")
"""The SB3 agents on raw observations (no world model)."""


def algorithm(agent: str):
    """The SB3 algorithm class of ``agent`` (``RecurrentPPO`` from sb3-contrib, imported here)."""
    if agent != "recurrent-ppo":
        return PPO
    try:
        from sb3_contrib import RecurrentPPO
    except ImportError:  # pragma: no cover - the benchmarks extra installs it
        raise ValueError('--agent recurrent-ppo needs sb3-contrib: pip install -e ".[benchmarks]"'
                         ) from None
    return RecurrentPPO
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
    if config.agent not in MODEL_FREE and config.world_model not in SB3_WORLD_MODELS:
        raise ValueError(f"--world-model {config.world_model!r} is not available to the SB3 "
                         f"agents; allowed: {', '.join(SB3_WORLD_MODELS)}")


def ppo_kwargs(sb3: SB3Config, seed: int, device: str) -> dict[str, Any]:
    """``PPO(...)`` keyword arguments from the config."""
    arch = list(sb3.net_arch)
    return dict(n_steps=sb3.n_steps, batch_size=sb3.batch_size, n_epochs=sb3.n_epochs,
                learning_rate=sb3.learning_rate, gamma=sb3.gamma, gae_lambda=sb3.gae_lambda,
                clip_range=sb3.clip_range, ent_coef=sb3.ent_coef, seed=seed, device=device,
                policy_kwargs=dict(net_arch=dict(pi=arch, vf=arch)), verbose=0)


CHECKPOINT = "checkpoint.pt"
"""An SB3 run's checkpoint in its run directory (``--resume`` reads it; data only)."""


def run(config: TrainConfig, run_dir: Path) -> dict[str, float]:
    """Trains ``config.agent`` for ``config.steps`` real env steps; returns the final evaluation.

    A run directory that holds a checkpoint is continued from it, to ``config.steps``: the PPO
    policy and its optimiser, the step counters (SB3's ``num_timesteps``, real steps, evaluation
    and checkpoint cadence) and, for agents with one, the world model, its optimiser, the replay
    and the refit state. Episodes in flight when it stopped start afresh (from new seeds), and PPO
    starts a fresh rollout. Checkpoints are written every ``config.checkpoint_every`` real steps
    (as a rollout starts), at the end, and on Ctrl-C or SIGTERM, only when the models are finite.

    Args:
        config: a ``lewm_rl.train.TrainConfig`` (its ``sb3`` field, if any, an :class:`SB3Config`).
        run_dir: the run directory; receives the TensorBoard events, ``checkpoint.pt`` (and the one
            it replaced, ``checkpoint.prev.pt``), and at the end ``sb3_model.zip``,
            ``world_model.pt`` (agents with a world model) and ``results.json``.

    Returns:
        ``eval/episode_return`` on the training population and ``eval/{population}/episode_return``
        on each held-out population, each the mean over ``config.eval_episodes`` episodes of the
        deterministic policy on seeds ``EVAL_SEED + i``.

    Raises:
        CheckpointError: the checkpoint cannot be read or is another run's, or the directory holds
            a finished SB3 run written without a checkpoint (left as it is).
        TrainingError: training diverged (one line naming the last good checkpoint).
        Interrupted: Ctrl-C or SIGTERM stopped the run after saving a checkpoint.
    """
    from lewm_rl.tensorboard import hyperparameter_table
    from lewm_rl.train import (
        EVAL_SEED,
        Interrupted,
        TrainingError,
        config_to_dict,
        divergence_error,
        is_nonfinite_sampling,
        stop_on_signals,
    )

    _check(config)
    sb3: SB3Config = getattr(config, "sb3", None) or SB3Config()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / CHECKPOINT
    saved = _read_checkpoint(ckpt_path, config) if ckpt_path.exists() else None
    if saved is None and (run_dir / "sb3_model.zip").exists():
        raise CheckpointError(f"{run_dir} holds an SB3 run that was written without a checkpoint "
                              f"({CHECKPOINT}); it cannot be resumed and is left as it is")
    if config.threads:
        torch.set_num_threads(config.threads)
    # A resumed run's envs and samplers draw new streams: replaying the first episodes would bias.
    shift = 0 if saved is None else 7919 * (int(saved["step"]) + 1)
    seed = config.seed + shift
    torch.manual_seed(config.seed)
    env_seed = config.seed * 100_003 + shift
    env_kwargs = {"population": config.population, "annotation_noise": config.annotation_noise}

    def make_raw(population: str = config.population) -> gym.Env:
        env = gym.make(config.env, **{**env_kwargs, "population": population})
        return FilterEmotionCues(env) if config.filter_cues else env

    cfg_dict = config_to_dict(config)
    cfg_dict.setdefault("sb3", dataclasses.asdict(sb3))
    cfg_path = run_dir / "config.json"
    if not cfg_path.exists():
        cfg_path.write_text(json.dumps(cfg_dict, indent=2, default=str))
    logger = configure(str(run_dir), ["tensorboard"])
    tb = next(f for f in logger.output_formats if isinstance(f, TensorBoardOutputFormat))
    if saved is None:
        tb.writer.add_text("hyperparameters", hyperparameter_table(cfg_dict))
    elif config.agent != "ppo-imagination":
        # Every key is on the real-step axis: events logged after the checkpoint are purged.
        from torch.utils.tensorboard import SummaryWriter

        tb.writer.close()
        tb.writer = SummaryWriter(str(run_dir), purge_step=int(saved["step"]) + 1)
    kwargs = ppo_kwargs(sb3, seed, config.device)

    wm = replay = refit = collector = None
    if config.agent in MODEL_FREE:
        venv = make_vec_env(make_raw, n_envs=config.num_envs, seed=env_seed)
        if config.agent == "recurrent-ppo":
            kwargs["policy_kwargs"]["lstm_hidden_size"] = sb3.lstm_hidden
            model = algorithm(config.agent)("MultiInputLstmPolicy", venv, **kwargs)
        else:
            model = PPO("MultiInputPolicy", venv, **kwargs)
        model.set_logger(logger)

        def real_steps() -> int:
            return model.num_timesteps

        def make_eval(population: str) -> gym.Env:
            return make_raw(population)

        callbacks: list[BaseCallback] = [TrainReturnCallback(real_steps),
                                         StopAtRealSteps(real_steps, config.steps)]
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
        replay = SequenceReplay.for_spaces(2 * config.steps + 4 * config.seq_len, 1,
                                           probe.observation_space, emotion_space)
        collector = RealCollector(
            [LEWMBeliefWrapper(make_raw(), wm, record=True) for _ in range(config.num_envs)],
            replay, seed=env_seed + 50_000)
        if saved is None:
            tb.writer.add_text("world_model/architecture", explained(wm))
            prefill = max(min(config.prefill, config.steps // 2), config.seq_len)
            collector.collect(prefill, None)
        refit = RealDataRefitCallback(
            wm, make_optimizer(wm), replay, batch_size=config.batch_size, seq_len=config.seq_len,
            train_ratio=config.train_ratio, real_steps=collector.steps,
            max_real_steps=config.steps, seed=config.seed,
            max_skipped_updates=config.max_skipped_updates)
        if saved is None:
            sums: dict[str, list[float]] = {}
            for i in range(sb3.pretrain_updates):
                for k, v in refit.fit_once(with_metrics=i % 10 == 0).items():
                    sums.setdefault(k, []).append(v)
            write_scalars(logger, {k: float(np.mean(v)) for k, v in sums.items()},
                          collector.steps)
        else:
            _restore(saved, ckpt_path, wm=wm, wm_opt=refit.optimizer, replay=replay,
                     refit=refit, collector=collector)

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
        else:
            imag = ImaginationVecEnv(
                wm, replay, n_envs=sb3.imagination_envs, horizon=sb3.horizon,
                start_sequences=sb3.start_sequences, seq_len=config.seq_len,
                burn_in=min(sb3.burn_in, config.seq_len - 1), termination=sb3.termination,
                seed=seed)
            model = PPO("MlpPolicy", imag, **kwargs)
            model.set_logger(logger)
            refit.collector = collector
            refit.real_steps_per_rollout = max(
                1, round(sb3.imagination_envs * sb3.n_steps / sb3.imagination_ratio))
            refit.imagination_env = imag

            def real_steps() -> int:
                return refit.real_steps

            callbacks = [refit]

    def eval_returns(population: str = config.population) -> float:
        return float(np.mean(evaluate(model, lambda: make_eval(population),
                                      config.eval_episodes, EVAL_SEED)))

    def held_out() -> dict[str, float]:  # at every evaluation, so their charts are curves
        return {f"eval/{p}/episode_return": eval_returns(p) for p in config.eval_populations}

    evaluator = RealEvalCallback(eval_returns, config.eval_every, real_steps, extra_fn=held_out)
    stop: list[int] = []
    last_good: list[tuple[Path, int]] = []

    def diverged(what: str):
        return divergence_error(int(real_steps()), what, ckpt_path,
                                last_good[-1] if last_good else None,
                                lower="--sb3.learning-rate or --wm.lr")

    def save() -> Path:
        models = {"policy": model.policy.state_dict(),
                  "policy optimiser": model.policy.optimizer.state_dict()}
        if wm is not None:
            models.update({"world model": wm.state_dict(),
                           "world-model optimiser": refit.optimizer.state_dict()})
        found = find_nonfinite(models)
        if found is not None:
            raise diverged(f"{found} is not finite, so no checkpoint was written")
        payload = {"agent": config.agent, "step": int(real_steps()),
                   "num_timesteps": model.num_timesteps, "n_updates": model._n_updates,
                   "policy": models["policy"], "policy_opt": models["policy optimiser"],
                   "evaluator": evaluator.state_dict(), "next_ckpt": saver.next_save,
                   "torch_rng": torch.get_rng_state()}
        if wm is not None:
            payload.update({"wm": models["world model"], "wm_opt": models["world-model optimiser"],
                            "replay": replay.state_dict(), "refit": refit.state_dict(),
                            "collector": collector.state_dict()})
        path = save_keeping_previous(payload, ckpt_path)
        last_good.append((path, payload["step"]))
        return path

    saver = SaveAndStop(save, config.checkpoint_every, real_steps, lambda: bool(stop))
    if saved is not None:
        _restore(saved, ckpt_path, model=model, evaluator=evaluator, saver=saver)
        last_good.append((ckpt_path, int(saved["step"])))
    if config.agent == "ppo-imagination":
        per_rollout = sb3.imagination_envs * sb3.n_steps
        rollouts = math.ceil(max(config.steps - refit.real_steps, 0)
                             / refit.real_steps_per_rollout)
        total, reset = rollouts * per_rollout, saved is None
    elif config.agent == "ppo-belief":
        total, reset = max(config.steps - model.num_timesteps, 0), False
    else:
        total, reset = max(config.steps - model.num_timesteps, 0), saved is None
    try:
        with stop_on_signals(stop.append):
            if total > 0 and not stop:
                model.learn(total, callback=[*callbacks, evaluator, saver],
                            progress_bar=config.progress, reset_num_timesteps=reset)
            if stop:
                raise Interrupted(stop[0])
            # A signal from here on lets the run finish: it is saving anyway.
            step = int(real_steps())
            if evaluator.history and evaluator.history[-1][0] == step:  # just evaluated
                results = {"eval/episode_return": evaluator.history[-1][1],
                           **evaluator.last_extras}
            else:
                results = {"eval/episode_return": eval_returns(), **held_out()}
                write_scalars(logger, results, step)
            save()
    except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM (training stopped), or a second one
        signum = err.signum if isinstance(err, Interrupted) else signal.SIGINT
        logger.close()
        name = signal.Signals(signum).name
        try:
            path = save()
        except TrainingError as bad:
            print(f"\n{name} at step {int(real_steps())}: {bad}", file=sys.stderr)
        else:
            print(f"\n{name}: interrupted at step {int(real_steps())}: saved {path}; continue "
                  f"with --resume {run_dir}", file=sys.stderr)
        raise Interrupted(signum) from None
    except (RuntimeError, ValueError) as err:
        if isinstance(err, TrainingError):
            raise
        if is_nonfinite_sampling(err):
            raise diverged("the probabilities sampled by the policy or the world model were not "
                           "finite") from None
        if "was not finite for" in str(err):  # the refit callback's repeated skips
            raise diverged(str(err).splitlines()[0]) from None
        raise
    model.save(run_dir / "sb3_model.zip")
    if wm is not None:
        wm.save(run_dir / "world_model.pt")
    logger.close()
    (run_dir / "results.json").write_text(json.dumps(
        {"step": step, "agent": config.agent,
         "world_model": "none" if config.agent in MODEL_FREE else config.world_model,
         "env": config.env, "seed": config.seed, **results}, indent=2))
    return results


def _read_checkpoint(path: Path, config: TrainConfig) -> dict[str, Any]:
    state = load(path, map_location="cpu")
    if not isinstance(state, dict) or state.get("agent") != config.agent:
        found = state.get("agent", "a Dreamer run") if isinstance(state, dict) else "no run"
        raise CheckpointError(f"checkpoint {path} is not an --agent {config.agent} checkpoint "
                              f"(it holds {found})")
    return state


def _restore(state: dict[str, Any], path: Path, **parts: Any) -> None:
    """Loads the saved ``parts`` (by name: ``model``, ``evaluator``, ``saver``, ``wm``,
    ``wm_opt``, ``replay``, ``refit``, ``collector``), or raises :class:`CheckpointError`."""
    try:
        if "model" in parts:
            model = parts["model"]
            model.policy.load_state_dict(state["policy"])
            model.policy.optimizer.load_state_dict(state["policy_opt"])
            model.num_timesteps = int(state["num_timesteps"])
            model._n_updates = int(state["n_updates"])
            parts["evaluator"].load_state_dict(state["evaluator"])
            parts["saver"].next_save = int(state["next_ckpt"])
            torch.set_rng_state(state["torch_rng"].cpu())
        if "wm" in parts:
            parts["wm"].load_state_dict(state["wm"])
            parts["wm_opt"].load_state_dict(state["wm_opt"])
            parts["replay"].load_state_dict(state["replay"])
            parts["refit"].load_state_dict(state["refit"])
            parts["collector"].load_state_dict(state["collector"])
    except (KeyError, ValueError, RuntimeError, TypeError) as err:
        raise CheckpointError(f"checkpoint {path} does not match this run "
                              f"({str(err).splitlines()[0][:100]})") from None


def load_models(run_dir: str | Path, config: TrainConfig, device: str = "cpu"):
    """An SB3 run's ``(PPO model, world model or None)``: SB3's own ``load`` of
    ``sb3_model.zip``, and :meth:`EmotionalWorldModel.load` of ``world_model.pt``."""
    from lewm_rl.world_models import EmotionalWorldModel

    run_dir = Path(run_dir)
    path = run_dir / "sb3_model.zip"
    if not path.is_file():
        raise CheckpointError(f"no SB3 model at {path} (an SB3 run writes it when it ends)")
    model = algorithm(config.agent).load(path, device=device)
    wm_path = run_dir / "world_model.pt"
    wm = EmotionalWorldModel.load(wm_path, map_location=device) if wm_path.is_file() else None
    return model, wm
