"""``python -m benchmarks.emotion_value``: what reading the partners' emotions is worth to learners.

The instrument that makes a world an *emotional* benchmark (DESIGN.md, Evaluation): a strong
model-free learner is trained twice, once seeing every observation and once with the emotional
cues filtered (:class:`~lewm_rl.envs.wrappers.FilterEmotionCuesVector`: the partners' expression
and tone replaced by their neutral values), at a budget where its learning curve has flattened.
The *value of emotional information* is

    V = (R_cues - R_filtered) / (R_cues - R_random),

the share of the learner's gain over the random policy that the cues carry, with ``R`` the mean
evaluation return over seeds (the deterministic policy on the fixed evaluation seeds
``EVAL_SEED + i``, the same episodes for every arm and for the random reference). Its interval is
a percentile bootstrap over seeds, the two arms resampled independently
(``scipy.stats.bootstrap``). It is reported per env, learner and partner population (the
training population and the held-out ``volatile`` and ``stoic`` ones).

A third view, ``truth``, is a diagnostic of the world, not an arm of any comparison: the
learner is *told* the partner's true emotion (the expression replaced by a one-hot of the label,
the tone neutral), as the scripted oracle is. ``V_truth = (R_truth - R_filtered) / (R_truth -
R_random)`` is what perfect emotion reading would be worth: if it is small, the world's rules,
not the cues' reliability, make emotion worthless. It never enters a model comparison, and no
learner trained on it is used anywhere else.

Learners: SB3 ``PPO`` (``MultiInputPolicy``) and sb3-contrib ``RecurrentPPO``
(``MultiInputLstmPolicy``, LSTM 128: cues can be read over time), with the project's PPO settings
(:class:`lewm_rl.agents.sb3.SB3Config`), 16 envs stepped as one batch
(:class:`lewm_rl.agents.sb3.GymnasiumVecEnv`). Acting never reads ``info``: evaluation goes
through :func:`lewm_rl.evaluation.run_policy`, which hands a non-oracle policy no label.

Every cell (env, influence, learner, view, seed, budget) is cached as one JSON file
under ``benchmarks/results/emotion_value/cells/``: an interrupted run resumes, and the report is
rebuilt from the cells. The report lands in ``benchmarks/results/emotion_value/`` (or ``--out``).

Usage::

    python -m benchmarks.emotion_value                          # the v0 negotiation twins
    python -m benchmarks.emotion_value --kappas 0.5 1 2 4 --rules accept_first mood_decides \
        --views cues filtered truth --seeds 1 --out benchmarks/results/emotion_value_design/a
    python -m benchmarks.emotion_value --learners ppo recurrent-ppo --jobs 2
    python -m benchmarks.emotion_value --quick                  # smoke run; prints only
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import tyro
from scipy import stats

from benchmarks.runner import command_line, machine

LEARNERS = ("ppo", "recurrent-ppo")
VIEWS = ("cues", "filtered", "truth")
POPULATIONS = ("default", "volatile", "stoic")
RESULTS = Path(__file__).parent / "results" / "emotion_value"
NUM_ENVS = 16
CRITERION = (0.15, 0.02)
"""The criterion for a v1 world, stated before any candidate rule was measured: the value of
emotional information is at least 15 %, its interval above 0, on the subjective world (PPO,
default population), and at most 2 % on its objective twin."""


@dataclass(frozen=True)
class Config:
    """Value of emotional information to a model-free learner (see the module docstring)."""

    envs: tuple[str, ...] = ("SocialNegotiation-v0", "ObjectiveNegotiation-v0")
    """Gymnasium ids."""
    rules: tuple[str, ...] = ()
    """Candidate rule changes of the negotiation (``negotiation_core.RULE_CHANGES``) passed as
    ``rules``; empty: each id's own."""
    kappas: tuple[float, ...] = ()
    """Emotional influence values to pass as ``emotion_influence`` (empty: each id's own)."""
    learners: tuple[str, ...] = ("ppo",)
    """Model-free learners: ppo, recurrent-ppo."""
    views: tuple[str, ...] = ("cues", "filtered")
    """What the learner sees: cues (every observation), filtered (cues neutralised), truth (the
    diagnostic: told the true emotion)."""
    seeds: int = 5
    """Seeds per cell."""
    steps: int = 300_000
    """Env steps per training run (the budget where PPO's curve has flattened)."""
    curve: tuple[int, ...] = (25_000, 50_000, 100_000, 200_000)
    """Env steps at which the learning curve is also evaluated (default population)."""
    eval_episodes: int = 200
    """Evaluation episodes (seeds EVAL_SEED + i), for the learners and the random reference."""
    populations: tuple[str, ...] = POPULATIONS
    """Partner populations evaluated at the end of training."""
    jobs: int = 2
    """Cells trained in parallel processes (one torch thread each)."""
    quick: bool = False
    """Smoke run: 2 seeds, 4k steps, 32 evaluation episodes; prints, writes nothing."""
    out: Path | None = None
    """Output folder (cells/, report.md, results.json, value.png); default
    benchmarks/results/emotion_value, nowhere with --quick."""

    def __post_init__(self) -> None:
        if "filtered" not in self.views or any(v not in VIEWS for v in self.views):
            raise ValueError(f"views must include filtered, from {', '.join(VIEWS)}; got "
                             f"{self.views}")
        unknown = [x for x in self.learners if x not in LEARNERS]
        if unknown:
            raise ValueError(f"unknown learners {unknown}; allowed: {', '.join(LEARNERS)}")
        bad = [p for p in self.populations if p not in POPULATIONS]
        if bad:
            raise ValueError(f"unknown populations {bad}; allowed: {', '.join(POPULATIONS)}")
        if self.seeds < 1 or self.steps < 1 or self.eval_episodes < 1 or self.jobs < 1:
            raise ValueError("seeds, steps, eval_episodes and jobs must be positive")


@dataclass(frozen=True)
class Cell:
    """One training run: a learner on an env, seeing the cues, not seeing them, or told the
    truth (``view``)."""

    env: str
    kappa: float | None
    rules: tuple[str, ...]
    learner: str
    view: str
    seed: int
    steps: int
    curve: tuple[int, ...]
    eval_episodes: int
    populations: tuple[str, ...]

    @property
    def name(self) -> str:
        k = "" if self.kappa is None else f"__k{self.kappa:g}"
        k += "".join(f"__{r}" for r in self.rules)
        return (f"{self.env}{k}__{self.learner}__{self.view}"
                f"__s{self.seed}__{self.steps}__e{self.eval_episodes}")

    @property
    def env_kwargs(self) -> dict[str, Any]:
        return env_kwargs(self.kappa, self.rules)


def env_kwargs(kappa: float | None, rules: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """The env arguments of a cell: ``emotion_influence`` and ``rules`` where they are set."""
    out: dict[str, Any] = {} if kappa is None else {"emotion_influence": kappa}
    if rules:
        out["rules"] = tuple(rules)
    return out


def cells(cfg: Config) -> list[Cell]:
    """Every cell of the run: env x influence x learner x view x seed."""
    seeds, steps, episodes = (2, 4_000, 32) if cfg.quick else (cfg.seeds, cfg.steps,
                                                                cfg.eval_episodes)
    curve = (2_048,) if cfg.quick else tuple(s for s in cfg.curve if s < steps)
    from lewm_rl.envs import SUBJECTIVE_TWIN

    def kappas(env: str) -> tuple[float | None, ...]:  # an objective twin has no influence
        return (None,) if env in SUBJECTIVE_TWIN or not cfg.kappas else cfg.kappas

    return [Cell(env, kappa, cfg.rules, learner, view, seed, steps, curve, episodes,
                 cfg.populations)
            for env in cfg.envs for kappa in kappas(env) for learner in cfg.learners
            for view in cfg.views for seed in range(seeds)]


# ----------------------------------------------------------------------------------------------
# One cell
# ----------------------------------------------------------------------------------------------

class _SB3Policy:
    """A trained SB3 model as a :func:`lewm_rl.evaluation.run_policy` policy (deterministic).

    It reads the observation only (run_policy gives non-oracle policies no label), filtered like
    the training observations when the cell filters the cues; a recurrent model's LSTM state is
    kept per env and restarted where an episode starts.
    """

    def __init__(self, model: Any, space: Any, view: str, recurrent: bool) -> None:
        self.model, self.space, self.view, self.recurrent = model, space, view, recurrent
        self.reads_emotion = view == "truth"  # the diagnostic alone is told the emotion

    def reset(self, n: int) -> None:
        self.state = None
        self.start = np.ones(n, dtype=bool)

    def reset_rows(self, rows: np.ndarray) -> None:
        self.start[rows] = True

    def act(self, obs: dict[str, np.ndarray], emotion: np.ndarray | None) -> np.ndarray:
        from lewm_rl.envs.wrappers import filter_cues

        if self.view == "truth":
            obs = reveal_emotion(obs, emotion)
        else:
            assert emotion is None, "a learner must never read the emotion"
            if self.view == "filtered":
                obs = filter_cues(obs, self.space, batched=True)
        if self.recurrent:
            action, self.state = self.model.predict(obs, state=self.state,
                                                    episode_start=self.start, deterministic=True)
            self.start[:] = False
        else:
            action, _ = self.model.predict(obs, deterministic=True)
        return np.asarray(action, dtype=np.int64)


TRUTH_GAIN = 4.0
"""Height of the one-hot the ``truth`` view puts in place of the expression."""


def reveal_emotion(obs: dict[str, np.ndarray], emotion: np.ndarray) -> dict[str, np.ndarray]:
    """The ``truth`` view of batched observations: the expression replaced by
    ``TRUTH_GAIN * onehot(emotion)``, the tone neutral (diagnostic only; see the module doc)."""
    out = dict(obs)
    k = obs["expression"].shape[-1]
    out["expression"] = TRUTH_GAIN * np.eye(k, dtype=np.float32)[np.asarray(emotion)]
    out["tone"] = np.zeros_like(obs["tone"])
    return out


def _reveal_wrapper() -> type:
    """The ``truth`` view as a Gymnasium vector wrapper (built here: gymnasium loads lazily)."""
    import gymnasium as gym

    class RevealEmotion(gym.vector.VectorWrapper):
        def reset(self, **kwargs):
            obs, info = self.env.reset(**kwargs)
            return reveal_emotion(obs, info["emotion"]), info

        def step(self, actions):
            obs, reward, terminated, truncated, info = self.env.step(actions)
            return reveal_emotion(obs, info["emotion"]), reward, terminated, truncated, info

    return RevealEmotion


def _evaluate(model: Any, cell: Cell, population: str) -> list[float]:
    import gymnasium as gym

    from lewm_rl.evaluation import run_policy
    from lewm_rl.train import EVAL_SEED

    space = gym.make(cell.env, **cell.env_kwargs).observation_space
    policy = _SB3Policy(model, space, cell.view, cell.learner == "recurrent-ppo")
    log = run_policy(cell.env, policy, cell.eval_episodes, seed=EVAL_SEED,
                     num_envs=min(cell.eval_episodes, 100),
                     env_kwargs={**cell.env_kwargs, "population": population})
    return log.returns


def make_learner(cell: Cell, venv: Any) -> Any:
    """The SB3 learner of ``cell`` on the SB3 ``venv``, with the project's PPO settings."""
    from lewm_rl.agents.sb3 import SB3Config

    c = SB3Config()
    kwargs = dict(n_steps=c.n_steps, batch_size=c.batch_size, n_epochs=c.n_epochs,
                  learning_rate=c.learning_rate, gamma=c.gamma, gae_lambda=c.gae_lambda,
                  clip_range=c.clip_range, ent_coef=c.ent_coef, seed=cell.seed, device="cpu",
                  verbose=0)
    arch = list(c.net_arch)
    if cell.learner == "recurrent-ppo":
        try:
            from sb3_contrib import RecurrentPPO
        except ImportError as e:  # an optional dependency: say how to get it
            raise SystemExit("recurrent-ppo needs sb3-contrib: pip install -e '.[benchmarks]'"
                             ) from e

        return RecurrentPPO("MultiInputLstmPolicy", venv, **kwargs, policy_kwargs=dict(
            net_arch=arch, lstm_hidden_size=128))
    from stable_baselines3 import PPO

    return PPO("MultiInputPolicy", venv, **kwargs, policy_kwargs=dict(net_arch=arch))


def run_cell(cell: Cell) -> dict[str, Any]:
    """Trains and evaluates one cell; returns its record (what the cell's JSON file holds)."""
    import gymnasium as gym
    import torch
    from stable_baselines3.common.vec_env import VecMonitor

    import lewm_rl  # noqa: F401  (registers the ids)
    from lewm_rl.agents.sb3 import GymnasiumVecEnv
    from lewm_rl.envs.wrappers import FilterEmotionCuesVector

    torch.set_num_threads(1)
    start = time.perf_counter()
    env = gym.make_vec(cell.env, num_envs=NUM_ENVS, vectorization_mode="vector_entry_point",
                       **cell.env_kwargs)
    if cell.view == "filtered":
        env = FilterEmotionCuesVector(env)
    elif cell.view == "truth":
        env = _reveal_wrapper()(env)
    venv = VecMonitor(GymnasiumVecEnv(env))
    venv.seed(cell.seed)
    model = make_learner(cell, venv)
    curve = []
    for target in (*cell.curve, cell.steps):
        model.learn(target - model.num_timesteps, reset_num_timesteps=False)
        if target != cell.steps:
            curve.append((int(model.num_timesteps), float(np.mean(_evaluate(model, cell,
                                                                              "default")))))
    final = {p: _evaluate(model, cell, p) for p in cell.populations}
    curve.append((int(model.num_timesteps), float(np.mean(final["default"]))))
    return {"cell": asdict(cell), "curve": curve,
            "returns": {p: float(np.mean(r)) for p, r in final.items()},
            "wall_s": time.perf_counter() - start}


def _run_and_save(args: tuple[Cell, Path | None]) -> dict[str, Any]:
    cell, folder = args
    record = run_cell(cell)
    if folder is not None:
        path = folder / f"{cell.name}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=1))
        tmp.replace(path)  # a cell file is whole or absent
    return record


def run_cells(todo: list[Cell], folder: Path | None, jobs: int) -> list[dict[str, Any]]:
    """Runs the cells not yet cached in ``folder`` (``jobs`` processes), with a progress bar."""
    from tqdm import tqdm

    done, missing = [], []
    for cell in todo:
        path = None if folder is None else folder / f"{cell.name}.json"
        if path is not None and path.exists():
            done.append(json.loads(path.read_text()))
        else:
            missing.append(cell)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(missing), desc="emotion-value cells", unit="cell")
    if jobs == 1 or len(missing) <= 1:
        for cell in missing:
            done.append(_run_and_save((cell, folder)))
            bar.update()
    else:
        with mp.get_context("spawn").Pool(jobs) as pool:
            for record in pool.imap_unordered(_run_and_save, [(c, folder) for c in missing]):
                done.append(record)
                bar.update()
    bar.close()
    return done


# ----------------------------------------------------------------------------------------------
# Statistics and report
# ----------------------------------------------------------------------------------------------

def emotion_value(with_cues: np.ndarray, filtered: np.ndarray, random: float,
                  confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """``(value, low, high)``: ``(mean(with_cues) - mean(filtered)) / (mean(with_cues) - random)``
    and its percentile-bootstrap interval, the two arms' seeds resampled independently."""
    with_cues, filtered = np.asarray(with_cues, float), np.asarray(filtered, float)

    def value(c: np.ndarray, f: np.ndarray, axis: int = -1) -> np.ndarray:
        mc = c.mean(axis)
        return (mc - f.mean(axis)) / np.maximum(mc - random, 1e-9)

    point = float(value(with_cues, filtered))
    if len(with_cues) < 2 or len(filtered) < 2:
        return point, point, point
    res = stats.bootstrap((with_cues, filtered), value, paired=False, vectorized=True,
                          confidence_level=confidence, n_resamples=4000, method="percentile",
                          rng=np.random.default_rng(seed))
    return point, float(res.confidence_interval.low), float(res.confidence_interval.high)


def random_return(env: str, env_kwargs: dict[str, Any], population: str, episodes: int) -> float:
    """The uniform random policy's mean return on the evaluation seeds."""
    import gymnasium as gym

    from lewm_rl.agents.baselines import make_policy
    from lewm_rl.evaluation import run_policy
    from lewm_rl.train import EVAL_SEED

    n = gym.make(env).action_space.n
    log = run_policy(env, make_policy("random", env, seed=0, n_actions=n), episodes,
                     seed=EVAL_SEED, num_envs=min(episodes, 100),
                     env_kwargs={**env_kwargs, "population": population})
    return float(np.mean(log.returns))


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (env, influence, learner, population): returns, V and its interval."""
    groups: dict[tuple, dict[str, list[dict[str, Any]]]] = {}
    for r in records:
        c = r["cell"]
        key = (c["env"], c["kappa"], tuple(c.get("rules", ())), c["learner"], c["steps"],
               c["eval_episodes"])
        groups.setdefault(key, {v: [] for v in VIEWS})[view_of(c)].append(r)
    rows = []
    for (env, kappa, rules, learner, steps, episodes), arms in sorted(
            groups.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        kwargs = env_kwargs(kappa, rules)
        for view in ("cues", "truth"):
            if not arms[view] or not arms["filtered"]:
                continue
            for pop in arms[view][0]["cell"]["populations"]:
                c = np.array([r["returns"][pop] for r in arms[view]])
                f = np.array([r["returns"][pop] for r in arms["filtered"]])
                rand = random_return(env, kwargs, pop, episodes)
                v, lo, hi = emotion_value(c, f, rand)
                rows.append({"env": env, "kappa": kappa, "rules": list(rules),
                             "learner": learner, "view": view,
                             "population": pop, "steps": steps, "seeds": [len(c), len(f)],
                             "return_view": float(c.mean()), "return_filtered": float(f.mean()),
                             "return_random": rand, "value": v, "low": lo, "high": hi,
                             "wall_s": float(np.median([r["wall_s"] for r in arms[view]
                                                        + arms["filtered"]]))})
    return rows


def view_of(cell: dict[str, Any]) -> str:
    """A cell record's view (records written before views existed say ``cues: bool``)."""
    return cell.get("view") or ("cues" if cell["cues"] else "filtered")


def verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """The v1 criterion (``CRITERION``) checked on every subjective/objective pair reported."""
    from lewm_rl.envs import OBJECTIVE_TWIN

    lo_bound, hi_bound = CRITERION
    by = {(r["env"], r["kappa"], tuple(r["rules"]), r["learner"], r["population"]): r
          for r in rows if r["view"] == "cues"}
    out = []
    for (env, kappa, rules, learner, pop), r in sorted(by.items(), key=lambda kv: str(kv[0])):
        twin = OBJECTIVE_TWIN.get(env)
        if pop != "default" or learner != "ppo" or twin is None:
            continue
        t = by.get((twin, None, rules, learner, pop))
        subj_ok = r["value"] >= lo_bound and r["low"] > 0
        twin_ok = t is not None and t["value"] <= hi_bound
        twin_text = "not measured" if t is None else f"{100 * t['value']:+.1f} %"
        name = env + "".join(f" +{x}" for x in rules) + ("" if kappa is None else f" κ={kappa:g}")
        out.append(f"{name} vs {twin}: value {100 * r['value']:+.1f} % "
                   f"[{100 * r['low']:+.1f}, {100 * r['high']:+.1f}] against {twin_text}: "
                   f"criterion {'met' if subj_ok and twin_ok else 'not met'}")
    return out


def render(rows: list[dict[str, Any]], records: list[dict[str, Any]], command: str) -> str:
    def kappa(r: dict[str, Any]) -> str:
        k = "id's own" if r["kappa"] is None else f"{r['kappa']:g}"
        return k + "".join(f" +{x}" for x in r.get("rules", ()))

    lines = [
        "# Value of emotional information to a model-free learner",
        "",
        f"Command: `{command}`. Machine: {machine()}. Generated "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "",
        "V = (R_cues - R_filtered) / (R_cues - R_random): the share of the learner's gain over "
        "random that the partners' expression and tone carry. R: mean evaluation return over "
        "seeds (deterministic policy, the same evaluation episodes for every arm); interval: 95 % "
        "percentile bootstrap over seeds, arms resampled independently. Criterion for a v1 world "
        f"(stated in advance): V >= {100 * CRITERION[0]:.0f} % with its interval above 0 on the "
        f"subjective world (PPO, default partners), V <= {100 * CRITERION[1]:.0f} % on its "
        "objective twin.",
        "",
        "Rows with view `truth` are the diagnostic (the learner told the true emotion): what "
        "perfect emotion reading would be worth, never an arm of a model comparison.",
        "",
        "| env | κ, rule changes | learner | view | partners | steps | seeds | R view | R filtered "
        "| R random "
        "| V [95 % CI] | wall per run |",
        "|---|---:|---|---|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['env']} | {kappa(r)} | {r['learner']} | {r['view']} | {r['population']} "
            f"| {r['steps']:,} | {r['seeds'][0]}+{r['seeds'][1]} | {r['return_view']:.3f} | "
            f"{r['return_filtered']:.3f} | {r['return_random']:.3f} | {100 * r['value']:+.1f} % "
            f"[{100 * r['low']:+.1f}, {100 * r['high']:+.1f}] | {r['wall_s']:.0f} s |")
    lines += ["", "## Criterion", ""] + [f"- {v}" for v in verdicts(rows)]
    lines += ["", "## Learning curves (default partners, mean over seeds)", "",
              "| env | κ, rule changes | learner | view | " + " | ".join(
                  f"{s:,}" for s in _curve_steps(records)) + " |",
              "|---|---:|---|---|" + "---:|" * len(_curve_steps(records))]
    for key, curve in _curves(records).items():
        env, k, rules, learner, view = key
        lines.append(f"| {env} | {'own' if k is None else f'{k:g}'}"
                     + "".join(f" +{x}" for x in rules) + f" | {learner} | {view} | "
                     + " | ".join(f"{v:.3f}" for v in curve) + " |")
    return "\n".join(lines) + "\n"


def _curve_steps(records: list[dict[str, Any]]) -> list[int]:
    """The env steps of the longest learning curve among ``records``."""
    if not records:
        return []
    return [s for s, _ in max(records, key=lambda r: len(r["curve"]))["curve"]]


def _curves(records: list[dict[str, Any]]) -> dict[tuple, list[float]]:
    """Mean learning curve per (env, kappa, learner, view), over seeds."""
    groups: dict[tuple, list[list[float]]] = {}
    n = len(_curve_steps(records))
    for r in records:
        c = r["cell"]
        if len(r["curve"]) == n:
            key = (c["env"], c["kappa"], tuple(c.get("rules", ())), c["learner"], view_of(c))
            groups.setdefault(key, []).append([v for _, v in r["curve"]])
    return {k: list(np.mean(v, axis=0)) for k, v in sorted(groups.items(), key=lambda kv:
                                                              tuple(str(x) for x in kv[0]))}


def plot(rows: list[dict[str, Any]], records: list[dict[str, Any]], path: Path) -> None:
    """Left: V with its interval per env and learner (default partners); right: curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.5))
    shown = [r for r in rows if r["population"] == "default"]
    labels = [f"{r['env']}\n{r['learner']} {r['view']}" + ("" if r["kappa"] is None else
                                                            f" κ={r['kappa']:g}")
              + "".join(f" +{x}" for x in r["rules"]) for r in shown]
    y = np.arange(len(shown))
    v = np.array([100 * r["value"] for r in shown])
    err = np.array([[100 * (r["value"] - r["low"]) for r in shown],
                    [100 * (r["high"] - r["value"]) for r in shown]])
    ax.barh(y, v, xerr=err, color=["tab:red" if "Objective" in r["env"] else "tab:blue"
                                   for r in shown], capsize=3)
    ax.axvline(100 * CRITERION[0], ls="--", color="grey", lw=1)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlabel("value of emotional information V (%), 95 % CI")
    ax.set_title("What filtering the cues costs (default partners)")
    steps = _curve_steps(records)
    for (env, k, rules, learner, view), curve in _curves(records).items():
        bx.plot(steps, curve, ls={"cues": "-", "filtered": "--", "truth": ":"}[view],
                label=f"{env} {learner}{'' if k is None else f' κ={k:g}'}"
                      f"{' +' + '+'.join(rules) if rules else ''} {view}")
    bx.set_xlabel("env steps")
    bx.set_ylabel("evaluation return")
    bx.set_title("Learning curves (mean over seeds)")
    bx.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(cfg: Config) -> int:
    folder = None if cfg.quick and cfg.out is None else (cfg.out or RESULTS)
    records = run_cells(cells(cfg), None if folder is None else folder / "cells", cfg.jobs)
    rows = summarise(records)
    command = command_line("benchmarks.emotion_value", cfg,
                           ("envs", "kappas", "rules", "learners", "views", "seeds", "steps",
                            "eval_episodes", "out"))
    text = render(rows, records, command)
    print(text)
    if folder is not None:
        (folder / "report.md").write_text(text)
        (folder / "results.json").write_text(json.dumps({"command": command, "rows": rows},
                                                        indent=1))
        plot(rows, records, folder / "value.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(tyro.cli(Config)))
