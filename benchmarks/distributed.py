"""Running grid cells on a Ray cluster (``pip install 'lewm_rl[distributed]'``).

Each cell becomes a Ray task that calls the one training loop; with no address a local Ray
instance is started. A failed or preempted cell is retried (``max_retries``); a cell whose
``results.json`` exists is never run again. Cells write their run directories under the grid's
root, which must be on a filesystem every node shares (as for Ray Tune's ``storage_path``); the
driver also writes each finished cell's ``results.json`` from the task's return value, so finished
cells are recorded even where it is not shared (learning curves then stay on the nodes).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.runner import Cell, cell_config, unfinished

BENCHMARKS_DIR = Path(__file__).resolve().parent


def init_ray(address: str | None) -> Any:
    """Connects to ``address`` (or starts a local instance) with this package's benchmarks
    importable on every worker."""
    try:
        import ray
    except ImportError as err:
        raise ImportError("running on Ray needs the distributed extra: "
                          "pip install 'lewm_rl[distributed]'") from err
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 runtime_env={"py_modules": [str(BENCHMARKS_DIR)]})
    return ray


def train_cell(cell: Cell, root: str) -> dict[str, Any]:
    """Trains one cell (in a Ray worker or any process); raises on failure so Ray retries."""
    import torch

    from lewm_rl.train import train

    torch.set_num_threads(1)
    run_dir = Path(root) / cell.name
    done = run_dir / "results.json"
    if done.exists():
        return json.loads(done.read_text())
    train(cell_config(cell, run_dir))
    return json.loads(done.read_text())


def run_grid_ray(cells: list[Cell], root: Path, address: str | None = None,
                 max_retries: int = 2) -> list[str]:
    """Runs every unfinished cell as a Ray task; returns the names of cells that failed."""
    ray = init_ray(address)
    root.mkdir(parents=True, exist_ok=True)
    todo = unfinished(cells, root)
    if not todo:
        return []
    task = ray.remote(num_cpus=1, max_retries=max_retries, retry_exceptions=True)(train_cell)
    pending = {task.remote(c, str(root.resolve())): c for c in todo}
    print(f"{len(todo)} cells submitted to Ray under {root}", file=sys.stderr)
    failed = []
    start = time.time()
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        cell = pending.pop(ready[0])
        try:
            result = ray.get(ready[0])
            out = root / cell.name
            out.mkdir(parents=True, exist_ok=True)
            if not (out / "results.json").exists():
                (out / "results.json").write_text(json.dumps(result, indent=2))
        except Exception as err:  # noqa: BLE001 - retries exhausted: report and go on
            failed.append(cell.name)
            print(f"cell {cell.name} failed: {type(err).__name__}: {err}", file=sys.stderr)
        print(f"[{len(todo) - len(pending)}/{len(todo)}] {cell.name} "
              f"({time.time() - start:.0f}s)", file=sys.stderr)
    return failed
