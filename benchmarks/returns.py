"""``python -m benchmarks.returns``: model-based against model-free learners, returns over seeds.

The grid: envs x arms x seeds, each cell a run of the one training loop (``lewm_rl.train``) at
its arm's budget of env steps. Arms: ``lewm-dreamer`` and ``blind-dreamer`` (the Dreamer agent on
each world model), ``ppo`` (SB3 PPO on raw observations) and ``recurrent-ppo`` (sb3-contrib's
RecurrentPPO, the memory-based model-free baseline), and each ``-filtered`` twin, trained and
evaluated with the partners' cues neutralised (``--filter-cues``). Scores are evaluation returns
on the fixed evaluation seeds (``EVAL_SEED + i``, never training episodes), against the training
partner population and the held-out ones. Reported as the interquartile mean over seeds with a
95 % bootstrap interval beside the scripted references (random, greedy, oracle) on the same
seeds; learning curves against env steps and against wall time on this machine, the references
drawn as lines; the value of emotional information in returns, ``(R - R_filtered) / (R -
R_random)``, per arm with a filtered twin; and the **env steps to reach the scripted greedy's
return** (the first evaluation at or above it; a run that never reaches it is censored at its
budget), its median over seeds with a bootstrap interval, and the ratio Dreamer / PPO. Writes
``benchmarks/results/returns.{md,json,png}``; ``--report-only`` writes them from the cells that
have finished, without training (the report says how many runs each row holds).

Targets (sample-efficiency issue): LEWM-Dreamer reaches the greedy's return in at most one tenth
of PPO's env steps, and at 50k env steps matches PPO's return at 300k. LEWM against blind is
reported as measured, whichever way it goes.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
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
)
from lewm_rl.evaluation import interval

RESULTS = Path(__file__).parent / "results"

ARMS: dict[str, tuple[str, str, bool]] = {
    "lewm-dreamer": ("dreamer", "lewm", False),
    "blind-dreamer": ("dreamer", "blind", False),
    "ppo": ("ppo", "none", False),
    "recurrent-ppo": ("recurrent-ppo", "none", False),
    "lewm-dreamer-filtered": ("dreamer", "lewm", True),
    "blind-dreamer-filtered": ("dreamer", "blind", True),
    "ppo-filtered": ("ppo", "none", True),
}
"""Arm: ``(--agent, --world-model, --filter-cues)``. A ``-filtered`` arm is its arm trained and
evaluated with the partners' cues neutralised (``FilterEmotionCues``): the value of emotional
information in returns, ``(R - R_filtered) / (R - R_random)``, the paper's filtering claim in RL."""


@dataclass(frozen=True)
class ReturnsConfig:
    """The returns benchmark."""

    envs: tuple[str, ...] = ("SocialNegotiation-v1", "ObjectiveNegotiation-v1",
                             "SocialNegotiation-v0", "ObjectiveNegotiation-v0", "PublicGoods-v0")
    """Gymnasium ids."""
    arms: tuple[str, ...] = tuple(ARMS)
    """Arms (see ARMS)."""
    seeds: int = 5
    """Seeds per cell (at least 5 for any claim)."""
    steps: int = 12_000
    """Env steps per Dreamer run (the default training budget)."""
    model_free_steps: int = 300_000
    """Env steps per PPO and RecurrentPPO run (PPO's curve has flattened by then)."""
    evaluations: int = 24
    """Evaluations per run, evenly spaced (the resolution of the steps-to-greedy figure)."""
    eval_episodes: int = 64
    """Evaluation episodes per evaluation (fixed seeds)."""
    jobs: int = 2
    """Cells trained in parallel (one torch thread each)."""
    root: str = GRID_ROOT
    """Where the runs go (not committed; a finished cell is not run again)."""
    quick: bool = False
    """Smoke run: 1 seed, 2k steps for every arm, results written to returns_quick.*"""
    out: str = "returns"
    """Name of the result files, ``benchmarks/results/{out}.{md,json,png}`` (``_quick`` is added
    with --quick); the suite's report reads ``returns``."""
    report_only: bool = False
    """Train nothing: write the report from the cells that have finished (each row names how
    many runs it holds), e.g. while the grid is still running or after it was stopped."""

    def __post_init__(self) -> None:
        bad = [a for a in self.arms if a not in ARMS]
        if bad:
            raise ValueError(f"unknown arm(s) {', '.join(bad)}; allowed: {', '.join(ARMS)}")


def budget(cfg: ReturnsConfig, arm: str) -> int:
    if cfg.quick:
        return 2_000
    return cfg.steps if ARMS[arm][0] == "dreamer" else cfg.model_free_steps


def cell(cfg: ReturnsConfig, env: str, arm: str, seed: int) -> Cell:
    steps = budget(cfg, arm)
    agent, wm, filtered = ARMS[arm]
    overrides: tuple[tuple[str, Any], ...] = (
        ("eval_episodes", cfg.eval_episodes),
        ("eval_every", max(steps // cfg.evaluations, 500)),
        ("checkpoint_every", max(steps // 4, 500)))
    if cfg.quick:
        overrides += (("prefill", 500),)
    if filtered:  # appended, so the unfiltered cells keep their names
        overrides += (("filter_cues", True),)
    return Cell(env, agent, "lewm" if wm == "none" else wm, seed, steps, overrides)


def steps_to_reach(steps: np.ndarray, values: np.ndarray, target: float) -> float | None:
    """The first evaluation step whose value is at least ``target``; ``None`` if none is."""
    hit = np.flatnonzero(np.asarray(values) >= target)
    return float(np.asarray(steps)[hit[0]]) if len(hit) else None


def censored_median(reached: list[float | None], budget_: int, seed: int = 0,
                    n_resamples: int = 2000) -> dict[str, Any]:
    """Median over runs of the steps to a target, runs that never reached it counted at
    ``budget_`` (so the figure is a lower bound where they weigh in), with a percentile
    bootstrap interval over runs."""
    x = np.array([budget_ if r is None else r for r in reached], dtype=float)
    rng = np.random.default_rng(seed)
    boot = np.median(x[rng.integers(0, len(x), (n_resamples, len(x)))], axis=1)
    low, high = np.quantile(boot, [0.025, 0.975])
    return {"median": float(np.median(x)), "low": float(low), "high": float(high),
            "reached": int(sum(r is not None for r in reached)), "runs": len(x),
            "censored": bool(np.median(x) >= budget_ and any(r is None for r in reached))}


def ratio_interval(a: list[float], b: list[float], seed: int = 0, n_resamples: int = 2000
                   ) -> dict[str, float]:
    """Ratio of the medians of ``a`` and ``b`` with a bootstrap interval (each resampled on its
    own)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    rng = np.random.default_rng(seed)
    ra = np.median(a[rng.integers(0, len(a), (n_resamples, len(a)))], axis=1)
    rb = np.median(b[rng.integers(0, len(b), (n_resamples, len(b)))], axis=1)
    low, high = np.quantile(ra / rb, [0.025, 0.975])
    return {"ratio": float(np.median(a) / np.median(b)), "low": float(low), "high": float(high)}


def wall_curve(root: Path, c: Cell) -> tuple[np.ndarray, np.ndarray]:
    """``(seconds since the run started, values)`` of the evaluation return."""
    from lewm_rl.tensorboard import read_scalars

    run = root / c.name
    _, values, wall = read_scalars(run, "eval/episode_return")
    if not len(values):
        return wall, values
    return wall - (run / "config.json").stat().st_mtime, values


def main(cfg: ReturnsConfig) -> dict:
    seeds = 1 if cfg.quick else cfg.seeds
    cells = [cell(cfg, env, arm, s) for env in cfg.envs for arm in cfg.arms for s in range(seeds)]
    root = Path(cfg.root + "-quick" if cfg.quick else cfg.root)
    if not cfg.report_only:
        failed = run_grid(cells, root, cfg.jobs)
        if failed:
            print(f"{len(failed)} cells failed; rerun the command to retry them", file=sys.stderr)
    report = {"command": command_line("benchmarks.returns", cfg,
                                      ("envs", "arms", "seeds", "steps", "model_free_steps",
                                       "evaluations", "eval_episodes", "out")),
              "finished": sum(cell_result(root, c) is not None for c in cells),
              "cells": len(cells),
              "machine": machine(), "seeds": seeds, "envs": {},
              "budgets": {arm: budget(cfg, arm) for arm in cfg.arms}}
    populations = ("default", "volatile", "stoic")
    for env in cfg.envs:
        refs = {pop: scripted_references(env, pop, cfg.eval_episodes) for pop in populations}
        rows = {}
        for arm in cfg.arms:
            per_pop, curves, reached = {}, [], []
            arm_cells = [cell(cfg, env, arm, s) for s in range(seeds)]
            for pop in populations:
                key = "eval/episode_return" if pop == "default" else f"eval/{pop}/episode_return"
                vals = [r[key] for c in arm_cells if (r := cell_result(root, c)) and key in r]
                if vals:
                    ci = interval(np.array(vals), "iqm")
                    per_pop[pop] = {"iqm": ci.point, "low": ci.low, "high": ci.high,
                                    "values": vals}
            for c in arm_cells:
                if cell_result(root, c) is None:
                    continue
                st, v = learning_curve(root, c)
                wt, _ = wall_curve(root, c)
                curves.append({"steps": st.tolist(), "values": v.tolist(),
                               "seconds": wt.tolist()[-len(v):] if len(wt) else []})
                reached.append(steps_to_reach(st, v, refs["default"]["greedy"]))
            row: dict[str, Any] = {"populations": per_pop, "curves": curves,
                                   "runs": len(curves)}
            if reached:
                row["steps_to_greedy"] = censored_median(reached, budget(cfg, arm))
                row["steps_to_greedy_runs"] = reached
            rows[arm] = row
        report["envs"][env] = {"references": refs, "models": rows,
                               "emotion_value": value_of_cues(rows, refs["default"]["random"])}
    name = cfg.out + ("_quick" if cfg.quick else "")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2))
    plot(report, RESULTS / f"{name}.png")
    md = render(report, f"{name}.png")
    (RESULTS / f"{name}.md").write_text(md)
    print(md)
    return report


def value_of_cues(rows: dict[str, dict], random: float) -> dict[str, dict[str, float]]:
    """Per arm that has a ``-filtered`` twin with runs on both sides: the value of emotional
    information in returns, ``(R - R_filtered) / (R - R_random)`` on the default partners (the
    emotion-value instrument's statistic and bootstrap), with the runs it rests on."""
    from benchmarks.emotion_value import emotion_value

    out = {}
    for arm in rows:
        twin = rows.get(f"{arm}-filtered", {}).get("populations", {}).get("default")
        own = rows[arm].get("populations", {}).get("default")
        if own and twin:
            v, low, high = emotion_value(np.array(own["values"]), np.array(twin["values"]),
                                         random)
            out[arm] = {"value": v, "low": low, "high": high, "runs": len(own["values"]),
                        "runs_filtered": len(twin["values"])}
    return out


CURVE_STEPS = (12_000, 25_000, 50_000, 100_000, 200_000, 300_000)
"""Env steps of the equal-interactions table (the Dreamer budget, then PPO's curve)."""


def value_at(curves: list[dict[str, list[float]]], step: int) -> float | None:
    """Mean over runs of the last evaluation at or before ``step``, from runs that were evaluated
    within 5 % of it (so a run's final value is not carried past its budget); ``None`` if no run
    was."""
    vals = []
    for c in curves:
        st, v = np.asarray(c["steps"], float), np.asarray(c["values"], float)
        ok = np.flatnonzero(st <= step)
        if len(ok) and st[ok[-1]] >= 0.95 * step:
            vals.append(v[ok[-1]])
    return float(np.mean(vals)) if vals else None


def normalised(x: float, refs: dict[str, float]) -> float:
    """Score with random = 0 and oracle = 1."""
    return (x - refs["random"]) / max(refs["oracle"] - refs["random"], 1e-9)


def _steps(x: dict[str, Any]) -> str:
    lower = ">= " if x["censored"] else ""
    return (f"{lower}{x['median']:,.0f} [{x['low']:,.0f}, {x['high']:,.0f}] "
            f"({x['reached']}/{x['runs']} reached)")


def render(report: dict, png: str) -> str:
    budgets = ", ".join(f"{arm} {n:,}" for arm, n in report["budgets"].items())
    lines = ["# Returns: model-based against model-free learners", "",
             f"Command: `{report['command']}`. Machine: {report['machine']}.",
             f"Budgets (env steps per run): {budgets}; {report['seeds']} seeds per cell asked, "
             f"{report.get('finished', '?')} of {report.get('cells', '?')} runs finished (each "
             "row names the runs it holds). "
             "Scores: mean evaluation return over fixed evaluation seeds after training; across "
             "seeds the interquartile mean (IQM) with a 95 % bootstrap confidence interval. "
             "Normalised: random = 0, oracle = 1 (the scripted references on the same seeds). "
             "Steps to greedy: the first evaluation at or above the scripted greedy's return; the "
             "median over seeds with a 95 % bootstrap interval, runs that never reach it counted "
             "at their budget (then the median is a lower bound, marked >=).",
             "", f"![learning curves]({png})", ""]
    for env, data in report["envs"].items():
        refs = data["references"]
        lines += [f"## {env}", "",
                  "| agent | population | runs | return IQM [95 % CI] | normalised |",
                  "|---|---|---:|---|---:|"]
        for pop in ("default", "volatile", "stoic"):
            for arm, row in data["models"].items():
                p = row["populations"].get(pop)
                if p:
                    lines.append(f"| {arm} | {pop} | {len(p['values'])} | {p['iqm']:.3f} "
                                 f"[{p['low']:.3f}, {p['high']:.3f}] | "
                                 f"{normalised(p['iqm'], refs[pop]):.2f} |")
            for name in ("oracle", "greedy", "random"):
                lines.append(f"| {name} (scripted) | {pop} | | {refs[pop][name]:.3f} | "
                             f"{normalised(refs[pop][name], refs[pop]):.2f} |")
        reach = {a: r["steps_to_greedy"] for a, r in data["models"].items()
                 if "steps_to_greedy" in r}
        if reach:
            greedy = refs["default"]["greedy"]
            lines += ["", f"Env steps to the scripted greedy's return ({greedy:.3f}, default "
                      "partners):", "", "| agent | median [95 % CI] |", "|---|---|"]
            lines += [f"| {a} | {_steps(x)} |" for a, x in reach.items()]
        at = {a: [value_at(r["curves"], n) for n in CURVE_STEPS] for a, r in
              data["models"].items() if r["curves"]}
        if at:
            lines += ["", "Return at equal env steps (default partners, mean over runs of the "
                      "evaluation at that step; blank where a run's budget or first evaluation "
                      "does not reach it):", "",
                      "| agent | " + " | ".join(f"{n:,}" for n in CURVE_STEPS) + " |",
                      "|---|" + "---:|" * len(CURVE_STEPS)]
            lines += [f"| {a} | " + " | ".join("" if x is None else f"{x:.3f}" for x in xs)
                      + " |" for a, xs in at.items()]
        if data.get("emotion_value"):
            lines += ["", "Value of emotional information in returns, (R - R_filtered) / (R - "
                      "R_random), default partners (95 % bootstrap over runs):", "",
                      "| agent | value [95 % CI] | runs (cues + filtered) |", "|---|---|---|"]
            lines += [f"| {a} | {100 * x['value']:+.1f} % [{100 * x['low']:+.1f}, "
                      f"{100 * x['high']:+.1f}] | {x['runs']} + {x['runs_filtered']} |"
                      for a, x in data["emotion_value"].items()]
        lines.append("")
    return "\n".join(lines + verdicts(report)) + "\n"


def verdicts(report: dict) -> list[str]:
    """The targets, one bullet each (the suite's report quotes them)."""
    out = ["## Targets", ""]
    for env, data in report["envs"].items():
        models = data["models"]
        for dreamer in ("lewm-dreamer", "blind-dreamer"):
            runs_d = models.get(dreamer, {}).get("steps_to_greedy_runs")
            runs_p = models.get("ppo", {}).get("steps_to_greedy_runs")
            if not (runs_d and runs_p):
                continue
            bd, bp = report["budgets"][dreamer], report["budgets"]["ppo"]
            r = ratio_interval([bd if x is None else x for x in runs_d],
                               [bp if x is None else x for x in runs_p])
            # a median run that never reached it is only a lower bound: never "met"
            censored = models[dreamer]["steps_to_greedy"]["censored"]
            met = r["high"] <= 0.1 and not censored
            why = (f"; {dreamer}'s median run never reached it within its "
                   f"{bd:,} steps, so the ratio is only a lower bound" if censored else "")
            out.append(f"- {env}: {dreamer} reaches the scripted greedy in at most a tenth of "
                       f"PPO's env steps: **{'met' if met else 'missed'}** (ratio of medians "
                       f"{r['ratio']:.3f} [{r['low']:.3f}, {r['high']:.3f}]; runs that never "
                       f"reach it count at their budget{why}).")
        lewm = models.get("lewm-dreamer", {}).get("populations", {}).get("default")
        blind = models.get("blind-dreamer", {}).get("populations", {}).get("default")
        if lewm and blind:
            apart = lewm["low"] > blind["high"] or blind["low"] > lewm["high"]
            lead = "LEWM" if lewm["iqm"] >= blind["iqm"] else "blind"
            runs = min(len(lewm["values"]), len(blind["values"]))
            spread = (f"intervals {'apart' if apart else 'overlapping'}" if runs >= 2 else
                      "one run on a side: no interval, no verdict")
            out.append(f"- {env}: LEWM {lewm['iqm']:.3f} [{lewm['low']:.3f}, {lewm['high']:.3f}]"
                       f" against blind {blind['iqm']:.3f} [{blind['low']:.3f}, "
                       f"{blind['high']:.3f}]: {lead} ahead, {spread}.")
    return out + [""]


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    envs = list(report["envs"])
    fig, axes = plt.subplots(2, len(envs), figsize=(5 * len(envs), 7), dpi=90, squeeze=False)
    for col, env in enumerate(envs):
        data = report["envs"][env]
        for row_i, axis in enumerate(("steps", "seconds")):
            ax = axes[row_i][col]
            for i, (arm, row) in enumerate(data["models"].items()):
                for j, c in enumerate(row["curves"]):
                    if len(c[axis]) == len(c["values"]) and c["values"]:
                        ax.plot(c[axis], c["values"], color=f"C{i}", alpha=0.6, lw=1,
                                label=arm if j == 0 else None)
            for name, style in (("oracle", "--"), ("greedy", ":"), ("random", "-.")):
                ax.axhline(data["references"]["default"][name], ls=style, color="grey", lw=1,
                           label=f"{name} (scripted)")
            ax.set_xscale("log")
            ax.set_title(env, fontsize=9)
            ax.set_xlabel("env steps" if axis == "steps" else "wall-clock seconds (this machine)")
            ax.set_ylabel("evaluation return")
        axes[0][col].legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    main(tyro.cli(ReturnsConfig))
