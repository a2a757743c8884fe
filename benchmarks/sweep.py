"""``python -m benchmarks.sweep``: hyperparameter sweeps of LEWM-Dreamer, locally or with Ray Tune.

Sweeps the consistency weight beta, the emotion weight lambda, the annotation noise and the
world-model size over seeds, each trial a run of the one training loop, and reports the final
evaluation return of every setting (IQM over seeds, 95 % bootstrap interval).

* ``--ray ADDRESS`` (or ``--ray local``) runs each trial as a Ray Tune trial on a cluster
  (``ray.init(address=...)``); failed or preempted trials are retried (``max_failures``).
* Without ``--ray`` the trials run in a local process pool.

Either way every trial is a grid cell with its own ``results.json`` under ``--root``: a finished
cell is not recomputed, and the local pool and Ray produce the same files.
"""

from __future__ import annotations

import itertools
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import tyro

from benchmarks.runner import Cell, cell_result, run_grid
from lewm_rl.evaluation import interval

RESULTS = Path(__file__).parent / "results"
SIZES = {"small": (64, 64, 64), "default": (128, 128, 128), "large": (192, 192, 192)}
"""World-model sizes: (deter, hidden, embed)."""


@dataclass(frozen=True)
class SweepConfig:
    """A sweep of LEWM-Dreamer hyperparameters."""

    env: str = "SocialNegotiation-v0"
    """Environment."""
    betas: tuple[float, ...] = (0.0, 0.01, 0.1, 0.5, 1.0)
    """Consistency weights (--wm.consistency-weight)."""
    lambdas: tuple[float, ...] = (1.0,)
    """Emotion-loss weights (--wm.emotion-weight)."""
    annotation_noises: tuple[float, ...] = (0.1,)
    """Annotator noise of the training labels."""
    sizes: tuple[str, ...] = ("default",)
    """World-model sizes: small, default, large."""
    seeds: int = 5
    """Seeds per setting."""
    steps: int = 12_000
    """Env steps per trial."""
    eval_episodes: int = 64
    """Evaluation episodes."""
    root: str = "runs/benchmarks/sweep"
    """Where the trials' run directories go."""
    jobs: int = 2
    """Local process pool size (without --ray)."""
    ray: str | None = None
    """Ray address, or "local" to start a local Ray instance; omitted: local process pool."""
    max_failures: int = 2
    """Ray Tune: retries of a failed or preempted trial."""
    extra: tuple[tuple[str, Any], ...] = ()
    """Further TrainConfig overrides shared by every trial (used by the tests)."""


def cells(cfg: SweepConfig) -> list[Cell]:
    from lewm_rl.world_models import WorldModelConfig

    out = []
    for beta, lam, noise, size, seed in itertools.product(
            cfg.betas, cfg.lambdas, cfg.annotation_noises, cfg.sizes, range(cfg.seeds)):
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; allowed: {', '.join(SIZES)}")
        extra = dict(cfg.extra)
        base = extra.pop("wm", WorldModelConfig())
        deter, hidden, embed = SIZES[size] if "wm" not in dict(cfg.extra) else (
            base.deter, base.hidden, base.embed)
        wm = replace(base, consistency_weight=beta, emotion_weight=lam, deter=deter,
                     hidden=hidden, embed=embed)
        overrides = (("annotation_noise", noise), ("eval_episodes", cfg.eval_episodes),
                     ("wm", wm), *extra.items())
        out.append(Cell(cfg.env, "dreamer", "lewm", seed, cfg.steps, tuple(overrides)))
    return out


def _setting(cell: Cell) -> tuple[float, float, float, int]:
    o = dict(cell.overrides)
    return (o["wm"].consistency_weight, o["wm"].emotion_weight, o["annotation_noise"],
            o["wm"].deter)


def run_tune(todo: list[Cell], root: Path, address: str | None, max_failures: int) -> list[str]:
    """Runs the cells as Ray Tune trials; returns the names of trials that failed."""
    from benchmarks.distributed import init_ray, train_cell

    init_ray(address)
    from ray import tune

    by_name = {c.name: c for c in todo}
    root_abs = str(root.resolve())

    def trainable(config: dict[str, Any]) -> dict[str, Any]:
        result = train_cell(by_name[config["cell"]], root_abs)
        return {"eval_return": float(result["eval/episode_return"])}

    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space={"cell": tune.grid_search(list(by_name))},
        run_config=tune.RunConfig(name="lewm_sweep", storage_path=str((root / "tune").resolve()),
                                  failure_config=tune.FailureConfig(max_failures=max_failures),
                                  verbose=0),
    )
    grid = tuner.fit()
    failed = [r.config["cell"] for r in grid if r.error is not None]
    for r in grid:
        if r.error is None:
            cell = by_name[r.config["cell"]]
            out = root / cell.name / "results.json"
            if not out.exists():  # the trial ran on a node without the shared filesystem
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps({"eval/episode_return": r.metrics["eval_return"]}))
    return failed


def main(cfg: SweepConfig) -> dict[str, Any]:
    root = Path(cfg.root)
    all_cells = cells(cfg)
    root.mkdir(parents=True, exist_ok=True)
    todo = [c for c in all_cells if not (root / c.name / "results.json").exists()]
    if cfg.ray:
        failed = run_tune(todo, root, None if cfg.ray == "local" else cfg.ray,
                          cfg.max_failures) if todo else []
    else:
        failed = run_grid(todo, root, cfg.jobs)
    table: dict[tuple, list[float]] = {}
    for c in all_cells:
        res = cell_result(root, c)
        if res:
            table.setdefault(_setting(c), []).append(res["eval/episode_return"])
    rows = []
    for (beta, lam, noise, deter), vals in sorted(table.items()):
        ci = interval(np.array(vals), "iqm")
        rows.append({"beta": beta, "lambda": lam, "annotation_noise": noise, "deter": deter,
                     "runs": len(vals), "iqm": ci.point, "low": ci.low, "high": ci.high,
                     "returns": vals})
    for r in rows:
        print(f"beta={r['beta']} lambda={r['lambda']} noise={r['annotation_noise']} "
              f"deter={r['deter']}: {r['iqm']:.3f} [{r['low']:.3f}, {r['high']:.3f}] "
              f"({r['runs']} runs)")
    if failed:
        print(f"{len(failed)} trials failed: {', '.join(failed)}", file=sys.stderr)
    return {"rows": rows, "failed": failed}


if __name__ == "__main__":
    out = main(tyro.cli(SweepConfig))
    sys.exit(1 if out["failed"] else 0)
