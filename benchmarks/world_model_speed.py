"""``python -m benchmarks.world_model_speed``: time per world-model training update, lewm vs blind.

One training update (``fit_step``: forward, backward, Adam) on a ``(B=16, T=64)`` batch of
``SocialNegotiation-v0`` data, at the default ``WorldModelConfig``, for every kind, interleaved
in the same run (so machine noise hits all alike). Reports the median over repeats, samples/s
(``B * T`` per update) and the ratio to ``blind``. Targets (issue): ``lewm`` <= 1.2x ``blind``'s
time per update; both >= 8,000 samples/s on 2 cores.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
import tyro

import lewm_rl
from benchmarks.runner import machine as runner_machine
from lewm_rl.agents.baselines import make_policy
from lewm_rl.data import fill_replay, to_torch
from lewm_rl.world_models import (
    WORLD_MODELS,
    WorldModelConfig,
    build_world_model,
    fit_step,
    make_optimizer,
)

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class SpeedConfig:
    """World-model update timing."""

    batch_size: int = 16
    """Sequences per batch (B)."""
    seq_len: int = 64
    """Steps per sequence (T)."""
    repeats: int = 30
    """Timed updates per model (after warm-up), interleaved across models."""
    warmup: int = 3
    """Untimed updates per model first."""
    threads: int = 2
    """torch threads (the target machine has 2 cores)."""
    quick: bool = False
    """A few repeats only: a smoke run, not a measurement."""
    write: bool = True
    """Write benchmarks/results/world_model_speed.md and .json."""


def machine() -> str:
    return f"{runner_machine()}, {torch.get_num_threads()} torch threads"


def main(cfg: SpeedConfig) -> dict:
    torch.set_num_threads(cfg.threads)
    repeats = 3 if cfg.quick else cfg.repeats
    env = gym.make("SocialNegotiation-v0")
    replay = fill_replay("SocialNegotiation-v0", make_policy("random", "x", n_actions=98, seed=0),
                         4_000, seed=0)
    batch = to_torch(replay.sample(cfg.batch_size, cfg.seq_len, np.random.default_rng(0)))
    models = {}
    for kind in WORLD_MODELS:
        torch.manual_seed(0)
        wm = build_world_model(dataclasses.replace(WorldModelConfig(), kind=kind),
                               env.observation_space, env.action_space,
                               env.unwrapped.emotion_space, behaviour_key="partner_act")
        models[kind] = (wm, make_optimizer(wm))
        for _ in range(cfg.warmup):
            fit_step(wm, models[kind][1], batch)
    times: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(repeats):
        for kind, (wm, opt) in models.items():
            t = time.perf_counter()
            fit_step(wm, opt, batch)
            times[kind].append(time.perf_counter() - t)
    samples = cfg.batch_size * cfg.seq_len
    med = {k: float(np.median(v)) for k, v in times.items()}
    ratios = {k: float(np.median(np.array(times[k]) / np.array(times["blind"]))) for k in times}
    rows = []
    for kind, (wm, _) in models.items():
        rows.append({"kind": kind, "params": wm.num_parameters(), "median_s": med[kind],
                     "min_s": float(np.min(times[kind])), "max_s": float(np.max(times[kind])),
                     "samples_per_s": samples / med[kind], "ratio_to_blind": ratios[kind]})
    result = {"machine": machine(), "batch": [cfg.batch_size, cfg.seq_len], "repeats": repeats,
              "rows": rows, "command": "python -m benchmarks.world_model_speed"
              + (" --quick" if cfg.quick else "")}
    table = render(result)
    print(table)
    if cfg.write and not cfg.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "world_model_speed.json").write_text(json.dumps(result, indent=2))
        (RESULTS / "world_model_speed.md").write_text(table)
    return result


def render(result: dict) -> str:
    lines = [
        "# World-model training speed",
        "",
        f"Command: `{result['command']}` (lewm_rl {lewm_rl.__version__}).",
        f"Machine: {result['machine']}.",
        f"One update = forward + backward + Adam on a batch of B x T = {result['batch'][0]} x "
        f"{result['batch'][1]} steps of SocialNegotiation-v0; {result['repeats']} timed updates "
        "per model, interleaved; median (min-max). The ratio is the median of per-round ratios "
        "to blind, measured in the same run.",
        "",
        "| model | parameters | s / update | samples / s | time vs blind |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['kind']} | {r['params']:,} | {r['median_s']:.3f} ({r['min_s']:.3f}-"
                     f"{r['max_s']:.3f}) | {r['samples_per_s']:,.0f} | "
                     f"{r['ratio_to_blind']:.2f}x |")
    rows = {r["kind"]: r for r in result["rows"]}
    ok_ratio = rows["lewm"]["ratio_to_blind"] <= 1.2
    ok_speed = min(rows["lewm"]["samples_per_s"], rows["blind"]["samples_per_s"]) >= 8000
    lines += ["", f"Targets: lewm <= 1.2x blind: **{'met' if ok_ratio else 'missed'}** "
              f"({rows['lewm']['ratio_to_blind']:.2f}x); both >= 8,000 samples/s: "
              f"**{'met' if ok_speed else 'missed'}**.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main(tyro.cli(SpeedConfig))
