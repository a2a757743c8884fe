"""Sample efficiency of SB3 PPO on raw observations, on the LEWM belief and inside LEWM imagination.

For each arm and seed the benchmark trains with :func:`lewm_rl.agents.sb3.run` (the code the CLI
runs: ``--agent ppo``, ``ppo-belief``, ``ppo-imagination``) and reads its learning curve,
``eval/episode_return`` (the deterministic policy on the fixed evaluation seeds
``EVAL_SEED + i``), back from the run's TensorBoard events. The oracle's return is measured on the
same seeds with ``lewm_rl.evaluation.run_policy`` and ``make_policy("oracle", env)`` (whatever
tuned config ``make_policy`` picks by default).

*Steps to threshold*: the real env steps (prefill included) of the first evaluation whose return
reaches ``threshold x`` the oracle's. A seed that never reaches it within its budget is censored:
it counts as its budget (so the figure is a lower bound) and the table says how many were. The
table gives the mean over seeds with a 95 % percentile-bootstrap interval
(``lewm_rl.evaluation.interval``) and the IQM. The issue's target: imagination needs at most 1/5 of
raw PPO's env steps.

Usage::

    python -m benchmarks.sb3                 # 5 seeds; writes benchmarks/results/sb3.{md,json,png}
    python -m benchmarks.sb3 --workers 4     # seeds and arms in 4 processes
    python -m benchmarks.sb3 --quick         # smoke run (< 3 min): prints, writes only with --out
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch
import tyro
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lewm_rl.agents.baselines import make_policy
from lewm_rl.agents.sb3 import SB3Config, run
from lewm_rl.evaluation import interval, run_policy
from lewm_rl.train import EVAL_SEED, TrainConfig, new_run_dir
from lewm_rl.world_models import WorldModelConfig

ARMS: dict[str, str] = {"raw": "ppo", "belief": "ppo-belief", "imagination": "ppo-imagination"}
"""Benchmark arm -> ``--agent``."""
RESULTS = Path(__file__).parent / "results" / "sb3"
TARGET_RATIO = 0.2
"""The issue's target: imagination needs at most this fraction of raw PPO's env steps."""


@dataclass(frozen=True)
class Config:
    """SB3 sample-efficiency benchmark (see the module docstring)."""

    env: str = "SocialNegotiation-v0"
    """Gymnasium id."""
    seeds: int = 5
    """Seeds per arm."""
    threshold: float = 0.8
    """Fraction of the oracle's return to reach."""
    raw_steps: int = 60_000
    """Real env steps of the raw-observation arm."""
    belief_steps: int = 30_000
    """Real env steps of the belief arm."""
    imagination_steps: int = 12_000
    """Real env steps of the imagination arm."""
    evals: int = 24
    """Evaluations per run (every budget / evals real steps)."""
    eval_episodes: int = 64
    """Evaluation episodes (seeds EVAL_SEED + i), for the agents and the oracle."""
    world_model: str = "lewm"
    """World model of the belief and imagination arms (lewm or blind)."""
    workers: int = 1
    """Runs trained in parallel processes (each with one torch thread)."""
    logdir: str = "runs/benchmarks/sb3"
    """Run directories land here (TensorBoard: tensorboard --logdir runs)."""
    quick: bool = False
    """Smoke run: 2 seeds, tiny budgets and models, 6 evaluations of 16 episodes; prints only."""
    out: Path | None = None
    """Output stem (.md, .json, .png); default benchmarks/results/sb3, nowhere with --quick."""

    def budgets(self) -> dict[str, int]:
        if self.quick:
            return {"raw": 2_000, "belief": 1_000, "imagination": 600}
        return {"raw": self.raw_steps, "belief": self.belief_steps,
                "imagination": self.imagination_steps}


@dataclass(frozen=True)
class Job:
    """One training run."""

    arm: str
    seed: int
    steps: int
    quick: bool
    env: str
    world_model: str
    evals: int
    eval_episodes: int
    logdir: str
    stamp: str


def train_config(job: Job) -> Any:
    """The ``TrainConfig`` (with its ``sb3`` field) of a job."""
    cls = TrainConfig
    if "sb3" not in {f.name for f in dataclasses.fields(TrainConfig)}:
        # Until the CLI nests --sb3.*, a TrainConfig with the field.
        cls = dataclass(frozen=True)(type("TrainConfig", (TrainConfig,), {
            "__annotations__": {"sb3": SB3Config},
            "sb3": field(default_factory=SB3Config)}))
    every = max(1, job.steps // job.evals)
    kwargs: dict[str, Any] = dict(
        env=job.env, world_model=job.world_model, steps=job.steps, seed=job.seed,
        eval_every=every, eval_episodes=job.eval_episodes, eval_populations=(), threads=1,
        progress=False, logdir=job.logdir)
    if job.quick:
        kwargs.update(prefill=256, batch_size=8, seq_len=16, train_ratio=32,
                      wm=WorldModelConfig(deter=32, hidden=32, embed=32),
                      sb3=SB3Config(n_steps=64, batch_size=128, n_epochs=4, imagination_envs=32,
                                    horizon=8, pretrain_updates=50, start_sequences=16,
                                    burn_in=4))
    config = cls(**kwargs)
    return dataclasses.replace(config, agent=ARMS[job.arm])


def train_one(job: Job) -> dict[str, Any]:
    """Trains one run; returns its learning curve and wall time."""
    torch.set_num_threads(1)
    config = train_config(job)
    run_dir = new_run_dir(config, job.stamp)
    t0 = time.perf_counter()
    final = run(config, run_dir)
    wall = time.perf_counter() - t0
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    curve = [(int(e.step), float(e.value)) for e in acc.Scalars("eval/episode_return")]
    return {"arm": job.arm, "seed": job.seed, "steps": job.steps, "run_dir": str(run_dir),
            "curve": curve, "final": final["eval/episode_return"], "wall_s": wall}


def steps_to(curve: list[tuple[int, float]], target: float) -> int | None:
    """Real env steps of the first evaluation reaching ``target``, or ``None``."""
    return next((s for s, v in curve if v >= target), None)


def oracle_return(env: str, episodes: int) -> float:
    """Mean return of the oracle on seeds ``EVAL_SEED + i`` (one sub-env per episode)."""
    log = run_policy(env, make_policy("oracle", env), episodes, EVAL_SEED, num_envs=episodes,
                     env_kwargs={"population": "default", "annotation_noise": 0.1})
    return float(np.mean(log.returns))


def summarise(cfg: Config, runs: list[dict[str, Any]], oracle: float) -> dict[str, Any]:
    """Per arm: steps to threshold (intervals over seeds), censoring, final returns, wall time."""
    target = cfg.threshold * oracle
    arms: dict[str, Any] = {}
    for arm in ARMS:
        mine = sorted((r for r in runs if r["arm"] == arm), key=lambda r: r["seed"])
        if not mine:
            continue
        reached = [steps_to(r["curve"], target) for r in mine]
        steps = np.array([s if s is not None else r["steps"] for s, r in
                          zip(reached, mine, strict=True)], dtype=float)
        finals = np.array([r["final"] for r in mine])
        arms[arm] = {
            "agent": ARMS[arm], "budget": mine[0]["steps"], "seeds": [r["seed"] for r in mine],
            "steps_to_threshold": [None if s is None else int(s) for s in reached],
            "censored": int(sum(s is None for s in reached)),
            "steps_mean": dataclasses.asdict(interval(steps, "mean")),
            "steps_iqm": dataclasses.asdict(interval(steps, "iqm")),
            "final_return": dataclasses.asdict(interval(finals, "mean")),
            "wall_s_mean": float(np.mean([r["wall_s"] for r in mine])),
        }
    out: dict[str, Any] = {"oracle_return": oracle, "target_return": target, "arms": arms}
    if "raw" in arms and "imagination" in arms:
        raw, imag = arms["raw"], arms["imagination"]
        ratio = imag["steps_mean"]["point"] / raw["steps_mean"]["point"]
        out["imagination_over_raw"] = ratio
        out["target"] = TARGET_RATIO
        # A censored seed counts as its budget, a lower bound of its true steps: censored raw
        # seeds make the ratio an upper bound, censored imagination seeds a lower bound.
        if raw["censored"] and imag["censored"]:
            out["ratio_is"], verdict = "undetermined", None
        elif imag["censored"]:
            out["ratio_is"], verdict = "lower bound", False if ratio > TARGET_RATIO else None
        elif raw["censored"]:
            out["ratio_is"], verdict = "upper bound", True if ratio <= TARGET_RATIO else None
        else:
            out["ratio_is"], verdict = "exact", ratio <= TARGET_RATIO
        out["target_met"] = verdict
    return out


def _fmt(iv: dict[str, float], digits: int = 0) -> str:
    f = f"{{:,.{digits}f}}"
    return f"{f.format(iv['point'])} [{f.format(iv['low'])}, {f.format(iv['high'])}]"


def markdown(cfg: Config, summary: dict[str, Any], runs: list[dict[str, Any]], wall: float,
             png: str | None) -> str:
    arms = summary["arms"]
    cmd = "python -m benchmarks.sb3" + (" --quick" if cfg.quick else "")
    lines = [
        "# SB3 PPO: env steps to 80% of the oracle's return",
        "",
        f"Produced by `{cmd}` on {datetime.now(timezone.utc):%Y-%m-%d} "
        f"({platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{cfg.workers} worker process(es), 1 torch thread each); {wall / 60:.1f} min in all.",
        "",
        f"Env `{cfg.env}`; oracle (`make_policy('oracle')`, default config) "
        f"{summary['oracle_return']:.3f} over {cfg.eval_episodes if not cfg.quick else 16} "
        f"evaluation episodes; threshold {cfg.threshold:.0%} = "
        f"{summary['target_return']:.3f}. World model of the belief and imagination arms: "
        f"`{cfg.world_model}`. Steps are real env steps, prefill included; a censored seed "
        "(threshold never reached) counts as its budget. Intervals: 95 % percentile bootstrap "
        "over seeds.",
        "",
        "| arm | agent | budget | seeds | censored | steps to threshold, mean [95% CI] | IQM "
        "[95% CI] | final return [95% CI] | wall / run |",
        "|-|-|-|-|-|-|-|-|-|",
    ]
    for arm, a in arms.items():
        lines.append(
            f"| {arm} | `{a['agent']}` | {a['budget']:,} | {len(a['seeds'])} | {a['censored']} | "
            f"{_fmt(a['steps_mean'])} | {_fmt(a['steps_iqm'])} | {_fmt(a['final_return'], 3)} "
            f"| {a['wall_s_mean']:.0f} s |")
    if "imagination_over_raw" in summary:
        met = summary["target_met"]
        verdict = {True: "met", False: "not met", None: "undetermined (censored seeds)"}[met]
        lines += ["", f"Imagination / raw (ratio of the mean steps to threshold): "
                      f"{summary['imagination_over_raw']:.2f} ({summary['ratio_is']}); target "
                      f"<= {TARGET_RATIO:.2f}: **{verdict}**."]
    lines += ["", "Per seed (steps to threshold; - = censored):", ""]
    for arm, a in arms.items():
        per = ", ".join("-" if s is None else f"{s:,}" for s in a["steps_to_threshold"])
        lines.append(f"* {arm}: {per}")
    if png:
        lines += ["", f"![learning curves]({png})"]
    return "\n".join(lines) + "\n"


def plot(cfg: Config, summary: dict[str, Any], runs: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for arm, colour in zip(ARMS, ("tab:grey", "tab:blue", "tab:orange"), strict=True):
        mine = [r for r in runs if r["arm"] == arm]
        if not mine:
            continue
        for r in mine:
            s, v = zip(*r["curve"], strict=True)
            ax.plot(s, v, color=colour, alpha=0.25, lw=0.8)
        steps = sorted({s for r in mine for s, _ in r["curve"]})
        mean = [np.mean([v for r in mine for s2, v in r["curve"] if s2 == s]) for s in steps]
        ax.plot(steps, mean, color=colour, lw=2, label=f"{arm} ({ARMS[arm]})")
    ax.axhline(summary["oracle_return"], color="k", ls="--", lw=1, label="oracle")
    ax.axhline(summary["target_return"], color="k", ls=":", lw=1,
               label=f"{cfg.threshold:.0%} of oracle")
    ax.set_xscale("log")
    ax.set_xlabel("real env steps")
    ax.set_ylabel("eval episode return")
    ax.set_title(f"SB3 PPO on {cfg.env} (thin: seeds, thick: mean)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(cfg: Config) -> dict[str, Any]:
    seeds = 2 if cfg.quick else cfg.seeds
    episodes = 16 if cfg.quick else cfg.eval_episodes
    budgets = cfg.budgets()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    logdir = tempfile.mkdtemp(prefix="sb3-bench-") if cfg.quick else cfg.logdir
    evals = 6 if cfg.quick else cfg.evals
    jobs = [Job(arm, seed, budgets[arm], cfg.quick, cfg.env, cfg.world_model, evals,
                episodes, logdir, stamp) for seed in range(seeds) for arm in ARMS]
    t0 = time.perf_counter()
    oracle = oracle_return(cfg.env, episodes)
    runs: list[dict[str, Any]] = []
    if cfg.workers > 1:
        with ProcessPoolExecutor(cfg.workers, mp_context=get_context("spawn")) as pool:
            for r in pool.map(train_one, jobs):
                runs.append(r)
                print(f"{r['arm']:12s} seed {r['seed']}: final {r['final']:.3f} "
                      f"({r['wall_s']:.0f} s)", flush=True)
    else:
        for job in jobs:
            runs.append(r := train_one(job))
            print(f"{r['arm']:12s} seed {r['seed']}: final {r['final']:.3f} ({r['wall_s']:.0f} s)",
                  flush=True)
    wall = time.perf_counter() - t0
    if cfg.quick and cfg.out is None:
        shutil.rmtree(logdir, ignore_errors=True)
    summary = summarise(cfg, runs, oracle)
    out = cfg.out if cfg.out is not None else (None if cfg.quick else RESULTS)
    png = None
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        png = out.with_suffix(".png")
        plot(cfg, summary, runs, png)
    text = markdown(cfg, summary, runs, wall, png.name if png else None)
    print(text)
    if out is not None:
        out.with_suffix(".md").write_text(text)
        out.with_suffix(".json").write_text(json.dumps(
            {"config": {k: str(v) if isinstance(v, Path) else v
                        for k, v in dataclasses.asdict(cfg).items()},
             "budgets": budgets, "wall_s": wall, **summary, "runs": runs}, indent=2))
    return summary


if __name__ == "__main__":
    main(tyro.cli(Config))
