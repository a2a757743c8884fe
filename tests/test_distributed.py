"""The grid on Ray: the same per-cell results as the local process pool, and resumable."""

from __future__ import annotations

import json

import pytest

from benchmarks.runner import Cell, run_grid
from benchmarks.suite import _quick_overrides

ray = pytest.importorskip("ray", reason="the distributed extra is not installed")
pytestmark = pytest.mark.ray


def tiny_cells():
    overrides = tuple((k, v) for k, v in _quick_overrides() if k not in ("eval_every",)) + (
        ("eval_episodes", 2), ("eval_every", 10_000), ("eval_populations", ()))
    return [Cell("SocialNegotiation-v0", "dreamer", "lewm", seed, 256, overrides)
            for seed in (0, 1)]


@pytest.fixture(scope="module")
def ray_instance():
    from benchmarks.distributed import init_ray

    init_ray(None)
    yield
    ray.shutdown()


def test_ray_grid_equals_local_pool_and_resumes(tmp_path, ray_instance):
    from benchmarks.distributed import run_grid_ray

    cells = tiny_cells()
    assert run_grid(cells, tmp_path / "local", jobs=2) == []
    assert run_grid_ray(cells, tmp_path / "ray") == []
    for cell in cells:
        local = json.loads((tmp_path / "local" / cell.name / "results.json").read_text())
        remote = json.loads((tmp_path / "ray" / cell.name / "results.json").read_text())
        assert local == remote, cell.name
    stamp = (tmp_path / "ray" / cells[0].name / "results.json").stat().st_mtime_ns
    assert run_grid_ray(cells, tmp_path / "ray") == []  # finished cells are not recomputed
    assert (tmp_path / "ray" / cells[0].name / "results.json").stat().st_mtime_ns == stamp


def test_sweep_runs_as_ray_tune_trials(tmp_path, ray_instance):
    from benchmarks.sweep import SweepConfig, main

    extra = tuple((k, v) for k, v in tiny_cells()[0].overrides if k not in ("eval_episodes",))
    out = main(SweepConfig(betas=(0.0, 0.1), seeds=1, steps=256, eval_episodes=2,
                           root=str(tmp_path / "sweep"), ray="local", extra=extra))
    assert out["failed"] == []
    assert sorted(r["beta"] for r in out["rows"]) == [0.0, 0.1]
    assert all(r["runs"] == 1 for r in out["rows"])
