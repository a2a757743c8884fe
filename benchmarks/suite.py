"""``python -m benchmarks.suite [--quick] [--jobs N]``: the benchmark grid and its report.

The grid: every env (the four Gymnasium ids and the multi-learner PettingZoo
``social_negotiation_v0``) x agents (LEWM-Dreamer, blind-Dreamer, PPO, PPO on LEWM belief, PPO in
LEWM imagination, and the scripted oracle, greedy and random) x seeds; each trained agent is
evaluated on the fixed evaluation seeds against the training partner population and the held-out
ones. Trained cells call the one training loop (``lewm_rl.train.train``) in parallel processes;
every cell writes its own ``results.json`` and a finished cell is never run again, so the grid
resumes where it stopped. Scripted cells are evaluated with ``lewm_rl.evaluation.run_policy`` on
the same evaluation seeds.

``benchmarks/results/REPORT.md`` is generated from the per-cell JSON: interquartile means with 95 %
stratified bootstrap intervals (rliable's protocol), scores normalised so random = 0 and oracle = 1,
learning curves and performance profiles, the prediction table, the speed tables, and the paper's
claims checked. ``--quick`` (one seed, tiny budgets) builds the same report from its own results
into ``runs/benchmarks/suite-quick/`` and runs in CI as a smoke test.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tyro

from benchmarks.runner import (
    GRID_ROOT,
    SCRIPTED,
    Cell,
    cell_result,
    command_line,
    learning_curve,
    machine,
    run_grid,
    scripted_references,
    standard_overrides,
)
from lewm_rl.envs import GYM_ENV_IDS, PETTINGZOO_MODULES, V0_ENV_IDS
from lewm_rl.evaluation import interval, performance_profile, stratified_interval

RESULTS = Path(__file__).parent / "results"
POPULATIONS = ("default", "volatile", "stoic")
TRAINED: dict[str, tuple[str, str]] = {
    "lewm-dreamer": ("dreamer", "lewm"),
    "blind-dreamer": ("dreamer", "blind"),
    "ppo": ("ppo", "none"),
    "ppo-belief": ("ppo-belief", "lewm"),
    "ppo-imagination": ("ppo-imagination", "lewm"),
}
"""Trained agents: (``--agent``, ``--world-model``)."""


@dataclass(frozen=True)
class SuiteConfig:
    """The benchmark grid."""

    envs: tuple[str, ...] = (*V0_ENV_IDS, "social_negotiation_v0")
    """Environments (Gymnasium ids and PettingZoo modules)."""
    agents: tuple[str, ...] = (*TRAINED, *SCRIPTED)
    """Agents: lewm-dreamer, blind-dreamer, ppo, ppo-belief, ppo-imagination, oracle, greedy,
    random."""
    seeds: int = 5
    """Seeds per trained cell."""
    steps: int = 12_000
    """Env steps per trained cell."""
    eval_episodes: int = 64
    """Evaluation episodes (fixed seeds) per evaluation."""
    jobs: int = 2
    """Cells run in parallel (one torch thread each)."""
    root: str = GRID_ROOT
    """Where the cells' run directories go (not committed)."""
    out: str | None = None
    """Where REPORT.md and its figures go (default: benchmarks/results, or the quick root)."""
    quick: bool = False
    """One seed, tiny budgets and networks: a smoke run of the whole pipeline."""
    ray: str | None = field(default=None)
    """Run cells as Ray tasks: "local" starts a local Ray instance, anything else is the address
    of an existing cluster (needs the distributed extra: pip install 'lewm_rl[distributed]')."""

    def validate(self) -> None:
        allowed = (*GYM_ENV_IDS, *PETTINGZOO_MODULES)
        for env in self.envs:
            if env not in allowed:
                raise ValueError(f"unknown env {env!r}; allowed: {', '.join(allowed)}")
        for agent in self.agents:
            if agent not in (*TRAINED, *SCRIPTED):
                raise ValueError(f"unknown agent {agent!r}; allowed: "
                                 f"{', '.join((*TRAINED, *SCRIPTED))}")


QUICK_OVERRIDES: tuple[tuple[str, Any], ...] = ()


def _quick_overrides() -> tuple[tuple[str, Any], ...]:
    from lewm_rl.agents.dreamer import DreamerConfig
    from lewm_rl.agents.sb3.config import SB3Config
    from lewm_rl.world_models import WorldModelConfig

    return (("prefill", 192), ("batch_size", 4), ("seq_len", 16), ("train_ratio", 16.0),
            ("num_envs", 4), ("eval_every", 10_000), ("checkpoint_every", 10_000),
            ("wm", WorldModelConfig(deter=32, hidden=32, embed=32, stoch=4, classes=4)),
            ("dreamer", DreamerConfig(hidden=32, horizon=5, compute_dtype="float32")),
            ("sb3", SB3Config(n_steps=32, batch_size=64, n_epochs=2, net_arch=(32,),
                              imagination_envs=8, pretrain_updates=5, start_sequences=8)))


def trained_cells(cfg: SuiteConfig) -> list[Cell]:
    seeds = 1 if cfg.quick else cfg.seeds
    steps = 384 if cfg.quick else cfg.steps
    episodes = 4 if cfg.quick else cfg.eval_episodes
    if cfg.quick:
        overrides = (("eval_episodes", episodes), *_quick_overrides())
    else:
        overrides = standard_overrides(steps, episodes)
    cells = []
    for env in cfg.envs:
        for agent in cfg.agents:
            if agent not in TRAINED:
                continue
            kind, wm = TRAINED[agent]
            if env in PETTINGZOO_MODULES and kind != "dreamer":
                continue  # the SB3 bridges are single-agent
            for seed in range(seeds):
                cells.append(Cell(env, kind, "lewm" if wm == "none" else wm, seed, steps,
                                  overrides))
    return cells


def agent_of(cell: Cell) -> str:
    return next(a for a, (k, w) in TRAINED.items()
                if k == cell.agent and (w == cell.world_model or w == "none"))


def scripted_scores(cfg: SuiteConfig, root: Path) -> dict[str, dict[str, dict[str, float]]]:
    """Mean evaluation return of each scripted agent per env and population (cached in root)."""


    episodes = 8 if cfg.quick else cfg.eval_episodes
    out: dict[str, dict[str, dict[str, float]]] = {}
    for env in cfg.envs:
        if env not in GYM_ENV_IDS:
            continue
        path = root / f"scripted__{env}.json"
        if path.exists():
            out[env] = json.loads(path.read_text())
            continue
        res = {pop: scripted_references(env, pop, episodes) for pop in POPULATIONS}
        path.write_text(json.dumps(res, indent=2))
        out[env] = res
    return out


def collect(cfg: SuiteConfig, root: Path) -> dict[str, Any]:
    """Per env, agent and population: the run scores; plus learning curves."""
    data: dict[str, Any] = {}
    for cell in trained_cells(cfg):
        res = cell_result(root, cell)
        if res is None:
            continue
        entry = data.setdefault(cell.env, {}).setdefault(agent_of(cell),
                                                         {"scores": {}, "curves": []})
        for pop in POPULATIONS:
            key = "eval/episode_return" if pop == "default" else f"eval/{pop}/episode_return"
            if key in res:
                entry["scores"].setdefault(pop, []).append(float(res[key]))
        steps, values = learning_curve(root, cell)
        if len(steps):
            entry["curves"].append({"steps": steps.tolist(), "values": values.tolist()})
    return data


def normalise(x: float, refs: dict[str, float]) -> float:
    return (x - refs["random"]) / max(refs["oracle"] - refs["random"], 1e-9)


def main(cfg: SuiteConfig) -> int:
    cfg.validate()
    root = Path("runs/benchmarks/suite-quick" if cfg.quick and cfg.root == GRID_ROOT
                else cfg.root)
    out = Path(cfg.out) if cfg.out else (root / "report" if cfg.quick else RESULTS)
    cells = trained_cells(cfg)
    if cfg.ray:
        from benchmarks.distributed import run_grid_ray

        failed = run_grid_ray(cells, root, address=None if cfg.ray == "local" else cfg.ray)
    else:
        failed = run_grid(cells, root, cfg.jobs)
    scripted = scripted_scores(cfg, root)
    data = collect(cfg, root)
    report = build_report(cfg, data, scripted, failed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "suite.json").write_text(json.dumps({"trained": data, "scripted": scripted,
                                                 "failed": failed}, indent=2))
    plot_curves(data, scripted, out / "suite_curves.png")
    plot_profiles(data, scripted, out / "suite_profiles.png")
    (out / "REPORT.md").write_text(report)
    print(f"wrote {out / 'REPORT.md'}", file=sys.stderr)
    return 1 if failed else 0


# ----------------------------------------------------------------------------------------------
# The report


def build_report(cfg: SuiteConfig, data, scripted, failed) -> str:
    seeds = 1 if cfg.quick else cfg.seeds
    steps = 384 if cfg.quick else cfg.steps
    cmd = command_line("benchmarks.suite", cfg,
                       ("envs", "agents", "seeds", "steps", "eval_episodes"))
    lines = [
        "# LEWM-RL benchmark report",
        "",
        f"Generated by `{cmd}` from its per-cell JSON. Machine: {machine()}.",
        f"Budget: {steps:,} env steps per trained run, {seeds} seed(s) per cell; evaluation on "
        "fixed evaluation seeds (never training episodes), against the training partner "
        "population (default) and the held-out ones (volatile, stoic). Scores: evaluation "
        "return; across seeds the interquartile mean (IQM) with a 95 % bootstrap interval; "
        "normalised so random = 0 and oracle = 1 (scripted references on the same seeds).",
        "",
    ]
    if cfg.quick:
        lines += ["**Quick run: one seed and tiny budgets. A smoke test of the pipeline, not a "
                  "result.**", ""]
    if failed:
        lines += [f"Cells that failed (rerun the command to retry): {', '.join(failed)}.", ""]
    lines += ["## Aggregate", "", "Normalised scores pooled over envs with a stratified bootstrap "
              "(runs resampled within each env).", "",
              "| agent | subjective envs, IQM [95 % CI] | objective twins, IQM [95 % CI] |",
              "|---|---|---|"]
    for agent in TRAINED:
        cols = []
        for group in ("subjective", "objective"):
            per_env = {}
            for env, agents in data.items():
                if env not in scripted or agent not in agents:
                    continue
                if ("Objective" in env) != (group == "objective"):
                    continue
                refs = scripted[env]["default"]
                per_env[env] = np.array([normalise(x, refs)
                                         for x in agents[agent]["scores"].get("default", [])])
            ci = stratified_interval(per_env, "iqm") if per_env else None
            cols.append(f"{ci.point:.2f} [{ci.low:.2f}, {ci.high:.2f}]" if ci and
                        np.isfinite(ci.point) else "-")
        lines.append(f"| {agent} | {cols[0]} | {cols[1]} |")
    lines += ["", "![learning curves](suite_curves.png)", "",
              "![performance profiles](suite_profiles.png)", ""]
    for env in cfg.envs:
        lines += [f"## {env}", "", "| agent | population | return IQM [95 % CI] | normalised |",
                  "|---|---|---|---:|"]
        agents = data.get(env, {})
        for pop in POPULATIONS:
            refs = scripted.get(env, {}).get(pop)
            for agent in TRAINED:
                vals = agents.get(agent, {}).get("scores", {}).get(pop)
                if not vals:
                    continue
                ci = interval(np.array(vals), "iqm")
                norm = f"{normalise(ci.point, refs):.2f}" if refs else "-"
                lines.append(f"| {agent} | {pop} | {ci.point:.3f} [{ci.low:.3f}, {ci.high:.3f}] "
                             f"| {norm} |")
            if refs:
                for name in SCRIPTED:
                    lines.append(f"| {name} (scripted) | {pop} | {refs[name]:.3f} | "
                                 f"{normalise(refs[name], refs):.2f} |")
        if env in PETTINGZOO_MODULES:
            lines += ["", "Every seat learns (independent models); the return is the mean over "
                      "seats, each with its inequity-aversion term. No scripted references exist "
                      "for two learners, so scores are not normalised."]
        lines.append("")
    lines += included_tables()
    lines += paper_section()
    return "\n".join(lines) + "\n"


def included_tables() -> list[str]:
    """The prediction and speed results, taken from their committed files."""
    out = ["## Prediction", ""]
    pred = RESULTS / "prediction.md"
    out.append("From `python -m benchmarks.prediction` ([prediction.md](prediction.md)); its "
               "verdicts:" if pred.exists() else "The prediction benchmark has not been run.")
    out.append("")
    data = _json(RESULTS / "prediction.json")
    for v in (data or {}).get("verdicts", []):
        out.append(v if v.startswith("-") else f"- {v}")
    out += ["", "## Speed", ""]
    for name in ("env_throughput.md", "world_model_speed.md"):
        path = RESULTS / name
        if path.exists():
            out += [f"From [{name}]({name}):", "", *_tables(path.read_text()), ""]
    out += ["## SB3 sample efficiency", ""]
    path = RESULTS / "sb3.md"
    out += (["From [sb3.md](sb3.md):", "", *_tables(path.read_text()), ""] if path.exists()
            else ["The SB3 benchmark has not been run (`python -m benchmarks.sb3`).", ""])
    return out


def _tables(text: str) -> list[str]:
    """The tables of a markdown file and its ``Machine``/``Targets``/ratio lines, each block
    separated by a blank line (so the tables stay tables)."""
    keep = ("|", "Machine", "Targets", "Imagination / raw")
    out: list[str] = []
    previous = None  # the kind of the line before: "table", "text" or None (left out)
    for line in text.splitlines():
        kind = ("table" if line.startswith("|") else "text") if line.startswith(keep) else None
        if kind and out and (kind != previous or kind == "text"):
            out.append("")
        if kind:
            out.append(line)
        previous = kind
    return out


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def paper_section() -> list[str]:
    """The paper's three claims and three open checks, with our figures and verdicts."""
    pred = _json(RESULTS / "prediction.json") or {}
    claims = pred.get("paper_claims")
    lines = ["## The paper, checked", ""]
    if not claims:
        return lines + ["The prediction benchmark's results are missing: run "
                        "`python -m benchmarks.prediction`.", ""]
    lines += ["| claim | our figure | verdict |", "|---|---|---|"]
    for c in claims:
        lines.append(f"| {c['claim']} | {c['figure']} | **{c['verdict']}** |")
    lines += ["", "The checks the paper leaves open (behaviour accuracy / macro-F1 in points, "
              "default budget, 95 % CI; from the same run):", ""]
    lines += open_checks(pred.get("summary", {}))
    returns = _json(RESULTS / "returns.json")
    if returns:
        lines += ["", f"Returns (`{returns['command']}`, [returns.md](returns.md)):", ""]
        lines += [ln for ln in (RESULTS / "returns.md").read_text().splitlines()
                  if ln.startswith("- ")]
    return lines + [""]


def open_checks(summary: dict[str, Any]) -> list[str]:
    """The beta ablation, the factorisation ablation and the annotation-noise sweep as rows."""

    def pts(d: dict[str, Any]) -> str:
        return f"{100 * d['mean']:.1f} [{100 * d['low']:.1f}, {100 * d['high']:.1f}]"

    def cell(d: dict[str, Any]) -> str:
        return f"{pts(d['behaviour_accuracy'])} / {pts(d['behaviour_macro_f1'])}"

    rows = []
    for name, key in (("beta (consistency weight)", "beta"), ("annotation noise", "noise")):
        for env_id, by_value in summary.get(key, {}).items():
            for value, d in by_value.items():
                rows.append(f"| {name} = {value} | {env_id} | lewm | {cell(d)} |")
    for env_id, by_kind in summary.get("main", {}).items():
        for kind in ("lewm", "state_first", "parallel", "blind"):
            if kind in by_kind:
                rows.append(f"| factorisation | {env_id} | {kind} | {cell(by_kind[kind])} |")
    if not rows:
        return ["The prediction results hold no sweeps."]
    return ["| check | env | model | accuracy / macro-F1 |", "|---|---|---|---|", *rows]


def plot_curves(data, scripted, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    envs = list(data)
    if not envs:
        return
    fig, axes = plt.subplots(1, len(envs), figsize=(4.5 * len(envs), 3.5), dpi=80, squeeze=False)
    for ax, env in zip(axes[0], envs, strict=True):
        for agent, entry in data[env].items():
            curves = entry["curves"]
            if not curves:
                continue
            steps = sorted(set().union(*[c["steps"] for c in curves]))
            grid = np.full((len(curves), len(steps)), np.nan)
            for i, c in enumerate(curves):
                for s, v in zip(c["steps"], c["values"], strict=True):
                    grid[i, steps.index(s)] = v
            ax.plot(steps, np.nanmean(grid, 0), label=agent)
        for name, style in (("oracle", "--"), ("greedy", ":"), ("random", "-.")):
            if env in scripted:
                ax.axhline(scripted[env]["default"][name], ls=style, color="grey", lw=1)
        ax.set_title(env, fontsize=9)
        ax.set_xlabel("env steps")
        ax.legend(fontsize=6)
    axes[0][0].set_ylabel("evaluation return (mean over seeds)")
    fig.tight_layout()
    fig.savefig(path)


def plot_profiles(data, scripted, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    taus = np.linspace(-0.5, 1.5, 81)
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=80)
    for agent in TRAINED:
        scores = [normalise(x, scripted[env]["default"])
                  for env, agents in data.items() if env in scripted and agent in agents
                  for x in agents[agent]["scores"].get("default", [])]
        if scores:
            ax.plot(taus, performance_profile(np.array(scores), taus), label=agent)
    ax.set_xlabel("normalised score tau (random = 0, oracle = 1)")
    ax.set_ylabel("fraction of runs with score > tau")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    sys.exit(main(tyro.cli(SuiteConfig)))
