"""``python -m benchmarks.baselines``: the scripted reference policies on every env.

Prints, per env and partner population, the mean return of random, greedy and oracle with a 95 %
bootstrap confidence interval, the oracle's edge over greedy, agreement and walk-away rates (the
negotiation), the accuracy of the best single-step reader of the cues and the class frequencies
of the partner's emotion. ``--report`` writes every env to ``benchmarks/results/baselines.md``
(and ``.json``); ``--json`` prints JSON.

``--tune`` re-runs the tuning that produced the frozen parameters in
``lewm_rl.agents.baselines`` (``NEGOTIATION_CONFIGS``, ``PUBLIC_GOODS_CONFIGS``), on tuning seeds
that no evaluation uses (``TUNE_SEED`` and up):

* negotiation: greedy by exhaustive grid search over its opening and closing targets, its tone and
  when it secures a standing counter-offer; the oracle by coordinate ascent (two sweeps) over the
  same parameters *per emotion of the partner*, starting from the best greedy;
* public goods: greedy by coordinate ascent from 18 starts (hand-picked blind strategies and
  random draws: a single start got stuck and under-tuned greedy), the oracle by coordinate ascent
  over its per-emotion entries from the best greedy.

So the oracle's edge measures what knowing the emotion is worth to the best scripted player.
"""

from __future__ import annotations

import itertools
import json
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import tyro

import lewm_rl
from lewm_rl.agents.baselines import (
    ContributorConfig,
    NegotiatorConfig,
    ScriptedContributor,
    ScriptedNegotiator,
    _per_emotion,
    make_policy,
)
from lewm_rl.envs import GYM_ENV_IDS, affect
from lewm_rl.evaluation import interval, run_policy
from lewm_rl.metrics import class_frequencies

RESULTS = Path(__file__).parent / "results"
TUNE_SEED = 1_000_000
POPULATIONS = ("default", "volatile", "stoic")


@dataclass(frozen=True)
class BaselinesConfig:
    """Scripted reference policies."""

    env: str | None = None
    """A Gymnasium id (default with --report: every registered id)."""
    episodes: int = 1000
    """Evaluation episodes per policy and population."""
    seed: int = 0
    """Episode i is seeded seed + i (tuning uses seeds from 1,000,000)."""
    populations: tuple[str, ...] = POPULATIONS
    """Partner populations to evaluate."""
    json: bool = False
    """Print JSON instead of a table."""
    report: bool = False
    """Write benchmarks/results/baselines.md and .json for every env."""
    tune: bool = False
    """Re-run the tuning of greedy and oracle (minutes) and print the configs it finds."""


# ----------------------------------------------------------------------------------------------
# Evaluation


def evaluate_env(env_id: str, episodes: int, seed: int, populations) -> dict:
    n_actions = gym.make(env_id).action_space.n
    out = {"env": env_id, "populations": {}}
    for pop in populations:
        kw = {"population": pop}
        rows = {}
        for name in ("random", "greedy", "oracle"):
            policy = make_policy(name, env_id, seed=seed, n_actions=n_actions)
            log = run_policy(env_id, policy, episodes, seed, num_envs=min(episodes, 250),
                             env_kwargs=kw, record_cues=(name == "greedy"))
            ci = interval(np.array(log.returns))
            rows[name] = {"mean": ci.point, "low": ci.low, "high": ci.high,
                          "agreement_rate": log.agreement_rate,
                          "walk_away_rate": log.walk_away_rate}
            if name == "greedy":
                em, x, tone = log.emotion[0], log.expression[0], log.tone[0]
                traits = affect.AFFECT_POPULATIONS[pop]
                s = float(np.mean(traits.expressivity))
                rows["cues"] = {
                    "reader_accuracy": float((affect.best_single_step_reader(x, tone, s)
                                              == em).mean()),
                    "class_frequencies": class_frequencies(em, affect.NUM_EMOTIONS).tolist(),
                }
        g, o = rows["greedy"], rows["oracle"]
        rows["oracle_edge"] = o["mean"] / g["mean"] - 1
        rows["intervals_apart"] = o["low"] > g["high"] or g["low"] > o["high"]
        out["populations"][pop] = rows
    return out


def render(results: list[dict], command: str) -> str:
    names = ", ".join(f"{n} ({i})" for i, n in enumerate(affect.EMOTIONS))
    lines = [
        "# Scripted reference policies",
        "",
        f"Command: `{command}` (lewm_rl {lewm_rl.__version__}). Episodes are seeded from the "
        "evaluation seed upward; greedy and oracle were tuned on separate seeds (1,000,000 and "
        "up) by `python -m benchmarks.baselines --tune`, and their parameters are frozen in "
        "`lewm_rl.agents.baselines`. Mean return per episode with a 95 % bootstrap interval.",
        "",
        "Greedy and oracle get the same information except the emotion: neither sees the "
        "partner's values. Greedy plays its best fixed parameters (tone included); the oracle its "
        "best parameters per emotion of the partner. The reader accuracy is that of the "
        "Bayes-optimal single-step reader of the cues (expression and tone) under greedy play; "
        f"class frequencies are in label order: {names}.",
        "",
        "| env | population | random | greedy | oracle | oracle edge | intervals apart | "
        "agreement (greedy / oracle) | walk-away (greedy / oracle) | cue reader accuracy |",
        "|---|---|---|---|---|---:|---|---|---|---:|",
    ]
    for res in results:
        for pop, r in res["populations"].items():
            def f(name, r=r):
                x = r[name]
                return f"{x['mean']:.3f} [{x['low']:.3f}, {x['high']:.3f}]"

            negotiation = "Negotiation" in res["env"]
            agree = (f"{r['greedy']['agreement_rate']:.2f} / {r['oracle']['agreement_rate']:.2f}"
                     if negotiation else "-")
            walk = (f"{r['greedy']['walk_away_rate']:.2f} / {r['oracle']['walk_away_rate']:.2f}"
                    if negotiation else "-")
            lines.append(
                f"| {res['env']} | {pop} | {f('random')} | {f('greedy')} | {f('oracle')} | "
                f"{100 * r['oracle_edge']:+.1f} % | {'yes' if r['intervals_apart'] else 'no'} | "
                f"{agree} | {walk} | {r['cues']['reader_accuracy']:.3f} |")
    lines += ["", "Emotion class frequencies under greedy play:", "",
              "| env | population | " + " | ".join(affect.EMOTIONS) + " |",
              "|---|---|" + "---:|" * affect.NUM_EMOTIONS]
    for res in results:
        for pop, r in res["populations"].items():
            fr = r["cues"]["class_frequencies"]
            lines.append(f"| {res['env']} | {pop} | " + " | ".join(f"{x:.2f}" for x in fr) + " |")
    lines += ["", "## Targets", "",
              "The issue asks the oracle to beat greedy by at least 15 % on each subjective env "
              "(intervals apart) and to gain at most 3 % on each objective twin; and the best "
              "single-step cue reader to be about as accurate as in-the-wild recognisers "
              "(60-70 % on 7 classes).", ""]
    for res in results:
        r = res["populations"].get("default")
        if r is None:
            continue
        edge = 100 * r["oracle_edge"]
        if "Objective" in res["env"]:
            verdict = "met" if edge <= 3 else "missed"
            lines.append(f"- {res['env']}: oracle edge {edge:+.1f} % (target <= +3 %): "
                         f"**{verdict}**.")
        else:
            verdict = "met" if edge >= 15 and r["intervals_apart"] else "missed"
            lines.append(f"- {res['env']}: oracle edge {edge:+.1f} % (target >= +15 %, "
                         f"intervals apart): **{verdict}**.")
    lines += ["", TUNING_NOTE, ""]
    return "\n".join(lines)


TUNING_NOTE = """\
On the subjective edges: they are measured against a greedy that is *tuned* (targets, tone, when to
secure a deal), not only given its best tone; a strong blind baseline is the honest comparison.
While the rule strengths were being set on scripted policies, several principled rule sets were
tried (walk-aways ending the relationship, stronger or weaker emotion effects, shorter deals);
against a tuned greedy none reached a 15 % edge. What raised the edge were rules with a basis in
the literature: appraisal against the partner's own current goal, loss aversion, apologies that
only repair a grievance and wear out, mood-congruent judgement, and incidental moods that only the
cues reveal. The rules are frozen (v0) and are not tuned further to favour any model; the
shortfall against the 15 % target is reported, not hidden."""


# ----------------------------------------------------------------------------------------------
# Tuning


def _score(env_id: str, policy, episodes: int, seed: int = TUNE_SEED) -> float:
    return float(np.mean(run_policy(env_id, policy, episodes, seed,
                                    num_envs=min(episodes, 256)).returns))


NEGOTIATION_GRID = dict(target_open=[0.35, 0.45, 0.55, 0.65, 0.8],
                        target_close=[0.2, 0.3, 0.4, 0.5], tone=[0, 1, 2, 3],
                        secure_at=[0.2, 0.4, 0.6, 1.01])


def tune_negotiation(env_id: str, episodes: int = 300) -> dict[str, NegotiatorConfig]:
    """Greedy: exhaustive grid; oracle: per-emotion coordinate ascent from the best greedy."""
    G = NEGOTIATION_GRID
    best = None
    for to, tc, tone in itertools.product(G["target_open"], G["target_close"], G["tone"]):
        if tc > to:
            continue
        cfg = NegotiatorConfig.constant(target_open=to, target_close=tc, tone=tone)
        s = _score(env_id, ScriptedNegotiator(cfg), episodes)
        if best is None or s > best[0]:
            best = (s, cfg)
    for sa in G["secure_at"]:
        cfg = replace(best[1], secure_at=_per_emotion(sa))
        s = _score(env_id, ScriptedNegotiator(cfg), episodes)
        if s > best[0]:
            best = (s, cfg)
    greedy = best[1]
    cfg = greedy
    score = _score(env_id, ScriptedNegotiator(cfg, reads_emotion=True), episodes)
    for _ in range(2):
        for e in (affect.ANGER, affect.JOY, affect.FEAR, affect.DISGUST, affect.SURPRISE,
                  affect.SADNESS, affect.NEUTRAL):
            for name, values in G.items():
                for v in values:
                    c2 = cfg.with_emotion(e, **{name: v})
                    s = _score(env_id, ScriptedNegotiator(c2, reads_emotion=True), episodes)
                    if s > score + 1e-9:
                        score, cfg = s, c2
    return {"greedy": greedy, "oracle": cfg}


PG_GRID = dict(
    first=[0.0, 1 / 3, 2 / 3, 1.0],
    follow=[-1.0, -0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5],
    follow_min=[-1.0, -0.5, 0.0, 0.5, 1.0],
    own=[-1.0, -0.67, -0.33, 0.0, 0.33, 0.67],
    after_punished=[-0.5, 0.0, 0.17, 0.33, 0.5, 0.67, 1.0],
    endgame=[0, 1, 2, 3],
    give=[-3.0, -2.0, -1.5, -1.0, -0.67, -0.33, 0.0, 0.33, 0.67, 1.0, 1.5, 2.0, 3.0],
    punish_below=[-1.0, 0.0, 0.34, 0.67],
)
PG_SCALARS = ("first", "follow", "follow_min", "own", "after_punished", "endgame")
PG_STARTS = (
    ContributorConfig(),
    ContributorConfig(first=1.0, follow=1.5, follow_min=1.0, own=0.33, endgame=3),
    ContributorConfig(first=1.0, give=_per_emotion(1.0), follow=-0.5, own=0.33,
                      after_punished=-0.5, endgame=3),
    ContributorConfig(first=1.0, give=_per_emotion(0.67), follow=0.0, endgame=2),
    ContributorConfig(first=1.0, give=_per_emotion(0.33), follow=0.0, endgame=2),
    ContributorConfig(first=1.0, give=_per_emotion(1.0), follow=0.0, own=-1.0, endgame=2),
)


def tune_public_goods(env_id: str, episodes: int = 768, random_starts: int = 12
                      ) -> dict[str, ContributorConfig]:
    """Greedy: coordinate ascent from many starts; oracle: per-emotion ascent from the best."""

    def score(cfg, oracle):
        return _score(env_id, ScriptedContributor(cfg, reads_emotion=oracle), episodes,
                      seed=100_000)

    def ascend(cfg, best, oracle, passes=3):
        for _ in range(passes):
            changed = False
            names = (("give", "punish_below") if oracle else ())
            for name in names:
                for e in range(affect.NUM_EMOTIONS):
                    for v in PG_GRID[name]:
                        c2 = cfg.with_emotion(e, **{name: v})
                        s = score(c2, True)
                        if s > best + 1e-9:
                            best, cfg, changed = s, c2, True
            for name in PG_SCALARS + (() if oracle else ("give", "punish_below")):
                for v in PG_GRID[name]:
                    value = v if name in PG_SCALARS else _per_emotion(v)
                    c2 = replace(cfg, **{name: value})
                    s = score(c2, oracle)
                    if s > best + 1e-9:
                        best, cfg, changed = s, c2, True
            if not changed:
                break
        return cfg, best

    rng = np.random.default_rng(0)
    starts = list(PG_STARTS)
    for _ in range(random_starts):
        starts.append(ContributorConfig(
            **{k: (float(rng.choice(PG_GRID[k])) if k != "endgame"
                   else int(rng.choice(PG_GRID[k]))) for k in PG_SCALARS},
            give=_per_emotion(float(rng.choice(PG_GRID["give"]))),
            punish_below=_per_emotion(float(rng.choice(PG_GRID["punish_below"])))))
    ranked = sorted(((score(c, False), i) for i, c in enumerate(starts)), reverse=True)[:5]
    tuned = sorted((ascend(starts[i], s, False)[::-1] for s, i in ranked),
                   key=lambda x: -x[0])
    greedy = tuned[0][1]
    oracle, _ = ascend(greedy, score(greedy, True), True)
    return {"greedy": greedy, "oracle": oracle}


# ----------------------------------------------------------------------------------------------


def main(cfg: BaselinesConfig) -> int:
    if cfg.env is not None and cfg.env not in GYM_ENV_IDS:
        print(f"error: unknown env {cfg.env!r}; available: {', '.join(GYM_ENV_IDS)}",
              file=sys.stderr)
        return 2
    envs = [cfg.env] if cfg.env else list(GYM_ENV_IDS)
    if cfg.tune:
        tuned = {}
        for env_id in envs:
            fn = tune_public_goods if "PublicGoods" in env_id else tune_negotiation
            tuned[env_id] = {k: asdict(v) for k, v in fn(env_id).items()}
            print(env_id, json.dumps(tuned[env_id]), flush=True)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "baselines_tuning.json").write_text(json.dumps(tuned, indent=2))
        return 0
    results = [evaluate_env(e, cfg.episodes, cfg.seed, cfg.populations) for e in envs]
    command = "python -m benchmarks.baselines" + (" --report" if cfg.report else
                                                  f" --env {cfg.env}") + (
        f" --episodes {cfg.episodes} --seed {cfg.seed}")
    if cfg.json:
        print(json.dumps(results, indent=2))
    else:
        print(render(results, command))
    if cfg.report:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "baselines.json").write_text(json.dumps(results, indent=2))
        (RESULTS / "baselines.md").write_text(render(results, command))
    return 0


if __name__ == "__main__":
    sys.exit(main(tyro.cli(BaselinesConfig)))
