"""``python -m benchmarks.dreamer_speed``: where a Dreamer update's time goes, and the loop's speed.

Two measurements, each for every recipe and world-model kind asked for, in one process:

* **The update's time split**: the median over repeats of one world-model update
  (``fit_step``), the imagination (``imagine``, timed inside the actor-critic update) and the rest
  of the actor-critic update, on ``(batch_size, seq_len)`` batches of random-policy data, at each
  recipe's configuration, with one torch thread (``make train --compare`` runs two processes on two
  cores).
* **The loop's speed**: env steps per second of ``python -m lewm_rl.train`` itself (acting,
  replay, updates at the default train ratio), between two logged points after the prefill,
  read from the run's TensorBoard ``train/fps``.

``dreamerv3-heads`` adds the two-hot reward and critic heads and the structured actor head and
action embedding (configuration, not the default). Writes
``benchmarks/results/dreamer_speed.{md,json}``.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro

from benchmarks.runner import command_line, machine
from lewm_rl.agents.baselines import make_policy
from lewm_rl.data import fill_replay, to_torch
from lewm_rl.env_adapters import make_adapter
from lewm_rl.train import TrainConfig, build_models
from lewm_rl.world_models import fit_step, make_optimizer

RESULTS = Path(__file__).parent / "results"

EARLIER = ("--dreamer.compute-dtype", "float32", "--dreamer.horizon", "15")
"""The actor-critic's precision and imagination horizon before 2026-12 (today: auto and 8)."""

RECIPES: dict[str, tuple[str, ...]] = {
    "default": (),
    "earlier": EARLIER,
    "dreamerv3-heads": (*EARLIER, "--dreamer.critic-head", "twohot", "--wm.reward-head", "twohot",
                        "--dreamer.actor-head", "structured", "--wm.action-embed", "structured"),
    "bfloat16": ("--dreamer.compute-dtype", "bfloat16", "--dreamer.horizon", "15"),
    "bfloat16+horizon8": ("--dreamer.compute-dtype", "bfloat16", "--dreamer.horizon", "8"),
    "batch32x16": ("--batch-size", "32", "--seq-len", "16"),
}
"""Command-line overrides of each recipe. ``default``: today's defaults (``compute_dtype`` auto,
bfloat16 on a CPU that multiplies it natively; horizon 8); ``earlier``: the defaults before
2026-12 (float32, horizon 15); ``dreamerv3-heads``: the earlier defaults with the two-hot reward
and critic and the structured actor head and action embedding of
``benchmarks/dreamer_diagnosis.py``; ``bfloat16``: the earlier defaults with the actor-critic
update's matmuls in bfloat16; ``+horizon8``: and imagined rollouts of 8 steps instead of 15;
``batch32x16``: today's defaults with world-model batches of 32 windows of 16 steps instead of 16
of 32 (the same replayed steps per update)."""


@dataclass(frozen=True)
class DreamerSpeedConfig:
    """Dreamer update and loop timing."""

    env: str = "SocialNegotiation-v1"
    """Gymnasium id."""
    world_models: tuple[str, ...] = ("lewm", "blind")
    """World-model kinds."""
    recipes: tuple[str, ...] = ("earlier", "default")
    """Recipes (see RECIPES)."""
    repeats: int = 20
    """Timed updates per configuration (after 5 untimed)."""
    loop_steps: int = 2_000
    """Env steps the loop runs after its prefill (0: skip the loop measurement)."""
    loop_repeats: int = 1
    """Loop runs per configuration; the report gives their median (this machine's speed drifts by
    10 % and more between runs)."""
    write: bool = True
    """Write benchmarks/results/{out}.md and .json."""
    out: str = "dreamer_speed"
    """Stem of the result files. The figures before this benchmark existed come from running
    this file in a checkout of the earlier code: ``git worktree add ../before 4b9fc85``, copy
    ``benchmarks/dreamer_speed.py`` there, ``python -m benchmarks.dreamer_speed --recipes default
    --out dreamer_speed_before`` (its ``default`` is the earlier agent)."""


def _config(env: str, kind: str, recipe: str) -> TrainConfig:
    return tyro.cli(TrainConfig, args=["--env", env, "--world-model", kind, *RECIPES[recipe]])


def update_split(cfg: DreamerSpeedConfig, kind: str, recipe: str) -> dict[str, float]:
    """Median seconds of the world-model update, the imagination and the rest of the
    actor-critic update."""
    torch.set_num_threads(1)
    tc = _config(cfg.env, kind, recipe)
    adapter = make_adapter(tc.env, 1, {})
    torch.manual_seed(0)
    wm, agent = build_models(tc, adapter, adapter.seats[0], "cpu")
    opt = make_optimizer(wm)
    replay = fill_replay(tc.env, make_policy("random", "x", n_actions=wm.num_actions, seed=0),
                         3_000, seed=0)
    rng = np.random.default_rng(0)
    gen = torch.Generator().manual_seed(0)
    imagine, spent = wm.imagine, []

    def timed(*args, **kwargs):
        t = time.perf_counter()
        out = imagine(*args, **kwargs)
        spent.append(time.perf_counter() - t)
        return out

    wm.imagine = timed
    times = {"world_model": [], "imagination": [], "actor_critic": []}
    for i in range(5 + cfg.repeats):
        batch = to_torch(replay.sample(tc.batch_size, tc.seq_len, rng))
        t0 = time.perf_counter()
        _, states = fit_step(wm, opt, batch, with_metrics=i % 10 == 0, generator=gen)
        t1 = time.perf_counter()
        agent.update(states, generator=gen)
        t2 = time.perf_counter()
        if i >= 5:
            times["world_model"].append(t1 - t0)
            times["imagination"].append(spent[-1])
            times["actor_critic"].append(t2 - t1 - spent[-1])
    out = {k: float(np.median(v)) for k, v in times.items()}
    out["update"] = sum(out.values())
    return out


def loop_speed(cfg: DreamerSpeedConfig, kind: str, recipe: str) -> float:
    """Env steps per second of ``python -m lewm_rl.train`` after its prefill (one thread)."""
    from lewm_rl.tensorboard import read_scalars

    tc = TrainConfig()
    with tempfile.TemporaryDirectory() as tmp:
        steps = tc.prefill + cfg.loop_steps
        cmd = [sys.executable, "-m", "lewm_rl.train", "--env", cfg.env, "--world-model", kind,
               *RECIPES[recipe], "--steps", str(steps), "--threads", "1", "--eval-every",
               str(10 * steps), "--checkpoint-every", str(10 * steps), "--eval-episodes", "1",
               "--eval-populations", "--no-progress", "--run-dir", tmp]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        steps, fps, _ = read_scalars(tmp, "train/fps")
    steps, fps = steps[steps > tc.prefill], fps[steps > tc.prefill]
    # train/fps is steps since the start over time since the start: two points give the rate.
    (s0, f0), (s1, f1) = (steps[0], fps[0]), (steps[-1], fps[-1])
    return float((s1 - s0) / (s1 / f1 - s0 / f0))


NAMES = ("env", "world_models", "recipes", "repeats", "loop_steps", "loop_repeats", "out")
"""The options a report's command line names when they differ from their defaults."""


def report(cfg: DreamerSpeedConfig, rows: list[dict]) -> str:
    lines = [
        "# Dreamer update: time split and loop speed",
        "",
        f"Command: `{command_line('benchmarks.dreamer_speed', cfg, NAMES)}` ({cfg.env}, "
        f"{cfg.repeats} timed updates "
        f"per row, medians; loop over {cfg.loop_steps:,} env steps after the prefill, median of "
        f"{cfg.loop_repeats} run{'s' if cfg.loop_repeats > 1 else ''}). Machine: "
        f"{machine()}, one torch thread per process. Generated "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "Seconds per update (a batch of 16 windows of 32 replayed steps unless the recipe says; "
        "the actor-critic imagines the recipe's horizon from 256 of its posterior states, in the "
        "recipe's precision); env steps per second of the training loop at the default train "
        "ratio (128: one update per 4 env steps).",
        "",
        "| recipe | world model | world model s | imagination s | actor-critic s | update s | "
        "loop env steps/s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        loop = f"{r['loop_steps_per_s']:.1f}" if r.get("loop_steps_per_s") else "-"
        lines.append(f"| {r['recipe']} | {r['world_model']} | {r['world_model_s']:.4f} | "
                     f"{r['imagination_s']:.4f} | {r['actor_critic_s']:.4f} | {r['update_s']:.4f}"
                     f" | {loop} |")
    return "\n".join(lines) + "\n"


def main(cfg: DreamerSpeedConfig) -> list[dict]:
    rows = []
    for recipe in cfg.recipes:
        if recipe not in RECIPES:
            raise SystemExit(f"unknown recipe {recipe!r}; allowed: {', '.join(RECIPES)}")
    for recipe in cfg.recipes:
        for kind in cfg.world_models:
            split = update_split(cfg, kind, recipe)
            row = {"recipe": recipe, "world_model": kind,
                   **{f"{k}_s": v for k, v in split.items()}}
            if cfg.loop_steps:
                runs = [loop_speed(cfg, kind, recipe) for _ in range(cfg.loop_repeats)]
                row["loop_steps_per_s"] = float(np.median(runs))
                row["loop_runs"] = runs
            print(row, flush=True)
            rows.append(row)
    text = report(cfg, rows)
    print(text)
    if cfg.write:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, cwd=Path(__file__).parent).stdout.strip()
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{cfg.out}.md").write_text(text + f"\nCode: commit {commit or 'unknown'}.\n")
        (RESULTS / f"{cfg.out}.json").write_text(json.dumps(
            {"config": dataclasses.asdict(cfg), "machine": machine(), "commit": commit,
             "rows": rows}, indent=2))
    return rows


if __name__ == "__main__":
    main(tyro.cli(DreamerSpeedConfig))
