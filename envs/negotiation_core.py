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
ACTION_STRUCTURE = ((NUM_SPLITS, A.NUM_TONES), (), ())
"""The flat actions as kinds of factors (``lewm_rl.distributions.ActionStructure``): offers
(split x tone, ``split * NUM_TONES + tone``), accept, walk away."""
NUM_ACTIONS = NUM_OFFER_ACTIONS + 2
ACTION_FEATURE_NAMES: tuple[str, ...] = (
    "offer", "accept", "walk_away", "keep_book", "keep_hat", "keep_ball",
    *(f"tone_{t}" for t in A.TONES))
"""What each flat action is, in numbers: its kind, the fraction of each item an offer keeps (own
perspective, as the observation's ``my_offer_*``) and its tone."""
ACTION_FEATURES = np.zeros((NUM_ACTIONS, len(ACTION_FEATURE_NAMES)), dtype=np.float32)
"""(NUM_ACTIONS, len(ACTION_FEATURE_NAMES)): every flat action described by
``ACTION_FEATURE_NAMES``, so that a model can carry what it learns of one offer to its
neighbours (the env keeps its flat ``Discrete`` space)."""
ACTION_FEATURES[:NUM_OFFER_ACTIONS, 0] = 1.0
ACTION_FEATURES[:NUM_OFFER_ACTIONS, 3:6] = np.repeat(SPLITS / ITEM_COUNTS, A.NUM_TONES, axis=0)
ACTION_FEATURES[:NUM_OFFER_ACTIONS, 6:] = np.tile(np.eye(A.NUM_TONES), (NUM_SPLITS, 1))
ACTION_FEATURES[NUM_OFFER_ACTIONS, 1] = 1.0
ACTION_FEATURES[NUM_OFFER_ACTIONS + 1, 2] = 1.0

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
each deal with a mood from outside the negotiation (one of these impulses, uniformly, scaled by its
reactivity). Incidental emotions carry over into economic decisions (Lerner, Small & Loewenstein
2004; the affect infusion model, Forgas 1995): the partner's history does not explain them, only its
cues show them."""

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
RULE_CHANGES: tuple[str, ...] = ("accept_first", "walk_ends_relationship", "mood_decides",
                                 "tone_first", "planned_counter")
"""Candidate changes to the v0 rules, each switched on by name (``rules=(...)``; ``()`` is v0).

They are candidates for a v1 world in which reading emotions pays a learner (issue: the value of
emotional information, ``benchmarks/emotion_value.py``). Each was written down, with the finding it
follows, before it was measured, and each is measured with model-free learners alone
(``benchmarks/results/emotion_value_design/`` holds the measurements). No rule set met the
criterion stated in that benchmark; the best one measured is frozen as ``V1_RULES`` under
``SocialNegotiation-v1``.

* ``accept_first``: a partner takes an offer worth at least its threshold; only when it rejects
  the learner's move (an offer below its threshold, or a held turn) does it walk away, with the
  per-emotion probability. Angry responders reject offers they would otherwise take and walk out on
  them (Pillutla & Murnighan 1996); they do not walk out on offers that satisfy them. In v0 the
  walk-away draw comes first, whatever the offer.
* ``walk_ends_relationship``: when either side walks away the episode ends and the deals left are
  lost: an impasse sours the relationship and the will to deal again (Curhan, Elfenbein & Xu 2006's
  subjective value of negotiation). In v0 the next deal begins.
* ``mood_decides``: a partner answers on the emotion it brought to the round (the one its cues
  showed), and what it makes of the learner's move drives the next round. In v0 the appraisal of
  the offer in hand sets the emotion it answers on, so its answer is mostly a reflex of the offer,
  which the learner knows. Moods a negotiator brings, incidental ones included, colour its judgment
  (Forgas 1995's affect infusion; Lerner, Small & Loewenstein 2004's carry-over of incidental
  emotion).
* ``tone_first`` (with ``mood_decides``): the tone of the learner's message, an apology included,
  moves the mood it answers on before it replies (an apology defuses anger at the time of the
  offer: Ohtsubo & Watanabe 2009; Tomlinson, Dineen & Lewicki 2004); the offer's fairness still
  waits for the next round.
* ``planned_counter``: a partner's counter-offer asks for its planned goal of the round (its
  concession schedule from aspiration to reservation, Faratin, Sierra & Jennings 1998's
  time-dependent tactics; demands anchored on the plan, Galinsky & Mussweiler 2001), or for its
  threshold where that is higher: it never proposes a split it would itself reject. What it
  *accepts* still moves with its emotion, so an emotion that makes it give way (joy, sadness,
  fear) changes what it takes, not what it asks, and only the cues reveal it. In v0 the counter is
  the split worth its emotion-moved threshold, so one exchange tells the learner most of what the
  emotion would (written down after the design log's finding that counters reveal the threshold,
  before this rule was measured). With ``kappa = 0`` the threshold is the goal and nothing changes.
"""
V1_RULES: tuple[str, ...] = ("accept_first", "walk_ends_relationship", "mood_decides",
                             "planned_counter")
"""The rules of ``SocialNegotiation-v1`` and its objective twin ``ObjectiveNegotiation-v1``, frozen
(``tests/test_golden.py`` records them). Chosen with the model-free instrument alone
(``benchmarks/emotion_value.py``, PPO, 5 seeds): no candidate met the criterion stated in advance,
and this is the best one measured (``benchmarks/results/emotion_value_design/``)."""
V1_EMOTION_INFLUENCE = 1.0
"""Emotional influence of ``SocialNegotiation-v1`` (its twin has 0)."""
ASPIRATION = (0.55, 0.70)
RESERVATION = (0.30, 0.45)
"""Uniform ranges of a character's opening aspiration and final reservation utility."""

_SLOT_WALK, _SLOT_TONE_FOLLOW, _SLOT_TONE_PICK, _SLOT_ANN_FLIP, _SLOT_ANN_PICK = range(5)
_NUM_SLOTS = 5
_NO_OFFER = -1


def check_rules(rules: tuple[str, ...] | list[str] | str) -> tuple[str, ...]:
    """Validates candidate rule changes (names from ``RULE_CHANGES``), in canonical order."""
    names = (rules,) if isinstance(rules, str) else tuple(rules)
    unknown = [r for r in names if r not in RULE_CHANGES]
    if unknown:
        raise ValueError(f"unknown rule changes {unknown}; allowed: {', '.join(RULE_CHANGES)}")
    if "tone_first" in names and "mood_decides" not in names:
        raise ValueError("tone_first needs mood_decides (it moves the mood the partner answers on)")
    return tuple(r for r in RULE_CHANGES if r in names)


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


# ----------------------------------------------------------------------------------------------
# Lookup tables derived from the rules above (no new constants). At B = 1 a numpy call costs about
# a microsecond whatever its size, so the step replaces arithmetic and branching by a gather from
# one of these tables wherever that gives the same result.
# ----------------------------------------------------------------------------------------------

_SEATS = np.arange(2)
_any = np.count_nonzero
"""Whether any entry of a boolean array is set: several times faster than ``ndarray.any`` on the
small arrays of a step."""
_HELD = NUM_ACTS
"""Internal act code of a held turn ('accept' with nothing to accept); observed as ``ACT_NONE``."""
_ACT_OF_CODE = np.array([ACT_NONE, ACT_OFFER, ACT_ACCEPT, ACT_WALK, ACT_NONE])
"""(NUM_ACTS + 1,) the act the other seat observes for each internal act code."""
_KEEPS_OPEN = np.array([True, True, False, False, True])
"""(NUM_ACTS + 1,) whether the deal stays open after each act code (accept and walk close it)."""
_ACTION_CODE, _ACTION_SPLIT, _ACTION_TONE = decode_action(np.arange(NUM_ACTIONS))
"""(NUM_ACTIONS,) each flat action's act code, split index (own perspective) and tone."""
_LEARNER_CODE = np.stack([np.where(_ACTION_CODE == ACT_ACCEPT, _HELD, _ACTION_CODE), _ACTION_CODE])
"""(2, NUM_ACTIONS) a learner's act code for each action, with no offer to accept (row 0: accept
holds the turn) or with one (row 1)."""
_MIRROR_SEAT = np.stack([np.arange(NUM_SPLITS), MIRROR])
"""(S, J) the canonical split of each split index as seat ``s`` counts it (seat 0's: canonical)."""
_ACTION_CANON = _MIRROR_SEAT[:, _ACTION_SPLIT]
"""(S, NUM_ACTIONS) the canonical split a flat action of seat ``s`` offers (0 for non-offers)."""
_KEEP = np.stack([SPLITS, ITEM_COUNTS - SPLITS])
"""(S, J, I) what seat ``s`` keeps under each canonical split."""
_PAIR_VALUES = VALUE_VECTORS[VALUE_PAIRS]
"""(P, S, I) both seats' values under each admissible value pair."""
_PAIR_UTILITY = np.einsum("psi,sji->psj", _PAIR_VALUES, _KEEP) / POOL_VALUE
"""(P, S, J) each seat's utility of every canonical split under each value pair."""
_OFFER_FEATURES = np.concatenate(
    [np.concatenate([_KEEP / ITEM_COUNTS, np.ones((2, NUM_SPLITS, 1))], axis=2),
     np.zeros((2, 1, NUM_ITEMS + 1))], axis=1)
"""(S, J + 1, I + 1) a standing canonical split as seat ``s`` observes it: the fraction of each item
it keeps, then a flag; the last row (index ``-1``: no offer standing) is all zeros."""
_COUNT_FEATURES = ITEM_COUNTS / ITEM_COUNTS.max()
_KEEP_ALL = np.array([NUM_SPLITS - 1, 0])
"""(S,) the canonical split in which seat ``s`` keeps every item: with non-negative values, the one
worth the most to it."""
_COUNTER_SCORE = 100.0 * ITEMS_TO_OTHER[_MIRROR_SEAT]
"""(S, J) first key of a character's choice of counter-offer: the items it leaves the other side
(it cannot see the other's values); its own utility, added each step, breaks ties."""
_COUNTER_ACTION = np.stack([encode_offer(np.arange(NUM_SPLITS), A.TONE_NEUTRAL),
                            encode_offer(MIRROR, A.TONE_NEUTRAL)])
"""(S, J) the flat action (own perspective, neutral tone) of seat ``s`` countering with split j."""
_ACTION_OF_CODE = np.array([-1, -1, ACCEPT, WALK_AWAY, ACCEPT])
"""(NUM_ACTS + 1,) the flat action recorded for an act code other than an offer (-1: none; a held
turn was an accept)."""
_EVENT_IMPULSE = np.stack([np.zeros(3), np.zeros(3), np.zeros(3), WALK_IMPULSE, HOLD_IMPULSE])
"""(NUM_ACTS + 1, 3) appraisal impulse of the other seat's act code when it is not an offer:
walking away, or holding the turn; nothing for an accept (the deal's outcome is felt apart)."""


class _Step:
    """What the phases of one :meth:`NegotiationCore.step` share: the rows stepped (a slice when
    every row is, so reads are views), this step's draws and goals, and the moves made so far
    (``open_`` and ``agreed`` start as scalars and become ``(R,)`` after the first move)."""

    __slots__ = ("rows", "idx", "u", "progress", "time_arousal", "asp", "res", "goal", "open_",
                 "agreed", "codes", "tones", "taken", "standing_before")

    def __init__(self, *values) -> None:
        for name, value in zip(self.__slots__, values, strict=True):
            setattr(self, name, value)


class NegotiationCore:
    """``B`` independent two-seat negotiation tables, stepped together.

    State lives in ``(B, ...)`` arrays (``(B, S, ...)`` for per-seat state) that the views read and
    tests may set between steps. ``step`` works on the rows not done: with every row live it reads
    them through a slice (views, no copies), otherwise through their indices.

    A learner seat has feelings only where someone reads them: its cues and labels reach the other
    seat alone, so with a character opposite (the Gymnasium view) its affect stays at its baseline
    and is not appraised, which no observation, info or reward can tell apart.

    Args:
        num_tables: batch size ``B``.
        subjective: partner behaviour depends on emotion (``SocialNegotiation``) or on utility
            alone (``ObjectiveNegotiation``); the default of ``emotion_influence`` (1 or 0).
        emotion_influence: ``kappa >= 0``, how far each emotion moves the partner's decisions: its
            acceptance threshold shifts by ``kappa * ACCEPT_SHIFT[emotion]``, its speed of
            concession is ``1 + kappa * (CONCESSION_SPEED[emotion] - 1)`` (at least 0), and its
            walk-away probability is ``min(1, (1 - min(kappa, 1)) * p_objective(u) + kappa *
            WALK_PROB[emotion])``, with ``p_objective`` the objective twin's rule on the offer's
            utility ``u``. ``kappa = 0`` is the objective twin (decisions on utility alone), ``kappa
            = 1`` the frozen rules, larger values scale each effect in its fixed direction.
        rules: candidate rule changes switched on (names from ``RULE_CHANGES``); ``()`` is v0.
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
        emotion_influence: float | None = None,
        rules: tuple[str, ...] = (),
    ) -> None:
        rules = check_rules(rules)
        kappa = (1.0 if subjective else 0.0) if emotion_influence is None else emotion_influence
        kappa = float(kappa)
        if not (np.isfinite(kappa) and kappa >= 0.0):
            raise ValueError(f"emotion_influence must be a finite number >= 0, got "
                             f"{emotion_influence!r}")
        if n_deals < 1 or round_limit < 2:
            raise ValueError(
                f"need n_deals >= 1 and round_limit >= 2, got {n_deals}, {round_limit}")
        if not any(learners):
            raise ValueError("at least one seat must be a learner")
        self.B = num_tables
        self.rules = rules
        self._accept_first = "accept_first" in rules
        self._walk_ends = "walk_ends_relationship" in rules
        self._mood_decides = "mood_decides" in rules
        self._tone_first = "tone_first" in rules
        self._planned_counter = "planned_counter" in rules
        self.emotion_influence = kappa
        self.subjective = kappa > 0.0
        # (K,) the behaviour tables at this influence; kappa = 1 gives the frozen ones bit for bit
        # (1.0 * x == x, 1 + (x - 1) == x for these x) and kappa = 0 the objective rules (x + 0.0).
        self._accept_shift = kappa * ACCEPT_SHIFT
        self._concession_speed = np.maximum(1.0 + kappa * (CONCESSION_SPEED - 1.0), 0.0)
        self._walk_prob = kappa * WALK_PROB
        self._objective_walk = 1.0 - min(kappa, 1.0)  # weight of the utility-based walk-away rule
        self.traits = A.check_population(population)
        self.population = population
        self.annotation_noise = A.check_annotation_noise(annotation_noise)
        self.learners = np.array(learners, dtype=bool)
        self.characters = np.flatnonzero(~self.learners)
        self._learner_seats = tuple(int(s) for s in np.flatnonzero(self.learners))
        self._character_seats = tuple(int(s) for s in self.characters)
        # Learner seats whose feelings another learner reads (see the class docstring).
        self._feeling_learners = tuple(s for s in self._learner_seats if learners[1 - s])
        self._relaxing = np.isin(_SEATS, self._feeling_learners).astype(float)  # (S,)
        self.n_deals = n_deals
        self.round_limit = round_limit
        self.max_steps = n_deals * round_limit
        self.inequity_aversion = tuple(float(x) for x in inequity_aversion)
        B, S, J = num_tables, self.num_seats, NUM_SPLITS
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
        # (B, S, J + 1) each seat's utility of the canonical splits, then 0.0 in the last column,
        # so that a split index of -1 (no offer) reads utility 0 without a branch.
        self._utility = z((B, S, J + 1))
        self.utility = self._utility[:, :, :J]  # (B, S, J) view: what the rules read and set
        self.last_deal_utility = z((B, S))
        # (B, 2) round and deal, with views: the observation reads both in one go.
        self._clock = z((B, 2), dtype=np.int64)
        self.round = self._clock[:, 0]
        self.deal = self._clock[:, 1]
        self._clock_scale = np.array([round_limit, n_deals])
        self.t = z(B, dtype=np.int64)
        self.done = np.ones(B, dtype=bool)
        # Per-row random streams, drawn at reset from each row's generator (so a row's trajectory
        # depends only on its own seed, whatever the batch around it).
        T = self.max_steps + 1
        self._u = z((B, T, S, _NUM_SLOTS))
        self._n = z((B, T, S, A.NUM_EMOTIONS))
        self._deal_u = z((B, n_deals, 3))
        self._persona_u = z((B, S, 2))
        # Uniform draws of one row's reset, in the order they are taken: traits (S, 6), aspiration
        # and reservation (S, 2), deals (n_deals, 3), steps (T, S, slots).
        self._draw_bounds = np.cumsum([0, S * 6, S * 2, n_deals * 3, T * S * _NUM_SLOTS]).tolist()
        # Cached per-row transcript of the last step, for rendering.
        self.last_actions = np.full((B, S), -1, dtype=np.int64)
        self.outcome = np.zeros(B, dtype=np.int64)
        self._rows = np.arange(B)
        self._mirror_seat = _MIRROR_SEAT  # (S, J)
        self._keep = _KEEP  # (S, J, I) canonical -> own keep

    # ------------------------------------------------------------------------------------------
    def reset_rows(self, rows: np.ndarray, generators: list[np.random.Generator]) -> None:
        """Starts a new episode in ``rows``, drawing everything random from ``generators``."""
        rows = np.asarray(rows)
        self._draw_episodes(rows, generators)
        self._start_deal(rows)
        self.emotion[rows] = A.categorize(self.affect[rows])
        self._emit_cues(rows, rows)

    def _draw_episodes(self, rows: np.ndarray, generators: list[np.random.Generator]) -> None:
        """Draws the personas and random streams of new episodes in ``rows`` and clears their
        state; the first deal, emotion and cues are left to the caller."""
        S, T, R = self.num_seats, self.max_steps + 1, len(rows)
        if len(generators) != R:
            raise ValueError(f"expected {R} generators, got {len(generators)}")
        # Each row's draws, in order: its uniforms in one call (consecutive calls of
        # Generator.random give the same stream as one call of their total size), then normals.
        uniform, normal = [], []
        for g in generators:
            uniform.append(g.random(self._draw_bounds[-1]))
            normal.append(g.standard_normal((T, S, A.NUM_EMOTIONS)))
        uniform = np.stack(uniform)  # (R, draws)
        traits_u, persona_u, deal_u, step_u = (
            uniform[:, a:b]
            for a, b in zip(self._draw_bounds[:-1], self._draw_bounds[1:], strict=True))
        traits = self.traits.from_uniform(traits_u.reshape(R, S, 6))
        self.baseline[rows] = traits["baseline"]
        self.reactivity[rows] = traits["reactivity"]
        self.decay[rows] = traits["decay"]
        self.expressivity[rows] = traits["expressivity"]
        pu = persona_u.reshape(R, S, 2)
        self.aspiration[rows] = ASPIRATION[0] + (ASPIRATION[1] - ASPIRATION[0]) * pu[..., 0]
        self.reservation[rows] = RESERVATION[0] + (RESERVATION[1] - RESERVATION[0]) * pu[..., 1]
        self._deal_u[rows] = deal_u.reshape(R, self.n_deals, 3)
        self._u[rows] = step_u.reshape(R, T, S, _NUM_SLOTS)
        self._n[rows] = np.stack(normal)
        self.affect[rows] = self.baseline[rows]
        self.apologies[rows] = 0.0
        self.last_deal_utility[rows] = 0.0
        self.deal[rows] = 0
        self.t[rows] = 0
        self.done[rows] = False
        self.act[rows] = ACT_NONE
        self.last_actions[rows] = -1
        self.outcome[rows] = ONGOING

    def _start_deal(self, rows: np.ndarray) -> None:
        du = self._deal_u[rows, self.deal[rows]]  # (R, 3)
        pair = np.minimum((du[:, 0] * len(VALUE_PAIRS)).astype(int), len(VALUE_PAIRS) - 1)
        # Incidental moods of the characters (learner seats bring none).
        kind = np.minimum((du[:, 2] * len(INCIDENTAL_IMPULSE)).astype(int),
                          len(INCIDENTAL_IMPULSE) - 1)
        shock = np.where((du[:, 1] < INCIDENTAL_PROB)[:, None], INCIDENTAL_IMPULSE[kind], 0.0)
        for s in self._character_seats:
            self.affect[rows, s] = np.minimum(np.maximum(  # np.clip to [-1, 1]
                self.affect[rows, s] + self.reactivity[rows, s, None] * shock, -1.0), 1.0)
        self.values[rows] = _PAIR_VALUES[pair]  # (R, S, I)
        self.utility[rows] = _PAIR_UTILITY[pair]  # (R, S, J): own utility of every split
        self.standing[rows] = _NO_OFFER
        self.prev_received[rows] = np.nan
        self.round[rows] = 0

    def _emit_cues(self, rows: np.ndarray | slice, idx: np.ndarray) -> None:
        """Expression, annotation and (characters') tone of ``rows`` (indices ``idx``) at their
        current step and emotion; a character's tone changes with each message it sends, and at
        the start of an episode."""
        em = self.emotion[rows]
        t = self.t[rows]
        u = self._u[idx, t]  # (R, S, slots)
        noise = self._n[idx, t]  # (R, S, K)
        self.expression[rows] = A.expression_cues(em, self.expressivity[rows], noise)
        self.annotated[rows] = A.annotate(
            em, self.annotation_noise, u[..., _SLOT_ANN_FLIP], u[..., _SLOT_ANN_PICK])
        # Characters' messages carry a tone drawn from their emotion.
        for s in self._character_seats:
            fresh = (self.act[rows, s] != ACT_NONE) | (t == 0)
            drawn = A.draw_tone(em[:, s], u[:, s, _SLOT_TONE_FOLLOW], u[:, s, _SLOT_TONE_PICK])
            self.tone[rows, s] = np.where(fresh, drawn, self.tone[rows, s])

    # ------------------------------------------------------------------------------------------
    def goal(self, rows: np.ndarray, seat: int) -> np.ndarray:
        """What a character wants this round, before emotion: aspiration conceding linearly to
        reservation over the rounds. Appraisal compares offers with it, in both twins alike."""
        return self._goal(self.aspiration[rows, seat], self.reservation[rows, seat],
                          self.round[rows] / (self.round_limit - 1))

    @staticmethod
    def _goal(asp: np.ndarray, res: np.ndarray, progress: np.ndarray) -> np.ndarray:
        return asp - (asp - res) * progress

    def threshold(self, rows: np.ndarray, seat: int) -> np.ndarray:
        """A character's acceptance threshold this round: its goal, moved by its emotion in the
        subjective env (concession speed and shift), equal to its goal in the objective twin."""
        return self._threshold(self.aspiration[rows, seat], self.reservation[rows, seat],
                               self.round[rows] / (self.round_limit - 1), self.emotion[rows, seat])

    def _threshold(self, asp: np.ndarray, res: np.ndarray, progress: np.ndarray,
                   em: np.ndarray) -> np.ndarray:
        concede = np.minimum(progress * self._concession_speed[em], 1.0)
        return self._goal(asp, res, concede) + self._accept_shift[em]

    def step(self, actions: np.ndarray,
             restart: list[np.random.Generator] | None = None) -> np.ndarray:
        """Advances every row not done by one round.

        Args:
            actions: ``(B, 2)`` flat actions; entries for character seats are ignored.
            restart: if given, one generator for each row done before this step (in row order):
                those rows start a new episode instead (``reset_rows`` in the same pass: the
                vector env's next-step autoreset).

        Returns:
            ``(B, 2)`` rewards of each seat this step (0 for rows not stepped).
        """
        B, S = self.B, self.num_seats
        restarting = None
        if _any(self.done):
            rows = idx = np.flatnonzero(~self.done)
            if restart is not None:
                restarting = np.flatnonzero(self.done)
                self._draw_episodes(restarting, restart)
            if idx.size == 0:
                if restarting is not None:
                    self._begin_episodes(restarting, np.empty(0, dtype=np.int64))
                return np.zeros((B, S))
        else:  # every row live: a slice reads views instead of gathering copies
            if restart:
                raise ValueError(f"restart has {len(restart)} generators for 0 done rows")
            rows, idx = slice(None), self._rows
        st = self._begin_step(rows, idx)
        self._learner_moves(st, actions)
        self._character_moves(st)
        impulse = self._learner_appraisals(st)
        reward, nxt = self._resolve_deals(st, impulse)
        if restarting is not None:  # every row is live again: new episodes begin with new deals
            self._begin_episodes(restarting, nxt)
        elif nxt is not None and nxt.size:
            self._start_deal(nxt)
            self.emotion[nxt] = A.categorize(self.affect[nxt])
            self._emit_cues(rows, idx)
        else:
            self._emit_cues(rows, idx)
        return reward

    # -- the phases of a step (step() runs them in order) -----------------------------------------
    def _begin_step(self, rows: np.ndarray | slice, idx: np.ndarray) -> _Step:
        """Advances the clocks of the stepped rows; what the phases share."""
        # Through a slice, reads are views: each value read below is used before the state it
        # views is written, or copied.
        R, S = idx.size, self.num_seats
        self.t[rows] += 1
        u = self._u[idx, self.t[rows]]  # (R, S, slots) this step's uniform draws
        progress = self.round[rows] / (self.round_limit - 1)
        time_arousal = W_TIME_A * progress  # (R,) arousal from time pressure
        asp, res = self.aspiration[rows], self.reservation[rows]
        goal = self._goal(asp, res, progress[:, None])  # (R, S) what each seat wants this round

        open_ = True  # deal still open; becomes (R,) after the first move
        agreed = _NO_OFFER  # canonical split agreed; becomes (R,)
        codes = np.zeros((R, S), dtype=np.int64)  # act codes of this step (ACT_NONE, ..., _HELD)
        tones = np.zeros((R, S), dtype=np.int64)  # TONE_NEUTRAL (characters' tones: _emit_cues)
        taken = np.empty((R, S), dtype=np.int64)  # flat actions taken, for the transcript
        standing_before = self.standing[rows].copy()
        return _Step(rows, idx, u, progress, time_arousal, asp, res, goal, open_, agreed, codes,
                     tones, taken, standing_before)

    def _learner_moves(self, st: _Step, actions: np.ndarray) -> None:
        rows, standing_before = st.rows, st.standing_before
        codes, tones, taken, open_, agreed = st.codes, st.tones, st.taken, st.open_, st.agreed
        # Phase 1: learner seats, simultaneously, against the state they observed.
        for s in self._learner_seats:
            o = 1 - s
            a = actions[rows, s]
            code = _LEARNER_CODE[(standing_before[:, o] != _NO_OFFER).view(np.int8), a]
            code *= open_  # nothing once the other learner closed the deal
            agreed = np.where(code == ACT_ACCEPT, standing_before[:, o], agreed)
            self.standing[rows, s] = np.where(code == ACT_OFFER, _ACTION_CANON[s][a],
                                              self.standing[rows, s])
            codes[:, s] = code
            tones[:, s] = _ACTION_TONE[a]
            taken[:, s] = a
            open_ = open_ & _KEEPS_OPEN[code]
        st.open_, st.agreed = open_, agreed

    def _character_moves(self, st: _Step) -> None:
        rows, idx, u, goal, progress = st.rows, st.idx, st.u, st.goal, st.progress
        asp, res, time_arousal = st.asp, st.res, st.time_arousal
        codes, tones, taken, open_, agreed = st.codes, st.tones, st.taken, st.open_, st.agreed
        # Phase 2: characters appraise what the learners did, then act on their new emotion.
        for s in self._character_seats:
            o = 1 - s
            imp, u_off, heard = self._appraise(rows, idx, s, codes[:, o], tones[:, o], goal[:, s],
                                               tone_apart=self._tone_first)
            imp[:, 1] += time_arousal
            if self._tone_first:  # the mood it brought, as the tone of the message moves it
                felt = A.categorize(np.minimum(np.maximum(
                    self.affect[rows, s] + self.reactivity[rows, s, None] * heard, -1.0), 1.0))
            elif self._mood_decides:
                felt = self.emotion[rows, s].copy()  # the mood it brought
            self.affect[rows, s] = A.update_affect(
                self.affect[rows, s], self.baseline[rows, s], self.decay[rows, s],
                self.reactivity[rows, s], imp)
            self.emotion[rows, s] = A.categorize(self.affect[rows, s])
            # v0 answers on the emotion the whole move leaves it with (see RULE_CHANGES).
            em = felt if self._mood_decides else self.emotion[rows, s]
            has_offer = self.standing[rows, o] != _NO_OFFER  # u_off: its utility (0 if none)
            p_walk = self._walk_prob[em]
            if self._objective_walk:
                p_walk = p_walk + self._objective_walk * np.where(
                    has_offer,
                    OBJECTIVE_WALK_PROB
                    * np.clip((OBJECTIVE_WALK_POINT - u_off) / OBJECTIVE_WALK_POINT, 0.0, 1.0),
                    0.0,
                )
            tau = self._threshold(asp[:, s], res[:, s], progress, em)
            takes = has_offer & (u_off >= tau)
            walks = u[:, s, _SLOT_WALK] < p_walk
            if self._accept_first:  # it walks only from a move it rejects
                walks &= ~takes
            code = np.where(walks, ACT_WALK, np.where(takes, ACT_ACCEPT, ACT_OFFER)) * open_
            # Counter-offer: among splits worth at least tau to itself, the one leaving the other
            # side the most items (it cannot see the other's values); ties to its own utility.
            # planned_counter asks for its goal instead, or tau where that is higher.
            ask = np.maximum(goal[:, s], tau) if self._planned_counter else tau
            own_u = self.utility[rows, s]  # (R, J)
            feasible = own_u >= ask[:, None]
            none = ~feasible[:, _KEEP_ALL[s]]  # not even the split worth the most is feasible
            if _any(none):  # asks for more than the pool holds: keep the best split
                feasible[none] = own_u[none] >= own_u[none].max(1, keepdims=True)
            choice = np.where(feasible, _COUNTER_SCORE[s] + own_u, -np.inf).argmax(1)
            counter = code == ACT_OFFER
            self.standing[rows, s] = np.where(counter, choice, self.standing[rows, s])
            agreed = np.where(code == ACT_ACCEPT, self.standing[rows, o], agreed)
            codes[:, s] = code
            taken[:, s] = np.where(counter, _COUNTER_ACTION[s][choice], _ACTION_OF_CODE[code])
            open_ = open_ & _KEEPS_OPEN[code]
        st.open_, st.agreed = open_, agreed

    def _learner_appraisals(self, st: _Step) -> np.ndarray:
        """``(R, S, 3)`` impulses: the feeling learners' appraisals of this step (zeros for the
        other seats), to which the deal's end adds."""
        rows, idx, codes, tones, goal = st.rows, st.idx, st.codes, st.tones, st.goal
        time_arousal = st.time_arousal
        R, S = codes.shape
        # Phase 3: learner seats with feelings appraise the others' acts of this step.
        impulse = np.zeros((R, S, 3))  # what the deal's end adds, and learners' appraisals
        for s in self._feeling_learners:
            o = 1 - s
            imp, _, _ = self._appraise(rows, idx, s, codes[:, o], tones[:, o], goal[:, s])
            imp[:, 1] += time_arousal
            impulse[:, s] = imp
        return impulse

    def _resolve_deals(self, st: _Step, impulse: np.ndarray) -> tuple[np.ndarray,
                                                                       np.ndarray | None]:
        """Closes deals, updates feelings and the book-keeping; returns the ``(B, S)`` rewards and
        the rows whose next deal starts (``None`` if no deal ended)."""
        B, S = self.B, self.num_seats
        rows, idx, codes, tones, taken = st.rows, st.idx, st.codes, st.tones, st.taken
        open_, agreed = st.open_, st.agreed
        # Deal resolution. The first accept or walk-away closes the deal (open_ is False after
        # it): a closed deal is an agreement or else a walk-away.
        next_round = self.round[rows] + 1
        timeout = open_ & (next_round >= self.round_limit)
        ended = ~open_ | timeout
        any_ended = _any(ended)
        if any_ended:
            closed_ok = agreed != _NO_OFFER
            # (R, S) each seat's utility of the agreed split; agreed = -1 (none) reads 0.0.
            deal_u = self._utility[idx[:, None], _SEATS, agreed[:, None]]
            # Add the deal's closing (valence, arousal) and timeout impulses where they apply
            # (ufuncs with where= leave the other rows untouched, as boolean indexing would).
            closed = closed_ok[:, None]  # (R, 1) against (R, S)
            np.add(impulse[..., 0], DEAL_V * (deal_u - DEAL_REFERENCE), out=impulse[..., 0],
                   where=closed)
            np.add(impulse[..., 1], DEAL_AROUSAL, out=impulse[..., 1], where=closed)
            np.add(impulse, TIMEOUT_IMPULSE, out=impulse, where=timeout[:, None, None])
        if any_ended or self._feeling_learners:
            # Learners relax toward baseline and feel the step now; characters relaxed before
            # acting and only feel the deal's outcome (their decay counts as 0 here, exactly).
            self.affect[rows] = A.update_affect(
                self.affect[rows], self.baseline[rows], self.decay[rows] * self._relaxing,
                self.reactivity[rows], impulse)
            self.emotion[rows] = A.categorize(self.affect[rows])

        # Book-keeping for observations (characters' tones are drawn in _emit_cues).
        acts = _ACT_OF_CODE[codes]  # (R, S) a held turn shows as no act
        for s in self._learner_seats:
            self.tone[rows, s] = np.where(acts[:, s] != ACT_NONE, tones[:, s], self.tone[rows, s])
        self.act[rows] = acts
        self.last_actions[rows] = taken
        # Rewards: the utility of the agreed split when a deal closes, 0 otherwise.
        reward = np.zeros((B, S))
        if any_ended:
            r = deal_u  # 0 where no deal closed
            alpha, beta = self.inequity_aversion
            if alpha or beta:
                diff = deal_u[:, ::-1] - deal_u  # other's minus own
                r = r - alpha * np.maximum(diff, 0.0) - beta * np.maximum(-diff, 0.0)
            reward[rows] = r
            self.outcome[rows] = np.where(closed_ok, AGREEMENT, np.where(
                ~open_, WALKED_AWAY, np.where(timeout, TIMED_OUT, ONGOING)))
            self.last_deal_utility[rows] = np.where(ended[:, None], deal_u,
                                                    self.last_deal_utility[rows])
            self.round[rows] = np.where(ended, 0, next_round)
            finished = ended & (self.deal[rows] + 1 >= self.n_deals)
            if self._walk_ends:  # a walk-away ends the relationship
                finished |= ~open_ & ~closed_ok
            self.done[rows] = finished  # every row stepped was live
            nxt = idx[ended & ~finished]
            self.deal[nxt] += 1
        else:
            self.outcome[rows] = ONGOING
            self.round[rows] = next_round
            nxt = None
        return reward, nxt

    def _begin_episodes(self, restarting: np.ndarray, nxt: np.ndarray | None) -> None:
        """After a step with ``restart``: starts the deals of the new episodes in ``restarting``
        and of the rows in ``nxt`` (a new deal in a running episode), then every row's cues."""
        begin = restarting if nxt is None or not nxt.size else np.concatenate([nxt, restarting])
        self._start_deal(begin)
        self.emotion[begin] = A.categorize(self.affect[begin])
        self._emit_cues(slice(None), self._rows)

    def _appraise(self, rows: np.ndarray | slice, idx: np.ndarray, s: int, other_code: np.ndarray,
                  other_tone: np.ndarray, goal: np.ndarray, tone_apart: bool = False
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Seat ``s``'s appraisal of the other seat's act this step, against its ``goal`` (R,).

        Returns:
            The impulse ``(R, 3)``; ``s``'s utility ``(R,)`` of the other's standing offer (0 when
            none stands); and, with ``tone_apart``, the part of the impulse that is the tone of
            the message (apology included; zeros for anything but an offer), else ``None``.
        """
        o = 1 - s
        is_offer = other_code == ACT_OFFER
        u = self._utility[idx, s, self.standing[rows, o]]  # index -1 (no offer) reads 0.0
        prev = self.prev_received[rows, s]
        improve = np.where(np.isnan(prev), 0.0, u - prev)  # over its previous offer this deal
        gap = u - goal  # goal congruence: against what it wants this round
        self.prev_received[rows, s] = np.where(is_offer, u, prev)
        # An offer's impulse: its tone, plus fairness (valence, arousal) and improvement.
        imp = TONE_IMPULSE[other_tone]  # (R, 3)
        apol = is_offer & (other_tone == A.TONE_APOLOGETIC)
        if _any(apol):
            # An apology repairs a grievance: it lifts negative valence at most back to neutral
            # and does nothing for a partner who is not upset (but still wears out later ones).
            hurt = np.clip(-self.affect[rows, s, 0] / APOLOGY_IMPULSE[0], 0.0, 1.0)
            wear = APOLOGY_WEAR ** self.apologies[rows, s]
            imp = np.where(apol[:, None], (wear * hurt)[:, None] * APOLOGY_IMPULSE, imp)
            self.apologies[rows, s] += apol
        heard = np.where(is_offer[:, None], imp, 0.0) if tone_apart else None
        imp[:, 0] += W_FAIR_V * np.where(gap > 0, gap / LOSS_AVERSION, gap) + W_IMPROVE_V * improve
        imp[:, 1] += W_SHORT_A * np.maximum(goal - u, 0.0) + W_GAIN_A * np.maximum(gap, 0.0)
        # Any other act: walking away or holding the turn.
        return np.where(is_offer[:, None], imp, _EVENT_IMPULSE[other_code]), u, heard

    # ------------------------------------------------------------------------------------------
    def observation(self, seat: int,
                    rows: np.ndarray | slice = slice(None)) -> dict[str, np.ndarray]:
        """Seat ``seat``'s observation of ``rows``.

        Returns:
            ``task`` (R, 18) float32, ``partner_act`` (R,) int64, ``expression`` (R, 7) float32 and
            ``tone`` (R,) int64: see the env docstring.
        """
        o = 1 - seat
        idx = self._rows[rows]
        R = idx.size
        standing = self.standing[rows]  # (R, S) canonical splits, -1 for none
        if seat == 1:
            standing = standing[:, ::-1]  # (R, 2): own offer, then the other's
        task = np.empty((R, TASK_DIM), dtype=np.float32)
        task[:, 0:3] = self.values[rows, seat] / POOL_VALUE
        task[:, 3:6] = _COUNT_FEATURES
        # (R, 2, 4) -> (R, 8): fraction of each item kept and a flag, own offer then theirs.
        task[:, 6:14] = _OFFER_FEATURES[seat][standing].reshape(R, 8)
        task[:, 14] = self._utility[idx, seat, standing[:, 1]]  # 0 with no offer standing
        task[:, 15:17] = self._clock[rows] / self._clock_scale  # round, deal
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
