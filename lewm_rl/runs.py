"""Loading a finished (or stopped) run: ``lewm_rl.load_run(run_dir)``.

A run directory holds ``config.json`` (the resolved :class:`lewm_rl.train.TrainConfig`) and, for
Dreamer runs, ``checkpoint.pt`` (read with ``weights_only=True``: data, never code); SB3 runs hold
``sb3_model.zip`` (SB3's own ``load``) and ``world_model.pt`` (:meth:`EmotionalWorldModel.load`),
written when they end, beside the ``checkpoint.pt`` that ``--resume`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lewm_rl.checkpoint import CheckpointError, load
from lewm_rl.world_models import EmotionalWorldModel


@dataclass
class RunLearner:
    """The trained models of one group of seats (all seats with ``--shared-parameters``)."""

    seats: tuple[str, ...]
    wm: EmotionalWorldModel
    agent: Any
    device: str = "cpu"
    probe: Any = None


@dataclass
class Run:
    """A loaded run; unpacks as ``world_model, agent, config = load_run(run_dir)``.

    Attributes:
        world_model: the (first seat's) world model, ``None`` for ``--agent ppo``.
        agent: the (first seat's) :class:`DreamerAgent`, or the SB3 model of an SB3 run.
        config: the run's :class:`lewm_rl.train.TrainConfig`.
        run_dir: where it was loaded from.
        learners: every seat group's models (Dreamer runs), for multi-seat PettingZoo runs.
        step: env steps (per seat) the checkpoint was taken at.
    """

    world_model: EmotionalWorldModel | None
    agent: Any
    config: Any
    run_dir: Path
    learners: list[RunLearner] = field(default_factory=list)
    step: int = 0

    def __iter__(self):
        return iter((self.world_model, self.agent, self.config))


def load_run(run_dir: str | Path, device: str = "cpu") -> Run:
    """Rebuilds a run's world model and agent from ``config.json`` and its weights.

    Args:
        run_dir: a run directory (``runs/{env}__{agent}__s{seed}__{time}/{world_model}``).
        device: torch device to load onto.

    Raises:
        CheckpointError: no run there, or its checkpoint cannot be read (one line naming it).
    """
    from lewm_rl.env_adapters import make_adapter
    from lewm_rl.train import build_models, read_run_config
    from lewm_rl.world_models.probe import EmotionProbe

    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(f"no run at {run_dir} (no config.json there); pass a run directory "
                              "such as runs/<env>__<agent>__s0__<time>/lewm")
    config = read_run_config(run_dir)
    if config.agent != "dreamer":
        from lewm_rl.agents.sb3.runner import load_models  # SB3 stays under agents/sb3

        model, wm = load_models(run_dir, config, device)
        return Run(wm, model, config, run_dir)
    state = load(run_dir / "checkpoint.pt", map_location=device)
    env_kwargs = {"population": config.population, "annotation_noise": config.annotation_noise}
    adapter = make_adapter(config.env, 1, env_kwargs)
    seats = adapter.seats
    groups = [tuple(seats)] if config.shared_parameters else [(s,) for s in seats]
    learners = []
    try:
        for group, saved in zip(groups, state["learners"], strict=True):
            wm, agent = build_models(config, adapter, group[0], device)
            wm.load_state_dict(saved["wm"])
            agent.load_state_dict(saved["agent"])
            probe = None
            if "probe" in saved:
                probe = EmotionProbe(wm.feature_dim, wm.labels.partners, wm.labels.classes)
                probe.load_full_state_dict(saved["probe"])
                probe.to(device)
            learners.append(RunLearner(group, wm.eval(), agent, device, probe))
    except (KeyError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"checkpoint {run_dir / 'checkpoint.pt'} does not match "
                              f"{cfg_path} ({str(err).splitlines()[0][:100]})") from None
    finally:
        adapter.close()
    return Run(learners[0].wm, learners[0].agent, config, run_dir, learners, int(state["step"]))
