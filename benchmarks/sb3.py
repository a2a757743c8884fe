"""Sample efficiency of SB3 PPO on raw observations, on the LEWM belief and inside LEWM imagination.

Each arm and seed is a cell of the shared benchmark grid (:mod:`benchmarks.runner`: the training
loop the CLI runs, ``--agent ppo``, ``ppo-belief``, ``ppo-imagination``; a cell that another
benchmark, such as the suite, already ran at the same budget is reused, an interrupted one
resumes). The learning curve is ``eval/episode_return`` (the deterministic policy on the fixed
evaluation seeds ``EVAL_SEED + i``, at one interval for all arms: the grid's standard
interval, ``max(budget // 8, 500)``, of the smallest budget) read back from the run's
TensorBoard events. The oracle's return is measured on the same seeds
(:func:`benchmarks.runner.scripted_references`).

*Steps to threshold*: the real env steps (prefill included) of the first evaluation whose return
reaches ``threshold x`` the oracle's. A seed that never reaches it within its budget is censored:
it counts as its budget (so the figure is a lower bound) and the table says how many were. The
table gives the mean over seeds with a 95 % percentile-bootstrap interval
(``lewm_rl.evaluation.interval``) and the IQM. The issue's target: imagination needs at most 1/5 of
raw PPO's env steps.

Usage::

    python -m benchmarks.sb3                 # 5 seeds; writes benchmarks/results/sb3.{md,json,png}
    python -m benchmarks.sb3 --jobs 4        # cells in 4 processes
    python -m benchmarks.sb3 --raw-steps 6000 --belief-steps 6000 --imagination-steps 6000 \
        --seeds 3                            # the suite's cells of SocialNegotiation-v0
    python -m benchmarks.sb3 --quick         # smoke run (< 3 min): prints, writes only with --out
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import tyro

from benchmarks.runner import (
    GRID_ROOT,
    Cell,
    cell_result,
    command_line,
    learning_curve,
    machine,
    run_grid,
    scripted_references,
    standard_overrides,
)
from lewm_rl.evaluation import interval

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
    arms: tuple[str, ...] = tuple(ARMS)
    """Arms to run and report (raw, belief, imagination)."""
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
    eval_episodes: int = 64
    """Evaluation episodes (seeds EVAL_SEED + i), for the agents and the oracle."""
    world_model: str = "lewm"
    """World model of the belief and imagination arms (lewm or blind)."""
    jobs: int = 2
    """Cells trained in parallel processes (each with one torch thread)."""
    root: str = GRID_ROOT
    """The grid's run directories (TensorBoard: tensorboard --logdir runs)."""
    quick: bool = False
    """Smoke run: 2 seeds, tiny budgets and models, evaluations of 16 episodes; prints only."""
    out: Path | None = None
    """Output stem (.md, .json, .png); default benchmarks/results/sb3, nowhere with --quick."""

    def __post_init__(self) -> None:
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown:
            raise ValueError(f"unknown arms {unknown}; allowed: {', '.join(ARMS)}")

    def budgets(self) -> dict[str, int]:
        if self.quick:
            return {"raw": 2_000, "belief": 1_000, "imagination": 600}
        return {"raw": self.raw_steps, "belief": self.belief_steps,
                "imagination": self.imagination_steps}


def cells(cfg: Config) -> list[Cell]:
    """The grid cells: arm x seed, each at its arm's budget."""
    seeds = 2 if cfg.quick else cfg.seeds
    episodes = 16 if cfg.quick else cfg.eval_episodes
    out = []
    budgets = cfg.budgets()
    # one evaluation interval for every arm (the grid's standard one at the smallest budget), so
    # steps to threshold are read off the same grid of steps; equal budgets give the suite's cells
    every = dict(standard_overrides(min(budgets.values()), episodes))["eval_every"]
    for arm, agent in ARMS.items():
        if arm not in cfg.arms:
            continue
        steps = budgets[arm]
        overrides = tuple((k, every if k == "eval_every" else v)
                          for k, v in standard_overrides(steps, episodes))
        if cfg.quick:
            from lewm_rl.agents.sb3.config import SB3Config
            from lewm_rl.world_models import WorldModelConfig

            overrides += (("prefill", 256), ("batch_size", 8), ("seq_len", 16),
                          ("train_ratio", 32.0), ("wm", WorldModelConfig(deter=32, hidden=32,
                                                                         embed=32)),
                          ("sb3", SB3Config(n_steps=64, batch_size=128, n_epochs=4,
                                            imagination_envs=32, horizon=8,
                                            pretrain_updates=50, start_sequences=16,
                                            burn_in=4)))
        out += [Cell(cfg.env, agent, cfg.world_model, seed, steps, overrides)
                for seed in range(seeds)]
    return out


def collect(cfg: Config, root: Path) -> list[dict[str, Any]]:
    """The finished cells' learning curves and final returns."""
    arm_of = {agent: arm for arm, agent in ARMS.items()}
    runs = []
    for cell in cells(cfg):
        result = cell_result(root, cell)
        if result is None:
            continue
        steps, values = learning_curve(root, cell)
        runs.append({"arm": arm_of[cell.agent], "seed": cell.seed, "steps": cell.steps,
                     "run_dir": str(root / cell.name),
                     "curve": [(int(s), float(v)) for s, v in zip(steps, values, strict=True)],
                     "final": float(result["eval/episode_return"])})
    return runs


def steps_to(curve: list[tuple[int, float]], target: float) -> int | None:
    """Real env steps of the first evaluation reaching ``target``, or ``None``."""
    return next((s for s, v in curve if v >= target), None)


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


def markdown(cfg: Config, summary: dict[str, Any], wall: float, png: str | None) -> str:
    arms = summary["arms"]
    cmd = command_line("benchmarks.sb3", cfg, ("env", "seeds", "threshold", "raw_steps",
                                              "belief_steps", "imagination_steps", "world_model",
                                              "eval_episodes", "arms", "out"))
    lines = [
        "# SB3 PPO: env steps to 80% of the oracle's return",
        "",
        f"Produced by `{cmd}` on {datetime.now(timezone.utc):%Y-%m-%d} ({machine()}; "
        f"{cfg.jobs} job(s) of one torch thread); {wall / 60:.1f} min for this invocation "
        "(cells already in the grid are not rerun).",
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
        "[95% CI] | final return [95% CI] |",
        "|-|-|-|-|-|-|-|-|",
    ]
    for arm, a in arms.items():
        lines.append(
            f"| {arm} | `{a['agent']}` | {a['budget']:,} | {len(a['seeds'])} | {a['censored']} | "
            f"{_fmt(a['steps_mean'])} | {_fmt(a['steps_iqm'])} | {_fmt(a['final_return'], 3)} |")
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
    episodes = 16 if cfg.quick else cfg.eval_episodes
    root = Path(tempfile.mkdtemp(prefix="sb3-bench-") if cfg.quick else cfg.root)
    t0 = time.perf_counter()
    failed = run_grid(cells(cfg), root, cfg.jobs)
    if failed:
        print(f"{len(failed)} cells failed; rerun the command to retry them")
    oracle = scripted_references(cfg.env, "default", episodes)["oracle"]
    runs = collect(cfg, root)
    wall = time.perf_counter() - t0
    if cfg.quick and cfg.out is None:
        shutil.rmtree(root, ignore_errors=True)
    summary = summarise(cfg, runs, oracle)
    out = cfg.out if cfg.out is not None else (None if cfg.quick else RESULTS)
    png = None
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        png = out.with_suffix(".png")
        plot(cfg, summary, runs, png)
    text = markdown(cfg, summary, wall, png.name if png else None)
    print(text)
    if out is not None:
        out.with_suffix(".md").write_text(text)
        out.with_suffix(".json").write_text(json.dumps(
            {"config": {k: str(v) if isinstance(v, Path) else v
                        for k, v in dataclasses.asdict(cfg).items()},
             "budgets": cfg.budgets(), "wall_s": wall, "machine": machine(), **summary,
             "runs": runs}, indent=2))
    return summary


if __name__ == "__main__":
    main(tyro.cli(Config))
