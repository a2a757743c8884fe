"""Exact-answer tests of the negotiation rules on hand-built tables."""

from __future__ import annotations

import numpy as np
import pytest

from lewm_rl.envs import affect as A
from lewm_rl.envs import negotiation_core as C


def test_game_tables():
    assert C.NUM_SPLITS == 2 * 3 * 4 == len(C.SPLITS)
    assert np.all(C.VALUE_VECTORS @ C.ITEM_COUNTS == C.POOL_VALUE)
    assert np.all(C.MIRROR[C.MIRROR] == np.arange(C.NUM_SPLITS))
    assert np.all(C.split_index(C.SPLITS) == np.arange(C.NUM_SPLITS))
    kind, split, tone = C.decode_action(np.arange(C.NUM_ACTIONS))
    assert np.all(C.encode_offer(split[:96], tone[:96]) == np.arange(96))
    assert kind[C.ACCEPT] == C.ACT_ACCEPT and kind[C.WALK_AWAY] == C.ACT_WALK


def table(subjective=True, *, partner_affect=(0.0, 0.0, 0.0), values=((2, 1, 2), (0, 2, 2)),
          walk_u=0.99, **core_kwargs):
    """A one-table core with a known persona, known values and no randomness left to chance
    (``core_kwargs``: more ``NegotiationCore`` arguments, e.g. ``emotion_influence``, ``rules``)."""
    core = C.NegotiationCore(1, subjective=subjective, annotation_noise=0.0, **core_kwargs)
    core.reset_rows(np.array([0]), [np.random.default_rng(0)])
    core.baseline[0] = 0.0
    core.reactivity[0] = 1.0
    core.decay[0] = 0.0
    core.expressivity[0] = 1.0
    core.aspiration[0] = 0.6
    core.reservation[0] = 0.4
    core.affect[0, 1] = partner_affect
    core.affect[0, 0] = 0.0
    core.emotion[0] = A.categorize(core.affect[0])
    set_values(core, values)
    core._u[0, :, :, 0] = walk_u  # walk-away draws
    core._deal_u[0, :, 1] = 1.0  # no incidental moods
    return core


def set_values(core, values):
    core.values[0] = values
    core.utility[0] = np.einsum("si,sji->sj", core.values[0], core._keep) / C.POOL_VALUE


def offer(keep, tone=A.TONE_NEUTRAL):
    return np.array([[C.encode_offer(C.split_index(np.array(keep)), tone), 0]])


def test_appraisal_of_an_unfair_offer_is_exact():
    core = table()
    # Learner keeps 1 book, 2 hats, 2 balls: the partner (values 0,2,2) gets 1 ball = 2/10.
    core.step(offer((1, 2, 2)))
    goal = 0.6  # round 0: aspiration
    u = 0.2
    dv = C.W_FAIR_V * (u - goal)  # shortfall, no previous offer
    da = C.W_SHORT_A * (goal - u)
    np.testing.assert_allclose(core.affect[0, 1, :2], [dv, da], atol=1e-12)
    # Then it counters, keeping the most valued items worth >= its (emotion-shifted) threshold.
    assert core.act[0, 1] == C.ACT_OFFER


def test_gains_weigh_less_than_losses():
    up, down = table(), table()
    up.step(offer((1, 0, 1)))  # partner gets 2 hats + 2 balls = 8/10: 0.2 above goal
    down.step(offer((1, 2, 3)))  # partner gets nothing: 0.6 below goal
    assert up.act[0, 1] == C.ACT_ACCEPT  # accepted, so the deal's closing impulse adds too
    closing = C.DEAL_V * (0.8 - C.DEAL_REFERENCE)
    assert up.affect[0, 1, 0] == pytest.approx(
        C.W_FAIR_V * 0.2 / C.LOSS_AVERSION + closing, abs=1e-9)
    assert down.affect[0, 1, 0] == pytest.approx(-C.W_FAIR_V * 0.6, abs=1e-9)


def test_acceptance_and_agreement_reward():
    core = table()
    reward = core.step(offer((1, 0, 1)))  # worth 0.8 to the partner >= 0.6: accepted
    assert core.act[0, 1] == C.ACT_ACCEPT
    assert core.outcome[0] == C.AGREEMENT
    # Learner keeps 1 book (2) + 1 ball (2) = 4/10.
    assert reward[0, 0] == pytest.approx(0.4)
    assert core.deal[0] == 1 and core.round[0] == 0  # the next deal has begun


def test_counter_offer_leaves_the_most_items_above_threshold():
    core = table()
    core.step(offer((1, 2, 3)))
    theirs = C.ITEM_COUNTS - C.SPLITS[core.standing[0, 1]]  # what the partner keeps
    own_u = theirs @ np.array([0, 2, 2]) / C.POOL_VALUE
    tau = core.threshold(np.array([0]), 1)[0]
    assert own_u >= tau - 1e-12
    # No split worth >= tau to the partner leaves the learner more items.
    ok = core.utility[0, 1] >= tau - 1e-12
    to_learner = C.SPLITS.sum(1)  # items the learner gets under each canonical split
    assert to_learner[core.standing[0, 1]] == to_learner[ok].max()


def test_subjective_partner_walks_away_in_anger_objective_does_not():
    anger = tuple(A.PROTOTYPES[A.ANGER] * 1.3)
    fair = (0, 1, 1)  # partner gets 1 book + 1 hat + 2 balls = 6/10
    for subjective, expected in ((True, C.ACT_WALK), (False, C.ACT_ACCEPT)):
        core = table(subjective, partner_affect=anger, walk_u=0.3)  # 0.3 < P(walk | anger)
        core.step(offer(fair))
        assert core.emotion[0, 1] == A.ANGER
        assert core.act[0, 1] == expected


def test_objective_partner_ignores_its_emotion():
    """Forcing any emotion leaves the objective partner's acts unchanged, but not the subjective
    partner's."""
    def acts(subjective, emotion):
        out = []
        for keep in C.SPLITS[::3]:
            for walk_u in (0.05, 0.5, 0.95):
                core = table(subjective, partner_affect=tuple(A.PROTOTYPES[emotion] * 1.2),
                             walk_u=walk_u)
                core.step(offer(tuple(keep)))
                out.append((int(core.act[0, 1]), int(core.standing[0, 1])))
        return out

    for em in range(A.NUM_EMOTIONS):
        assert acts(False, em) == acts(False, A.NEUTRAL)
    assert any(acts(True, em) != acts(True, A.NEUTRAL) for em in range(A.NUM_EMOTIONS))


def test_apologies_repair_grievances_and_wear_out():
    sad = (-0.4, 0.0, 0.0)
    core = table(partner_affect=sad)
    fair = (1, 1, 1)  # partner gets 1 hat + 2 balls = 6/10 = goal: no fairness impulse
    before = core.affect[0, 1].copy()
    core.step(offer(fair, A.TONE_APOLOGETIC))
    first = core.affect[0, 1, 0] - before[0]
    hurt = 0.4 / C.APOLOGY_IMPULSE[0]
    # Apology lifts valence by hurt * 0.5, plus the deal-closing impulse if it was accepted.
    assert core.act[0, 1] == C.ACT_ACCEPT
    closing = C.DEAL_V * (0.6 - C.DEAL_REFERENCE)
    assert first == pytest.approx(hurt * C.APOLOGY_IMPULSE[0] + closing, abs=1e-9)
    assert core.apologies[0, 1] == 1
    # A second apology to an equally upset partner, same deal terms, is worth half as much.
    core.affect[0, 1] = sad
    set_values(core, ((2, 1, 2), (0, 2, 2)))
    core.step(offer(fair, A.TONE_APOLOGETIC))
    second = core.affect[0, 1, 0] - sad[0]
    assert second - closing == pytest.approx(0.5 * (first - closing), abs=1e-9)


def test_apology_does_nothing_for_a_content_partner():
    core = table(partner_affect=(0.2, 0.0, 0.0))
    plain = table(partner_affect=(0.2, 0.0, 0.0))
    core.step(offer((1, 2, 3), A.TONE_APOLOGETIC))
    plain.step(offer((1, 2, 3), A.TONE_NEUTRAL))
    np.testing.assert_allclose(core.affect, plain.affect)
    assert core.apologies[0, 1] == 1  # but it still wears out the next one


def test_mood_carries_over_and_incidental_moods_arrive_with_deals():
    core = table(partner_affect=(-0.5, 0.5, 0.3))
    core.step(np.array([[C.WALK_AWAY, 0]]))  # learner walks: partner appraises, deal ends
    assert core.outcome[0] == C.WALKED_AWAY and core.deal[0] == 1
    assert core.affect[0, 1, 0] < -0.5  # no reset between deals (decay 0 here)
    core2 = table()
    core2._deal_u[0, 1] = (0.0, 0.0, 0.0)  # deal 2: incidental irritation
    before = core2.affect[0, 1].copy()
    core2.step(np.array([[C.WALK_AWAY, 0]]))
    assert core2.affect[0, 1, 0] < before[0] + C.WALK_IMPULSE[0] + 1e-9
    assert core2.deal[0] == 1


def test_held_turn_and_episode_end():
    core = table()
    core.step(np.array([[C.ACCEPT, 0]]))  # nothing to accept: a held turn
    assert core.outcome[0] == C.ONGOING and core.round[0] == 1
    n = 0
    while not core.done[0]:
        core.step(np.array([[C.WALK_AWAY, 0]]))
        n += 1
    assert n == core.n_deals  # one walk-away per deal ends each deal
