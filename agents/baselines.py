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
    (expected partner utility at least a target conceding over the rounds), in its tone. It accepts a
    counter-offer at least as good for itself as its own next offer, any positive counter in the
    last round, and any counter worth ``secure_at``. It infers the partner's values from counter-
    offers (the partner keeps what it values) and rejections (what it refused was worth little to
    it).

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


def make_policy(name: str, env_id: str, *, config: NegotiatorConfig | None = None,
                seed: int | None = None, n_actions: int | None = None):
    """Builds a reference policy by name for an env id.

    Args:
        name: one of ``POLICIES``.
        env_id: the Gymnasium id it will play.
        config: parameters of greedy or oracle (tuned ones come from ``benchmarks/baselines.py``).
        seed: seed of the random policy.
        n_actions: size of the action space (random policy).
    """
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; allowed: {', '.join(POLICIES)}")
    if name == "random":
        if n_actions is None:
            raise ValueError("the random policy needs n_actions")
        return RandomPolicy(n_actions, seed)
    if "Negotiation" not in env_id:
        raise ValueError(f"no scripted {name} policy for {env_id}")
    return ScriptedNegotiator(config, reads_emotion=(name == "oracle"))
