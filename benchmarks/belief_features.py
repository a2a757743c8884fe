"""``python -m benchmarks.belief_features``: does the world model's belief hold what a policy needs?

With a perfect model (``--imagination simulator``, ``benchmarks.dreamer_diagnosis``) the Dreamer
actor-critic, reading LEWM's belief, stops near 1.7 on ``SocialNegotiation-v1`` while PPO on raw
observations passes the scripted greedy by 175k env steps. Either the belief lacks what the policy
needs, or the actor-critic learns it too slowly. This benchmark trains the same SB3 PPO on the
belief instead of the raw observation (``--agent ppo-belief``: LEWM's posterior features, the
world model refitted on the run's own episodes at ``--train-ratio``, a ratio 200k env steps
afford) and sets its learning curve beside raw PPO's from the committed ``returns_v1`` grid (same
PPO settings, same evaluation seeds and cadence). And it asks the belief directly: a ridge
regression from the belief of trained LEWM-Dreamer runs (``--probe-runs`` of the diagnosis) to
each field of the observation it has just read (``task``: values, counts, offers, round, ...),
fitted on half of the episodes and scored (R^2) on the other half; a field the belief does not
hold linearly is one that a policy reading it must reconstruct or do without.

Cells are shared with the other benchmarks' grid (``benchmarks.runner``), resumable. Writes
``benchmarks/results/dreamer_diagnosis/belief_features/{report.md,results.json,curves.png}``.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro

from benchmarks.runner import GRID_ROOT, Cell, command_line, learning_curve, machine, run_grid

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class BeliefConfig:
    """PPO on the belief against PPO on raw observations."""

    env: str = "SocialNegotiation-v1"
    seeds: tuple[int, ...] = (0, 1)
    """Training seeds."""
    steps: int = 200_000
    """Env steps per run."""
    train_ratio: float = 4.0
    """Replayed steps per env step of the world model's refit: 200k env steps make 1,562 updates
    of 16 x 32 steps, about a 12k Dreamer run's 2,750 (the default 128 would make 50,000)."""
    eval_every: int = 25_000
    """Env steps between evaluations (raw PPO's cadence in returns_v1)."""
    eval_episodes: int = 64
    """Evaluation episodes (raw PPO's in returns_v1)."""
    raw: str = str(RESULTS / "returns_v1.json")
    """The returns grid whose ppo curves are the raw-observation reference."""
    jobs: int = 2
    """Cells in parallel."""
    root: str = GRID_ROOT
    """Where the runs go (not committed)."""
    out: str = str(RESULTS / "dreamer_diagnosis" / "belief_features")
    """Folder of the report."""
    probe_runs: tuple[str, ...] = ("earlier@12000", "earlier+simulator@12000")
    """``recipe@env steps``: the diagnosis' runs (``benchmarks.dreamer_diagnosis``, trained if
    missing) whose beliefs are probed."""
    probe_episodes: int = 800
    """Evaluation episodes the probe reads (the actor sampling, as it trains)."""
    world_model: str = "earlier"
    """The diagnosis recipe (``benchmarks.dreamer_diagnosis``) whose world-model fields the
    belief's LEWM takes (its agent fields do not apply to PPO)."""


def cells(cfg: BeliefConfig) -> list[Cell]:
    from benchmarks.dreamer_diagnosis import RECIPES
    from lewm_rl.world_models import WorldModelConfig

    if cfg.world_model not in RECIPES:
        raise SystemExit(f"unknown recipe {cfg.world_model!r} for --world-model; allowed: "
                         f"{', '.join(RECIPES)}")
    overrides = (("eval_episodes", cfg.eval_episodes), ("eval_every", cfg.eval_every),
                 ("checkpoint_every", max(cfg.steps // 4, 500)),
                 ("train_ratio", cfg.train_ratio))
    overrides += (("wm", WorldModelConfig(**RECIPES[cfg.world_model][1])),)
    return [Cell(cfg.env, "ppo-belief", "lewm", s, cfg.steps, overrides) for s in cfg.seeds]


def side_by_side(belief: list[tuple[np.ndarray, np.ndarray]],
                 raw: list[tuple[list[int], list[float]]]) -> list[dict[str, float]]:
    """Per evaluation step both arms share: each arm's mean over its seeds (and the belief's
    seeds one by one). Steps where either arm has no evaluation are left out."""
    def at(curves, step):
        return [float(v[list(s).index(step)]) for s, v in curves if step in list(s)]

    steps = sorted(set.intersection(*(set(map(int, s)) for s, _ in belief + raw)))
    rows = []
    for step in steps:
        b, r = at(belief, step), at(raw, step)
        rows.append({"steps": step, "belief": float(np.mean(b)), "raw": float(np.mean(r)),
                     **{f"belief_s{i}": v for i, v in enumerate(b)}})
    return rows


def explained(guess: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``1 - SSE / SST`` per column of ``target (n, d)``; NaN for a column that is constant."""
    err = ((guess - target) ** 2).sum(0)
    total = ((target - target.mean(0)) ** 2).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(target.std(0) > 1e-4, 1 - err / total, np.nan)


def r_squared(x: np.ndarray, y: np.ndarray, train: np.ndarray, ridge: float = 1e-2
              ) -> np.ndarray:
    """R^2 (:func:`explained`) on the rows not in ``train`` of a ridge regression of ``y (n, d)``
    on ``x (n, f)`` (standardised, with intercept) fitted on the ``train`` rows."""
    mu, sd = x[train].mean(0), x[train].std(0) + 1e-6
    z = np.c_[(x - mu) / sd, np.ones(len(x))]
    a = z[train]
    w = np.linalg.solve(a.T @ a + ridge * len(a) * np.eye(a.shape[1]), a.T @ y[train])
    return explained(z[~train] @ w, y[~train])


def probe(run_dir: Path, episodes: int) -> dict[str, dict[str, float]]:
    """R^2 of each ``task`` field of the observation from the belief that has just read it, on a
    run's final world model, the actor sampling in ``episodes`` evaluation episodes
    (``play_episodes(..., record="task")``): ``linear``, a ridge regression fitted on the even
    episodes and scored on the odd ones; ``decoded``, the world model's own decoder (in the
    symlog space it is trained in) scored on the odd ones. A field the decoder recovers and the
    ridge does not is held, nonlinearly."""
    import torch

    from lewm_rl.distributions import symlog
    from lewm_rl.envs.negotiation_core import TASK_FIELDS
    from lewm_rl.runs import load_run
    from lewm_rl.train import play_episodes

    torch.set_num_threads(1)
    run = load_run(run_dir)
    played = play_episodes(run.learners, run.config.env,
                           {"population": run.config.population,
                            "annotation_noise": run.config.annotation_noise}, episodes,
                           filter_cues=run.config.filter_cues, policy="sample", record="task")
    task, train = played["step_observed"], played["step_episode"] % 2 == 0
    linear = r_squared(played["step_features"], task, train)
    own = explained(played["step_decoded"][~train],
                    symlog(torch.as_tensor(task[~train])).numpy())
    return {f: {"linear": float(a), "decoded": float(b)}
            for f, a, b in zip(TASK_FIELDS, linear, own, strict=True)}


def probe_table(probes: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    """Fields x runs, each cell ``linear / decoded`` R^2 (``-`` where the field is constant)."""
    names = list(probes)
    fields = list(next(iter(probes.values())))
    lines = ["| field | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]

    def fmt(v: float) -> str:
        return "-" if np.isnan(v) else f"{v:.2f}"

    for f in fields:
        cells_ = [f"{fmt(probes[n][f]['linear'])} / {fmt(probes[n][f]['decoded'])}"
                  for n in names]
        lines.append(f"| {f} | " + " | ".join(cells_) + " |")
    return lines


def markdown(cfg: BeliefConfig, rows: list[dict[str, float]], greedy: float, raw_seeds: int,
             command: str, probes: dict[str, dict[str, dict[str, float]]] | None = None
             ) -> str:
    seeds = len(cfg.seeds)
    head = ["steps", *[f"belief, seed {s}" for s in cfg.seeds], f"belief, mean of {seeds}",
            f"raw, mean of {raw_seeds}"]
    lines = [
        "# PPO on LEWM's belief against PPO on raw observations", "",
        f"Command: `{command}`. Machine: {machine()}. Generated "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", "",
        f"SB3 PPO (the project's settings) on {cfg.env}: on LEWM's belief (`--agent ppo-belief "
        f"--train-ratio {cfg.train_ratio:g}`, the world model of the `{cfg.world_model}` recipe, "
        f"{seeds} seeds) and on raw observations (the `ppo` "
        f"curves of `{Path(cfg.raw).name}`, {raw_seeds} seeds). Evaluation return on "
        f"{cfg.eval_episodes} fixed evaluation episodes at each step; the scripted greedy earns "
        f"{greedy:.3f} on them.", "",
        "| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for r in rows:
        cells_ = [f"{r['steps']:,}", *[f"{r[f'belief_s{i}']:.3f}" for i in range(seeds)],
                  f"{r['belief']:.3f}", f"{r['raw']:.3f}"]
        lines.append("| " + " | ".join(cells_) + " |")
    last = rows[-1]
    lines += ["", f"Reading: at {last['steps']:,} env steps PPO earns {last['belief']:.3f} on the "
              f"belief and {last['raw']:.3f} on raw observations (greedy {greedy:.3f}).", "",
              "![curves](curves.png)"]
    if probes:
        lines += ["", "What the belief holds: R^2 on held-out episodes of a ridge regression from "
                  "the belief of each trained LEWM-Dreamer run (its final world model, the actor "
                  f"sampling in {cfg.probe_episodes} evaluation episodes, split by parity) to "
                  "each field of the `task` observation it has just read, and of the "
                  "world model's own decoder (in symlog space): linear / decoded (- : constant "
                  "there).", "", *probe_table(probes)]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, float]], greedy: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps = [r["steps"] for r in rows]
    ax.plot(steps, [r["belief"] for r in rows], marker="o", label="PPO on LEWM's belief")
    ax.plot(steps, [r["raw"] for r in rows], marker="o", label="PPO on raw observations")
    ax.axhline(greedy, color="grey", linestyle="--", label="scripted greedy")
    ax.set_xlabel("env steps")
    ax.set_ylabel("evaluation return")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    cfg = tyro.cli(BeliefConfig, args=argv)
    root = Path(cfg.root)
    failed = run_grid(cells(cfg), root, cfg.jobs)
    if failed:
        print(f"{len(failed)} cells failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    grid = json.loads(Path(cfg.raw).read_text())["envs"][cfg.env]
    raw = [(c["steps"], c["values"]) for c in grid["models"]["ppo"]["curves"]]
    greedy = grid["references"]["default"]["greedy"]
    rows = side_by_side([learning_curve(root, c) for c in cells(cfg)], raw)
    from benchmarks import dreamer_diagnosis as D

    probed = []
    for run in cfg.probe_runs:
        recipe, _, steps = run.partition("@")
        if not steps.isdigit():
            raise SystemExit(f"--probe-runs takes recipe@steps (e.g. earlier@12000), got {run!r}")
        probed += D.cells(D.DiagnosisConfig(recipes=(recipe,), steps=int(steps), one_seed=()))
    run_grid([c for _, c in probed], root, cfg.jobs)
    probes = {f"{r} s{c.seed}" + ("" if c.steps == 12_000 else f" {c.steps // 1000}k"):
              probe(root / c.name, cfg.probe_episodes) for r, c in probed}
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    command = command_line("benchmarks.belief_features", cfg,
                           ("env", "seeds", "steps", "train_ratio", "probe_runs",
                            "probe_episodes", "world_model", "out"))
    (out / "report.md").write_text(markdown(cfg, rows, greedy, len(raw), command, probes))
    (out / "results.json").write_text(json.dumps(
        {"command": command, "machine": machine(), "greedy": greedy, "rows": rows,
         "probes": probes}, indent=2))
    plot(rows, greedy, out / "curves.png")
    print(out / "report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
