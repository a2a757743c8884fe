"""``python -m benchmarks.dreamer_diagnosis``: why LEWM-Dreamer learns slowly, a suspect at a time.

Each *recipe* changes the agent or the world model from the one before it (the earlier agent,
DreamerV3's symlog two-hot reward and critic heads, an actor head that knows the action
structure, DreamerV3's small entropy bonus, an action embedding that knows it, a short imagination
horizon, pessimism over an ensemble of reward heads, an action embedding that reads the env's
description of each action, reward and continuation heads that also learn on prior-drawn
latents, replay that favours recent windows, a penalty on the disagreement of an ensemble of
state priors, a decoder whose targets are standardised per dimension and, on it, those remedies
again, the train ratio, the structured actor head, exploration, a cheaper update (bfloat16, an
8-step imagination, shorter replay windows) and a wider world model; and, as a diagnostic, the
actor-critic learning in copies of the real env, a perfect model, at several entropy bonuses and
learning rates), trained by the one loop at the default budget on ``SocialNegotiation-v1``
(LEWM; every change applies to every world-model kind alike). For each run it reports, from the
run's TensorBoard events and its final checkpoint:

* the evaluation return against the scripted references on the same evaluation seeds;
* **model exploitation**: what the world model expects the actor's mode policy to earn from each
  evaluation episode's first observation (``imagined_return``) beside what it really earns, on
  ``--episodes`` evaluation episodes;
* **where**: on the final policy's own moves in those real episodes, by kind (offer, accept, walk
  away), how often it makes them, the reward the world model predicted for each from the belief
  it was chosen in, and the reward it earned; and how long the episodes last, really and as the
  world model expected from their first observation;
* **when the model expects episodes to end**: its one-step probability of an end after each
  move, summed per episode, against the ends that happen, with the policy acting by its mode,
  by sampling and at random (the replay's first moves), and by the emotion the partner truly felt
  (read after acting, to score);
* the world model's reward error on the steps that pay and its recall of episode ends;
* the critic's error against the imagined lambda-returns and the actor's entropy over training.

Cells are shared with the other benchmarks' grid (``benchmarks.runner``), resumable. Writes
``benchmarks/results/dreamer_diagnosis/{report.md,results.json,curves.png}``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro

from benchmarks.runner import (
    GRID_ROOT,
    Cell,
    command_line,
    learning_curve,
    machine,
    run_grid,
    standard_overrides,
)
from lewm_rl.agents.dreamer import DreamerConfig
from lewm_rl.envs import EMOTIONS
from lewm_rl.train import TrainConfig
from lewm_rl.world_models import WorldModelConfig

RESULTS = Path(__file__).parent / "results" / "dreamer_diagnosis"

EARLIER_WM = {"reward_head": "mse", "action_embed": "flat", "decoder_targets": "symlog"}
EARLIER_AGENT = {"entropy": 3e-2, "actor_head": "flat", "critic_head": "mse", "horizon": 15,
                 "compute_dtype": "float32"}
"""The actor-critic before this diagnosis (its imagination horizon and precision were the defaults
until 2026-12: pinned, so that every recipe keeps its cells)."""
STANDARDISED_WM = {**EARLIER_WM, "decoder_targets": "standardised"}
"""The earlier world model with DecS's targets standardised per dimension (today's default)."""
SIMULATOR = {"imagination": "simulator"}
"""The TrainConfig change of the perfect-model diagnostics (``lewm_rl.simulator``)."""


def _lr(rate: float) -> dict[str, float]:
    """Actor and critic learning rates."""
    return {"actor_lr": rate, "critic_lr": rate}


RECIPES: dict[str, tuple[str, dict, dict]] = {
    "earlier": ("the agent before this issue: MSE reward and critic, flat actor, entropy 3e-2",
                EARLIER_WM, EARLIER_AGENT),
    "twohot": ("symlog two-hot reward and critic, zero-initialised outputs, slow-critic "
               "regulariser", {**EARLIER_WM, "reward_head": "twohot"},
               {**EARLIER_AGENT, "critic_head": "twohot"}),
    "twohot+actor": ("and the actor head knows the action structure (kind, split, tone)",
                     {**EARLIER_WM, "reward_head": "twohot"},
                     {**EARLIER_AGENT, "critic_head": "twohot", "actor_head": "structured"}),
    "twohot+actor+ent3e-4": ("and DreamerV3's entropy bonus 3e-4",
                             {**EARLIER_WM, "reward_head": "twohot"},
                             {**EARLIER_AGENT, "entropy": 3e-4, "actor_head": "structured",
                              "critic_head": "twohot"}),
    "twohot+embed": ("two-hot heads, flat actor, and EncA knows the action structure",
                     {"reward_head": "twohot", "action_embed": "structured"},
                     {**EARLIER_AGENT, "critic_head": "twohot"}),
    "earlier+h5": ("the earlier agent imagining 5 steps instead of 15 (short model rollouts from "
                   "real states, as MBPO, so that the model's errors compound less)",
                   EARLIER_WM, {**EARLIER_AGENT, "horizon": 5}),
    "earlier+pessimism": ("the earlier agent with five reward heads, each trained on its own "
                          "bootstrap resample, and the actor-critic learning from the imagined "
                          "reward minus one standard deviation of the heads (MOPO's penalty)",
                          {**EARLIER_WM, "reward_heads": 5},
                          {**EARLIER_AGENT, "pessimism": 1.0}),
    "earlier+features": ("the earlier agent whose EncA reads each action's one-hot and the "
                         "env's description of it (kind, fraction of each item an offer keeps, "
                         "tone), so that what the model learns of one offer carries over to "
                         "offers that keep similar items",
                         {**EARLIER_WM, "action_embed": "features"}, EARLIER_AGENT),
    "earlier+prior-heads": ("the earlier agent whose reward and continuation heads also learn "
                            "on latents drawn from the prior, as imagination feeds them (weight "
                            "1, latents detached), so that they expect episodes to end as often "
                            "as they do", {**EARLIER_WM, "prior_heads": 1.0}, EARLIER_AGENT),
    "earlier+recency": ("the earlier agent whose world model draws half of its replayed windows "
                        "by recency (probability proportional to 1 / (1 + age), DreamerV3's "
                        "recency selector), so that it learns what the policy's current moves "
                        "do before the policy leans on its errors about them",
                        EARLIER_WM, EARLIER_AGENT, {"replay_recency": 0.5}),
    "earlier+disagreement": ("the earlier agent with an ensemble of five state priors beside "
                             "the model's, each fitted to its own bootstrap resample, and the "
                             "actor-critic learning from the imagined reward minus the "
                             "ensemble's disagreement about each imagined step (mutual "
                             "information in nats, weight 1: MOPO's penalty on the dynamics' "
                             "uncertainty, where the policy's moves are those whose outcome the "
                             "model has seen too few times)",
                             {**EARLIER_WM, "prior_ensemble": 5},
                             {**EARLIER_AGENT, "disagreement": 1.0}),
    "earlier+disagreement0.3": ("the same with the disagreement weighed 0.3 (a bootstrap "
                                "ensemble also disagrees more where outcomes are noisy, as an "
                                "offer's are, than where they are sure, as an accept's)",
                                {**EARLIER_WM, "prior_ensemble": 5},
                                {**EARLIER_AGENT, "disagreement": 0.3}),
    "earlier+simulator": ("the earlier agent whose actor-critic rolls out in copies of the real "
                          "env instead of the world model's imagination (a perfect model of the "
                          "dynamics, its steps not counted; the actor still reads the world "
                          "model's belief): a diagnostic, not a method, that separates the "
                          "model's errors from the actor-critic's own learning",
                          EARLIER_WM, EARLIER_AGENT, SIMULATOR),
    "earlier+simulator+ent3e-3": ("the same with an entropy bonus of 3e-3 instead of 3e-2 (with "
                                  "a perfect model the actor keeps most of a uniform policy's "
                                  "entropy: does the bonus outweigh what it learns?)",
                                  EARLIER_WM, {**EARLIER_AGENT, "entropy": 3e-3}, SIMULATOR),
    "earlier+simulator+ent3e-4": ("the same with DreamerV3's entropy bonus 3e-4",
                                  EARLIER_WM, {**EARLIER_AGENT, "entropy": 3e-4}, SIMULATOR),
    "earlier+simulator+ent3e-3+lr1e-3": ("the same at entropy 3e-3 with actor and critic "
                                         "learning rates 1e-3 instead of 3e-4 (is it the "
                                         "number of updates, not the data, that it lacks?)",
                                         EARLIER_WM, {**EARLIER_AGENT, "entropy": 3e-3,
                                                      **_lr(1e-3)}, SIMULATOR),
    "earlier+simulator+ent3e-3+lr3e-3": ("the same with learning rates 3e-3",
                                         EARLIER_WM, {**EARLIER_AGENT, "entropy": 3e-3,
                                                      **_lr(3e-3)}, SIMULATOR),
    "earlier+ent3e-3": ("the earlier agent with an entropy bonus of 3e-3, in the world model's "
                        "imagination (the counterpart of earlier+simulator+ent3e-3)",
                        EARLIER_WM, {**EARLIER_AGENT, "entropy": 3e-3}),
    "earlier+ent3e-3+lr1e-3": ("the same with learning rates 1e-3, in the world model's "
                               "imagination (the counterpart of earlier+simulator+ent3e-3+lr1e-3)",
                               EARLIER_WM, {**EARLIER_AGENT, "entropy": 3e-3, **_lr(1e-3)}),
    "earlier+latent32": ("the earlier agent with DreamerV2/V3's latent shape, 32 categorical "
                         "variables of 32 classes instead of 8 of 8 (does a larger latent "
                         "keep the learner's own item values, which the default's belief "
                         "loses? benchmarks.belief_features)",
                         {**EARLIER_WM, "stoch": 32, "classes": 32}, EARLIER_AGENT),
    "earlier+standardised": ("the earlier agent with DecS's targets standardised per dimension "
                             "(does a decoder that weighs the small-valued own item values as "
                             "much as the wide fields make the belief keep them? "
                             "benchmarks.belief_features)",
                             STANDARDISED_WM, EARLIER_AGENT),
    "earlier+standardised+simulator": ("and the actor-critic learns in copies of the real env "
                                       "(with a belief that keeps the values, does a perfect "
                                       "model reach the greedy?)",
                                       STANDARDISED_WM,
                                       EARLIER_AGENT, SIMULATOR),
    "earlier+standardised+ent1e-2": ("the earlier agent with standardised targets and an "
                                     "entropy bonus of 1e-2 (between 3e-2, which keeps 3.3 "
                                     "nats, and 3e-3, which collapses onto the model's errors)",
                                     STANDARDISED_WM,
                                     {**EARLIER_AGENT, "entropy": 1e-2}),
    "standardised+disagreement": ("the earlier agent with standardised targets (whose "
                                  "actor-critic passes the greedy in the real env: "
                                  "earlier+standardised+simulator) and earlier+disagreement's "
                                  "penalty on the state priors' disagreement",
                                  {**STANDARDISED_WM, "prior_ensemble": 5},
                                  {**EARLIER_AGENT, "disagreement": 1.0}),
    "standardised+prior-heads": ("standardised targets with "
                                 "earlier+prior-heads' reward and continuation "
                                 "heads that also learn on prior-drawn latents",
                                 {**STANDARDISED_WM, "prior_heads": 1.0}, EARLIER_AGENT),
    "standardised+features": ("standardised targets with "
                              "earlier+features' EncA, which reads the env's "
                              "description of each action", {**STANDARDISED_WM,
                                                             "action_embed": "features"},
                              EARLIER_AGENT),
    "standardised+ratio256": ("standardised targets with "
                              "twice the updates per env step (train ratio 256: "
                              "is the model's error a matter of updates, not of data?)",
                              STANDARDISED_WM, EARLIER_AGENT, {"train_ratio": 256.0}),
    "standardised+ratio64": ("standardised targets with "
                             "half the updates per env step (train ratio 64: "
                             "at 256 the model expects half the episode ends that happen; does "
                             "it overfit its replay?)", STANDARDISED_WM, EARLIER_AGENT,
                             {"train_ratio": 64.0}),
    "standardised+features+disagreement": ("standardised+features with "
                                           "standardised+disagreement's penalty",
                                           {**STANDARDISED_WM, "action_embed": "features",
                                            "prior_ensemble": 5},
                                           {**EARLIER_AGENT, "disagreement": 1.0}),
    "standardised+actor": ("standardised targets with "
                           "twohot+actor's actor head, which knows the action "
                           "structure (kind, then split and tone): it starts by choosing each "
                           "kind a third of the time, where the flat head accepts 1 move in 98, "
                           "and the model, which has seen few accepts of its policy, learns "
                           "when accepting pays (the real env's policy accepts in 1 move of 10; "
                           "the imagination's never)", STANDARDISED_WM,
                           {**EARLIER_AGENT, "actor_head": "structured"}),
    "standardised+curiosity": ("standardised targets with "
                               "the state priors' disagreement as a bonus "
                               "instead of a penalty, weighed 0.3 (optimism where the model "
                               "has seen too few such moves: its world model rates the moves "
                               "that the real env's policy makes, accepts above all, below what "
                               "they earn, because its own policy never makes them: "
                               "benchmarks/results/dreamer_diagnosis/judged)",
                               {**STANDARDISED_WM, "prior_ensemble": 5},
                               {**EARLIER_AGENT, "disagreement": -0.3}),
    "standardised+explore0.1": ("standardised targets with "
                                "a tenth of the real env's training moves drawn from the "
                                "action kinds uniformly (offer, accept or walk away a third of "
                                "the time each; epsilon-greedy): the judged table shows the "
                                "model underrates the moves its policy never makes; does it "
                                "rate them right once it has seen them, offers and accepts "
                                "alike, and does the actor then find them?",
                                STANDARDISED_WM, {**EARLIER_AGENT, "explore_mix": 0.1}),
    "standardised+explore0.3": ("standardised targets with "
                                "standardised+explore0.1's exploration on three tenths of the "
                                "moves", STANDARDISED_WM, {**EARLIER_AGENT, "explore_mix": 0.3}),
    "standardised+features+explore0.1": ("standardised+explore0.1 with "
                                         "standardised+features' EncA, which reads the env's "
                                         "description of each action: exploration rates the "
                                         "accepts right and the offers still low; does a model "
                                         "that carries what it learns of one offer over to "
                                         "offers that keep similar items rate them right?",
                                         {**STANDARDISED_WM, "action_embed": "features"},
                                         {**EARLIER_AGENT, "explore_mix": 0.1}),
    "standardised+bfloat16": ("standardised targets with "
                              "the actor-critic update's matmuls in bfloat16 "
                              "(compute_dtype; heads, distributions and losses in float32): "
                              "does the faster update learn as well?", STANDARDISED_WM,
                              {**EARLIER_AGENT, "compute_dtype": "bfloat16"}),
    "standardised+bfloat16+horizon8": ("standardised+bfloat16 with "
                                       "imagined rollouts of 8 steps instead of 15 (the "
                                       "critic's value bootstraps the rest; episodes last about "
                                       "6 steps): does the update that costs half as much "
                                       "learn as well?", STANDARDISED_WM,
                                       {**EARLIER_AGENT, "compute_dtype": "bfloat16",
                                        "horizon": 8}),
    "standardised+bfloat16+horizon8+wide": ("standardised+bfloat16+horizon8 with a world model "
                                            "twice as wide (deter, hidden and embed 256 instead "
                                            "of 128; the blind model widened to match, as "
                                            "always): the gap between imagined and real returns "
                                            "is the model's error; does the capacity that the "
                                            "faster update affords shrink it?",
                                            {**STANDARDISED_WM, "deter": 256, "hidden": 256,
                                             "embed": 256},
                                            {**EARLIER_AGENT, "compute_dtype": "bfloat16",
                                             "horizon": 8}),
    "standardised+bfloat16+horizon8+batch32x16": ("standardised+bfloat16+horizon8 with "
                                                  "world-model batches of 32 windows of 16 steps "
                                                  "instead of 16 of 32 (the same steps replayed "
                                                  "per update at the same train ratio, half the "
                                                  "sequential steps; episodes last about 6): "
                                                  "does the cheaper update learn as well?",
                                                  STANDARDISED_WM,
                                                  {**EARLIER_AGENT, "compute_dtype": "bfloat16",
                                                   "horizon": 8},
                                                  {"batch_size": 32, "seq_len": 16}),
    "earlier+lr1e-3": ("the earlier agent (entropy 3e-2) with learning rates 1e-3, in the world "
                       "model's imagination", EARLIER_WM,
                       {**EARLIER_AGENT, **_lr(1e-3)}),
}
"""``name: (what it changes, WorldModelConfig fields, DreamerConfig fields[, TrainConfig
fields])``."""


@dataclass(frozen=True)
class DiagnosisConfig:
    """The diagnosis grid."""

    env: str = "SocialNegotiation-v1"
    """Gymnasium id."""
    recipes: tuple[str, ...] = tuple(RECIPES)
    """Recipes to run (see RECIPES)."""
    seeds: tuple[int, ...] = (0, 1)
    """Training seeds of every recipe."""
    one_seed: tuple[str, ...] = ("twohot+actor", "twohot+actor+ent3e-4")
    """Recipes run with the first seed only (screens; say so in the report)."""
    steps: int = 12_000
    """Env steps per run (the default training budget)."""
    eval_episodes: int = 64
    """Evaluation episodes during training."""
    episodes: int = 200
    """Evaluation episodes of the final imagination-gap check."""
    judged: tuple[str, ...] = ()
    """``ACTOR:JUDGE`` pairs of the recipes run: with each seed, ACTOR's final mode policy plays
    the evaluation episodes while JUDGE's world model follows them and rates each move
    (:func:`judged_moves`); ``X:X`` rates a run's own moves the same way."""
    jobs: int = 2
    """Cells in parallel."""
    root: str = GRID_ROOT
    """Where the runs go (not committed)."""
    out: str = str(RESULTS)
    """Folder of the report (report.md, results.json, curves.png)."""


def cells(cfg: DiagnosisConfig) -> list[tuple[str, Cell]]:
    out = []
    base = standard_overrides(cfg.steps, cfg.eval_episodes)
    for name in cfg.recipes:
        if name not in RECIPES:
            raise SystemExit(f"unknown recipe {name!r}; allowed: {', '.join(RECIPES)}")
        _, wm, agent, *train = RECIPES[name]
        overrides = base + (("wm", WorldModelConfig(**wm)), ("dreamer", DreamerConfig(**agent)))
        overrides += tuple(sorted(train[0].items())) if train else ()
        seeds = cfg.seeds[:1] if name in cfg.one_seed else cfg.seeds
        out += [(name, Cell(cfg.env, "dreamer", "lewm", s, cfg.steps, overrides)) for s in seeds]
    return out


MOVE_KINDS = ("offer", "accept", "walk")


def move_kind(actions: np.ndarray) -> np.ndarray:
    """The negotiation's flat actions as indices into ``MOVE_KINDS``."""
    from lewm_rl.envs import negotiation_core as C

    a = np.asarray(actions)
    return np.where(a == C.ACCEPT, 1, np.where(a == C.WALK_AWAY, 2, 0))


def moves_by_kind(actions: np.ndarray, predicted: np.ndarray, earned: np.ndarray
                  ) -> dict[str, dict[str, float]]:
    """Per kind of move: its share of the moves, the mean reward predicted for it and the mean
    reward it earned (kinds never made are left out)."""
    kind = move_kind(actions)
    out = {}
    for i, name in enumerate(MOVE_KINDS):
        mask = kind == i
        if mask.any():
            out[name] = {"share": float(mask.mean()), "predicted": float(predicted[mask].mean()),
                         "earned": float(earned[mask].mean())}
    return out


def endings(played: dict[str, np.ndarray], episodes: int) -> dict[str, float]:
    """How often the world model expects the episode to end one step ahead, against how often it
    does, on the moves of ``played`` (``play_episodes(..., one_step=True)``): ``predicted`` and
    ``real`` ends per episode (the sum of ``1 - c`` over the live moves, and of the real ends),
    and ``on_ends`` / ``elsewhere``, the mean predicted probability of ending on the moves that
    did end an episode and on the others; where ``played`` scores an emotion read-out (one
    partner), ``by_emotion``: for each emotion the partner truly felt when the move was made
    (read after acting, to score), the share of moves, the real and the predicted ending rate."""
    end = 1.0 - played["step_cont_predicted"]
    terminal = played["step_terminal"].astype(bool)
    out = {"predicted": float(end.sum() / episodes), "real": float(terminal.sum() / episodes),
           "on_ends": float(end[terminal].mean()) if terminal.any() else float("nan"),
           "elsewhere": float(end[~terminal].mean()) if (~terminal).any() else float("nan")}
    true = played.get("emotion_true")
    if true is not None and len(true) == len(end):  # one partner: its emotion at each move
        felt = np.asarray(true).reshape(len(end), -1)[:, 0]
        out["by_emotion"] = {EMOTIONS[k]: {"share": float(np.mean(felt == k)),
                                           "real": float(terminal[felt == k].mean()),
                                           "predicted": float(end[felt == k].mean())}
                             for k in np.unique(felt)}
    return out


def imagination_gap(run_dir: Path, episodes: int) -> dict:
    """Real and imagined returns of the run's final mode policy on ``episodes`` evaluation
    episodes (default partners), its moves by kind (:func:`moves_by_kind`), and the model's
    one-step expectation of endings (:func:`endings`) under each of ``PLAY_POLICIES``: where the
    model is right about its training data's random moves and wrong about the policy's own."""
    import torch

    from lewm_rl.runs import load_run
    from lewm_rl.train import PLAY_POLICIES, play_episodes

    torch.set_num_threads(1)
    run = load_run(run_dir)
    kwargs = {"population": run.config.population,
              "annotation_noise": run.config.annotation_noise}
    plays = {p: play_episodes(run.learners, run.config.env, kwargs, episodes,
                              filter_cues=run.config.filter_cues, one_step=True, policy=p)
             for p in PLAY_POLICIES}
    played = plays["mode"]
    real, imagined = played["returns"], played["imagined_returns"]
    return {"real": float(real.mean()), "imagined": float(imagined.mean()),
            "length": float(played["lengths"].mean()),
            "imagined_length": float(played["imagined_lengths"].mean()),
            "gap": float((imagined - real).mean()),
            "corr": float(np.corrcoef(real, imagined)[0, 1]),
            "moves": moves_by_kind(played["step_actions"], played["step_reward_predicted"],
                                   played["step_reward"]),
            "endings": {p: {**endings(v, episodes), "return": float(v["returns"].mean())}
                        for p, v in plays.items()}}


class Judged:
    """A learner for ``play_episodes`` that moves as ``actor`` does while ``judge``'s world model
    follows the same episodes, its belief updated with the moves really made: with
    ``one_step=True`` the rewards and endings ``play_episodes`` returns as predicted are the
    judge's expectations of the actor's moves. The actor draws its latents from the generator
    ``play_episodes`` passes, as when it plays alone, so its episodes are its own; the judge
    draws from its own, seeded with ``seed``."""

    def __init__(self, actor, judge, seed: int) -> None:
        import torch

        self.seats, self.wm, self.device = actor.seats, judge.wm, judge.device
        self.agent = self
        self._actor, self._judge, self._carry = actor.agent, judge.agent, None
        self._generator = torch.Generator(device=judge.device).manual_seed(seed)

    def act(self, carry, obs, is_first, explore: bool = False, generator=None):
        action, self._carry = self._actor.act(self._carry, obs, is_first, explore=explore,
                                              generator=generator)
        _, (state, _) = self._judge.act(carry, obs, is_first, explore=False,
                                        generator=self._generator)
        return action, (state, action)


def judged_moves(actor_dir: Path, judge_dir: Path, episodes: int) -> dict:
    """How one run's world model rates another run's final mode policy on ``episodes``
    evaluation episodes (default partners): the actor's real return, the judge's one-step
    expected rewards of its moves summed per episode (``predicted``, teacher-forced on the real
    observations), its moves by kind (:func:`moves_by_kind`, predicted by the judge) and the
    endings the judge expects (:func:`endings`). A model that rates a better policy's moves
    below what they earn has not learnt what they do (the data never showed it); one that rates
    them right leaves the imagination's search to blame."""
    import torch

    from lewm_rl.runs import load_run
    from lewm_rl.train import EVAL_SEED, play_episodes

    torch.set_num_threads(1)
    actor, judge = load_run(actor_dir), load_run(judge_dir)
    if len(actor.learners) != 1 or len(judge.learners) != 1:
        raise ValueError("judged_moves needs single-learner runs")
    kwargs = {"population": actor.config.population,
              "annotation_noise": actor.config.annotation_noise}
    played = play_episodes([Judged(actor.learners[0], judge.learners[0], EVAL_SEED + 4)],
                           actor.config.env, kwargs, episodes,
                           filter_cues=actor.config.filter_cues, one_step=True)
    return {"real": float(played["returns"].mean()),
            "predicted": float(played["step_reward_predicted"].sum() / episodes),
            "moves": moves_by_kind(played["step_actions"], played["step_reward_predicted"],
                                   played["step_reward"]),
            "endings": endings(played, episodes)}


def _judged(cfg: DiagnosisConfig, grid: list[tuple[str, Cell]], root: Path) -> list[dict]:
    """The :func:`judged_moves` rows of ``cfg.judged``."""
    by = {(name, cell.seed): cell for name, cell in grid}
    rows = []
    for pair in cfg.judged:
        actor, sep, judge = pair.partition(":")
        if not sep or actor not in cfg.recipes or judge not in cfg.recipes:
            raise SystemExit(f"--judged takes ACTOR:JUDGE pairs of the recipes run "
                             f"({', '.join(cfg.recipes)}), got {pair!r}")
        for seed in cfg.seeds:
            a, j = by.get((actor, seed)), by.get((judge, seed))
            if a is None or j is None or not all((root / c.name / "results.json").exists()
                                                 for c in (a, j)):
                continue
            rows.append({"actor": actor, "judge": judge, "seed": seed,
                         **judged_moves(root / a.name, root / j.name, cfg.episodes)})
    return rows


TAGS = {"entropy": "actor/entropy", "critic_error": "critic/error",
        "reward_error_paid": "world_model/reward_error_paid",
        "end_recall": "world_model/end_recall", "reward_std": "imag/reward_std",
        "disagreement": "imag/disagreement"}


def _last(root: Path, cell: Cell, tag: str) -> float:
    """Mean of the last tenth of a scalar's logged values."""
    _, v = learning_curve(root, cell, tag)
    return float(np.mean(v[-max(1, len(v) // 10):])) if len(v) else float("nan")


def main(cfg: DiagnosisConfig) -> dict:
    grid = cells(cfg)
    root = Path(cfg.root)
    failed = run_grid([c for _, c in grid], root, cfg.jobs)
    if failed:
        print(f"{len(failed)} cells failed; rerun the command to retry them", file=sys.stderr)
    refs = json.loads((root / grid[0][1].name / "references.json").read_text())["default"]
    rows = []
    for name, cell in grid:
        run_dir = root / cell.name
        if not (run_dir / "results.json").exists():
            continue
        steps, ret = learning_curve(root, cell)
        row = {"recipe": name, "seed": cell.seed, "steps": steps.tolist(), "return": ret.tolist(),
               **{k: _last(root, cell, t) for k, t in TAGS.items()},
               "entropy_steps": learning_curve(root, cell, TAGS["entropy"])[0].tolist(),
               "entropy_curve": learning_curve(root, cell, TAGS["entropy"])[1].tolist(),
               **{f"final_{k}": v for k, v in imagination_gap(run_dir, cfg.episodes).items()}}
        rows.append(row)
        print(name, cell.seed, {k: v for k, v in row.items() if k.startswith("final")},
              flush=True)
    report = {"command": command_line("benchmarks.dreamer_diagnosis", cfg,
                                      ("env", "recipes", "seeds", "one_seed", "steps",
                                       "episodes", "judged", "out")),
              "machine": machine(), "config": dataclasses.asdict(cfg),
              "references": refs, "rows": rows, "judged": _judged(cfg, grid, root)}
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown(report))
    plot(report, out / "curves.png")
    print(markdown(report))
    return report


def markdown(report: dict) -> str:
    refs = report["references"]
    cfg = report["config"]
    lines = [
        "# Why LEWM-Dreamer learns slowly: one suspect at a time",
        "",
        f"Command: `{report['command']}`. Machine: {report['machine']}. Generated "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f"LEWM-Dreamer on {cfg['env']}, {cfg['steps']:,} env steps"
        f"{' (the default budget)' if cfg['steps'] == TrainConfig().steps else ''}, the "
        "default configuration but for each recipe's changes. *Eval*: the last evaluation's "
        f"return ({cfg['eval_episodes']} evaluation episodes); *real / imagined*: the final mode "
        f"policy's return on {cfg['episodes']} evaluation episodes, and what the world model "
        "expected it to earn from each episode's first observation (gap = imagined - real, "
        "corr = their correlation over episodes); the other columns are the mean of the last "
        "tenth of the training logs. Scripted references on the first "
        f"{cfg['eval_episodes']} evaluation episodes: random {refs['random']:.3f}, greedy "
        f"{refs['greedy']:.3f}, oracle {refs['oracle']:.3f}.",
        "",
        "| recipe | seed | eval | real | imagined | gap | corr | reward error (paying steps) "
        "| end recall | critic error | actor entropy | reward heads' spread "
        "| priors' disagreement |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['recipe']} | {r['seed']} | {r['return'][-1]:.3f} | {r['final_real']:.3f} | "
            f"{r['final_imagined']:.3f} | {r['final_gap']:+.3f} | {r['final_corr']:.2f} | "
            f"{r['reward_error_paid']:.3f} | {r['end_recall']:.2f} | {r['critic_error']:.3f} | "
            f"{r['entropy']:.2f} | {_spread(r)} | {_spread(r, 'disagreement')} |")
    rows = report["rows"]
    if rows:
        gaps = [r["final_gap"] for r in rows]
        corr = max(abs(r["final_corr"]) for r in rows)
        by = {}
        for r in rows:
            by.setdefault(r["recipe"], []).append(r["final_real"])
        means = ", ".join(f"{k} {np.mean(v):.2f}" for k, v in by.items())
        which = ("every run's world model expects its policy to earn more than it does"
                 if min(gaps) > 0 else "imagined minus real returns")
        blind_to = (", and its expectation says nothing about which episodes go well "
                    f"(|corr| <= {corr:.2f}): the actor optimises the model's errors"
                    if min(gaps) > 0 and corr < 0.3 else f" (|corr| up to {corr:.2f})")
        lines += ["", f"Reading: {which} (gap {min(gaps):+.2f} to {max(gaps):+.2f}){blind_to}. "
                  f"Real return by recipe, mean over its seeds: {means}; greedy "
                  f"{refs['greedy']:.2f}."]
    if rows and all("final_moves" in r for r in rows):
        lines += ["", "Where the model is wrong: the final policy's moves in those real episodes, "
                  "by kind: share of its moves / reward the world model predicted for the move "
                  "from the belief it was chosen in / reward the move earned; and the episode's "
                  "length in steps, real / as the world model expected it from the first "
                  "observation (an episode that the model expects to last longer than it does "
                  "is one whose endings, a walk-away, it does not see coming).", "",
                  "| recipe | seed | " + " | ".join(MOVE_KINDS) + " | length |",
                  "|---|---:|" + "---|" * len(MOVE_KINDS) + "---|"]
        for r in rows:
            cells_ = _kind_cells(r["final_moves"])
            cells_.append(f"{r['final_length']:.1f} / {r['final_imagined_length']:.1f}"
                          if "final_length" in r else "-")
            lines.append(f"| {r['recipe']} | {r['seed']} | " + " | ".join(cells_) + " |")
    lines += _endings_tables(rows, cfg["episodes"])
    lines += _judged_table(report.get("judged", []), cfg["episodes"])
    lines += ["", "Recipes (each names what it changes):", ""]
    for name in cfg["recipes"]:
        one = " (one seed: a screen)" if name in cfg["one_seed"] else ""
        lines.append(f"- `{name}`{one}: {RECIPES[name][0]}.")
    return "\n".join(lines) + "\n"


def _kind_cells(moves: dict[str, dict[str, float]]) -> list[str]:
    """A row's cells of :func:`moves_by_kind`: share / predicted / earned, or never."""
    return [(f"{m['share']:.0%} / {m['predicted']:.3f} / {m['earned']:.3f}"
             if (m := moves.get(k)) else "never") for k in MOVE_KINDS]


def _judged_table(rows: list[dict], episodes: int) -> list[str]:
    """The report's table of :func:`judged_moves` (none where no pair was asked)."""
    if not rows:
        return []
    lines = ["", "How a world model rates another run's moves: the actor's final mode policy on "
             f"the same {episodes} evaluation episodes, the judge's world model following them "
             "(its belief updated with the moves made). *Real*: the actor's return; *judged*: "
             "the judge's one-step expected rewards of those moves, summed per episode; by "
             "kind: share of the moves / the judge's expected reward / the reward earned; "
             "ends: the judge's expected ends per episode / the real ones.", "",
             "| actor | judge | seed | real | judged | " + " | ".join(MOVE_KINDS) + " | ends |",
             "|---|---|---:|---:|---:|" + "---|" * len(MOVE_KINDS) + "---:|"]
    for r in rows:
        lines.append(f"| {r['actor']} | {r['judge']} | {r['seed']} | {r['real']:.3f} | "
                     f"{r['predicted']:.3f} | " + " | ".join(_kind_cells(r["moves"])) + " | "
                     f"{r['endings']['predicted']:.2f} / {r['endings']['real']:.2f} |")
    return lines


def _endings_tables(rows: list[dict], episodes: int) -> list[str]:
    """The report's tables of the endings the model expects (:func:`endings`): under each way of
    acting, and, for the mode, by the emotion the partner felt; none for rows made before them."""
    out: list[str] = []
    if rows and all("final_endings" in r for r in rows):
        pols = list(rows[0]["final_endings"])
        out += ["", "When the model expects episodes to end: the world model's one-step "
                "probability that the episode ends after each move (one draw of its prior from "
                "the belief the move was made in, as imagination makes it), summed over the "
                f"moves of the same {episodes} evaluation episodes, per episode, "
                "against the ends that happened (every episode ends once), with the policy "
                "acting by its mode (as evaluated), by sampling (as trained) or at random (as "
                "the prefill that starts the replay); and the mean predicted probability on the "
                "moves that did end an episode / on the others, and the real return of each "
                "way of acting. A model that expects fewer ends than happen under the policy "
                "(and not at random) is one whose policy has found the moves it is wrong "
                "about.", "",
                "| recipe | seed | " + " | ".join(f"{p}: predicted / real ends" for p in pols)
                + " | mode: on ends / elsewhere | " + " | ".join(f"{p} return" for p in pols)
                + " |",
                "|---|---:|" + "---:|" * (2 * len(pols) + 1)]
        for r in rows:
            e = r["final_endings"]
            out.append(
                f"| {r['recipe']} | {r['seed']} | "
                + " | ".join(f"{e[p]['predicted']:.2f} / {e[p]['real']:.2f}" for p in pols)
                + f" | {e['mode']['on_ends']:.3f} / {e['mode']['elsewhere']:.3f} | "
                + " | ".join(f"{e[p]['return']:.3f}" for p in pols) + " |")
    if rows and all("by_emotion" in r.get("final_endings", {}).get("mode", {}) for r in rows):
        names = sorted({k for r in rows for k in r["final_endings"]["mode"]["by_emotion"]},
                       key=EMOTIONS.index)
        out += ["", "Where the endings it misses come from: the mode policy's moves by the "
                "emotion the partner truly felt when each was made (labels read after acting, "
                "to score): share of the moves / the rate at which they ended the episode / "
                "the rate the world model expected.", "",
                "| recipe | seed | " + " | ".join(names) + " |",
                "|---|---:|" + "---|" * len(names)]
        for r in rows:
            by = r["final_endings"]["mode"]["by_emotion"]
            out.append(f"| {r['recipe']} | {r['seed']} | " + " | ".join(
                f"{by[k]['share']:.0%} / {by[k]['real']:.2f} / {by[k]['predicted']:.2f}"
                if k in by else "-" for k in names) + " |")
    return out


def _spread(row: dict, key: str = "reward_std") -> str:
    """An ensemble's imagined uncertainty (``reward_std``: the reward heads' standard deviation;
    ``disagreement``: the state priors'), '-' where the run has no ensemble (or was logged
    before the measure was)."""
    value = row.get(key, float("nan"))
    return "-" if not np.isfinite(value) or value == 0 else f"{value:.3f}"


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
    colours = {}
    for r in report["rows"]:
        c = colours.setdefault(r["recipe"], f"C{len(colours)}")
        label = r["recipe"] if r["seed"] == report["rows"][0]["seed"] else None
        ax.plot(r["steps"], r["return"], color=c, label=label, alpha=0.8)
        bx.plot(r["entropy_steps"], r["entropy_curve"], color=c, alpha=0.8)
    for name, style in (("greedy", "--"), ("oracle", ":"), ("random", "-.")):
        ax.axhline(report["references"][name], color="k", ls=style, lw=1, label=name)
    ax.set(xlabel="env steps", ylabel="evaluation return", title=report["config"]["env"])
    bx.set(xlabel="env steps", ylabel="actor entropy (nats)", title="actor entropy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main(tyro.cli(DiagnosisConfig))
