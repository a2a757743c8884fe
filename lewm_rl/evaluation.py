"""Evaluation: running a policy on fixed seeds, and confidence intervals (rliable's statistics).

Intervals are percentile bootstrap intervals from ``scipy.stats.bootstrap``: over episodes for a
scripted policy, and over seeds (runs) for learned agents, with the interquartile mean (IQM) as the
point estimate, as Agarwal et al. (2021) recommend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
from scipy import stats


def iqm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50 % of values."""
    return stats.trim_mean(np.asarray(x, dtype=float), 0.25, axis=axis)


STATISTICS: dict[str, Callable[..., np.ndarray]] = {"mean": np.mean, "iqm": iqm}


@dataclass(frozen=True)
class Interval:
    """A point estimate with a confidence interval."""

    point: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.point:.3f} [{self.low:.3f}, {self.high:.3f}]"

    def overlaps(self, other: Interval) -> bool:
        """Whether the two intervals share any value."""
        return self.low <= other.high and other.low <= self.high


def interval(
    x: np.ndarray, statistic: str = "mean", confidence: float = 0.95, seed: int = 0,
    n_resamples: int = 2000,
) -> Interval:
    """Point estimate and percentile-bootstrap confidence interval of ``statistic`` over ``x``.

    Args:
        x: ``(N,)`` samples (episodes, or runs).
        statistic: ``"mean"`` or ``"iqm"``.
        confidence: confidence level.
        seed: seed of the bootstrap resampling.
        n_resamples: bootstrap resamples.
    """
    if statistic not in STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}; allowed: {', '.join(STATISTICS)}")
    x = np.asarray(x, dtype=float)
    fn = STATISTICS[statistic]
    point = float(fn(x))
    if len(x) < 2 or np.all(x == x[0]):
        return Interval(point, point, point)
    res = stats.bootstrap(
        (x,), lambda s, axis: fn(s, axis=axis), confidence_level=confidence,
        n_resamples=n_resamples, method="percentile", rng=np.random.default_rng(seed),
    )
    return Interval(point, float(res.confidence_interval.low), float(res.confidence_interval.high))


@dataclass
class EpisodeLog:
    """What happened over a set of episodes; per-step arrays are concatenated over episodes."""

    returns: list[float] = field(default_factory=list)
    agreements: list[int] = field(default_factory=list)
    walk_aways: list[int] = field(default_factory=list)
    deals: list[int] = field(default_factory=list)
    emotion: list[np.ndarray] = field(default_factory=list)
    expression: list[np.ndarray] = field(default_factory=list)
    tone: list[np.ndarray] = field(default_factory=list)

    @property
    def agreement_rate(self) -> float:
        return float(np.sum(self.agreements) / max(np.sum(self.deals), 1))

    @property
    def walk_away_rate(self) -> float:
        return float(np.sum(self.walk_aways) / max(np.sum(self.deals), 1))


def run_policy(
    env_id: str,
    policy,
    episodes: int,
    seed: int,
    num_envs: int = 32,
    env_kwargs: dict | None = None,
    record_cues: bool = False,
) -> EpisodeLog:
    """Plays ``episodes`` episodes of ``policy`` on the batched vector env, seeds ``seed + i``.

    ``policy.act(obs, emotion)`` receives the true emotion only if ``policy.reads_emotion`` (the
    oracle); every other policy gets ``None``.
    """
    from lewm_rl.envs import negotiation_core as C

    num_envs = min(num_envs, episodes)
    env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point",
                       **(env_kwargs or {}))
    log = EpisodeLog()
    obs, info = env.reset(seed=seed)
    policy.reset(num_envs)
    ep_ret = np.zeros(num_envs)
    ep_agree = np.zeros(num_envs, dtype=int)
    ep_walk = np.zeros(num_envs, dtype=int)
    ep_deals = np.zeros(num_envs, dtype=int)
    started = num_envs
    active = np.ones(num_envs, dtype=bool)  # counting this env's current episode
    just_done = np.zeros(num_envs, dtype=bool)
    cues: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    while active.any():
        emotion = info["emotion"] if getattr(policy, "reads_emotion", False) else None
        if record_cues:
            keep = active
            # Flattened over partners: one (label, expression, tone) per partner and step.
            k = obs["expression"].shape[-1]
            cues.append((info["emotion"][keep].reshape(-1),
                         obs["expression"][keep].reshape(-1, k), obs["tone"][keep].reshape(-1)))
        action = policy.act(obs, emotion)
        obs, reward, term, trunc, info = env.step(action)
        if just_done.any():  # these envs were reset by this step (next-step autoreset)
            policy.reset_rows(np.flatnonzero(just_done))
        live = active & ~just_done
        ep_ret[live] += reward[live]
        outcome = info.get("deal_outcome")
        if outcome is not None:
            ep_agree[live] += outcome[live] == C.AGREEMENT
            ep_walk[live] += outcome[live] == C.WALKED_AWAY
            ep_deals[live] += outcome[live] != C.ONGOING
        done = live & (term | trunc)
        for i in np.flatnonzero(done):
            log.returns.append(float(ep_ret[i]))
            log.agreements.append(int(ep_agree[i]))
            log.walk_aways.append(int(ep_walk[i]))
            log.deals.append(int(ep_deals[i]))
            ep_ret[i] = ep_agree[i] = ep_walk[i] = ep_deals[i] = 0
            if started >= episodes:
                active[i] = False
            else:
                started += 1
        just_done = term | trunc
    env.close()
    if record_cues and cues:
        log.emotion = [np.concatenate([c[0] for c in cues])]
        log.expression = [np.concatenate([c[1] for c in cues])]
        log.tone = [np.concatenate([c[2] for c in cues])]
    return log


def stratified_interval(
    scores: dict[str, np.ndarray], statistic: str = "iqm", confidence: float = 0.95, seed: int = 0,
    n_resamples: int = 2000,
) -> Interval:
    """Aggregate over tasks with a stratified bootstrap (rliable's protocol).

    Each resample draws, within every task, as many runs as it has with replacement, then applies
    ``statistic`` to the pooled (normalised) scores of all tasks.

    Args:
        scores: per task, ``(runs,)`` normalised scores.
    """
    if statistic not in STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}; allowed: {', '.join(STATISTICS)}")
    fn = STATISTICS[statistic]
    tasks = [np.asarray(v, dtype=float) for v in scores.values() if len(v)]
    if not tasks:
        return Interval(float("nan"), float("nan"), float("nan"))
    point = float(fn(np.concatenate(tasks)))
    rng = np.random.default_rng(seed)
    stats_ = np.empty(n_resamples)
    for i in range(n_resamples):
        pooled = np.concatenate([t[rng.integers(0, len(t), len(t))] for t in tasks])
        stats_[i] = fn(pooled)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats_, [alpha, 1 - alpha])
    return Interval(point, float(low), float(high))


def performance_profile(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Fraction of runs whose normalised score exceeds each threshold ``tau`` (Agarwal et al.)."""
    scores = np.asarray(scores, dtype=float).ravel()
    return (scores[None, :] > np.asarray(taus)[:, None]).mean(1)


REFERENCES: tuple[str, ...] = ("random", "greedy", "oracle")
"""The scripted reference policies (``lewm_rl.agents.baselines``): reference lines, not bounds."""


def reference_returns(
    env_id: str, episodes: int, seed: int, env_kwargs: dict | None = None,
    num_envs: int | None = None,
) -> dict[str, float]:
    """Mean return of each scripted reference on the evaluation seeds ``seed + i``.

    With ``num_envs = episodes`` (the default) sub-env ``i`` plays seed ``seed + i`` once, as the
    training loop's evaluation does, so the references and a learner meet the same partners.

    Returns:
        ``{"random": ..., "greedy": ..., "oracle": ...}``; empty for an env without scripted
        references (a PettingZoo module).
    """
    per_episode = reference_episode_returns(env_id, episodes, seed, env_kwargs, num_envs)
    return {name: float(np.mean(r)) for name, r in per_episode.items()}


def reference_episode_returns(
    env_id: str, episodes: int, seed: int, env_kwargs: dict | None = None,
    num_envs: int | None = None,
) -> dict[str, np.ndarray]:
    """As :func:`reference_returns`, each reference's ``(episodes,)`` returns."""
    from lewm_rl.agents.baselines import make_policy
    from lewm_rl.envs import GYM_ENV_IDS

    if env_id not in GYM_ENV_IDS:
        return {}
    n_actions = int(gym.make(env_id).action_space.n)
    out = {}
    for name in REFERENCES:
        policy = make_policy(name, env_id, seed=0, n_actions=n_actions)
        log = run_policy(env_id, policy, episodes, seed=seed, num_envs=num_envs or episodes,
                         env_kwargs=env_kwargs)
        out[name] = np.asarray(log.returns)
    return out


def normalised(value: float, references: dict[str, float]) -> float:
    """``value`` on the scale random = 0, oracle = 1."""
    return (value - references["random"]) / max(references["oracle"] - references["random"], 1e-9)
