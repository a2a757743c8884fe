"""Running grids of training cells through the one training loop, in parallel, resumably.

A *cell* is one ``lewm_rl.train`` run (env, agent, world model, seed, budget). Each cell writes its
own run directory under the grid's root; a cell whose ``results.json`` exists is not run again, so
an interrupted grid resumes where it stopped. Cells run in separate processes (``--jobs`` at a
time, one torch thread each) and call ``lewm_rl.train.train`` with a ``TrainConfig``: benchmarks
never carry a copy of the loop.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Cell:
    """One training run of a grid."""

    env: str
    agent: str
    world_model: str
    seed: int
    steps: int
    overrides: tuple[tuple[str, Any], ...] = ()
    """Extra ``TrainConfig`` fields, as ``(name, value)`` pairs."""

    @property
    def name(self) -> str:
        """``{env}__{agent}__{world_model}__s{seed}__{steps}[__{hash of the overrides}]``: stable
        across runs, short enough for any filesystem (the run's config.json has the details)."""
        base = f"{self.env}__{self.agent}__{self.world_model}__s{self.seed}__{self.steps}"
        if not self.overrides:
            return base
        named = tuple((k, _named(v)) for k, v in self.overrides)
        digest = hashlib.sha1(repr(named).encode()).hexdigest()[:10]
        return f"{base}__{digest}"


NAMED_BEFORE: dict[str, dict[str, Any]] = {
    "WorldModelConfig": {"reward_heads": 1, "prior_heads": 0.0, "prior_ensemble": 0,
                         "decoder_targets": "symlog"},
    "DreamerConfig": {"pessimism": 0.0, "disagreement": 0.0, "explore_mix": 0.0,
                      "compute_dtype": "float32"},
}
"""Config fields added after cells were named, at the values that reproduce those cells: left out
of a cell's name at those values, so that adding a field renames no cell that does not use it."""


class _Named:
    """A config as a cell's name hashes it: its repr without the fields of ``NAMED_BEFORE`` at
    their reproducing values."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def __repr__(self) -> str:
        skip = NAMED_BEFORE.get(type(self.config).__name__, {})
        shown = [f"{f.name}={getattr(self.config, f.name)!r}"
                 for f in dataclasses.fields(self.config) if f.repr
                 and not (f.name in skip and getattr(self.config, f.name) == skip[f.name])]
        return f"{type(self.config).__qualname__}({', '.join(shown)})"


def _named(value: Any) -> Any:
    return _Named(value) if dataclasses.is_dataclass(value) and not isinstance(value, type) \
        else value


GRID_ROOT = "runs/benchmarks/grid"
"""Where every benchmark's trained cells live (shared, so a cell is trained once for all)."""


def standard_overrides(steps: int, eval_episodes: int) -> tuple[tuple[str, Any], ...]:
    """The evaluation and checkpoint cadence shared by the benchmark grids (same cell names)."""
    return (("eval_episodes", eval_episodes), ("eval_every", max(steps // 8, 500)),
            ("checkpoint_every", max(steps // 4, 500)))


def _run_cell(args: tuple[Cell, str]) -> tuple[str, float, str | None]:
    cell, root = args
    import torch

    from lewm_rl.train import train

    torch.set_num_threads(1)
    run_dir = Path(root) / cell.name
    start = time.time()
    try:
        train(cell_config(cell, run_dir))  # an interrupted cell resumes from its checkpoint
        return cell.name, time.time() - start, None
    except Exception as err:  # noqa: BLE001 - reported per cell, the grid goes on
        return cell.name, time.time() - start, f"{type(err).__name__}: {err}"


DEFAULTS_WHEN_NAMED: dict[str, dict[str, Any]] = {
    "dreamer": {"horizon": 15, "compute_dtype": "float32"},
}
"""``TrainConfig`` sub-configs' fields whose defaults changed after cells were named, at the values
the cells that do not name the sub-config trained with: such a cell still trains at them, so that
a new default neither renames a cell nor makes its finished run stale (:func:`stale_fields`). A
grid that means today's default names the sub-config in its overrides (a new cell).
``dreamer``: imagination horizon 15 and float32 until 2026-12 (today: 8 and ``auto``)."""


def cell_config(cell: Cell, run_dir: Path) -> Any:
    """The ``TrainConfig`` a cell trains under, in ``run_dir``."""
    from lewm_rl.train import TrainConfig

    overrides = dict(cell.overrides)
    factories = {f.name: f.default_factory for f in dataclasses.fields(TrainConfig)}
    for key, fields in DEFAULTS_WHEN_NAMED.items():
        if key not in overrides:
            overrides[key] = dataclasses.replace(factories[key](), **fields)
    return TrainConfig(env=cell.env, agent=cell.agent, world_model=cell.world_model,
                       seed=cell.seed, steps=cell.steps, run_dir=str(run_dir), progress=False,
                       threads=1, **overrides)


WHERE_NOT_WHAT = ("run_dir", "logdir", "resume", "progress", "threads", "device")
"""TrainConfig fields that say where and how fast a run ran, not what it learned."""


def stale_fields(cell: Cell, run_dir: Path) -> list[str]:
    """The config fields (``wm.decoder_targets``, ``steps``, ...) in which the run saved in
    ``run_dir`` differs from what ``cell`` trains under today. A cell's name hashes only its
    overrides, so a run made before a default changed keeps its name: this catches it."""
    from lewm_rl.train import config_from_dict, config_to_dict, resolved

    saved = config_to_dict(resolved(config_from_dict(
        json.loads((run_dir / "config.json").read_text()))))
    now = config_to_dict(resolved(cell_config(cell, run_dir)))

    def flat(d: dict[str, Any]) -> dict[str, Any]:
        return {(f"{k}.{kk}" if isinstance(v, dict) else k): vv
                for k, v in d.items() if k not in WHERE_NOT_WHAT
                for kk, vv in (v.items() if isinstance(v, dict) else [(None, v)])}

    a, b = flat(saved), flat(now)
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def unfinished(cells: Iterable[Cell], root: Path) -> list[Cell]:
    """The cells without a ``results.json`` under ``root``.

    Raises:
        SystemExit: a finished cell was trained under another config than its cell names today
            (a default changed since); the message names each one, the fields that differ, and
            what to do.
    """
    todo, stale = [], []
    for c in cells:
        run_dir = root / c.name
        if not (run_dir / "results.json").exists():
            todo.append(c)
        elif differ := stale_fields(c, run_dir):
            stale.append(f"{run_dir} ({', '.join(differ)})")
    if stale:
        raise SystemExit("finished cells were trained under another config than they name today "
                         "(a default changed since they ran): " + "; ".join(stale)
                         + ". Move those directories away to retrain them, or pin the old values "
                         "in the benchmark's overrides.")
    return todo


def run_grid(cells: Iterable[Cell], root: Path, jobs: int = 2) -> list[str]:
    """Runs every unfinished cell; returns the names of cells that failed."""
    root.mkdir(parents=True, exist_ok=True)
    todo = unfinished(cells, root)
    if not todo:
        return []
    print(f"{len(todo)} cells to run with {jobs} jobs under {root}", file=sys.stderr)
    failed = []
    ctx = mp.get_context("spawn")
    with ctx.Pool(jobs, maxtasksperchild=1) as pool:
        from tqdm import tqdm

        for name, seconds, err in tqdm(pool.imap_unordered(_run_cell, [(c, str(root))
                                                                       for c in todo]),
                                       total=len(todo), unit="cell"):
            if err:
                failed.append(name)
                print(f"cell {name} failed after {seconds:.0f}s: {err}", file=sys.stderr)
    return failed


def cell_result(root: Path, cell: Cell) -> dict[str, Any] | None:
    path = root / cell.name / "results.json"
    return json.loads(path.read_text()) if path.exists() else None


def learning_curve(root: Path, cell: Cell, tag: str = "eval/episode_return"
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, values)`` of a scalar from a cell's TensorBoard events."""
    from lewm_rl.tensorboard import read_scalars

    steps, values, _ = read_scalars(root / cell.name, tag)
    return steps, values


SCRIPTED = ("oracle", "greedy", "random")
"""The scripted reference agents."""


def scripted_references(env_id: str, population: str, episodes: int) -> dict[str, float]:
    """Mean evaluation return of the scripted agents (random, greedy, oracle) on the fixed
    evaluation seeds, against ``population``."""
    from lewm_rl.evaluation import reference_returns
    from lewm_rl.train import EVAL_SEED

    return reference_returns(env_id, episodes, EVAL_SEED, {"population": population},
                             num_envs=min(episodes, 64))


def command_line(module: str, config: Any, names: Iterable[str] = ()) -> str:
    """``python -m module`` with the options among ``names`` that differ from their defaults (so a
    report names the command that reproduces it)."""
    default = type(config)()
    cmd = f"python -m {module}"
    if getattr(config, "quick", False):
        return cmd + " --quick"
    for name in names:
        value = getattr(config, name)
        if value != getattr(default, name):
            shown = " ".join(map(str, value)) if isinstance(value, tuple) else value
            cmd += f" --{name.replace('_', '-')} {shown}"
    return cmd


def machine() -> str:
    """CPU model, cores, Python and torch versions."""
    import platform

    import torch

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"torch {torch.__version__}")
