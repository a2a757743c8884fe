"""Batched dynamics of the bilateral social negotiation (written once, viewed three ways).

``NegotiationCore`` simulates ``B`` independent tables of two seats each. The Gymnasium
environment is a view with ``B = 1`` and seat 1 a character; the vector environment is the same
view with ``B = num_envs``; the PettingZoo environment lets either seat be a learner. The rules are
documented on :class:`lewm_rl.envs.negotiation.SocialNegotiationEnv`; the constants below are those
rules, frozen at v0 (see the env's Version History). They were set once on scripted policies and
are never changed to favour a learned model.
"""

from __future__ import annotations

import itertools

import numpy as np

from lewm_rl.envs import affect as A

# ----------------------------------------------------------------------------------------------
# The game: items, splits, values
# ----------------------------------------------------------------------------------------------

ITEM_COUNTS = np.array([1, 2, 3])
"""Counts of the three item types on the table (as in Deal or No Deal: 6 items)."""
ITEM_NAMES = ("book", "hat", "ball")
NUM_ITEMS = len(ITEM_COUNTS)
POOL_VALUE = 10
"""Each side values the whole pool at 10 (Lewis et al. 2017)."""

SPLITS = np.array(list(itertools.product(*[range(c + 1) for c in ITEM_COUNTS])))
"""(J, I) every split, as the counts seat 0 keeps; seat 1 gets ``ITEM_COUNTS - SPLITS``."""
NUM_SPLITS = len(SPLITS)
_index = {tuple(s): j for j, s in enumerate(SPLITS)}
MIRROR = np.array([_index[tuple(ITEM_COUNTS - s)] for s in SPLITS])
"""(J,) index of the same split seen from the other seat."""
ITEMS_TO_OTHER = (ITEM_COUNTS - SPLITS).sum(1)
"""(J,) how many items seat 0's split leaves to the other side."""

VALUE_VECTORS = np.array(
    [v for v in itertools.product(*[range(POOL_VALUE + 1)] * NUM_ITEMS)
     if int(np.dot(v, ITEM_COUNTS)) == POOL_VALUE]
)
"""(V, I) every private value vector with total value 10: public knowledge, as in Deal or No
Deal; which one each side holds is private."""
VALUE_PAIRS = np.array(
    [(i, j) for i in range(len(VALUE_VECTORS)) for j in range(len(VALUE_VECTORS))
     if i != j and np.all(VALUE_VECTORS[i] + VALUE_VECTORS[j] > 0)]
)
"""(P, 2) admissible (seat 0, seat 1) value pairs: different, and every item wanted by someone."""

# ----------------------------------------------------------------------------------------------
# Actions and partner acts
# ----------------------------------------------------------------------------------------------

NUM_OFFER_ACTIONS = NUM_SPLITS * A.NUM_TONES
ACCEPT = NUM_OFFER_ACTIONS
WALK_AWAY = NUM_OFFER_ACTIONS + 1
NUM_ACTIONS = NUM_OFFER_ACTIONS + 2

ACTS: tuple[str, ...] = ("none", "counter", "accept", "walk_away")
"""What the other seat did last: the emotion-driven social behaviour a world model predicts."""
ACT_NONE, ACT_OFFER, ACT_ACCEPT, ACT_WALK = range(4)
NUM_ACTS = len(ACTS)

OUTCOMES: tuple[str, ...] = ("ongoing", "agreement", "walk_away", "timeout")
"""How the step left the deal (``info['deal_outcome']``)."""
ONGOING, AGREEMENT, WALKED_AWAY, TIMED_OUT = range(4)

_STRIDES = np.cumprod(np.r_[ITEM_COUNTS[1:] + 1, 1][::-1])[::-1]


def split_index(keep: np.ndarray) -> np.ndarray:
    """Index in ``SPLITS`` of ``(..., I)`` keep vectors."""
    return (np.asarray(keep) * _STRIDES).sum(-1)

# ----------------------------------------------------------------------------------------------
# Appraisal (frozen v0). Impulses are (valence, arousal, dominance) before reactivity scaling.
# ----------------------------------------------------------------------------------------------

W_FAIR_V = 1.0  # valence per unit of own utility below what it wants this round (its goal)
LOSS_AVERSION = 2.25
"""Shortfalls weigh more than gains in appraisal (Kahneman & Tversky 1992's loss aversion): an offer
above the goal moves valence by ``W_FAIR_V / LOSS_AVERSION`` per unit."""
W_IMPROVE_V = 0.5  # valence per unit of improvement over the other's previous offer this deal
W_SHORT_A = 0.5  # arousal per unit an offer falls short of its threshold (frustration arouses)
W_GAIN_A = 0.15  # arousal per unit an offer exceeds it
TONE_IMPULSE = np.array(
    [
        [0.00, 0.00, 0.00],  # neutral
        [0.08, -0.02, 0.00],  # warm
        [-0.10, 0.12, -0.04],  # assertive: unpleasant, arousing, slightly lowers dominance
        [0.00, 0.00, 0.00],  # apologetic: see APOLOGY_IMPULSE
    ]
)
APOLOGY_IMPULSE = np.array([0.50, -0.30, 0.10])
APOLOGY_WEAR = 0.5
"""Each earlier apology in the episode halves the next one's effect (Tomlinson et al. 2004;
Ohtsubo & Watanabe 2009: cheap, repeated apologies lose credibility)."""
WALK_IMPULSE = np.array([-0.50, 0.40, 0.20])
HOLD_IMPULSE = np.array([-0.05, 0.05, 0.00])
TIMEOUT_IMPULSE = np.array([-0.20, 0.10, 0.00])
DEAL_V = 0.8  # valence per unit of own utility above DEAL_REFERENCE when a deal closes
DEAL_REFERENCE = 0.4
DEAL_AROUSAL = 0.2
W_TIME_A = 0.08  # arousal from time pressure, times the fraction of rounds used
INCIDENTAL_PROB = 1.0
INCIDENTAL_IMPULSE = np.array(
    [
        [-0.60, 0.60, 0.30],  # irritation (toward anger, or fear for a submissive persona)
        [0.70, 0.50, 0.40],  # elation (toward joy)
        [-0.60, 0.60, -0.50],  # anxiety (toward fear)
        [-0.60, -0.30, -0.30],  # dejection (toward sadness)
    ]
)
"""Incidental emotion: with probability ``INCIDENTAL_PROB`` (v0: every deal) a character arrives at
each deal with a mood from outside the negotiation (one of these impulses, uniformly, scaled by its reactivity).
Incidental emotions carry over into economic decisions (Lerner, Small & Loewenstein 2004; the affect
infusion model, Forgas 1995): the partner's history does not explain them, only its cues show them."""

# ----------------------------------------------------------------------------------------------
# Behaviour (frozen v0): how a character's emotion changes what it does
# ----------------------------------------------------------------------------------------------

ACCEPT_SHIFT = np.array([0.00, -0.25, 0.00, 0.30, -0.10, 0.15, -0.15])
"""(K,) shift of the acceptance threshold by emotion (subjective env only)."""
CONCESSION_SPEED = np.array([1.0, 1.0, 1.0, 0.5, 1.0, 1.0, 2.0])
"""(K,) multiplier on the speed of concession over rounds (subjective env only)."""
WALK_PROB = np.array([0.0, 0.0, 0.0, 0.50, 0.0, 0.20, 0.10])
"""(K,) per-round probability of walking away by emotion (subjective env only)."""
OBJECTIVE_WALK_PROB = 0.30
OBJECTIVE_WALK_POINT = 0.30
"""Objective twin: an offer worth ``u < 0.3`` to the partner is walked away from with probability
``0.3 * (0.3 - u) / 0.3``: the same rough rate as the subjective partner's, from utility alone."""
ASPIRATION = (0.55, 0.70)
RESERVATION = (0.30, 0.45)
"""Uniform ranges of a character's opening aspiration and final reservation utility."""

_SLOT_WALK, _SLOT_TONE_FOLLOW, _SLOT_TONE_PICK, _SLOT_ANN_FLIP, _SLOT_ANN_PICK = range(5)
_NUM_SLOTS = 5
_NO_OFFER = -1


def decode_action(action: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Splits flat actions into (kind, split index, tone).

    Args:
        action: ``(...)`` ints in ``[0, NUM_ACTIONS)``.

    Returns:
        kind in {ACT_OFFER, ACT_ACCEPT, ACT_WALK}, split index (own perspective) and tone.
    """
    is_offer = action < NUM_OFFER_ACTIONS
    kind = np.where(is_offer, ACT_OFFER, np.where(action == ACCEPT, ACT_ACCEPT, ACT_WALK))
    split = np.where(is_offer, action // A.NUM_TONES, 0)
    tone = np.where(is_offer, action % A.NUM_TONES, A.TONE_NEUTRAL)
    return kind, split, tone


def encode_offer(split: int | np.ndarray, tone: int | np.ndarray) -> int | np.ndarray:
    """The flat action for offering ``split`` (own perspective) in ``tone``."""
    return split * A.NUM_TONES + tone


class NegotiationCore:
    """``B`` independent two-seat negotiation tables, stepped together.

    Args:
        num_tables: batch size ``B``.
        subjective: partner behaviour depends on emotion (``SocialNegotiation``) or on utility
            alone (``ObjectiveNegotiation``).
        population: persona population of the characters.
        annotation_noise: probability that an annotated label is wrong.
        learners: ``(2,)`` which seats take actions from outside; the others are characters.
        n_deals: deals per episode, with the same partner.
        round_limit: rounds per deal before it times out.
        inequity_aversion: ``(alpha, beta)`` of Fehr & Schmidt (1999) applied to learner rewards
            (PettingZoo view); ``(0, 0)`` gives the plain normalised utility.
    """

    num_seats = 2

    def __init__(
        self,
        num_tables: int,
        *,
        subjective: bool = True,
        population: str = "default",
        annotation_noise: float = 0.1,
        learners: tuple[bool, bool] = (True, False),
        n_deals: int = 4,
        round_limit: int = 6,
        inequity_aversion: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        if n_deals < 1 or round_limit < 2:
            raise ValueError(f"need n_deals >= 1 and round_limit >= 2, got {n_deals}, {round_limit}")
        if not any(learners):
            raise ValueError("at least one seat must be a learner")
        self.B = num_tables
        self.subjective = subjective
        self.traits = A.check_population(population)
        self.population = population
        self.annotation_noise = A.check_annotation_noise(annotation_noise)
        self.learners = np.array(learners, dtype=bool)
        self.characters = np.flatnonzero(~self.learners)
        self.n_deals = n_deals
        self.round_limit = round_limit
        self.max_steps = n_deals * round_limit
        self.inequity_aversion = tuple(float(x) for x in inequity_aversion)
        B, S = num_tables, self.num_seats
        z = np.zeros
        # Personas.
        self.baseline = z((B, S, 3))
        self.reactivity = z((B, S))
        self.decay = z((B, S))
        self.expressivity = z((B, S))
        self.aspiration = z((B, S))
        self.reservation = z((B, S))
        # Episode state.
        self.affect = z((B, S, 3))
        self.emotion = z((B, S), dtype=np.int64)
        self.annotated = z((B, S), dtype=np.int64)
        self.expression = z((B, S, A.NUM_EMOTIONS), dtype=np.float32)
        self.tone = z((B, S), dtype=np.int64)  # tone of each seat's last message
        self.act = z((B, S), dtype=np.int64)  # each seat's last act
        self.standing = np.full((B, S), _NO_OFFER, dtype=np.int64)  # canonical split or -1
        self.prev_received = np.full((B, S), np.nan)  # utility of the last offer received
        self.apologies = z((B, S))  # apologies received this episode
        self.values = z((B, S, NUM_ITEMS), dtype=np.int64)
        self.utility = z((B, S, NUM_SPLITS))  # (B, S, J) each seat's utility of canonical splits
        self.last_deal_utility = z((B, S))
        self.round = z(B, dtype=np.int64)
        self.deal = z(B, dtype=np.int64)
        self.t = z(B, dtype=np.int64)
        self.done = np.ones(B, dtype=bool)
        # Per-row random streams, drawn at reset from each row's generator (so a row's trajectory
        # depends only on its own seed, whatever the batch around it).
        T = self.max_steps + 1
        self._u = z((B, T, S, _NUM_SLOTS))
        self._n = z((B, T, S, A.NUM_EMOTIONS))
        self._deal_u = z((B, n_deals, 3))
        self._persona_u = z((B, S, 2))
        # Cached per-row transcript of the last step, for rendering.
        self.last_actions = np.full((B, S), -1, dtype=np.int64)
        self.outcome = np.zeros(B, dtype=np.int64)
        self._rows = np.arange(B)
        self._mirror_seat = np.stack([np.arange(NUM_SPLITS), MIRROR])  # (S, J)
        self._keep = np.stack([SPLITS, ITEM_COUNTS - SPLITS])  # (S, J, I) canonical -> own keep

    # ------------------------------------------------------------------------------------------
    def reset_rows(self, rows: np.ndarray, generators: list[np.random.Generator]) -> None:
        """Starts a new episode in ``rows``, drawing everything random from ``generators``."""
        S, T = self.num_seats, self.max_steps + 1
        for r, g in zip(rows, generators, strict=True):
            traits = self.traits.sample(g, S)
            self.baseline[r] = traits["baseline"]
            self.reactivity[r] = traits["reactivity"]
            self.decay[r] = traits["decay"]
            self.expressivity[r] = traits["expressivity"]
            pu = g.random((S, 2))
            self.aspiration[r] = ASPIRATION[0] + (ASPIRATION[1] - ASPIRATION[0]) * pu[:, 0]
            self.reservation[r] = RESERVATION[0] + (RESERVATION[1] - RESERVATION[0]) * pu[:, 1]
            self._deal_u[r] = g.random((self.n_deals, 3))
            self._u[r] = g.random((T, S, _NUM_SLOTS))
            self._n[r] = g.standard_normal((T, S, A.NUM_EMOTIONS))
        rows = np.asarray(rows)
        self.affect[rows] = self.baseline[rows]
        self.apologies[rows] = 0.0
        self.last_deal_utility[rows] = 0.0
        self.deal[rows] = 0
        self.t[rows] = 0
        self.done[rows] = False
        self.act[rows] = ACT_NONE
        self.last_actions[rows] = -1
        self.outcome[rows] = ONGOING
        self._start_deal(rows)
        self.emotion[rows] = A.categorize(self.affect[rows])
        self._emit_cues(rows)

    def _start_deal(self, rows: np.ndarray) -> None:
        du = self._deal_u[rows, self.deal[rows]]  # (R, 3)
        pair = VALUE_PAIRS[np.minimum((du[:, 0] * len(VALUE_PAIRS)).astype(int),
                                      len(VALUE_PAIRS) - 1)]  # (R, S)
        # Incidental moods of the characters (learner seats bring none).
        kind = np.minimum((du[:, 2] * len(INCIDENTAL_IMPULSE)).astype(int),
                          len(INCIDENTAL_IMPULSE) - 1)
        has = du[:, 1] < INCIDENTAL_PROB
        for s in self.characters:
            shock = np.where(has[:, None], INCIDENTAL_IMPULSE[kind], 0.0)
            self.affect[rows, s] = np.clip(
                self.affect[rows, s] + self.reactivity[rows, s, None] * shock, -1.0, 1.0)
        self.values[rows] = VALUE_VECTORS[pair]  # (R, S, I)
        # (R, S, J): own utility of every canonical split.
        self.utility[rows] = np.einsum("rsi,sji->rsj", self.values[rows], self._keep) / POOL_VALUE
        self.standing[rows] = _NO_OFFER
        self.prev_received[rows] = np.nan
        self.round[rows] = 0

    def _emit_cues(self, rows: np.ndarray) -> None:
        t = self.t[rows]
        u = self._u[rows, t]  # (R, S, slots)
        noise = self._n[rows, t]  # (R, S, K)
        em = self.emotion[rows]
        self.expression[rows] = A.expression_cues(em, self.expressivity[rows], noise)
        self.annotated[rows] = A.annotate(
            em, self.annotation_noise, u[..., _SLOT_ANN_FLIP], u[..., _SLOT_ANN_PICK]
        )
        # Characters' messages carry a tone drawn from their emotion.
        for s in self.characters:
            fresh = self.act[rows, s] != ACT_NONE
            fresh |= self.t[rows] == 0
            drawn = A.draw_tone(em[:, s], u[:, s, _SLOT_TONE_FOLLOW], u[:, s, _SLOT_TONE_PICK])
            self.tone[rows, s] = np.where(fresh, drawn, self.tone[rows, s])

    # ------------------------------------------------------------------------------------------
    def goal(self, rows: np.ndarray, seat: int) -> np.ndarray:
        """What a character wants this round, before emotion: aspiration conceding linearly to
        reservation over the rounds. Appraisal compares offers with it, in both twins alike."""
        progress = self.round[rows] / (self.round_limit - 1)
        asp, res = self.aspiration[rows, seat], self.reservation[rows, seat]
        return asp - (asp - res) * progress

    def threshold(self, rows: np.ndarray, seat: int) -> np.ndarray:
        """A character's acceptance threshold this round: its goal, moved by its emotion in the
        subjective env (concession speed and shift), equal to its goal in the objective twin."""
        if not self.subjective:
            return self.goal(rows, seat)
        em = self.emotion[rows, seat]
        progress = np.minimum(self.round[rows] / (self.round_limit - 1) * CONCESSION_SPEED[em], 1.0)
        asp, res = self.aspiration[rows, seat], self.reservation[rows, seat]
        return asp - (asp - res) * progress + ACCEPT_SHIFT[em]

    def step(self, actions: np.ndarray) -> np.ndarray:
        """Advances every row not done by one round.

        Args:
            actions: ``(B, 2)`` flat actions; entries for character seats are ignored.

        Returns:
            ``(B, 2)`` rewards of each seat this step.
        """
        B, S = self.B, self.num_seats
        rows = np.flatnonzero(~self.done)
        reward = np.zeros((B, S))
        if rows.size == 0:
            return reward
        R = rows.size
        self.t[rows] += 1
        t = self.t[rows]
        u = self._u[rows, t]  # (R, S, slots)
        progress = self.round[rows] / (self.round_limit - 1)

        impulse = np.zeros((R, S, 3))
        impulse[:, :, 1] += W_TIME_A * progress[:, None]
        open_ = np.ones(R, dtype=bool)  # deal still open
        agreed = np.full(R, _NO_OFFER)  # canonical split agreed
        walked = np.zeros(R, dtype=bool)
        acts = np.full((R, S), ACT_NONE)
        held = np.zeros((R, S), dtype=bool)  # 'accept' with nothing to accept: a held turn
        tones = np.full((R, S), A.TONE_NEUTRAL)
        taken = np.full((R, S), -1)
        standing_before = self.standing[rows].copy()

        # Phase 1: learner seats, simultaneously, against the state they observed.
        for s in np.flatnonzero(self.learners):
            a = actions[rows, s]
            taken[:, s] = a
            kind, split, tone = decode_action(a)
            o = 1 - s
            can_accept = standing_before[:, o] != _NO_OFFER
            acc = open_ & (kind == ACT_ACCEPT) & can_accept
            hold = open_ & (kind == ACT_ACCEPT) & ~can_accept
            walk = open_ & (kind == ACT_WALK)
            offer = open_ & (kind == ACT_OFFER)
            agreed = np.where(acc, standing_before[:, o], agreed)
            walked |= walk
            canon = self._mirror_seat[s][split]
            self.standing[rows[offer], s] = canon[offer]
            acts[:, s] = np.where(acc, ACT_ACCEPT, np.where(walk, ACT_WALK,
                                  np.where(offer, ACT_OFFER, ACT_NONE)))
            tones[:, s] = tone
            held[:, s] = hold
            open_ &= ~(acc | walk)

        # Phase 2: characters appraise what the learners did, then act on their new emotion.
        for s in self.characters:
            o = 1 - s
            impulse[:, s] += self._appraise(rows, s, acts[:, o], tones[:, o], held[:, o])
            self.affect[rows, s] = A.update_affect(
                self.affect[rows, s], self.baseline[rows, s], self.decay[rows, s],
                self.reactivity[rows, s], impulse[:, s])
            impulse[:, s] = 0.0
            em = A.categorize(self.affect[rows, s])
            self.emotion[rows, s] = em
            has_offer = self.standing[rows, o] != _NO_OFFER
            u_off = np.where(has_offer, self.utility[rows, s, np.maximum(self.standing[rows, o], 0)],
                             0.0)
            if self.subjective:
                p_walk = WALK_PROB[em]
            else:
                p_walk = np.where(
                    has_offer,
                    OBJECTIVE_WALK_PROB
                    * np.clip((OBJECTIVE_WALK_POINT - u_off) / OBJECTIVE_WALK_POINT, 0.0, 1.0),
                    0.0,
                )
            walk = open_ & (u[:, s, _SLOT_WALK] < p_walk)
            tau = self.threshold(rows, s)
            acc = open_ & ~walk & has_offer & (u_off >= tau)
            counter = open_ & ~walk & ~acc
            # Counter-offer: among splits worth at least tau to itself, the one leaving the other
            # side the most items (it cannot see the other's values); ties to its own utility.
            own_u = self.utility[rows, s]  # (R, J)
            feasible = own_u >= tau[:, None]
            none = ~feasible.any(1)  # asks for more than the pool holds: keep the best split
            feasible[none] = own_u[none] >= own_u[none].max(1, keepdims=True)
            other_items = ITEMS_TO_OTHER[self._mirror_seat[s]]  # (J,) items left to seat o
            score = np.where(feasible, 100.0 * other_items + own_u, -np.inf)
            choice = score.argmax(1)
            self.standing[rows[counter], s] = choice[counter]
            agreed = np.where(acc, self.standing[rows, o], agreed)
            walked |= walk
            acts[:, s] = np.where(acc, ACT_ACCEPT, np.where(walk, ACT_WALK,
                                  np.where(counter, ACT_OFFER, ACT_NONE)))
            open_ &= ~(acc | walk)
            taken[:, s] = np.where(
                counter, encode_offer(MIRROR[choice] if s == 1 else choice, A.TONE_NEUTRAL),
                np.where(acc, ACCEPT, np.where(walk, WALK_AWAY, -1)))

        # Phase 3: learner seats appraise the others' acts of this step.
        for s in np.flatnonzero(self.learners):
            o = 1 - s
            impulse[:, s] += self._appraise(rows, s, acts[:, o], tones[:, o], held[:, o])

        # Deal resolution.
        closed_ok = agreed != _NO_OFFER
        next_round = self.round[rows] + 1
        timeout = open_ & ~walked & ~closed_ok & (next_round >= self.round_limit)
        walked &= ~closed_ok
        ended = closed_ok | walked | timeout
        deal_u = np.where(closed_ok[:, None],
                          self.utility[rows[:, None], np.arange(S)[None], np.maximum(agreed, 0)[:, None]],
                          0.0)  # (R, S)
        impulse[closed_ok] += (
            DEAL_V * (deal_u[closed_ok, :, None] - DEAL_REFERENCE) * np.array([1.0, 0.0, 0.0])
            + np.array([0.0, DEAL_AROUSAL, 0.0])
        )
        impulse[timeout] += TIMEOUT_IMPULSE
        # Learners' affect updates now; characters already updated before acting (but still feel
        # the deal's outcome).
        for s in range(S):
            if self.learners[s]:
                self.affect[rows, s] = A.update_affect(
                    self.affect[rows, s], self.baseline[rows, s], self.decay[rows, s],
                    self.reactivity[rows, s], impulse[:, s])
            else:
                self.affect[rows, s] = np.clip(
                    self.affect[rows, s] + self.reactivity[rows, s, None] * impulse[:, s], -1, 1)
        self.emotion[rows] = A.categorize(self.affect[rows])

        # Rewards.
        r = deal_u.copy()
        alpha, beta = self.inequity_aversion
        if alpha or beta:
            diff = deal_u[:, ::-1] - deal_u  # other's minus own
            r = r - alpha * np.maximum(diff, 0.0) - beta * np.maximum(-diff, 0.0)
        reward[rows] = np.where(ended[:, None], r, 0.0)

        # Book-keeping for observations (characters' tones are drawn in _emit_cues).
        for s in np.flatnonzero(self.learners):
            self.tone[rows, s] = np.where(acts[:, s] != ACT_NONE, tones[:, s], self.tone[rows, s])
        self.act[rows] = acts
        self.last_actions[rows] = taken
        self.last_deal_utility[rows] = np.where(ended[:, None], deal_u, self.last_deal_utility[rows])
        self.outcome[rows] = np.where(
            closed_ok, AGREEMENT, np.where(walked, WALKED_AWAY, np.where(timeout, TIMED_OUT, ONGOING)))
        self.round[rows] = np.where(ended, 0, next_round)
        finished = ended & (self.deal[rows] + 1 >= self.n_deals)
        self.done[rows[finished]] = True
        nxt = rows[ended & ~finished]
        if nxt.size:
            self.deal[nxt] += 1
            self._start_deal(nxt)
            self.emotion[nxt] = A.categorize(self.affect[nxt])
        self._emit_cues(rows)
        return reward

    def _appraise(self, rows: np.ndarray, s: int, other_act: np.ndarray,
                  other_tone: np.ndarray, other_held: np.ndarray) -> np.ndarray:
        """Seat ``s``'s appraisal impulse ``(R, 3)`` of the other seat's act this step."""
        o = 1 - s
        R = rows.size
        imp = np.zeros((R, 3))
        is_offer = other_act == ACT_OFFER
        st = np.maximum(self.standing[rows, o], 0)
        u = self.utility[rows, s, st]
        goal = self.goal(rows, s)  # goal congruence: against what it wants this round
        prev = self.prev_received[rows, s]
        improve = np.where(np.isnan(prev), 0.0, u - np.nan_to_num(prev))
        gap = u - goal
        gap = np.where(gap > 0, gap / LOSS_AVERSION, gap)
        imp[:, 0] += np.where(is_offer, W_FAIR_V * gap + W_IMPROVE_V * improve, 0.0)
        imp[:, 1] += np.where(
            is_offer, W_SHORT_A * np.maximum(goal - u, 0.0) + W_GAIN_A * np.maximum(u - goal, 0.0),
            0.0)
        self.prev_received[rows, s] = np.where(is_offer, u, prev)
        tone_imp = TONE_IMPULSE[other_tone]
        apol = is_offer & (other_tone == A.TONE_APOLOGETIC)
        # An apology repairs a grievance: it lifts negative valence at most back to neutral and
        # does nothing for a partner who is not upset (but still wears out later apologies).
        hurt = np.clip(-self.affect[rows, s, 0] / APOLOGY_IMPULSE[0], 0.0, 1.0)
        wear = APOLOGY_WEAR ** self.apologies[rows, s]
        tone_imp = np.where(apol[:, None], (wear * hurt)[:, None] * APOLOGY_IMPULSE, tone_imp)
        imp += np.where(is_offer[:, None], tone_imp, 0.0)
        self.apologies[rows, s] += apol
        imp += np.where((other_act == ACT_WALK)[:, None], WALK_IMPULSE, 0.0)
        imp += np.where(other_held[:, None], HOLD_IMPULSE, 0.0)
        return imp

    # ------------------------------------------------------------------------------------------
    def observation(self, seat: int, rows: np.ndarray | slice = slice(None)) -> dict[str, np.ndarray]:
        """Seat ``seat``'s observation of ``rows``.

        Returns:
            ``task`` (R, 18) float32, ``partner_act`` (R,) int64, ``expression`` (R, 7) float32 and
            ``tone`` (R,) int64: see the env docstring.
        """
        o = 1 - seat
        rows = self._rows[rows]
        values = self.values[rows, seat]  # (R, I)
        R = values.shape[0]
        task = np.zeros((R, TASK_DIM), dtype=np.float32)
        task[:, 0:3] = values / POOL_VALUE
        task[:, 3:6] = ITEM_COUNTS / ITEM_COUNTS.max()
        mine = self.standing[rows, seat]
        theirs = self.standing[rows, o]
        keep = self._keep[seat]  # (J, I) own keep of canonical split
        task[:, 6:9] = np.where((mine >= 0)[:, None], keep[np.maximum(mine, 0)] / ITEM_COUNTS, 0)
        task[:, 9] = mine >= 0
        task[:, 10:13] = np.where((theirs >= 0)[:, None], keep[np.maximum(theirs, 0)] / ITEM_COUNTS,
                                  0)
        task[:, 13] = theirs >= 0
        task[:, 14] = np.where(theirs >= 0, self.utility[rows, seat, np.maximum(theirs, 0)], 0.0)
        task[:, 15] = self.round[rows] / self.round_limit
        task[:, 16] = self.deal[rows] / self.n_deals
        task[:, 17] = self.last_deal_utility[rows, seat]
        return {
            "task": task,
            "partner_act": self.act[rows, o].copy(),
            "expression": self.expression[rows, o].copy(),
            "tone": self.tone[rows, o].copy(),
        }

    def info(self, seat: int, rows: np.ndarray | slice = slice(None)) -> dict[str, np.ndarray]:
        """Labels of the other seat as seen from ``seat``: training targets, never inputs."""
        o = 1 - seat
        rows = self._rows[rows]
        return {
            "emotion": self.emotion[rows, o].copy(),
            "emotion_annotated": self.annotated[rows, o].copy(),
            "affect": self.affect[rows, o].astype(np.float32),
            "partner_act": self.act[rows, o].copy(),
            "deal_outcome": self.outcome[rows].copy(),
        }


TASK_DIM = 18
TASK_FIELDS: tuple[str, ...] = (
    "value_book", "value_hat", "value_ball",
    "count_book", "count_hat", "count_ball",
    "my_offer_book", "my_offer_hat", "my_offer_ball", "my_offer_standing",
    "their_offer_book", "their_offer_hat", "their_offer_ball", "their_offer_standing",
    "their_offer_utility", "round", "deal", "last_deal_utility",
)
