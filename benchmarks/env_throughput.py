"""Environment throughput: steps per second of every registered env, single and vectorised.

Measures, in one run and interleaved (so slow phases of a noisy machine hit every measurement
alike):

* each registered Gymnasium id (``lewm_rl.envs.GYM_ENV_IDS``) and ``CartPole-v1``, built by
  ``gym.make`` with its default wrappers, stepped with random actions and reset at episode end;
* for each registered id, the batched vector env (``gym.make_vec(..., "vector_entry_point")``)
  against ``gym.make_vec(..., "sync")`` (a ``SyncVectorEnv`` of single envs), at 64 envs, with
  random actions and the vector envs' own next-step autoreset.

Random actions are drawn from the action space before timing, so the figures measure the envs, not
the sampler. Each measurement is repeated; the table reports medians, and each ratio is the median
over repeats of the ratio measured within the same repeat. Usage::

    python -m benchmarks.env_throughput            # writes benchmarks/results/env_throughput.md
    python -m benchmarks.env_throughput --quick    # a few seconds, prints only
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import gymnasium as gym
import numpy as np
import tyro
from tqdm import tqdm

from lewm_rl.envs import GYM_ENV_IDS  # importing lewm_rl.envs registers the ids

REFERENCE_ID = "CartPole-v1"
RESULTS = Path(__file__).parent / "results" / "env_throughput.md"
SINGLE_TARGET = {"SocialNegotiation-v0": 0.5}
"""Targets of the issue: single-env steps/s as a fraction of CartPole-v1's."""
BATCHED_TARGET = 10.0
"""Target of the issue: batched vector env steps/s over SyncVectorEnv's."""


@dataclass(frozen=True)
class Config:
    """Environment throughput benchmark."""

    repeats: int = 7
    """Timed repeats of every measurement; the table reports medians."""
    seconds: float = 1.0
    """Wall time of one repeat of one measurement."""
    num_envs: int = 64
    """Sub-environments of the vector envs."""
    seed: int = 0
    """Seed of the envs and of the pre-drawn random actions."""
    quick: bool = False
    """Smoke run (2 repeats of 0.1 s): prints the table, writes a file only if --out is given."""
    out: Path | None = None
    """Where to write the markdown table (default: benchmarks/results/env_throughput.md, or
    nowhere with --quick)."""

    @property
    def timed_repeats(self) -> int:
        return 2 if self.quick else self.repeats

    @property
    def repeat_seconds(self) -> float:
        return 0.1 if self.quick else self.seconds


class SingleRunner:
    """A ``gym.make`` env stepped with pre-drawn random actions, reset when an episode ends."""

    chunk = 200

    def __init__(self, env_id: str, seed: int) -> None:
        self.env = gym.make(env_id)
        self.env.action_space.seed(seed)
        self.actions = [self.env.action_space.sample() for _ in range(4096)]
        self.env.reset(seed=seed)
        self.i = 0

    def run(self, n: int) -> int:
        """Takes ``n`` steps; returns the number of env steps."""
        env, actions, i = self.env, self.actions, self.i
        for _ in range(n):
            _, _, terminated, truncated, _ = env.step(actions[i])
            if terminated or truncated:
                env.reset()
            i = (i + 1) % len(actions)
        self.i = i
        return n


class VectorRunner:
    """A ``gym.make_vec`` vector env stepped with pre-drawn random actions (it autoresets)."""

    chunk = 20

    def __init__(self, env_id: str, num_envs: int, mode: str, seed: int) -> None:
        self.env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode)
        self.num_envs = num_envs
        self.env.action_space.seed(seed)
        self.actions = [self.env.action_space.sample() for _ in range(256)]
        self.env.reset(seed=seed)
        self.i = 0

    def run(self, n: int) -> int:
        """Takes ``n`` batched steps; returns the number of sub-environment steps."""
        env, actions, i = self.env, self.actions, self.i
        for _ in range(n):
            env.step(actions[i])
            i = (i + 1) % len(actions)
        self.i = i
        return n * self.num_envs


def steps_per_second(runner: SingleRunner | VectorRunner, seconds: float) -> float:
    """Steps the runner in chunks for about ``seconds``; returns env steps per second."""
    steps = 0
    start = time.perf_counter()
    while True:
        steps += runner.run(runner.chunk)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return steps / elapsed


def measure(cfg: Config) -> dict[tuple[str, str], np.ndarray]:
    """Steps/s of every (kind, env id) for each repeat: ``{(kind, id): (repeats,)}``."""
    runners: dict[tuple[str, str], Callable[[], SingleRunner | VectorRunner]] = {
        ("single", REFERENCE_ID): lambda: SingleRunner(REFERENCE_ID, cfg.seed)}
    for env_id in GYM_ENV_IDS:
        runners[("single", env_id)] = lambda e=env_id: SingleRunner(e, cfg.seed)
    for env_id in GYM_ENV_IDS:
        runners[("sync", env_id)] = lambda e=env_id: VectorRunner(e, cfg.num_envs, "sync",
                                                                  cfg.seed)
        runners[("batched", env_id)] = lambda e=env_id: VectorRunner(
            e, cfg.num_envs, "vector_entry_point", cfg.seed)
    built = {key: make() for key, make in runners.items()}
    for runner in built.values():  # warm-up: caches, first-step checks, branch predictors
        steps_per_second(runner, cfg.repeat_seconds / 4)
    rates: dict[tuple[str, str], list[float]] = {key: [] for key in built}
    for _ in tqdm(range(cfg.timed_repeats), desc="repeats", file=sys.stderr,
                  disable=not sys.stderr.isatty()):
        for key, runner in built.items():  # interleaved: one of each per repeat
            rates[key].append(steps_per_second(runner, cfg.repeat_seconds))
    return {key: np.array(v) for key, v in rates.items()}


def machine() -> str:
    """CPU model, cores, and the versions that set the speed."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{model}, {usable} usable cores ({os.cpu_count()} online); {platform.system()} "
            f"{platform.machine()}; Python {platform.python_version()}, numpy {np.__version__}, "
            f"gymnasium {gym.__version__}")


def _fmt(x: float) -> str:
    return f"{x:,.0f}"


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, where the OS reports them."""
    try:
        return "/".join(f"{x:.1f}" for x in os.getloadavg())
    except (AttributeError, OSError):
        return "n/a"


def report(cfg: Config, rates: dict[tuple[str, str], np.ndarray], load: tuple[str, str]) -> str:
    """The markdown report of one run; ``load``: load averages before and after it."""
    ref = rates[("single", REFERENCE_ID)]
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Environment throughput",
        "",
        f"Produced by `python -m benchmarks.env_throughput{' --quick' if cfg.quick else ''}` on "
        f"{when}: {cfg.timed_repeats} interleaved repeats of {cfg.repeat_seconds:g} s per "
        "measurement, random actions drawn before timing. Steps/s are medians over repeats "
        "(min-max beside them); each ratio is the median of the ratios measured within one "
        "repeat. Every number here comes from that command.",
        "",
        f"Machine: {machine()}. Load average (1/5/15 min) before the run {load[0]}, after it "
        f"{load[1]}: other processes share these cores, so compare ratios rather than absolute "
        "rates.",
        "",
        "## Single environment",
        "",
        "`gym.make(id)` with its default wrappers (passive env checker, order enforcing, time "
        "limit), one step at a time, reset at episode end.",
        "",
        f"| env | steps/s | min-max | µs/step | / {REFERENCE_ID} | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for env_id in (REFERENCE_ID, *GYM_ENV_IDS):
        r = rates[("single", env_id)]
        ratio = float(np.median(r / ref))
        target = SINGLE_TARGET.get(env_id)
        mark = "" if target is None else (
            f"≥ {target:g}: {'met' if ratio >= target else 'not met'}")
        lines.append(f"| {env_id} | {_fmt(np.median(r))} | {_fmt(r.min())}-{_fmt(r.max())} | "
                     f"{1e6 / np.median(r):.1f} | {ratio:.3f} | {mark} |")
    lines += [
        "",
        f"## Vector environments ({cfg.num_envs} envs)",
        "",
        f"`gym.make_vec(id, num_envs={cfg.num_envs}, vectorization_mode=...)`: `\"sync\"` "
        "(a `SyncVectorEnv` of single envs) against `\"vector_entry_point\"` (the env's own "
        "batched vector env, one numpy core for all sub-environments); steps/s count "
        "sub-environment steps; both autoreset on the next step.",
        "",
        "| env | SyncVectorEnv steps/s | batched steps/s | µs per batched step | batched / Sync "
        "| target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for env_id in GYM_ENV_IDS:
        sync, batched = rates[("sync", env_id)], rates[("batched", env_id)]
        ratio = float(np.median(batched / sync))
        mark = f"≥ {BATCHED_TARGET:g}: {'met' if ratio >= BATCHED_TARGET else 'not met'}"
        per_call = 1e6 * cfg.num_envs / np.median(batched)
        lines.append(f"| {env_id} | {_fmt(np.median(sync))} | {_fmt(np.median(batched))} | "
                     f"{per_call:.0f} | {ratio:.1f} | {mark} |")
    return "\n".join(lines) + "\n"


def main(cfg: Config) -> str:
    """Runs the benchmark, prints the table and writes it (see ``Config.out``)."""
    before = load_average()
    rates = measure(cfg)
    text = report(cfg, rates, (before, load_average()))
    print(text)
    out = cfg.out if cfg.out is not None else (None if cfg.quick else RESULTS)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(f"wrote {out}", file=sys.stderr)
    return text


if __name__ == "__main__":
    main(tyro.cli(Config))
