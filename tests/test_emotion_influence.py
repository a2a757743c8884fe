"""Emotional influence (kappa) and the candidate rule changes: exact answers on small cases."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from test_negotiation import offer
from test_negotiation import table as negotiation_table

import lewm_rl  # noqa: F401  (registers the ids)
from lewm_rl.envs import affect as A
from lewm_rl.envs import negotiation_core as C
from lewm_rl.envs import social_negotiation_v0
from lewm_rl.envs.negotiation import ObjectiveNegotiationEnv, SocialNegotiationEnv

CANDIDATE = ("accept_first", "walk_ends_relationship", "mood_decides")


def table(kappa=1.0, rules=(), *, partner_affect=(0.0, 0.0, 0.0), walk_u=0.99):
    """test_negotiation's hand-built table, at emotional influence ``kappa`` under ``rules``."""
    return negotiation_table(partner_affect=partner_affect, walk_u=walk_u,
                             emotion_influence=kappa, rules=rules)


def rollout(env, seed, steps=60):
    """Observations, rewards and labels of random-action play (actions from their own seed)."""
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    out = [(obs, info)]
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(int(rng.integers(C.NUM_ACTIONS)))
        out.append((obs, r, term, info))
        if term or trunc:
            obs, info = env.reset(seed=seed + 1000)
    return out


def same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kappa_one_is_the_frozen_subjective_world_and_kappa_zero_the_objective_twin(seed):
    assert same(rollout(SocialNegotiationEnv(emotion_influence=1.0), seed),
                rollout(SocialNegotiationEnv(), seed))
    assert same(rollout(SocialNegotiationEnv(emotion_influence=0.0), seed),
                rollout(ObjectiveNegotiationEnv(), seed))
    # with the rule changes too, kappa = 0 is the objective twin of the same rules
    assert same(rollout(SocialNegotiationEnv(emotion_influence=0.0, rules=CANDIDATE), seed),
                rollout(ObjectiveNegotiationEnv(rules=CANDIDATE), seed))
    # the dose matters: kappa = 2 is another world
    assert not same(rollout(SocialNegotiationEnv(emotion_influence=2.0), seed),
                    rollout(SocialNegotiationEnv(), seed))


@pytest.mark.parametrize("rules", [(), CANDIDATE, CANDIDATE + ("tone_first",),
                                   CANDIDATE + ("planned_counter",)])
def test_at_kappa_zero_decisions_ignore_the_partners_emotion(rules):
    """Forcing the partner into each emotion by hand changes nothing it does at kappa = 0; at
    kappa = 1 it does."""
    def decisions(kappa, affect):
        core = table(kappa, rules, partner_affect=affect, walk_u=0.05)
        acts = []
        for keep in ((1, 2, 2), (1, 1, 2), (1, 1, 1), (0, 1, 1)):
            core.step(offer(keep))
            acts.append((int(core.act[0, 1]), int(core.standing[0, 1]), bool(core.done[0])))
            if core.done[0]:
                break
        return acts

    by_emotion = {k: decisions(0.0, A.PROTOTYPES[k]) for k in range(A.NUM_EMOTIONS)}
    assert len({tuple(v) for v in by_emotion.values()}) == 1
    by_emotion = {k: decisions(1.0, A.PROTOTYPES[k]) for k in range(A.NUM_EMOTIONS)}
    assert len({tuple(v) for v in by_emotion.values()}) > 1


def test_threshold_scales_with_kappa_exactly():
    for kappa in (0.0, 0.5, 1.0, 2.0, 4.0):
        core = table(kappa, partner_affect=A.PROTOTYPES[A.FEAR])
        core.round[0] = 2  # progress 2 / 5
        em = A.FEAR
        speed = max(1.0 + kappa * (C.CONCESSION_SPEED[em] - 1.0), 0.0)
        concede = min(0.4 * speed, 1.0)
        expected = 0.6 - (0.6 - 0.4) * concede + kappa * C.ACCEPT_SHIFT[em]
        assert core.threshold(np.array([0]), 1)[0] == pytest.approx(expected, abs=1e-12)
    # anger halves concession at kappa = 1 and stops it at kappa = 2 (never negative)
    core = table(4.0, partner_affect=A.PROTOTYPES[A.ANGER])
    core.round[0] = 5
    assert core.threshold(np.array([0]), 1)[0] == pytest.approx(0.6 + 4 * 0.30, abs=1e-12)


@pytest.mark.parametrize("kappa", [0.5, 1.0, 2.0, 4.0])
def test_walk_probability_at_kappa(kappa):
    """An angry partner offered nothing walks iff its draw is below
    min(1, (1 - min(kappa, 1)) p_objective(0) + kappa WALK_PROB[anger])."""
    p = min(1.0, (1 - min(kappa, 1.0)) * C.OBJECTIVE_WALK_PROB + kappa * C.WALK_PROB[A.ANGER])
    cases = ((p - 1e-6, True), (p + 1e-6, False)) if p < 1 else ((1 - 1e-9, True),)  # u < 1
    for walk_u, walks in cases:
        core = table(kappa, partner_affect=A.PROTOTYPES[A.ANGER] * 1.5, walk_u=walk_u)
        core.step(offer((1, 2, 3)))  # keeps everything: worth 0 to the partner
        assert core.emotion[0, 1] == A.ANGER
        assert (core.act[0, 1] == C.ACT_WALK) == walks


def test_accept_first_takes_an_offer_v0_walks_from():
    """An angry partner whose walk draw fires, offered more than its threshold: v0 walks before
    looking at the offer, accept_first takes it."""
    for rules, act in (((), C.ACT_WALK), (("accept_first",), C.ACT_ACCEPT)):
        core = table(1.0, rules, partner_affect=A.PROTOTYPES[A.ANGER], walk_u=0.0)
        core.step(offer((0, 0, 0)))  # everything to the partner: worth 1.0 >= 0.6 + 0.3
        assert core.act[0, 1] == act, rules
    # rejected (keeps everything), it walks with accept_first too
    core = table(1.0, ("accept_first",), partner_affect=A.PROTOTYPES[A.ANGER], walk_u=0.0)
    core.step(offer((1, 2, 3)))
    assert core.act[0, 1] == C.ACT_WALK


def test_walk_away_ends_the_relationship():
    ends = ("walk_ends_relationship",)
    for rules, done, deal in (((), False, 1), (ends, True, 0)):
        core = table(1.0, rules, partner_affect=A.PROTOTYPES[A.ANGER], walk_u=0.0)
        reward = core.step(offer((1, 2, 3)))
        assert core.outcome[0] == C.WALKED_AWAY and reward[0, 0] == 0.0
        assert bool(core.done[0]) == done and int(core.deal[0]) == deal, rules
    # the learner walking away ends it as well
    core = table(1.0, ends)
    core.step(np.array([[C.WALK_AWAY, 0]]))
    assert core.done[0] and core.outcome[0] == C.WALKED_AWAY
    # an agreement does not: the next deal begins
    core = table(1.0, ends)
    core.step(offer((1, 0, 1)))
    assert core.outcome[0] == C.AGREEMENT and not core.done[0] and core.deal[0] == 1


def test_rules_and_influence_reach_every_view_and_bad_values_are_refused():
    env = gym.make("SocialNegotiation-v0", rules=["mood_decides", "accept_first"],
                   emotion_influence=2)
    assert env.unwrapped.core.rules == ("accept_first", "mood_decides")  # canonical order
    assert env.unwrapped.core.emotion_influence == 2.0
    vec = gym.make_vec("SocialNegotiation-v0", num_envs=3, vectorization_mode="vector_entry_point",
                       rules=CANDIDATE, emotion_influence=0.5)
    assert vec.core.rules == CANDIDATE and vec.core.emotion_influence == 0.5
    pz = social_negotiation_v0.parallel_env(background=(1,), rules=CANDIDATE)
    assert pz.core.rules == CANDIDATE
    assert social_negotiation_v0.parallel_env(subjective=False).core.emotion_influence == 0.0
    assert gym.make("ObjectiveNegotiation-v0").unwrapped.core.emotion_influence == 0.0
    with pytest.raises(ValueError, match="objective twin: emotion_influence must be 0"):
        gym.make("ObjectiveNegotiation-v0", emotion_influence=1.0)
    with pytest.raises(ValueError, match="finite number >= 0"):
        SocialNegotiationEnv(emotion_influence=-1.0)
    with pytest.raises(ValueError, match="finite number >= 0"):
        SocialNegotiationEnv(emotion_influence=float("nan"))
    with pytest.raises(ValueError, match="allowed: accept_first, walk_ends_relationship"):
        SocialNegotiationEnv(rules=("v1",))
    with pytest.raises(ValueError, match="tone_first needs mood_decides"):
        SocialNegotiationEnv(rules=("tone_first",))


@pytest.mark.parametrize("seed", [0, 1])
def test_public_goods_kappa_one_is_v0_and_kappa_zero_its_objective_twin(seed):
    def play(env):
        rng = np.random.default_rng(seed)
        obs, info = env.reset(seed=seed)
        out = [(obs, info)]
        for _ in range(25):
            obs, r, term, trunc, info = env.step(int(rng.integers(env.action_space.n)))
            out.append((obs, r, info))
            if term or trunc:
                obs, info = env.reset(seed=seed + 1)
        return out

    assert same(play(gym.make("PublicGoods-v0", emotion_influence=1.0)),
                play(gym.make("PublicGoods-v0")))
    assert same(play(gym.make("PublicGoods-v0", emotion_influence=0.0)),
                play(gym.make("ObjectivePublicGoods-v0")))
    assert not same(play(gym.make("PublicGoods-v0", emotion_influence=3.0)),
                    play(gym.make("PublicGoods-v0")))
    with pytest.raises(ValueError, match="objective twin: emotion_influence must be 0"):
        gym.make("ObjectivePublicGoods-v0", emotion_influence=0.5)


def test_mood_decides_answers_on_the_emotion_it_brought_v0_on_the_one_the_move_leaves():
    """A mildly joyful partner offered 0.4 (goal 0.6): the shortfall turns it to surprise. v0
    answers on surprise (threshold 0.6: it counters), mood_decides on the joy it brought
    (threshold 0.35: it accepts)."""
    for rules, act in (((), C.ACT_OFFER), (("mood_decides",), C.ACT_ACCEPT)):
        core = table(1.0, rules, partner_affect=(0.5, 0.3, 0.3))
        assert core.emotion[0, 1] == A.JOY
        core.step(offer((1, 2, 1)))  # the partner (values 0, 2, 2) gets 2 balls: 0.4
        assert core.emotion[0, 1] == A.SURPRISE, rules  # both felt the same shortfall
        assert core.act[0, 1] == act, rules


def test_tone_first_lets_an_apology_reach_the_reply():
    """An angry partner (threshold 0.9) offered 0.6 with an apology: with mood_decides alone it
    answers angry and, its walk draw firing, walks; with tone_first the apology lifts it out of
    anger before it replies (threshold 0.6: it accepts). The apology counts either way."""
    for rules, act in ((("accept_first", "mood_decides"), C.ACT_WALK),
                       (("accept_first", "mood_decides", "tone_first"), C.ACT_ACCEPT)):
        core = table(1.0, rules, partner_affect=A.PROTOTYPES[A.ANGER], walk_u=0.0)
        core.step(offer((1, 1, 1), A.TONE_APOLOGETIC))  # partner gets 1 hat, 2 balls: 0.6
        assert core.act[0, 1] == act, rules
        assert core.apologies[0, 1] == 1


def test_planned_counter_asks_for_the_goal_and_still_accepts_on_emotion():
    """Offered 0.2 at round 0 (goal 0.6), a joyful partner (threshold 0.35) counters with the split
    worth 0.4 to itself under the v0 counter, and with the split worth its goal, 0.6, under
    planned_counter: the counter no longer shows that it would give way. An angry one (threshold
    0.9) asks for its threshold either way, a neutral one (threshold = goal) for its goal. What it
    accepts is unchanged: offered 0.4, the joyful partner takes it under both rules."""
    md, planned = ("mood_decides",), ("mood_decides", "planned_counter")
    cases = [((0.5, 0.3, 0.3), md, 0.4), ((0.5, 0.3, 0.3), planned, 0.6),
             (A.PROTOTYPES[A.ANGER], md, 1.0), (A.PROTOTYPES[A.ANGER], planned, 1.0),
             ((0.0, 0.0, 0.0), md, 0.6), ((0.0, 0.0, 0.0), planned, 0.6)]
    for affect, rules, asked in cases:
        core = table(1.0, rules, partner_affect=affect)
        core.step(offer((1, 2, 2)))  # the partner (values 0, 2, 2) gets 1 ball: 0.2
        assert core.act[0, 1] == C.ACT_OFFER
        assert core.utility[0, 1, core.standing[0, 1]] == pytest.approx(asked, abs=1e-12), rules
    for rules in (md, planned):
        core = table(1.0, rules, partner_affect=(0.5, 0.3, 0.3))
        core.step(offer((1, 2, 1)))  # 2 balls: 0.4 >= 0.35
        assert core.act[0, 1] == C.ACT_ACCEPT, rules
    # at kappa = 0 the threshold is the goal, so the rule changes nothing
    for affect in ((0.5, 0.3, 0.3), A.PROTOTYPES[A.ANGER]):
        a, b = table(0.0, md, partner_affect=affect), table(0.0, planned, partner_affect=affect)
        a.step(offer((1, 2, 2)))
        b.step(offer((1, 2, 2)))
        assert a.standing[0, 1] == b.standing[0, 1]
