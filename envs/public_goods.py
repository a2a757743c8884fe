"""Gymnasium views of the repeated public-goods game: one group, or a batch of groups as one."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from lewm_rl.envs import _raster
from lewm_rl.envs import affect as A
from lewm_rl.envs import public_goods_core as C
from lewm_rl.envs._checks import (
    check_influence,
    check_num_envs,
    check_render_mode,
    named_kwargs,
)
from lewm_rl.envs._single import CoreEnv, first_row
from lewm_rl.envs._vector import CoreVectorEnv


def public_goods_observation_space(n_players: int) -> spaces.Dict:
    """The per-seat observation space (see ``PublicGoodsEnv``)."""
    k = n_players - 1
    return spaces.Dict(
        {
            "task": spaces.Box(0.0, 1.0, shape=(C.task_dim(n_players),), dtype=np.float32),
            "expression": spaces.Box(-A.EXPRESSION_BOUND, A.EXPRESSION_BOUND,
                                     shape=(k, A.NUM_EMOTIONS), dtype=np.float32),
            "tone": spaces.MultiDiscrete([A.NUM_TONES] * k),
        }
    )


def describe_action(action: int, seat: int, n_players: int) -> str:
    """A human-readable description of seat ``seat``'s flat action."""
    if action < 0:
        return "-"
    level, rel = C.decode_action(int(action), n_players)
    text = f"gives {int(round(C.LEVELS[level] * C.ENDOWMENT)):2d}"
    if rel:
        text += f", punishes P{int(C.other_seats(n_players)[seat, rel - 1])}"
    return text


def transcript_line(core: C.PublicGoodsCore, row: int, viewer: int = 0) -> str:
    """One readable line for the last round of ``row``, with every other seat's true emotion."""
    parts = [f"round {int(core.t[row]):2d}/{core.n_rounds}"]
    for s in range(core.N):
        act = describe_action(int(core.last_actions[row, s]), s, core.N)
        pay = f"earns {core.payoff[row, s]:5.1f}"
        if s == viewer:
            parts.append(f"you (P{s}): {act}, {pay}")
        else:
            v = core.affect[row, s]
            parts.append(f"P{s} {act}, {pay}, now {A.EMOTIONS[int(core.emotion[row, s])]} "
                         f"[v={v[0]:+.2f} a={v[1]:+.2f} d={v[2]:+.2f}]")
    return " | ".join(parts)


def render_group(core: C.PublicGoodsCore, row: int, viewer: int = 0) -> np.ndarray:
    """A small picture: one column per seat with its face (the viewer's framed), last round's
    contribution as a bar, and a red dot for each punishment it received."""
    N = core.N
    w = 70
    img = _raster.canvas(150, w * N)
    for s in range(N):
        x0 = s * w
        if s == viewer:
            _raster.rect(img, 4, x0 + 4, 146, x0 + w - 4, (225, 220, 205))
        _raster.face(img, 32, x0 + w // 2, 24, int(core.emotion[row, s]))
        top, bottom = 64, 124
        height = int(round((bottom - top) * core.given[row, s]))
        _raster.rect(img, top, x0 + 25, bottom, x0 + w - 25, (215, 210, 195))
        _raster.rect(img, bottom - height, x0 + 25, bottom, x0 + w - 25, (70, 130, 90))
        for k in range(int(core.received[row, s])):
            _raster.disc(img, 136, x0 + 14 + 14 * k, 5, (210, 40, 40))
    return img


class PublicGoodsEnv(CoreEnv):
    """A repeated public-goods game with costly punishment, among characters whose feelings drive
    what they give and whom they punish.

    ## Description

    ``n_players`` seats (default 4) play ``n_rounds`` rounds (default 20) in the same group, as in
    the partner treatments of Fehr & Gächter (2000, 2002). The learner holds seat 0; the other seats
    are characters. Every round each seat receives an endowment of 12 tokens. In stage 1 every seat
    gives, all at once, 0, 4, 8 or 12 tokens to a common project, which pays every member ``MPCR``
    (0.4 with 4 players: group return 1.6) per token given, so free riding pays each one and
    cooperation pays the group. In stage 2 seats punish: a punishment costs the punisher 1 token
    and the target 3 (Fehr & Gächter 2002). Characters punish after seeing this round's
    contributions, on the emotion those leave them with; the learner names its target together
    with its contribution (so it punishes for what it saw last round).

    Every seat carries an emotion (see ``lewm_rl.envs.affect`` for the model): core affect in
    (valence, arousal, dominance), moved by appraisal and relaxing toward a persona baseline, read
    as one of the 7 MELD categories. Nothing resets it during the episode, so moods carry over from
    round to round. The learner sees only noisy cues.

    Appraisal (frozen v0, constants in ``public_goods_core``; contributions as fractions of the
    endowment; the same for every seat and in both twins). After the contributions:

    * being exploited: the mean amount by which the others gave less than oneself moves affect by
      ``(-1.0, +0.8, +0.3)`` per unit. Free riding angers those who cooperated, the more the
      larger the deviation (Fehr & Gächter 2002); a persona's baseline dominance turns it into
      anger (high), disgust, or fear (low). The impulse is weighted by ``clip(1 - valence, 0,
      2)``: in a good mood others are judged leniently, in a bad one harshly (mood-congruent
      judgement, Forgas 1995's affect infusion model);
    * reform: the others' mean increase over their own last contribution moves it by
      ``(+1.0, -0.5, 0)`` per unit: anger is satisfied when the offender changes (Gollwitzer &
      Denzler 2009; positive reciprocity, Fehr & Gächter 2000). It is how a free rider repairs
      what it caused, as an improved offer does in the negotiation;
    * guilt: the mean amount by which the others gave more than oneself moves it by
      ``(-0.5, -0.3, -0.4)`` per unit (toward sadness and fear);
    * a cooperating group: the others' mean contribution above one half, scaled to [0, 1], moves it
      by ``(+0.6, +0.3, +0.3)`` per unit (toward joy).

    After the punishments, per punishment received: after giving at least the others' mean it feels
    unfair, ``(-0.3, +0.35, +0.25)`` (toward anger); after giving less, shame and guilt,
    ``(-0.35, -0.15, -0.35)`` (toward sadness and fear) (Hopfensitz & Reuben 2009). Between rounds,
    with probability 0.1 per character, an incidental mood from outside the game (irritation,
    elation, anxiety or dejection, uniformly; an impulse scaled by its reactivity). Incidental
    emotions carry over into economic decisions (Lerner, Small & Loewenstein 2004; Forgas 1995),
    in public-goods games too (Drouvelis & Grosskopf 2016); nothing in the history explains them,
    only the cues show them.

    Behaviour (the characters' rules; each follows a finding from the public-goods literature):

    * Conditional cooperation: a character gives ``0.05 + 0.9 x`` the others' mean contribution last
      round (60 % of the endowment in the first round), plus the shift of its emotion, rounded
      stochastically to a level (Fischbacher, Gächter & Fehr 2001; a slope below 1 makes cooperation
      decay unless something sustains it, Fischbacher & Gächter 2010).
    * Joy adds 0.5 to what it gives and anger removes 0.5: happy subjects contribute more than angry
      ones (Drouvelis & Grosskopf 2016). Disgust removes 0.25.
    * Sadness and fear add 0.25: punished free riders who feel guilt or shame cooperate more next
      time (Hopfensitz & Reuben 2009; Fehr & Gächter 2002), and fear raises cooperation relative to
      anger (Chierchia et al. 2021).
    * Anger punishes with probability 0.9 and disgust with 0.5 the lowest contributor of the round
      below itself (ties at random): negative emotions toward free riders are the proximate cause
      of altruistic punishment (Fehr & Gächter 2002); disgust at unfairness rejects too (Sanfey et
      al. 2003), less forcefully. Other emotions do not punish.
    * An angry character that was punished last round punishes its punisher instead: anger in the
      punished triggers counter-punishment, guilt subdues it (Hopfensitz & Reuben 2009;
      Nikiforakis 2008).

    ``ObjectivePublicGoods-v0`` is the objective twin: the same protocol, cues, appraisal and
    labels, but characters decide on what they observed alone: the same conditional cooperation,
    plus 0.25 after being punished last round, and they punish the lowest contributor below
    themselves with probability ``0.9 x`` its deviation (punishment rises with the deviation,
    Fehr & Gächter 2002). Their emotions are shown and labelled but cause nothing.

    ## Action Space

    ``Discrete(4 n_players)`` (16 with 4 players): action ``a`` gives level ``a // n_players``
    (0, 4, 8 or 12 tokens) and punishes ``a % n_players``: 0 nobody, ``k`` the ``k``-th other seat
    (seat ``k`` for the learner at seat 0). ``public_goods_core.encode_action`` builds actions.

    ## Observation Space

    ``Dict``:

    * ``task``: ``Box(0, 1, (4 n_players,))``: round / n_rounds; last round's contribution of the
      learner and of each other seat (fraction of the endowment); whom the learner punished (one-hot
      over the others); which others punished the learner; the punishments each other received /
      (n_players - 1); the punishments the learner received / (n_players - 1); the learner's payoff
      last round, normalised as the reward. Names in ``public_goods_core.task_fields``.
    * ``expression``: ``Box(-8, 8, (n_players - 1, 7))``: each other seat's noisy facial
      expression, one channel per emotion, scaled by its expressivity, with Gaussian noise of std
      0.85 (clipped to the bounds, which it reaches with negligible probability).
    * ``tone``: ``MultiDiscrete([4] * (n_players - 1))``: the tone of each other seat's message this
      round (its emotion's tone with probability 0.7; tones: neutral, warm, assertive, apologetic).

    The emotions themselves are never observed.

    ## Rewards

    Each round, the learner's payoff ``12 - c + MPCR * sum(c) - 1 * punishments given - 3 *
    punishments received`` (tokens), normalised to [0, 1] by the lowest and highest payoffs
    possible in a round: ``(payoff - low) / (high - low)`` with ``low = 12 MPCR - 1 - 3 (N - 1)``
    and ``high = 12 + 12 MPCR (N - 1)`` (-5.2 and 26.4 with the defaults). An episode's return is in
    ``[0, n_rounds]``.

    ## Starting State

    A persona is drawn for every seat from ``population``: baseline affect, reactivity, decay and
    expressivity (see ``lewm_rl.envs.affect.AFFECT_POPULATIONS``). Affect starts at the baseline
    (plus, for characters, an incidental mood with probability 0.1). Nothing has been given or
    punished yet.

    ## Episode End

    Terminates after ``n_rounds`` rounds (default 20). The registry sets no time limit of its
    own, so the bound follows ``n_rounds``.

    ## Labels

    ``emotion_space`` is ``MultiDiscrete([7] * (n_players - 1))`` with names ``emotion_names``
    (MELD order). Each step's ``info`` carries ``emotion`` (the other seats' true labels after this
    round: the emotions they give on next round, and appraise it from), ``emotion_annotated``
    (passed through the annotator noise model), ``affect`` (``(n_players - 1, 3)`` valence,
    arousal, dominance) and ``payoff`` (the learner's payoff this round, in tokens). Labels are
    training targets only: an acting agent must never read them.

    ## Arguments

    * ``population``: ``"default"`` (training), ``"volatile"`` or ``"stoic"`` (held out).
    * ``annotation_noise``: probability that an annotated label is wrong, in [0, 1]; default 0.1.
    * ``n_players``: group size (default 4); ``n_rounds``: episode length (default 20).
    * ``mpcr``: marginal per-capita return, in ``(1 / n_players, 1)``; default ``1.6 / n_players``.
    * ``emotion_influence``: ``kappa >= 0``, how far emotion moves the characters' decisions
      (contribution shifts and punishment probabilities times ``kappa``; see ``PublicGoodsCore``).
      ``0`` is the objective twin's behaviour, ``1`` the rules above (default); the objective
      twin accepts only ``0``.
    * ``render_mode``: ``"ansi"`` (a transcript line per round, with the others' true emotions, for
      humans) or ``"rgb_array"`` (faces, contributions and punishments).

    ## Version History

    * v0: initial release. Rule strengths and cue noise were set on scripted policies (random,
      greedy, oracle) and frozen before any learned model was trained.
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
        n_players: int = 4,
        n_rounds: int = 20,
        mpcr: float | None = None,
        emotion_influence: float | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self.core = C.PublicGoodsCore(
            1, subjective=self.subjective, population=population,
            annotation_noise=annotation_noise, learners=(True,) + (False,) * (n_players - 1),
            n_rounds=n_rounds, mpcr=mpcr,
            emotion_influence=check_influence(type(self), self.subjective, emotion_influence),
        )
        self.population = population
        self.n_players = n_players
        self.observation_space = public_goods_observation_space(n_players)
        self.action_space = spaces.Discrete(C.num_actions(n_players))
        self.emotion_space = spaces.MultiDiscrete([A.NUM_EMOTIONS] * (n_players - 1))
        self._actions = np.zeros((1, n_players), dtype=np.int64)
        self._transcript: list[str] = []

    def _obs(self) -> dict[str, np.ndarray]:
        return first_row(self.core.observation(0))

    def _info(self) -> dict[str, Any]:
        return first_row(self.core.info(0))

    def _transcript_start(self) -> list[str]:
        looks = ", ".join(f"P{s} {A.EMOTIONS[int(self.core.emotion[0, s])]}"
                          for s in range(1, self.n_players))
        return [f"new episode ({'subjective' if self.subjective else 'objective'}, population "
                f"{self.population}): {looks}"]

    def _transcript_step(self, before: None) -> list[str]:
        return [transcript_line(self.core, 0)]

    def _frame(self) -> np.ndarray:
        return render_group(self.core, 0)


class ObjectivePublicGoodsEnv(PublicGoodsEnv):
    """The objective twin of ``PublicGoodsEnv``: emotions are shown and labelled, but characters
    decide on what they observed alone. See ``PublicGoodsEnv`` for everything else.

    ## Version History

    * v0: initial release, frozen with ``PublicGoods-v0``.
    """

    subjective = False


class PublicGoodsVectorEnv(CoreVectorEnv):
    """``num_envs`` groups stepped as one batch (same dynamics, no Python loop over envs).

    Follows Gymnasium's ``VectorEnv`` conventions with ``AutoresetMode.NEXT_STEP``: the step after
    an episode ends resets that sub-environment. ``reset(seed=s)`` seeds sub-environment ``i`` with
    ``s + i``, so sub-environment ``i`` follows exactly the trajectory of ``PublicGoodsEnv`` reset
    with seed ``s + i``. ``infos`` holds batched ``emotion`` ``(num_envs, n_players - 1)``,
    ``emotion_annotated``, ``affect`` ``(num_envs, n_players - 1, 3)`` and ``payoff`` arrays.

    Args:
        num_envs: number of groups.
        population, annotation_noise, n_players, n_rounds, mpcr: as ``PublicGoodsEnv``.
        max_episode_steps: truncate episodes after this many steps (``gym.make_vec`` passes the
            registry's limit, which the natural episode end never exceeds).
    """

    subjective = True

    @named_kwargs
    def __init__(
        self,
        num_envs: int = 1,
        *,
        population: str = "default",
        annotation_noise: float = 0.1,
        n_players: int = 4,
        n_rounds: int = 20,
        mpcr: float | None = None,
        emotion_influence: float | None = None,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        num_envs = check_num_envs(num_envs)
        self.core = C.PublicGoodsCore(
            num_envs, subjective=self.subjective, population=population,
            annotation_noise=annotation_noise, learners=(True,) + (False,) * (n_players - 1),
            n_rounds=n_rounds, mpcr=mpcr,
            emotion_influence=check_influence(type(self), self.subjective, emotion_influence),
        )
        self.n_actions = C.num_actions(n_players)
        self._setup(num_envs, public_goods_observation_space(n_players), self.n_actions,
                    spaces.MultiDiscrete([A.NUM_EMOTIONS] * (n_players - 1)), A.EMOTIONS,
                    n_players, max_episode_steps, render_mode, C.action_structure(n_players))


class ObjectivePublicGoodsVectorEnv(PublicGoodsVectorEnv):
    """Batched ``ObjectivePublicGoodsEnv``."""

    subjective = False
