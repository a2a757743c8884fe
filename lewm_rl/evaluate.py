"""``python -m lewm_rl.evaluate RUN_DIR``: evaluate and watch a trained run, as RL Zoo's ``enjoy``.

Plays the run's agent on the fixed evaluation seeds (the ones training evaluated on) and prints
its mean return with a 95 % bootstrap interval over episodes, beside the scripted references on
the same seeds, the normalised return (random 0, oracle 1) and, where the agent reads the
partner's emotion, its accuracy on these episodes. ``--render ansi`` adds one episode's transcript
with the reward and the model's read of the partner's emotion beside the true one.

Examples::

    python -m lewm_rl.evaluate runs/SocialNegotiation-v0__dreamer__s0__20250101-120000/lewm
    python -m lewm_rl.evaluate RUN_DIR --episodes 256 --population volatile --render ansi
    python -m lewm_rl.evaluate RUN_DIR --play      # take the learner's seat yourself
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import torch
import tyro

from lewm_rl.checkpoint import CheckpointError
from lewm_rl.evaluation import Interval, interval, normalised, reference_episode_returns
from lewm_rl.metrics import f1_scores
from lewm_rl.runs import Run, load_run


@dataclass(frozen=True)
class EvaluateConfig:
    """Evaluate a trained run on the fixed evaluation seeds."""

    run_dir: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIR")]
    """The run directory (it holds config.json and checkpoint.pt)."""
    episodes: int | None = None
    """Evaluation episodes, one per fixed seed (default: the run's --eval-episodes)."""
    population: str | None = None
    """Partner population (default: the training one, then each held-out one)."""
    render: Literal["ansi"] | None = None
    """ansi: also print one evaluation episode's transcript."""
    play: bool = False
    """Take the learner's seat yourself instead (python -m lewm_rl.play): against the env's
    partner, or on a PettingZoo env against this run's agent."""
    device: str = "cpu"
    """Torch device."""


def evaluate_run(run: Run, population: str, episodes: int) -> dict[str, object]:
    """The agent's and the references' returns on ``episodes`` evaluation seeds.

    Returns:
        ``return`` (:class:`Interval`), ``references`` (name -> :class:`Interval`),
        ``normalised`` (float, or ``None`` without references), ``emotion_accuracy`` and
        ``emotion_macro_f1`` (or ``None`` where the agent reads no emotion).
    """
    from lewm_rl.train import EVAL_SEED, play_episodes

    c = run.config
    kwargs = {"population": population, "annotation_noise": c.annotation_noise}
    played = play_episodes(run.learners, c.env, kwargs, episodes, run.learners[0].device,
                           filter_cues=c.filter_cues)
    refs = reference_episode_returns(c.env, episodes, EVAL_SEED, kwargs)
    ret = interval(played["returns"])
    out: dict[str, object] = {
        "return": ret, "references": {k: interval(v) for k, v in refs.items()},
        "normalised": (normalised(ret.point, {k: float(np.mean(v)) for k, v in refs.items()})
                       if refs else None),
        "emotion_accuracy": None, "emotion_macro_f1": None}
    if "emotion_true" in played:
        f = f1_scores(played["emotion_true"].ravel(), played["emotion_pred"].ravel(),
                      run.world_model.labels.classes)
        out["emotion_accuracy"], out["emotion_macro_f1"] = f["accuracy"], f["macro_f1"]
    return out


def transcript(run: Run, population: str) -> str:
    """One evaluation episode (the first evaluation seed) as text: the env's ansi transcript,
    then per step the reward and the model's read of the partner's emotion beside the true one.

    The first seat plays; in a PettingZoo env the other seats are background characters.
    """
    from lewm_rl.train import EVAL_SEED, _reset_single, _step_single, emotion_readout
    from lewm_rl.world_models.codec import to_tensor_obs

    env = _render_env(run, population)
    ln = run.learners[0]
    seat = ln.seats[0]
    obs, info = _reset_single(env, EVAL_SEED)
    generator = torch.Generator(device=ln.device).manual_seed(EVAL_SEED)
    names = run.world_model.labels.names or tuple(str(k) for k in range(ln.wm.labels.classes))
    carry, first, done, t = None, True, False, 0
    rows = ["step | reward | model reads | true emotion", "-" * 48]
    while not done:
        tobs = to_tensor_obs({k: np.asarray(v)[None] for k, v in obs.items()}, ln.wm.mods,
                             ln.device)
        a, carry = ln.agent.act(carry, tobs, torch.tensor([first], device=ln.device),
                                explore=False, generator=generator)
        read = emotion_readout(ln, carry[0])
        true = np.asarray(info["emotion"]).ravel()
        obs, info, done, reward = _step_single(env, int(a[0]), seat, with_reward=True)
        said = "-" if read is None else " ".join(names[int(k)] for k in read[0])
        rows.append(f"{t:4d} | {reward:6.3f} | {said:11s} | "
                    + " ".join(names[int(k)] for k in true))
        first, t = False, t + 1
    return env.render() + "\n" + "\n".join(rows) + "\n"


def _render_env(run: Run, population: str):
    import importlib

    import gymnasium as gym

    from lewm_rl.envs import GYM_ENV_IDS

    c = run.config
    kwargs = {"population": population, "annotation_noise": c.annotation_noise}
    if c.env in GYM_ENV_IDS:
        return gym.make(c.env, render_mode="ansi", **kwargs)
    mod = importlib.import_module(f"lewm_rl.envs.{c.env}")
    others = tuple(range(1, len(mod.parallel_env(**kwargs).possible_agents)))
    return mod.parallel_env(render_mode="ansi", background=others, **kwargs)


def _fmt(x: Interval) -> str:
    return f"{x.point:7.3f} [{x.low:.3f}, {x.high:.3f}]"


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = tyro.cli(EvaluateConfig, args=argv, prog="python -m lewm_rl.evaluate",
                       description=__doc__.split("\n\n")[0])
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        from lewm_rl.envs.affect import check_population

        if cfg.episodes is not None and cfg.episodes < 1:
            raise ValueError(f"--episodes must be >= 1, got {cfg.episodes}")
        if cfg.population is not None:
            check_population(cfg.population)
        run = load_run(cfg.run_dir, cfg.device)
        if run.config.agent != "dreamer":
            raise ValueError(f"{cfg.run_dir} is an SB3 run (--agent {run.config.agent}); load it "
                             "with lewm_rl.load_run (allowed here: --agent dreamer runs)")
    except (ValueError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    c = run.config
    if cfg.play:
        from lewm_rl.play import PlayConfig, play

        try:
            play(PlayConfig(env=c.env, run=cfg.run_dir, population=cfg.population or c.population))
        except (KeyboardInterrupt, EOFError):
            print()
        return 0
    episodes = cfg.episodes or c.eval_episodes
    pops = ([cfg.population] if cfg.population
            else list(dict.fromkeys((c.population, *c.eval_populations))))
    print(f"{cfg.run_dir}: {c.world_model} world model, {c.agent} agent, {c.env}, seed {c.seed}, "
          f"step {run.step}; {episodes} evaluation episodes (seeds fixed), mean [95 % CI]")
    for pop in pops:
        res = evaluate_run(run, pop, episodes)
        print(f"\npopulation {pop}")
        print(f"  {c.world_model + '-' + c.agent:16s} {_fmt(res['return'])}")
        for name, ref in res["references"].items():
            print(f"  {name:16s} {_fmt(ref)}")
        if res["normalised"] is not None:
            print(f"  normalised return (random 0, oracle 1): {res['normalised']:.3f}")
        if res["emotion_accuracy"] is not None:
            print(f"  emotion read-out: accuracy {res['emotion_accuracy']:.3f}, macro-F1 "
                  f"{res['emotion_macro_f1']:.3f}")
    if cfg.render == "ansi":
        print("\n" + transcript(run, pops[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
