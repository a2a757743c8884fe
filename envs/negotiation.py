"""Gymnasium views of the social negotiation: one table, or a batch of tables stepped as one."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from lewm_rl.envs import _raster
from lewm_rl.envs import affect as A
from lewm_rl.envs import negotiation_core as C
from lewm_rl.envs._checks import (
    check_influence,
    check_num_envs,
    check_render_mode,
    named_kwargs,
)
from lewm_rl.envs._single import CoreEnv, first_row
from lewm_rl.envs._vector import CoreVectorEnv


def negotiation_observation_space() -> spaces.Dict:
    """The per-seat observation space (see ``SocialNegotiationEnv``)."""
    return spaces.Dict(
        {
            "task": spaces.Box(0.0, 1.0, shape=(C.TASK_DIM,), dtype=np.float32),
            "partner_act": spaces.Discrete(C.NUM_ACTS),
            "expression": spaces.Box(-A.EXPRESSION_BOUND, A.EXPRESSION_BOUND,
                                     shape=(A.NUM_EMOTIONS,), dtype=np.float32),
            "tone": spaces.Discrete(A.NUM_TONES),
        }
    )


def describe_action(action: int) -> str:
    """A human-readable description of a flat negotiation action (own perspective)."""
    if action < 0:
        return "-"
    if action == C.ACCEPT:
        return "accept"
    if action == C.WALK_AWAY:
        return "walk away"
    split, tone = divmod(int(action), A.NUM_TONES)
    keep = C.SPLITS[split]
    items = " ".join(f"{n}:{k}/{c}" for n, k, c in zip(C.ITEM_NAMES, keep, C.ITEM_COUNTS,
                                                       strict=True))
    return f"keep {items} ({A.TONES[tone]})"


def deal_header(core: C.NegotiationCore, row: int, learner: int = 0) -> str:
    """The line that opens a deal: both sides' values (the partner's are hidden from the learner;
    the transcript is for humans)."""
    mine, theirs = core.values[row, learner], core.values[row, 1 - learner]
    fmt = ", ".join
    return (f"-- deal {int(core.deal[row]) + 1}/{core.n_deals}: your values "
            f"{fmt(f'{n} {v}' for n, v in zip(C.ITEM_NAMES, mine, strict=True))}; partner's "
            f"(hidden) {fmt(f'{n} {v}' for n, v in zip(C.ITEM_NAMES, theirs, strict=True))}")


def transcript_line(core: C.NegotiationCore, row: int, learner: int = 0,
                    played: tuple[int, int] | None = None) -> str:
    """One readable line for the last step of ``row``, showing the partner's true emotion.

    Args:
        played: ``(deal, round)`` of the step just played (read before stepping); by default the
            core's current ones, which have moved on if the step closed a deal.
    """
    p = 1 - learner
    deal, rnd = played if played is not None else (int(core.deal[row]), int(core.round[row]))
    you = describe_action(int(core.last_actions[row, learner]))
    them = describe_action(int(core.last_actions[row, p]))
    em = A.EMOTIONS[int(core.emotion[row, p])]
    v = core.affect[row, p]
    out = C.OUTCOMES[int(core.outcome[row])] if core.outcome[row] else ""
    return (
        f"t={int(core.t[row]):2d} deal {deal + 1}/{core.n_deals} "
        f"round {rnd + 1}/{core.round_limit} | you: {you} | partner [{em}, "
        f"v={v[0]:+.2f} a={v[1]:+.2f} d={v[2]:+.2f}] {them}"
        + (f" | {out}" if out else "")
    )


def transcript_step(core: C.NegotiationCore, row: int, learner: int,
                    played: tuple[int, int]) -> list[str]:
    """The transcript lines of the step just played: its line, and a header if a deal opened."""
    lines = [transcript_line(core, row, learner, played)]
    if int(core.deal[row]) != played[0] and not core.done[row]:
        lines.append(deal_header(core, row, learner))
    return lines


def render_table(core: C.NegotiationCore, row: int, learner: int = 0) -> np.ndarray:
    """A small picture of the table (standing offers) and the partner's face."""
    img = _raster.canvas(120, 200)
    p = 1 - learner
    _raster.rect(img, 10, 8, 110, 112, (160, 120, 80))  # table
    colours = [(60, 90, 200), (200, 60, 60), (60, 170, 90)]
    theirs = int(core.standing[row, p])
    keep_mine = C.SPLITS[theirs] if theirs >= 0 else np.zeros(C.NUM_ITEMS, int)
    if learner == 1 and theirs >= 0:
        keep_mine = C.ITEM_COUNTS - C.SPLITS[theirs]
    for i, (count, col) in enumerate(zip(C.ITEM_COUNTS, colours, strict=True)):
        for k in range(count):
            mine = k < keep_mine[i]
            y = 85 if mine else 30
            _raster.disc(img, y + 6 * (k % 2), 25 + 30 * i + 8 * k, 6, col)
    _raster.rect(img, 58, 8, 62, 112, (90, 60, 40))  # middle line: above theirs, below yours
    _raster.face(img, 60, 155, 38, int(core.emotion[row, p]))
    progress = int(38 * core.round[row] / core.round_limit)
    _raster.rect(img, 108, 136, 114, 136 + progress, (90, 90, 90))
    return img


class SocialNegotiationEnv(CoreEnv):
    """Repeated multi-issue bargaining with an emotional partner whose feelings drive what it does.

    ## Description

    A relationship of ``n_deals`` deals (default 4) with the same partner, in the spirit of Deal or
    No Deal (Lewis et al. 2017). Each deal puts a pool of 1 book, 2 hats and 3 balls on the table.
    Both sides hold private values for the items (integers, the pool worth 10 to each side), drawn
    afresh for every deal from the public list of value vectors; the learner never sees the
    partner's values. Each step is a round: the learner proposes a split with a tone, accepts the
    partner's standing counter-offer, or walks away; the partner appraises that move, updates its
    emotion, and then answers on its new emotion (accept, counter-offer with a tone, or walk
    away). A deal ends in agreement, a walk-away, or a timeout after ``round_limit`` rounds (default
    6), and the next deal begins with the same partner, whose mood carries over.

    The partner's emotion is hidden (see ``lewm_rl.envs.affect`` for the model): core affect in
    (valence, arousal, dominance), updated by appraisal and relaxing toward a persona baseline, read
    as one of the 7 MELD categories. The learner sees only noisy cues.

    Appraisal of the learner's move (frozen v0, constants in ``negotiation_core``). The partner
    compares each offer worth ``u`` to it with its *goal* this round (its aspiration, drawn in
    [0.55, 0.70], conceding linearly to its reservation, drawn in [0.30, 0.45]):

    * valence moves by ``u - goal`` for a shortfall and by ``(u - goal) / 2.25`` for a gain (loss
      aversion, Kahneman & Tversky 1992), plus ``0.5 (u - u_prev)`` for improving on the learner's
      previous offer this deal; arousal by ``0.5`` per unit of shortfall and ``0.15`` per unit of
      gain;
    * tones: warm ``(+0.08, -0.02, 0)``; assertive ``(-0.10, +0.12, -0.04)``; apologetic repairs a
      grievance: ``(+0.5, -0.3, +0.1)`` scaled by how upset the partner is (it lifts valence at most
      back to neutral and does nothing for a content partner) and halved by each earlier apology in
      the episode, so repeated apologies lose their effect (Tomlinson, Dineen & Lewicki 2004;
      Ohtsubo & Watanabe 2009);
    * walking away: ``(-0.5, +0.4, +0.2)``; accepting with nothing to accept (a held turn):
      ``(-0.05, +0.05, 0)``; a deal closing: valence ``0.8 (u_deal - 0.4)``, arousal ``+0.2``; a
      timeout: ``(-0.2, +0.1, 0)``; time pressure adds arousal ``0.08 x`` the fraction of rounds
      used;
    * incidental emotion: the partner arrives at every deal with a mood from outside the
      negotiation (irritation, elation, anxiety or dejection, uniformly; an impulse scaled by its
      reactivity). Incidental emotions carry over into economic decisions (Lerner, Small &
      Loewenstein 2004; Forgas 1995's affect infusion model); nothing in the history explains them,
      only the cues show them.

    Behaviour (the partner's rules; each follows a finding from the negotiation literature):

    * It accepts an offer worth at least its threshold: its goal, moved by its emotion. It counters
      otherwise, or walks away with a probability set by its emotion.
    * Anger raises the threshold by 0.30, halves its speed of concession and makes it walk away with
      probability 0.5 per round: angry responders reject offers they would otherwise take and
      reach more impasses (Pillutla & Murnighan 1996; Allred et al. 1997).
    * Disgust raises the threshold by 0.15 and walks away with probability 0.2 (rejection of unfair
      offers, Sanfey et al. 2003; disgust's "expel" tendency, Lerner, Small & Loewenstein 2004).
    * Joy lowers the threshold by 0.25: positive affect makes negotiators more conceding and
      cooperative (Carnevale & Isen 1986; Forgas 1998).
    * Sadness lowers it by 0.10 (sad sellers accept less, Lerner, Small & Loewenstein 2004).
    * Fear lowers it by 0.15, doubles the speed of concession and walks away with probability 0.1:
      anxious negotiators make lower demands, respond faster and exit earlier (Brooks & Schweitzer
      2011).
    * Its counter-offer is the split worth at least its threshold that leaves the learner the most
      items (it cannot see the learner's values), so counters reveal what it values, as its
      emotional reactions to offers do (emotions as social information, Van Kleef 2009).
    * Moods persist (decay 0.05-0.2 per step toward baseline) across rounds and deals.

    ``ObjectiveNegotiation-v0`` is the objective twin: the same protocol, cues, appraisal and
    labels, but the partner decides on utility alone: its threshold is its goal, and it walks away
    from an offer worth ``u < 0.3`` with probability ``0.3 (0.3 - u) / 0.3``.

    ## Action Space

    ``Discrete(98)``: actions ``0..95`` offer split ``a // 4`` in tone ``a % 4`` (tones: neutral,
    warm, assertive, apologetic); a split is the number of books (0-1), hats (0-2) and balls (0-3)
    the learner keeps, enumerated in ``negotiation_core.SPLITS``. ``96`` accepts the partner's
    standing counter-offer (with none standing it holds the turn); ``97`` walks away from the deal.

    ## Observation Space

    ``Dict``:

    * ``task``: ``Box(0, 1, (18,))``: own item values / 10, item counts / 3, the learner's standing
      offer (fraction of each item kept) and a flag, the partner's standing counter-offer (fraction
      of each item it leaves the learner) and a flag, the learner's utility of that counter-offer,
      round / round_limit, deal / n_deals, the learner's utility of the last closed deal.
    * ``partner_act``: ``Discrete(4)``: what the partner did last (none, counter, accept, walk
      away).
    * ``expression``: ``Box(-8, 8, (7,))``: the partner's noisy facial expression, one channel per
      emotion, scaled by its expressivity, with Gaussian noise of std 0.85 (clipped at +-8).
    * ``tone``: ``Discrete(4)``: the tone of the partner's last message (its emotion's tone with
      probability 0.7).

    The emotion itself is never observed.

    ## Rewards

    At the end of each deal, the learner's utility of the agreed split (its value of the items it
    keeps / 10, in [0, 1]); 0 on walk-away or timeout, and 0 on every other step. An episode's
    return is in ``[0, n_deals]``.

    ## Starting State

    A persona is drawn from ``population``: baseline affect, reactivity, decay and expressivity (see
    ``lewm_rl.envs.affect.AFFECT_POPULATIONS``), and aspiration and reservation. The partner's
    affect starts at its baseline. Values of the first deal are drawn.

    ## Episode End

    Terminates after the last deal closes (at most ``n_deals * round_limit`` = 24 steps with the
    defaults). The registry sets no time limit of its own, so the bound
    follows ``n_deals`` and ``round_limit``.

    ## Labels

    ``emotion_space`` is ``Discrete(7)`` with names ``emotion_names`` (MELD order). Each step's
    ``info`` carries ``emotion`` (the partner's true label after this step), ``emotion_annotated``
    (passed through the annotator noise model), ``affect`` (valence, arousal, dominance),
    ``partner_act`` and ``deal_outcome`` (ongoing, agreement, walk_away, timeout; names in
    ``negotiation_core.OUTCOMES``). Labels are training targets only: an acting agent must never
    read them.

    ## Arguments

    * ``population``: ``"default"`` (training), ``"volatile"`` or ``"stoic"`` (held out).
    * ``annotation_noise``: probability that an annotated label is wrong, in [0, 1]; default 0.1.
    * ``n_deals``, ``round_limit``: episode structure (defaults 4 and 6).
    * ``emotion_influence``: ``kappa >= 0``, how far emotion moves the partner's decisions (the
      threshold shifts, concession speeds and walk-away probabilities above, each times ``kappa``;
      see ``NegotiationCore``). ``0`` is the objective twin's behaviour, ``1`` the rules above
      (default); the objective twin accepts only ``0``.
    * ``rules``: candidate rule changes switched on by name (``negotiation_core.RULE_CHANGES``,
      each documented with the finding it follows); ``()`` (default) is v0. Experimental: no rule
      set is frozen under an id until it meets the criterion of ``benchmarks/emotion_value.py``.
    * ``render_mode``: ``"ansi"`` (a transcript line per turn, with the partner's true emotion, for
      humans) or ``"rgb_array"`` (the table and the partner's face).

    ## Version History

    * v0: initial release. Rule strengths and cue noise were set on scripted policies (random,
      greedy, oracle) and frozen before any learned model was trained: see
      ``benchmarks/results/baselines.md``. Measured later (``benchmarks/emotion_value.py``), the
      cues are worth nothing to a PPO learner in v0 (``benchmarks/results/emotion_value_v0``).
    * v1 (``SocialNegotiation-v1``): the v0 rules under the rule changes
      ``negotiation_core.V1_RULES`` (``accept_first``, ``walk_ends_relationship``,
      ``mood_decides``, ``planned_counter``; each documented in ``RULE_CHANGES``) at
      ``emotion_influence = 1``, chosen with model-free learners alone by the criterion stated in
      ``benchmarks/emotion_value.py`` before any candidate was measured. No candidate met it; v1 is
      the best one measured (``benchmarks/results/emotion_value_design/README.md`` gives its
      value). Frozen by ``tests/data/negotiation_v1_golden.npz``; v0 is unchanged.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 2}
    subjective = True
    emotion_names: tuple[str, ...] = A.EMOTIONS

    @named_kwargs
    def __init__(
        self,
        *,
        population: str = "default",
        annotation_noise: float = 0.1,
        n_deals: int = 4,
        round_limit: int = 6,
        emotion_influence: float | None = None,
        rules: tuple[str, ...] = (),
        render_mode: str | None = None,
    ) -> None:
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self.core = C.NegotiationCore(
            1, subjective=self.subjective, population=population,
            annotation_noise=annotation_noise, n_deals=n_deals, round_limit=round_limit,
            emotion_influence=check_influence(type(self), self.subjective, emotion_influence),
            rules=rules,
        )
        self.population = population
        self.observation_space = negotiation_observation_space()
        self.action_space = spaces.Discrete(C.NUM_ACTIONS)
        self.emotion_space = spaces.Discrete(A.NUM_EMOTIONS)
        self._actions = np.zeros((1, 2), dtype=np.int64)
        self._transcript: list[str] = []

    def _obs(self) -> dict[str, np.ndarray]:
        return first_row(self.core.observation(0))

    def _info(self) -> dict[str, Any]:
        return first_row(self.core.info(0))

    def _transcript_start(self) -> list[str]:
        return [
            f"new episode ({'subjective' if self.subjective else 'objective'}, population "
            f"{self.population}): partner looks {A.EMOTIONS[int(self.core.emotion[0, 1])]}",
            deal_header(self.core, 0),
        ]

    def _before_step(self) -> tuple[int, int]:
        return int(self.core.deal[0]), int(self.core.round[0])  # the round being played

    def _transcript_step(self, played: tuple[int, int]) -> list[str]:
        return transcript_step(self.core, 0, 0, played)

    def _frame(self) -> np.ndarray:
        return render_table(self.core, 0)


class ObjectiveNegotiationEnv(SocialNegotiationEnv):
    """The objective twin of ``SocialNegotiationEnv``: the same protocol, cues, appraisal and
    labels, but the partner decides on utility alone (emotions are shown and labelled yet cause
    nothing).
    ``SocialNegotiationEnv``'s docstring documents the spaces, rewards and arguments.

    ## Version History

    * v0: initial release, frozen with ``SocialNegotiation-v0``.
    * v1 (``ObjectiveNegotiation-v1``): the v1 rules (``negotiation_core.V1_RULES``) at
      ``emotion_influence = 0``, frozen with ``SocialNegotiation-v1``.
    """

    subjective = False


class SocialNegotiationVectorEnv(CoreVectorEnv):
    """``num_envs`` negotiation tables stepped as one batch (same dynamics, no loop over envs).

    Gymnasium's ``VectorEnv`` with next-step autoreset; sub-environment ``i`` of
    ``reset(seed=s)`` follows exactly ``SocialNegotiationEnv`` reset with seed ``s + i`` (see
    :class:`CoreVectorEnv`). ``infos`` holds batched ``emotion``, ``emotion_annotated``,
    ``affect``, ``partner_act`` and ``deal_outcome`` arrays.

    Args:
        num_envs: number of tables.
        population, annotation_noise, n_deals, round_limit, emotion_influence, rules: as
            ``SocialNegotiationEnv``.
        max_episode_steps: truncate episodes after this many steps (``gym.make_vec`` passes the
            registry's limit, which the natural episode end never exceeds).
    """

    subjective = True
    restart_in_step = True

    @named_kwargs
    def __init__(
        self,
        num_envs: int = 1,
        *,
        population: str = "default",
        annotation_noise: float = 0.1,
        n_deals: int = 4,
        round_limit: int = 6,
        emotion_influence: float | None = None,
        rules: tuple[str, ...] = (),
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        num_envs = check_num_envs(num_envs)
        self.core = C.NegotiationCore(
            num_envs, subjective=self.subjective, population=population,
            annotation_noise=annotation_noise, n_deals=n_deals, round_limit=round_limit,
            emotion_influence=check_influence(type(self), self.subjective, emotion_influence),
            rules=rules,
        )
        self._setup(num_envs, negotiation_observation_space(), C.NUM_ACTIONS,
                    spaces.Discrete(A.NUM_EMOTIONS), A.EMOTIONS, 2, max_episode_steps,
                    render_mode, C.ACTION_STRUCTURE, C.ACTION_FEATURES)


class ObjectiveNegotiationVectorEnv(SocialNegotiationVectorEnv):
    """Batched ``ObjectiveNegotiationEnv``."""

    subjective = False
