"""Batched dynamics of the repeated public-goods game with punishment (written once, seen thrice).

``PublicGoodsCore`` simulates ``B`` independent groups of ``N`` seats each. The Gymnasium
environment is a view with ``B = 1``, seat 0 the learner and the other seats characters; the vector
environment is the same view with ``B = num_envs``; the PettingZoo environment lets any seat be a
learner. The rules are documented on :class:`lewm_rl.envs.public_goods.PublicGoodsEnv`; the
constants below are those rules, frozen at v0 (see the env's Version History). They were set once
on scripted policies and are never changed to favour a learned model.

A round (one step) has the two stages of Fehr & Gächter's experiments. Stage 1: every seat gives
at once (learners as their action says, characters on their current emotion). Stage 2: every seat
appraises the contributions, and characters punish on the emotion this leaves them with; learners
punish whom their action named (they commit with their contribution, so for what they saw last
round). Then payoffs are paid, the punished appraise their punishment, characters may bring an
incidental mood into the next round, and the cues of the new emotions are shown. The emotion
reported in ``info`` after a step is therefore the one a character gives on in the next step, and
the one from which it appraises the learner's next contribution.
"""

from __future__ import annotations

import numpy as np

from lewm_rl.envs import affect as A

# ----------------------------------------------------------------------------------------------
# The game (Fehr & Gächter 2000, 2002: groups of 4, MPCR 0.4, punishment 1 : 3)
# ----------------------------------------------------------------------------------------------

ENDOWMENT = 12.0
"""Tokens each seat receives every round (Fehr & Gächter used 20; 12 keeps the levels whole)."""
LEVELS = np.array([0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0])
"""(L,) contribution levels, as fractions of the endowment: 0, 4, 8 or 12 tokens."""
NUM_LEVELS = len(LEVELS)
GROUP_RETURN = 1.6
"""Each token in the project pays ``GROUP_RETURN / N`` to every member: MPCR 0.4 at N = 4, as in
Fehr & Gächter (2002). Any MPCR in ``(1/N, 1)`` is a social dilemma."""
PUNISH_COST = 1.0
PUNISH_IMPACT = 3.0
"""A punishment costs the punisher 1 token and removes 3 from the target (Fehr & Gächter 2002)."""
NOBODY = -1


def default_mpcr(n_players: int) -> float:
    """The MPCR that keeps the group return at 1.6 (0.4 for 4 players)."""
    return GROUP_RETURN / n_players


def num_actions(n_players: int) -> int:
    """Size of the flat action space: contribution level x target (nobody or one of the others)."""
    return NUM_LEVELS * n_players


def action_structure(n_players: int) -> tuple[tuple[int, ...]]:
    """The flat actions as one kind of two factors (``lewm_rl.distributions.ActionStructure``):
    contribution level x target, ``level * n_players + target``."""
    return ((NUM_LEVELS, n_players),)


def encode_action(level: int | np.ndarray, target: int | np.ndarray,
                  n_players: int) -> int | np.ndarray:
    """Flat action for contribution ``level`` and ``target`` (0: nobody, k: the k-th other seat)."""
    return level * n_players + target


def decode_action(action: np.ndarray, n_players: int) -> tuple[np.ndarray, np.ndarray]:
    """Splits flat actions into (level index, relative target: 0 nobody, k the k-th other)."""
    return action // n_players, action % n_players


def other_seats(n_players: int) -> np.ndarray:
    """(N, N-1) the other seats of each seat, in seat order: relative target k is ``[s, k - 1]``."""
    return np.array([[j for j in range(n_players) if j != s] for s in range(n_players)])


def payoff_bounds(n_players: int, mpcr: float) -> tuple[float, float]:
    """Lowest and highest possible payoff of one round (tokens).

    Highest: give nothing while everyone else gives everything, punish and suffer nothing. Lowest:
    give everything while nobody else gives, punish someone and be punished by all the others.
    """
    high = ENDOWMENT + mpcr * (n_players - 1) * ENDOWMENT
    low = mpcr * ENDOWMENT - PUNISH_COST - PUNISH_IMPACT * (n_players - 1)
    return low, high


def round_payoffs(given: np.ndarray, punishes: np.ndarray, mpcr: float) -> np.ndarray:
    """Payoffs of one round.

    Args:
        given: ``(..., N)`` tokens contributed.
        punishes: ``(..., N, N)`` ``punishes[i, j]`` is 1 when seat i punishes seat j.
        mpcr: marginal per-capita return of the project.

    Returns:
        ``(..., N)`` payoffs: ``E - c_i + mpcr * sum(c) - 1 * punishments given - 3 * received``.
    """
    project = mpcr * given.sum(-1, keepdims=True)
    return (ENDOWMENT - given + project - PUNISH_COST * punishes.sum(-1)
            - PUNISH_IMPACT * punishes.sum(-2))


# ----------------------------------------------------------------------------------------------
# Appraisal (frozen v0). Impulses are (valence, arousal, dominance) before reactivity scaling.
# Contributions enter as fractions of the endowment.
# ----------------------------------------------------------------------------------------------

EXPLOITED_IMPULSE = np.array([-1.0, 0.8, 0.3])
"""Per unit of *being exploited*: the mean amount by which the others gave less than oneself. Free
riding angers those who cooperated, the more the larger the deviation (Fehr & Gächter 2002)."""
MOOD_CONGRUENCE = 1.0
"""Mood-congruent appraisal: being exploited weighs ``clip(1 - MOOD_CONGRUENCE * valence, 0, 2)``
times as much, valence taken before the round: in a good mood others' behaviour is judged more
leniently, in a bad mood more harshly (Forgas 1995's affect infusion model; Forgas & Bower 1987)."""
REFORM_IMPULSE = np.array([1.0, -0.5, 0.0])
"""Per unit of the others' mean *increase* in contribution over their own last round: seeing others
mend their ways pleases and calms (positive reciprocity, Fehr & Gächter 2000; revenge and anger are
satisfied when the offender changes, Gollwitzer & Denzler 2009). It is how a free rider repairs
the anger it caused, as an improved offer does in the negotiation."""
GUILT_IMPULSE = np.array([-0.5, -0.3, -0.4])
"""Per unit of the mean amount by which the others gave more than oneself: a guilt-like feeling
(unpleasant, deflating, submissive; nearest MELD categories sadness and fear)."""
COOPERATION_IMPULSE = np.array([0.6, 0.3, 0.3])
"""Per unit of the others' mean contribution above ``COOPERATION_REFERENCE`` (scaled to [0, 1]): a
cooperating group is pleasant (toward joy)."""
COOPERATION_REFERENCE = 0.5
PUNISHED_UNFAIR_IMPULSE = np.array([-0.3, 0.35, 0.25])
"""Per punishment received after giving at least the others' mean: felt unfair, it angers
(Hopfensitz & Reuben 2009)."""
PUNISHED_DESERVED_IMPULSE = np.array([-0.35, -0.15, -0.35])
"""Per punishment received after giving less than the others' mean: shame and guilt (Hopfensitz &
Reuben 2009), toward sadness and fear."""
INCIDENTAL_PROB = 0.10
"""Per character and round, the probability of bringing in an incidental mood from outside the
game."""
INCIDENTAL_IMPULSE = np.array(
    [
        [-0.60, 0.60, 0.30],  # irritation (toward anger, or fear for a submissive persona)
        [0.70, 0.50, 0.40],  # elation (toward joy)
        [-0.60, 0.60, -0.50],  # anxiety (toward fear)
        [-0.60, -0.30, -0.30],  # dejection (toward sadness)
    ]
)
"""Incidental moods (the same four as the negotiation's), scaled by the character's reactivity.
Incidental emotions carry over into economic decisions (Lerner, Small & Loewenstein 2004; Forgas
1995's affect infusion model), in public-goods games too (Drouvelis & Grosskopf 2016 induce anger
and happiness and find both change contributions and punishment): nothing in the group's history
explains them, only the cues show them."""

# ----------------------------------------------------------------------------------------------
# Behaviour (frozen v0): how a character's emotion changes what it does
# ----------------------------------------------------------------------------------------------

FIRST_CONTRIBUTION = 0.6
"""Contribution (fraction) before any history: first-round contributions in public-goods games are
typically 40-60 % of the endowment (Ledyard 1995; Fehr & Gächter 2000)."""
CC_SLOPE = 0.9
CC_INTERCEPT = 0.05
"""Conditional cooperation: a character gives ``0.05 + 0.9 x`` the others' mean contribution last
round (Fischbacher, Gächter & Fehr 2001; slope below 1, the self-serving bias that makes cooperation
decay without punishment, Fischbacher & Gächter 2010)."""
CONTRIBUTION_SHIFT = np.array([0.0, 0.50, 0.0, -0.50, 0.25, -0.25, 0.25])
"""(K,) shift of the contribution (fraction) by emotion (subjective env only): joy gives more and
anger less (angry subjects contribute less than happy ones, Drouvelis & Grosskopf 2016); disgust
withdraws; sadness and fear (guilt and shame after being punished, or an anxious mood) give more
(Hopfensitz & Reuben 2009; fear raises cooperation relative to anger, Chierchia et al. 2021)."""
PUNISH_PROB = np.array([0.0, 0.0, 0.0, 0.90, 0.0, 0.50, 0.0])
"""(K,) probability of punishing this round by emotion (subjective env only): anger toward free
riders is the proximate cause of altruistic punishment (Fehr & Gächter 2002); disgust at unfairness
also rejects (Sanfey et al. 2003) but less forcefully."""
RETALIATE = np.array([False, False, False, True, False, False, False])
"""(K,) emotions that turn punishment against one's own punisher (subjective env only): punished
subjects who feel angry counter-punish, those who feel guilt do not (Hopfensitz & Reuben 2009;
Nikiforakis 2008)."""
OBJECTIVE_PUNISHED_SHIFT = 0.25
"""Objective twin: a character punished last round gives 0.25 more (punished free riders raise
their contributions, Fehr & Gächter 2002), from the observed punishment alone."""
OBJECTIVE_PUNISH_SLOPE = 0.9
"""Objective twin: a character punishes the lowest contributor below itself with probability
``0.9 x`` the deviation (fraction): punishment rises with the free rider's deviation (Fehr &
Gächter 2002), from the round's contributions alone."""

(_SLOT_ROUND, _SLOT_PUNISH, _SLOT_TONE_FOLLOW, _SLOT_TONE_PICK, _SLOT_ANN_FLIP, _SLOT_ANN_PICK,
 _SLOT_MOOD, _SLOT_MOOD_KIND) = range(8)
_NUM_SLOTS = 8


class PublicGoodsCore:
    """``B`` independent groups of ``N`` seats playing the repeated public-goods game, in one batch.

    Args:
        num_groups: batch size ``B``.
        subjective: characters' behaviour depends on emotion (``PublicGoods``) or on what they
            observed alone (``ObjectivePublicGoods``); the default of ``emotion_influence``.
        emotion_influence: ``kappa >= 0``, how far emotion moves the characters' decisions: a
            contribution shifts by ``kappa * CONTRIBUTION_SHIFT[emotion]`` plus ``(1 - min(kappa,
            1))`` times the objective shift after being punished; the probability of punishing is
            ``min(1, kappa * PUNISH_PROB[emotion] + (1 - min(kappa, 1)) * p_objective)``; angry
            counter-punishment (a direction, not a dose) acts whenever ``kappa > 0``. ``kappa =
            0`` is the objective twin, ``kappa = 1`` the frozen rules.
        population: persona population of the seats.
        annotation_noise: probability that an annotated label is wrong.
        learners: ``(N,)`` which seats take actions from outside; the others are characters.
        n_rounds: rounds per episode, with the same group.
        mpcr: marginal per-capita return; default ``1.6 / N``.
        inequity_aversion: ``(alpha, beta)`` of Fehr & Schmidt (1999) applied to learner rewards
            (PettingZoo view); ``(0, 0)`` gives the plain normalised payoff.
    """

    def __init__(
        self,
        num_groups: int,
        *,
        subjective: bool = True,
        population: str = "default",
        annotation_noise: float = 0.1,
        learners: tuple[bool, ...] = (True, False, False, False),
        n_rounds: int = 20,
        mpcr: float | None = None,
        inequity_aversion: tuple[float, float] = (0.0, 0.0),
        emotion_influence: float | None = None,
    ) -> None:
        kappa = float((1.0 if subjective else 0.0) if emotion_influence is None
                      else emotion_influence)
        if not (np.isfinite(kappa) and kappa >= 0.0):
            raise ValueError(f"emotion_influence must be a finite number >= 0, got "
                             f"{emotion_influence!r}")
        N = len(learners)
        if N < 2:
            raise ValueError(f"need at least 2 players, got {N}")
        if n_rounds < 1:
            raise ValueError(f"need n_rounds >= 1, got {n_rounds}")
        if not any(learners):
            raise ValueError("at least one seat must be a learner")
        mpcr = default_mpcr(N) if mpcr is None else float(mpcr)
        if not 1.0 / N < mpcr < 1.0:
            raise ValueError(f"mpcr must be in (1/N, 1) = ({1.0 / N:.3g}, 1) to make a social "
                             f"dilemma, got {mpcr}")
        self.B = num_groups
        self.N = N
        self.emotion_influence = kappa
        self.subjective = kappa > 0.0
        # kappa = 1 gives the frozen tables bit for bit, kappa = 0 the objective rules (x + 0.0).
        self._contribution_shift = kappa * CONTRIBUTION_SHIFT
        self._punish_prob = kappa * PUNISH_PROB
        self._objective = 1.0 - min(kappa, 1.0)  # weight of the objective twin's rules
        self.traits = A.check_population(population)
        self.population = population
        self.annotation_noise = A.check_annotation_noise(annotation_noise)
        self.learners = np.array(learners, dtype=bool)
        self.characters = np.flatnonzero(~self.learners)
        self.n_rounds = n_rounds
        self.mpcr = mpcr
        self.inequity_aversion = tuple(float(x) for x in inequity_aversion)
        self.payoff_low, self.payoff_high = payoff_bounds(N, mpcr)
        self.others = other_seats(N)  # (N, N-1)
        B, z = num_groups, np.zeros
        # Personas.
        self.baseline = z((B, N, 3))
        self.reactivity = z((B, N))
        self.decay = z((B, N))
        self.expressivity = z((B, N))
        # Episode state: what happened last round, and the feelings it left.
        self.given = z((B, N))  # fraction of the endowment each seat gave last round
        self.level = z((B, N), dtype=np.int64)
        self.target = np.full((B, N), NOBODY, dtype=np.int64)  # seat each punished last round
        self.received = z((B, N), dtype=np.int64)  # punishments each received last round
        self.payoff = z((B, N))  # tokens each earned last round
        self.affect = z((B, N, 3))
        self.emotion = z((B, N), dtype=np.int64)
        self.annotated = z((B, N), dtype=np.int64)
        self.expression = z((B, N, A.NUM_EMOTIONS), dtype=np.float32)
        self.tone = z((B, N), dtype=np.int64)
        self.t = z(B, dtype=np.int64)
        self.done = np.ones(B, dtype=bool)
        self.last_actions = np.full((B, N), -1, dtype=np.int64)
        # Per-row random streams, drawn at reset from each row's generator (so a row's trajectory
        # depends only on its own seed, whatever the batch around it).
        T = n_rounds + 1
        self._u = z((B, T, N, _NUM_SLOTS))
        self._n = z((B, T, N, A.NUM_EMOTIONS))
        self._tie = z((B, T, N, N))  # tie-breaks among equally good punishment targets
        self._rows = np.arange(B)

    # ------------------------------------------------------------------------------------------
    def reset_rows(self, rows: np.ndarray, generators: list[np.random.Generator]) -> None:
        """Starts a new episode in ``rows``, drawing everything random from ``generators``."""
        N, T = self.N, self.n_rounds + 1
        for r, g in zip(rows, generators, strict=True):
            traits = self.traits.sample(g, N)
            self.baseline[r] = traits["baseline"]
            self.reactivity[r] = traits["reactivity"]
            self.decay[r] = traits["decay"]
            self.expressivity[r] = traits["expressivity"]
            self._u[r] = g.random((T, N, _NUM_SLOTS))
            self._n[r] = g.standard_normal((T, N, A.NUM_EMOTIONS))
            self._tie[r] = g.random((T, N, N))
        rows = np.asarray(rows)
        self.affect[rows] = self.baseline[rows]
        self.given[rows] = 0.0
        self.level[rows] = 0
        self.target[rows] = NOBODY
        self.received[rows] = 0
        self.payoff[rows] = 0.0
        self.t[rows] = 0
        self.done[rows] = False
        self.last_actions[rows] = -1
        self._incidental_moods(rows, 0)
        self.emotion[rows] = A.categorize(self.affect[rows])
        self._emit_cues(rows, 0)

    def _incidental_moods(self, rows: np.ndarray, t: np.ndarray | int) -> None:
        """Characters may arrive at round ``t`` with a mood from outside (learners bring none)."""
        u = self._u[rows, t]  # (R, N, slots)
        kind = np.minimum((u[..., _SLOT_MOOD_KIND] * len(INCIDENTAL_IMPULSE)).astype(int),
                          len(INCIDENTAL_IMPULSE) - 1)
        has = (u[..., _SLOT_MOOD] < INCIDENTAL_PROB) & ~self.learners  # (R, N)
        shock = np.where(has[..., None], INCIDENTAL_IMPULSE[kind], 0.0)  # (R, N, 3)
        self.affect[rows] = np.clip(
            self.affect[rows] + self.reactivity[rows, :, None] * shock, -1.0, 1.0)

    def _emit_cues(self, rows: np.ndarray, t: np.ndarray | int) -> None:
        u = self._u[rows, t]  # (R, N, slots)
        em = self.emotion[rows]
        self.expression[rows] = A.expression_cues(em, self.expressivity[rows], self._n[rows, t])
        self.annotated[rows] = A.annotate(
            em, self.annotation_noise, u[..., _SLOT_ANN_FLIP], u[..., _SLOT_ANN_PICK])
        self.tone[rows] = A.draw_tone(em, u[..., _SLOT_TONE_FOLLOW], u[..., _SLOT_TONE_PICK])

    # ------------------------------------------------------------------------------------------
    def contributions(self, rows: np.ndarray) -> np.ndarray:
        """The contribution level every seat would choose this round if it were a character.

        Subjective: conditional cooperation on last round, shifted by the current emotion.
        Objective: the same conditional cooperation, plus a shift after being punished.

        Returns:
            ``(R, N)`` level indices.
        """
        N = self.N
        u = self._u[rows, self.t[rows]]  # (R, N, slots)
        given = self.given[rows]  # (R, N)
        others_mean = (given.sum(1, keepdims=True) - given) / (N - 1)
        x = np.where((self.t[rows] == 0)[:, None], FIRST_CONTRIBUTION,
                     CC_INTERCEPT + CC_SLOPE * others_mean)
        if self.subjective:
            x = x + self._contribution_shift[self.emotion[rows]]
        if self._objective:
            x = x + self._objective * OBJECTIVE_PUNISHED_SHIFT * (self.received[rows] > 0)
        # Stochastic rounding to the levels: unbiased, so the mean level is the intended fraction.
        steps = np.clip(x, 0.0, 1.0) * (NUM_LEVELS - 1)
        return np.minimum(np.floor(steps + u[..., _SLOT_ROUND]), NUM_LEVELS - 1).astype(np.int64)

    def punishments(self, rows: np.ndarray, given: np.ndarray) -> np.ndarray:
        """Whom every seat would punish this round if it were a character, having seen ``given``.

        Subjective: on its emotion after appraising the contributions (already in
        ``self.emotion``), the lowest contributor below itself, or, in anger, last round's punisher.
        Objective: the lowest contributor below itself, with probability rising with its deviation.

        Args:
            rows: ``(R,)`` rows.
            given: ``(R, N)`` this round's contributions (fractions).

        Returns:
            ``(R, N)`` target seats, ``NOBODY`` for none.
        """
        N = self.N
        t = self.t[rows]
        u = self._u[rows, t]  # (R, N, slots)
        tie = 1e-3 * self._tie[rows, t]  # (R, N, N)
        gap = given[:, :, None] - given[:, None, :]  # (R, i, j): how much less j gave than i
        below = (gap > 1e-9) & ~np.eye(N, dtype=bool)[None]
        score = np.where(below, gap + tie, -np.inf)
        target = np.where(below.any(2), score.argmax(2), NOBODY)  # (R, N): ties at random
        if self.subjective:
            em = self.emotion[rows]
            # Counter-punishment: an angry seat punished last round turns on (one of) its punishers.
            punisher_of = self.target[rows][:, None, :] == np.arange(N)[None, :, None]  # (R, i, j)
            avenger = RETALIATE[em] & punisher_of.any(2)
            target = np.where(avenger, np.where(punisher_of, tie, -np.inf).argmax(2), target)
            p = self._punish_prob[em]
        else:
            p = 0.0
        if self._objective:
            deviation = np.maximum(gap, 0.0).max(2)  # own minus the lowest contribution
            p = np.minimum(p + self._objective * np.minimum(OBJECTIVE_PUNISH_SLOPE * deviation,
                                                            1.0), 1.0)
        return np.where((target >= 0) & (u[..., _SLOT_PUNISH] < p), target, NOBODY)

    def step(self, actions: np.ndarray) -> np.ndarray:
        """Plays one round in every row not done.

        Stage 1: every seat gives (learners as their action says, characters on their current
        emotion). Stage 2: every seat appraises the contributions; characters then punish on their
        new emotion, learners whom their action named. Stage 3: payoffs, and every seat appraises
        the punishments it received. Then incidental moods and the cues of the next round.

        Args:
            actions: ``(B, N)`` flat actions; entries for character seats are ignored.

        Returns:
            ``(B, N)`` rewards of each seat this step: the payoff normalised to [0, 1], minus the
            inequity-aversion term for learner seats when it is configured.
        """
        B, N = self.B, self.N
        reward = np.zeros((B, N))
        rows = np.flatnonzero(~self.done)
        if rows.size == 0:
            return reward
        R = rows.size
        t = self.t[rows]
        learner = self.learners[None]  # (1, N)
        level, rel = decode_action(np.where(learner, actions[rows], 0), N)
        target = np.where(rel > 0, self.others[np.arange(N)[None], np.maximum(rel - 1, 0)], NOBODY)

        # Stage 1: contributions.
        if self.characters.size:
            level = np.where(learner, level, self.contributions(rows))
        given = LEVELS[level]  # (R, N) fractions

        # Stage 2: appraisal of the contributions, then punishment.
        others_mean = (given.sum(1, keepdims=True) - given) / (N - 1)
        diff = given[:, :, None] - given[:, None, :]  # (R, i, j)
        exploited = np.maximum(diff, 0.0).sum(2) / (N - 1)
        guilt = np.maximum(-diff, 0.0).sum(2) / (N - 1)
        cooperation = np.maximum(others_mean - COOPERATION_REFERENCE, 0.0) / (
            1.0 - COOPERATION_REFERENCE)
        lenience = np.clip(1.0 - MOOD_CONGRUENCE * self.affect[rows, :, 0], 0.0, 2.0)  # (R, N)
        rise = np.maximum(given - self.given[rows], 0.0) * (t > 0)[:, None]  # (R, N)
        reform = (rise.sum(1, keepdims=True) - rise) / (N - 1)
        impulse = ((lenience * exploited)[..., None] * EXPLOITED_IMPULSE
                   + reform[..., None] * REFORM_IMPULSE
                   + guilt[..., None] * GUILT_IMPULSE
                   + cooperation[..., None] * COOPERATION_IMPULSE)
        self.affect[rows] = A.update_affect(self.affect[rows], self.baseline[rows],
                                            self.decay[rows], self.reactivity[rows], impulse)
        self.emotion[rows] = A.categorize(self.affect[rows])
        if self.characters.size:
            target = np.where(learner, target, self.punishments(rows, given))
        punishes = np.zeros((R, N, N))
        r_idx, s_idx = np.nonzero(target >= 0)
        punishes[r_idx, s_idx, target[r_idx, s_idx]] = 1.0
        received = punishes.sum(1).astype(np.int64)  # (R, N)

        # Stage 3: payoffs, and the feelings of the punished.
        payoff = round_payoffs(ENDOWMENT * given, punishes, self.mpcr)
        unfair = given >= others_mean - 1e-9
        hurt = received[..., None] * np.where(unfair[..., None], PUNISHED_UNFAIR_IMPULSE,
                                              PUNISHED_DESERVED_IMPULSE)
        self.affect[rows] = np.clip(self.affect[rows] + self.reactivity[rows, :, None] * hurt,
                                    -1.0, 1.0)

        # Book-keeping of what everyone saw this round; the next round's moods and cues.
        seat = np.arange(N)[None]
        rel = np.where(target >= 0, 1 + target - (target > seat), 0)
        self.last_actions[rows] = encode_action(level, rel, N)
        self.given[rows] = given
        self.level[rows] = level
        self.target[rows] = target
        self.received[rows] = received
        self.payoff[rows] = payoff
        self.t[rows] = t + 1
        self.done[rows] = t + 1 >= self.n_rounds
        self._incidental_moods(rows, t + 1)
        self.emotion[rows] = A.categorize(self.affect[rows])
        self._emit_cues(rows, t + 1)

        # Rewards.
        norm = (payoff - self.payoff_low) / (self.payoff_high - self.payoff_low)
        r = norm
        alpha, beta = self.inequity_aversion
        if alpha or beta:
            d = norm[:, None, :] - norm[:, :, None]  # (R, i, j): j's minus i's
            envy = np.maximum(d, 0.0).sum(2) / (N - 1)
            pity = np.maximum(-d, 0.0).sum(2) / (N - 1)
            r = np.where(learner, norm - alpha * envy - beta * pity, norm)
        reward[rows] = r
        return reward

    # ------------------------------------------------------------------------------------------
    def observation(self, seat: int,
                    rows: np.ndarray | slice = slice(None)) -> dict[str, np.ndarray]:
        """Seat ``seat``'s observation of ``rows``.

        Returns:
            ``task`` (R, 4N) float32, ``expression`` (R, N-1, 7) float32 and ``tone`` (R, N-1)
            int64: see the env docstring.
        """
        N = self.N
        rows = self._rows[rows]
        o = self.others[seat]
        R = rows.size
        task = np.zeros((R, task_dim(N)), dtype=np.float32)
        k = N - 1
        task[:, 0] = self.t[rows] / self.n_rounds
        task[:, 1] = self.given[rows, seat]
        task[:, 2:2 + k] = self.given[rows][:, o]
        task[:, 2 + k:2 + 2 * k] = self.target[rows, seat][:, None] == o[None]
        task[:, 2 + 2 * k:2 + 3 * k] = self.target[rows][:, o] == seat
        task[:, 2 + 3 * k:2 + 4 * k] = self.received[rows][:, o] / k
        task[:, 2 + 4 * k] = self.received[rows, seat] / k
        task[:, 3 + 4 * k] = np.where(
            self.t[rows] > 0,
            (self.payoff[rows, seat] - self.payoff_low) / (self.payoff_high - self.payoff_low), 0.0)
        return {
            "task": task,
            "expression": self.expression[rows][:, o],
            "tone": self.tone[rows][:, o],
        }

    def info(self, seat: int, rows: np.ndarray | slice = slice(None)) -> dict[str, np.ndarray]:
        """Labels of the other seats as seen from ``seat``: training targets, never inputs."""
        rows = self._rows[rows]
        o = self.others[seat]
        return {
            "emotion": self.emotion[rows][:, o],
            "emotion_annotated": self.annotated[rows][:, o],
            "affect": self.affect[rows][:, o].astype(np.float32),
            "payoff": self.payoff[rows, seat].copy(),
        }


def task_dim(n_players: int) -> int:
    """Length of the ``task`` vector for ``n_players`` seats."""
    return 4 * n_players


def task_fields(n_players: int) -> tuple[str, ...]:
    """Names of the ``task`` entries, in order (others numbered from 1 in seat order)."""
    k = range(1, n_players)
    return (
        ("round", "my_contribution")
        + tuple(f"contribution_{i}" for i in k)
        + tuple(f"i_punished_{i}" for i in k)
        + tuple(f"punished_me_{i}" for i in k)
        + tuple(f"punishments_on_{i}" for i in k)
        + ("punishments_on_me", "my_payoff")
    )
