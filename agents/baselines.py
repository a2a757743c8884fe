"""Scripted reference policies: random, greedy (emotion-blind) and oracle (reads the true emotion).

Greedy and oracle are members of one family of scripted negotiators (:class:`ScriptedNegotiator`)
and receive the same information except the emotion: neither sees the partner's values; both infer
them from its counter-offers and rejections, over the public list of value vectors. What differs is
what their parameters may depend on:

* **greedy**: one set of parameters (opening and closing targets, tone, when to secure a standing
  counter-offer), whatever the partner feels;
* **oracle**: a set of parameters *per emotion of the partner*, read from ``info['emotion']``.

Each is tuned on separate seeds by ``benchmarks/baselines.py`` (greedy: its best fixed tone and
targets; oracle: its best response to each emotion), so the oracle's edge measures what knowing the
emotion is worth to the best scripted player. On an objective twin a tuned oracle can only gain by
finding emotion-driven behaviour, which must not exist there. The oracle is a ceiling, never a
learner: it is the only code in the project allowed to read ``info['emotion']``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from lewm_rl.envs import affect as A
from lewm_rl.envs import negotiation_core as C
from lewm_rl.envs import public_goods_core as PG

POLICIES: tuple[str, ...] = ("random", "greedy", "oracle")
K = A.NUM_EMOTIONS


class RandomPolicy:
    """Uniformly random actions."""

    reads_emotion = False

    def __init__(self, n_actions: int, seed: int | None = None) -> None:
        self.n_actions = n_actions
        self.rng = np.random.default_rng(seed)

    def reset(self, num_envs: int) -> None:
        """Nothing to forget."""

    def reset_rows(self, rows: np.ndarray) -> None:
        """Nothing to forget."""

    def act(self, obs: dict[str, np.ndarray], emotion: np.ndarray | None = None) -> np.ndarray:
        n = len(next(iter(obs.values())))
        return self.rng.integers(0, self.n_actions, size=n)


def _per_emotion(x: float | int) -> tuple:
    return (x,) * K


@dataclass(frozen=True)
class NegotiatorConfig:
    """Parameters of a scripted negotiator, each a ``(K,)`` tuple indexed by the partner's emotion.

    Greedy uses entry 0 whatever the partner feels (it cannot see the emotion); the oracle uses the
    entry of the partner's current emotion.
    """

    target_open: tuple[float, ...] = field(default_factory=lambda: _per_emotion(0.45))
    """Partner utility its round-0 offer aims to give (it concedes linearly to ``target_close``)."""
    target_close: tuple[float, ...] = field(default_factory=lambda: _per_emotion(0.35))
    """Partner utility its last-round offer aims to give."""
    tone: tuple[int, ...] = field(default_factory=lambda: _per_emotion(A.TONE_WARM))
    """Tone of its offers."""
    secure_at: tuple[float, ...] = field(default_factory=lambda: _per_emotion(1.01))
    """Accept any standing counter-offer worth at least this to itself (1.01: never early)."""
    sharpness: float = 8.0
    """Confidence of the value inference per observed counter-offer or rejection."""

    @classmethod
    def constant(cls, **kwargs: float | int) -> NegotiatorConfig:
        """A config whose every field is the same for all emotions (greedy's form)."""
        return cls(**{k: _per_emotion(v) if k != "sharpness" else v for k, v in kwargs.items()})

    def with_emotion(self, emotion: int, **kwargs: float | int) -> NegotiatorConfig:
        """A copy with the given fields changed for one emotion."""
        changes = {}
        for k, v in kwargs.items():
            values = list(getattr(self, k))
            values[emotion] = v
            changes[k] = tuple(values)
        return replace(self, **changes)


class ScriptedNegotiator:
    """Value-inferring negotiator for the negotiation envs.

    Each round it offers the split best for itself among those it expects the partner to accept
    (expected partner utility at least a target conceding over the rounds), in its tone. It
    accepts a counter-offer at least as good for itself as its own next offer, any positive
    counter in the last round, and any counter worth ``secure_at``. It infers the partner's values
    from counter-offers (the partner keeps what it values) and rejections (what it refused was
    worth little to it).

    Args:
        config: its parameters.
        reads_emotion: ``True`` for the oracle (parameters follow the partner's true emotion).
        round_limit: rounds per deal of the env it plays.
    """

    def __init__(self, config: NegotiatorConfig | None = None, *, reads_emotion: bool = False,
                 round_limit: int = 6) -> None:
        self.config = config or NegotiatorConfig()
        self.reads_emotion = reads_emotion
        self.round_limit = round_limit
        c = self.config
        self._open = np.asarray(c.target_open)
        self._close = np.asarray(c.target_close)
        self._tone = np.asarray(c.tone)
        self._secure = np.asarray(c.secure_at)
        # (V, J) partner utility of each own-perspective split under each candidate value vector.
        self._pu = (C.VALUE_VECTORS @ (C.ITEM_COUNTS - C.SPLITS).T) / C.POOL_VALUE
        self.reset(1)

    def reset(self, num_envs: int) -> None:
        """Forgets everything; prepares for ``num_envs`` parallel episodes."""
        self.log_w = np.zeros((num_envs, len(C.VALUE_VECTORS)))
        self.last_offer = np.full(num_envs, -1)
        self.last_deal = np.full(num_envs, -1.0)
        self.last_round = np.full(num_envs, -1)

    def reset_rows(self, rows: np.ndarray) -> None:
        """Forgets the episodes of ``rows`` (they were reset)."""
        self.log_w[rows] = 0.0
        self.last_offer[rows] = -1
        self.last_deal[rows] = -1.0
        self.last_round[rows] = -1

    def act(self, obs: dict[str, np.ndarray], emotion: np.ndarray | None = None) -> np.ndarray:
        """Actions ``(B,)`` for observations batched over ``B`` envs.

        Args:
            obs: the env's observation dict, batched.
            emotion: ``(B,)`` true labels; required by the oracle and ignored by greedy.
        """
        task = obs["task"]
        B = len(task)
        values = np.rint(task[:, 0:3] * C.POOL_VALUE).astype(int)  # (B, I)
        own_u = values @ C.SPLITS.T / C.POOL_VALUE  # (B, J)
        rnd = np.rint(task[:, 15] * self.round_limit).astype(int)
        deal = task[:, 16]
        has_counter = task[:, 13] > 0.5
        counter = np.where(has_counter,
                           C.split_index(np.rint(task[:, 10:13] * C.ITEM_COUNTS).astype(int)), 0)
        self._update_belief(values, rnd, deal, has_counter & (obs["partner_act"] == C.ACT_OFFER),
                            counter)
        w = np.exp(self.log_w - self.log_w.max(1, keepdims=True))
        exp_pu = (w / w.sum(1, keepdims=True)) @ self._pu  # (B, J)

        if self.reads_emotion:
            if emotion is None:
                raise ValueError("the oracle needs the true emotion (info['emotion'])")
            e = np.asarray(emotion)
        else:
            e = np.zeros(B, dtype=int)
        progress = np.minimum(rnd / (self.round_limit - 1), 1.0)
        target = self._open[e] - (self._open[e] - self._close[e]) * progress
        ok = exp_pu >= target[:, None] - 1e-9
        split = np.where(ok.any(1), np.where(ok, own_u + 1e-3 * exp_pu, -np.inf).argmax(1),
                         exp_pu.argmax(1))
        rows = np.arange(B)
        counter_u = np.where(has_counter, own_u[rows, counter], -1.0)
        last = rnd >= self.round_limit - 1
        accept = has_counter & ((counter_u >= own_u[rows, split] - 1e-9)
                                | (last & (counter_u > 0)) | (counter_u >= self._secure[e]))
        self.last_offer = np.where(accept, -1, split)
        return np.where(accept, C.ACCEPT, C.encode_offer(split, self._tone[e]))

    def _update_belief(self, values, rnd, deal, fresh_counter, counter) -> None:
        new_deal = (deal != self.last_deal) | (rnd < self.last_round) | (rnd == 0)
        if new_deal.any():
            # Prior: value vectors admissible beside our own (different, every item wanted).
            own = values[new_deal]
            ok = np.all(C.VALUE_VECTORS[None] + own[:, None] > 0, -1) & np.any(
                C.VALUE_VECTORS[None] != own[:, None], -1)
            self.log_w[new_deal] = np.where(ok, 0.0, -np.inf)
            self.last_offer[new_deal] = -1
        self.last_deal = deal.copy()
        self.last_round = rnd.copy()
        if fresh_counter.any():
            k = self.config.sharpness
            # The partner keeps what it values: its counter is worth a lot to it ...
            self.log_w[fresh_counter] += k * self._pu[:, counter[fresh_counter]].T
            # ... and it refused our last offer: that was worth little to it.
            rej = fresh_counter & (self.last_offer >= 0)
            if rej.any():
                self.log_w[rej] -= 0.5 * k * self._pu[:, self.last_offer[rej]].T


@dataclass(frozen=True)
class ContributorConfig:
    """Parameters of a scripted public-goods player; per-emotion fields are ``(K,)`` tuples.

    Greedy uses entry 0 of every per-emotion field whatever the others feel (it cannot see their
    emotions); the oracle uses, for each other seat, the entry of that seat's current emotion.
    """

    first: float = 1.0
    """Contribution (fraction of the endowment) in the first round."""
    give: tuple[float, ...] = field(default_factory=lambda: _per_emotion(0.0))
    """Contribution pressure of another seat in each emotion, averaged over the others."""
    follow: float = 1.0
    """Weight on the others' mean contribution last round (conditional cooperation)."""
    follow_min: float = 0.0
    """Weight on the lowest contribution of another seat last round."""
    own: float = 0.0
    """Weight on its own contribution last round (negative: alternate)."""
    after_punished: float = 0.0
    """Added to the contribution after being punished last round."""
    punish_below: tuple[float, ...] = field(default_factory=lambda: _per_emotion(-1.0))
    """Punish the lowest contributor of last round if it gave at most this fraction, by the
    target's emotion (-1: never)."""
    endgame: int = 0
    """Give nothing in the last ``endgame`` rounds."""

    def with_emotion(self, emotion: int, **kwargs: float) -> ContributorConfig:
        """A copy with the given per-emotion fields changed for one emotion."""
        changes = {}
        for k, v in kwargs.items():
            values = list(getattr(self, k))
            values[emotion] = v
            changes[k] = tuple(values)
        return replace(self, **changes)

    def blind(self) -> ContributorConfig:
        """The emotion-blind (greedy) form: every per-emotion field set to its entry 0."""
        return replace(self, give=_per_emotion(self.give[0]),
                       punish_below=_per_emotion(self.punish_below[0]))


class ScriptedContributor:
    """Scripted player for the public-goods envs (``PublicGoods-v0`` and its objective twin).

    Each round it gives ``first`` in round 0, else ``follow x`` the others' mean contribution last
    round, ``follow_min x`` the lowest of them and ``own x`` its own, plus ``after_punished`` if it
    was punished, plus the mean over the other seats of
    ``give[e]`` (``e``: that seat's emotion for the oracle, 0 for greedy), rounded to the nearest
    level; nothing in the last ``endgame`` rounds. It punishes the lowest contributor of last round
    (first in seat order on ties) if that seat gave at most ``punish_below[e]``.

    Args:
        config: its parameters.
        reads_emotion: ``True`` for the oracle (parameters follow the others' true emotions).
        n_rounds: rounds per episode of the env it plays.
    """

    def __init__(self, config: ContributorConfig | None = None, *,
                 reads_emotion: bool = False, n_rounds: int = 20) -> None:
        self.config = config or ContributorConfig()
        self.reads_emotion = reads_emotion
        self.n_rounds = n_rounds
        self._give = np.asarray(self.config.give, dtype=float)
        self._below = np.asarray(self.config.punish_below, dtype=float)

    def reset(self, num_envs: int) -> None:
        """Nothing to remember between rounds: it reads everything from the observation."""

    def reset_rows(self, rows: np.ndarray) -> None:
        """Nothing to forget."""

    def act(self, obs: dict[str, np.ndarray], emotion: np.ndarray | None = None) -> np.ndarray:
        """Actions ``(B,)`` for observations batched over ``B`` envs.

        Args:
            obs: the env's observation dict, batched.
            emotion: ``(B, N - 1)`` true labels of the others; required by the oracle and ignored
                by greedy.
        """
        task = obs["task"]
        B, k = task.shape[0], obs["tone"].shape[1]
        N = k + 1
        rounds_left = np.rint((1.0 - task[:, 0]) * self.n_rounds).astype(int)
        given = task[:, 2:2 + k]  # (B, N-1)
        punished = task[:, 2 + 4 * k] > 0
        first = task[:, 0] == 0
        if self.reads_emotion:
            if emotion is None:
                raise ValueError("the oracle needs the true emotions (info['emotion'])")
            e = np.asarray(emotion)
        else:
            e = np.zeros((B, k), dtype=int)
        c = self.config
        x = (c.follow * given.mean(1) + c.follow_min * given.min(1) + c.own * task[:, 1]
             + c.after_punished * punished + self._give[e].mean(1))
        x = np.where(first, c.first, x)
        x = np.where(rounds_left <= c.endgame, 0.0, x)
        level = np.rint(np.clip(x, 0.0, 1.0) * (PG.NUM_LEVELS - 1)).astype(np.int64)
        low = given.argmin(1)  # (B,) the lowest contributor (first in seat order on ties)
        rows = np.arange(B)
        punish = ~first & (given[rows, low] <= self._below[e[rows, low]] + 1e-6)
        return PG.encode_action(level, np.where(punish, low + 1, 0), N)


NEGOTIATION_CONFIGS: dict[str, dict[str, NegotiatorConfig]] = {
    "SocialNegotiation-v0": {
        "greedy": NegotiatorConfig(
            target_open=_per_emotion(0.55), target_close=_per_emotion(0.3),
            tone=_per_emotion(3), secure_at=_per_emotion(0.6)),
        "oracle": NegotiatorConfig(
            target_open=(0.45, 0.55, 0.55, 0.55, 0.35, 0.55, 0.35),
            target_close=(0.3, 0.2, 0.2, 0.3, 0.3, 0.5, 0.2),
            tone=(1, 1, 1, 3, 1, 3, 2),
            secure_at=(1.01, 0.4, 1.01, 0.2, 0.4, 0.6, 0.6)),
    },
    "ObjectiveNegotiation-v0": {
        "greedy": NegotiatorConfig(
            target_open=_per_emotion(0.35), target_close=_per_emotion(0.3),
            tone=_per_emotion(0), secure_at=_per_emotion(1.01)),
        "oracle": NegotiatorConfig(
            target_open=(0.35, 0.45, 0.35, 0.35, 0.35, 0.35, 0.35),
            target_close=(0.3, 0.3, 0.4, 0.4, 0.2, 0.3, 0.2),
            tone=(2, 1, 0, 0, 2, 3, 0),
            secure_at=(1.01, 1.01, 1.01, 1.01, 1.01, 0.6, 1.01)),
    },
}
"""Frozen (v0) greedy and oracle parameters of the negotiation ids, found by
``python -m benchmarks.baselines --tune`` on seeds 1,000,000+ (300 episodes per candidate):
greedy by exhaustive grid search over targets, tone and ``secure_at``; the oracle by coordinate
ascent over its per-emotion entries, from the best greedy. The subjective greedy apologises every
offer and secures any counter worth 0.6; the subjective oracle apologises to anger and disgust,
asks more of joy and sadness, plays assertive with fear, and secures deals earlier when the
partner might walk away."""


PUBLIC_GOODS_CONFIGS: dict[str, dict[str, ContributorConfig]] = {
    "PublicGoods-v0": {
        "greedy": ContributorConfig(
            first=1.0, give=_per_emotion(1.0), follow=-0.5, own=0.33, after_punished=-0.5,
            endgame=3),
        "oracle": ContributorConfig(
            first=1.0, give=(3.0, 0.0, 3.0, 3.0, 3.0, 2.0, 3.0), follow=-0.5, own=0.33,
            after_punished=0.67, punish_below=(-1.0, -1.0, -1.0, 0.0, -1.0, 0.0, -1.0),
            endgame=1),
    },
    "ObjectivePublicGoods-v0": {
        "greedy": ContributorConfig(
            first=1.0, give=_per_emotion(1.0), follow=1.0, follow_min=1.0, own=-1.0,
            after_punished=0.67, punish_below=_per_emotion(0.67)),
        "oracle": ContributorConfig(
            first=1.0, give=(1.0, 1.5, 1.0, 0.67, 1.0, 0.67, 0.67), follow=1.0, follow_min=1.0,
            own=-1.0, after_punished=0.67,
            punish_below=(0.67, 0.67, 0.34, 0.67, 0.67, 0.34, 0.67)),
    },
}
"""Frozen (v0) greedy and oracle parameters of each public-goods id, tuned on seeds 100000+ (768
episodes per candidate): greedy by coordinate ascent from 18 starts (hand-picked blind strategies
and random draws), the oracle by coordinate ascent over its per-emotion entries from the best
greedy. The subjective greedy gives 8 of 12 tokens while the others cooperate (blind partial free
riding); the subjective oracle gives nothing exactly when every other seat is joyful, otherwise
everything, and punishes an angry or disgusted seat that gave nothing."""


def make_policy(name: str, env_id: str, *,
                config: NegotiatorConfig | ContributorConfig | None = None,
                seed: int | None = None, n_actions: int | None = None):
    """Builds a reference policy by name for an env id.

    Args:
        name: one of ``POLICIES``.
        env_id: the Gymnasium id it will play.
        config: parameters of greedy or oracle; by default the frozen tuned ones
            (``NEGOTIATION_CONFIGS``, ``PUBLIC_GOODS_CONFIGS``, from
            ``python -m benchmarks.baselines --tune``).
        seed: seed of the random policy.
        n_actions: size of the action space (random policy).
    """
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; allowed: {', '.join(POLICIES)}")
    if name == "random":
        if n_actions is None:
            raise ValueError("the random policy needs n_actions")
        return RandomPolicy(n_actions, seed)
    if "PublicGoods" in env_id:
        if config is None:
            twin = "ObjectivePublicGoods-v0" if "Objective" in env_id else "PublicGoods-v0"
            config = PUBLIC_GOODS_CONFIGS[twin][name]
        return ScriptedContributor(config, reads_emotion=(name == "oracle"))
    if "Negotiation" not in env_id:
        raise ValueError(f"no scripted {name} policy for {env_id}")
    if config is None:
        twin = "ObjectiveNegotiation-v0" if "Objective" in env_id else "SocialNegotiation-v0"
        config = NEGOTIATION_CONFIGS[twin][name]
    return ScriptedNegotiator(config, reads_emotion=(name == "oracle"))
