"""The Large Emotional World Model (LEWM) and its emotion-blind and ablated configurations.

One network, in DreamerV3's four verbs (``initial``, ``observe``, ``imagine``, ``loss``), with the
state passed in and out explicitly. Notation (paper, arXiv 2512.24149): state ``S``, emotion ``E``,
action ``A``. Index ``t`` here is the step *arrived at*:

* encoders ``z = EncS(S)`` (a categorical posterior ``q(z_t | h_t, S_t)`` over an observation
  embedding), ``a = EncA(A)``, ``e = EncE(E)``;
* history ``h_t = GRU(h_{t-1}, [z_{t-1}; a_{t-1}; e_{t-1}])`` (the paper's ``h`` of the previous
  step);
* ``lewm`` (emotion first): ``TE: p(E_t | h_t)``, then ``TS: p(z_t | h_t, E_t)``;
  ``state_first``: ``p(z_t | h_t)`` then ``p(E_t | h_t, z_t)``; ``parallel``: both from ``h_t``;
  ``blind``: no ``E`` at all, widened to the same parameter count;
* ``DecS`` decodes ``S_t`` from ``(h_t, z_t)``; reward and continuation heads read ``(h_t, z_t)``;
* an emotion posterior ``q(E_t | h_t, S_t)`` infers the current emotion from the history and the
  cues: it is what the recurrent state carries forward (``e_t``), and what the actor reads.

Labels never enter ``h``, ``z`` or ``e``: the posterior states of ``observe`` are the same with or
without labels (a test checks it). Labels are targets: they train ``TE`` and the emotion posterior,
condition ``TS`` for part of the steps (``teacher_forcing``), and enter the consistency term
``C = || TS(h, E_hat) - TS(h, E) ||`` (L2 distance between the two prior distributions over z).
Loss: ``L_state + lambda L_emotion + beta C``, ``L_state`` being DreamerV3's reconstruction, reward,
continuation and balanced KL terms.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

from lewm_rl.distributions import ActionStructure, TwoHot, entropy, zero_output
from lewm_rl.metrics import f1_scores
from lewm_rl.nets import dense, mlp
from lewm_rl.world_models.codec import (
    LabelSpec,
    ObsDecoder,
    ObsEncoder,
    modalities,
    space_from_dict,
    space_to_dict,
)
from lewm_rl.world_models.config import ADDED_LATER, WorldModelConfig

Tensor = torch.Tensor


@dataclass
class State:
    """A (batch of) world-model state(s). Leading dims ``(...)`` are shared by all fields.

    Attributes:
        deter: ``(..., D)`` recurrent history state h.
        stoch: ``(..., S, C)`` one-hot categorical latents z (straight-through gradients).
        emotion: ``(..., P, K)`` emotion distribution carried forward (posterior when observing,
            prediction when imagining); ``P = 0`` for the blind model.
    """

    deter: Tensor
    stoch: Tensor
    emotion: Tensor

    def map(self, fn: Callable[[Tensor], Tensor]) -> State:
        """Applies ``fn`` to every field."""
        return State(fn(self.deter), fn(self.stoch), fn(self.emotion))

    def __getitem__(self, index) -> State:
        return self.map(lambda x: x[index])

    def detach(self) -> State:
        return self.map(lambda x: x.detach())

    @property
    def shape(self) -> torch.Size:
        """The leading dims."""
        return self.deter.shape[:-1]

    def flatten(self) -> State:
        """Merges all leading dims into one: ``(N, ...)``."""
        lead = len(self.shape)
        n = self.deter[..., 0].numel()  # explicit: the blind model's emotion has 0 elements
        return State(self.deter.reshape(n, self.deter.shape[-1]),
                     self.stoch.reshape(n, *self.stoch.shape[lead:]),
                     self.emotion.reshape(n, *self.emotion.shape[lead:]))

    @staticmethod
    def stack(states: list[State], dim: int = 0) -> State:
        return State(torch.stack([s.deter for s in states], dim),
                     torch.stack([s.stoch for s in states], dim),
                     torch.stack([s.emotion for s in states], dim))


@dataclass(frozen=True)
class EmotionIntervention:
    """A what-if: force the partner's emotion in imagination.

    Attributes:
        emotion: the forced label (e.g. 3 for anger).
        step: first imagined step at which it is forced (0 forces the start state's emotion).
        until: first step at which it is no longer forced (default ``step + 1``: one step).
        partner: which partner (for multi-partner label spaces).
    """

    emotion: int
    step: int = 1
    until: int | None = None
    partner: int = 0

    def active(self, k: int) -> bool:
        end = self.step + 1 if self.until is None else self.until
        return self.step <= k < end


@dataclass
class Trajectory:
    """An imagined rollout of ``H`` steps from ``N`` start states (index 0 is the start).

    Attributes:
        states: ``State`` with leading dims ``(H + 1, N)``.
        features: ``(H + 1, N, F)`` what the actor and critic read.
        actions: ``(H, N)`` actions taken at states ``0..H-1``.
        emotion: ``(H + 1, N, P, K)`` predicted emotion distributions (empty for blind).
        reward: ``(H + 1, N)`` predicted reward on arriving at each state (index 0 unused): the
            mean of the reward heads.
        reward_std: ``(H + 1, N)`` the reward heads' standard deviation (zero with one head).
        cont: ``(H + 1, N)`` predicted probability that the episode continues at each state.
        behaviour: ``(H + 1, N, ..., classes)`` decoded probabilities of the behaviour modality
            (e.g. the partner's next act), or ``None``.
        disagreement: ``(H + 1, N)`` how much the state priors of an ensemble disagree about
            each state's latent (:func:`disagreement`), or ``None`` with one prior.
    """

    states: State
    features: Tensor
    actions: Tensor
    emotion: Tensor
    reward: Tensor
    cont: Tensor
    behaviour: Tensor | None
    reward_std: Tensor | None = None
    disagreement: Tensor | None = None


def _probs(logits: Tensor, unimix: float) -> Tensor:
    probs = torch.softmax(logits, -1)
    if unimix > 0:
        probs = (1 - unimix) * probs + unimix / logits.shape[-1]
    return probs


def sample_index(probs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One sample ``(...)`` of each categorical ``probs`` ``(..., C)``, by the inverse CDF.

    One uniform number per row instead of ``torch.multinomial``'s ``C`` exponentials (it was a
    sixth of the imagination's time). Non-finite or negative probabilities raise the
    ``RuntimeError`` ``torch.multinomial`` raises, so a diverged model is reported, not sampled.
    """
    detached = probs.detach()
    if not bool(torch.isfinite(detached).all()) or bool((detached < 0).any()):
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    u = torch.rand((*probs.shape[:-1], 1), generator=generator, device=probs.device,
                   dtype=probs.dtype)
    cdf = detached.cumsum(-1)
    u = u * cdf[..., -1:]  # rows that sum to 1 up to rounding
    return (cdf < u).sum(-1).clamp_max(probs.shape[-1] - 1)


def _sample_onehot(probs: Tensor, generator: torch.Generator | None) -> Tensor:
    """Straight-through one-hot sample ``(..., C)`` of categorical ``probs``."""
    onehot = F.one_hot(sample_index(probs, generator), probs.shape[-1]).to(probs.dtype)
    return onehot + probs - probs.detach()


def gru_cell(cell: nn.GRUCell, x: Tensor, h: Tensor) -> Tensor:
    """``cell(x, h)`` written out (PyTorch's equations and gate order: reset, update, new), so
    that under an autocast its two matmuls run in bfloat16 while the gates and the state stay
    in float32 (``nn.GRUCell`` itself runs in float32 under a CPU autocast, and would return a
    bfloat16 state under a CUDA one)."""
    ir, iz, i_n = F.linear(x, cell.weight_ih, cell.bias_ih).float().chunk(3, -1)
    hr, hz, h_n = F.linear(h, cell.weight_hh, cell.bias_hh).float().chunk(3, -1)
    r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


def _kl(p_logp: tuple[Tensor, Tensor], q_logq: tuple[Tensor, Tensor]) -> Tensor:
    """KL(p || q) of categoricals ``(..., S, C)``, summed over latents: ``(...)``."""
    p, logp = p_logp
    _, logq = q_logq
    return (p * (logp - logq)).sum((-2, -1))


def imagined_prior(out: dict[str, Tensor]) -> Tensor:
    """The one-step prior over ``z`` as imagination draws it, from :meth:`observe`'s outputs:
    for ``lewm`` trained with labels, ``TS(h, E_hat)`` on the predicted emotion (``ts_pred``), not
    the training prior, which teacher forcing conditions on the label in a share of the steps;
    for the other kinds the one prior there is."""
    return out.get("ts_pred", out["prior"])


def consistency(ts_pred: Tensor, ts_label: Tensor) -> Tensor:
    """The consistency term ``C = || TS(h, E_hat) - TS(h, E) ||_2`` per step.

    Args:
        ts_pred: ``(..., S, C)`` prior distribution over z conditioned on the predicted emotion.
        ts_label: ``(..., S, C)`` prior distribution over z conditioned on the label.

    Returns:
        ``(...)`` Euclidean distance between the two, over all latents and classes.
    """
    return torch.linalg.vector_norm((ts_pred - ts_label).flatten(-2), dim=-1)


def disagreement(probs: Tensor) -> Tensor:
    """The ensemble's disagreement about categorical latents: the mutual information between the
    member and the latent, ``H(mean_k p_k) - mean_k H(p_k)``, summed over latents (nats).

    Args:
        probs: ``(M, ..., S, C)`` the ``M`` members' distributions over ``S`` latents of ``C``
            classes.

    Returns:
        ``(...)``: 0 where the members agree, up to ``S log M`` where each is sure of another
        class. It measures what the model does not know (too few data), not the latent's own
        noise, which each member predicts alike.
    """
    mean = probs.mean(0)
    return (entropy(mean) - entropy(probs).mean(0)).sum(-1)


class EmotionalWorldModel(nn.Module):
    """LEWM and its configurations (see the module docstring). Build with :func:`build_world_model`.

    Args:
        config: hyperparameters and ``kind``.
        observation_space: the env's observation space (``Dict`` of Box/Discrete/... modalities).
        action_space: ``Discrete``.
        labels: the emotion-label spec (partners x classes); ignored by ``blind``.
        behaviour_key: observation key holding the others' social behaviour (e.g. ``partner_act``),
            decoded in imagination and scored by the metrics; ``None`` if the env has none.
        action_structure: the env's actions as kinds of factors (``((24, 4), (), ())`` in the
            negotiation; see :class:`~lewm_rl.distributions.ActionStructure`), or ``None``. With
            ``config.action_embed == "structured"`` EncA embeds an action as the sum of its
            kind's and its factors' embeddings, so what the model learns of a tone carries over
            to every split.
        action_features: ``(A, d)`` the env's description of each flat action in numbers (the
            negotiation's kind, fraction of each item kept and tone), or ``None``. With
            ``config.action_embed == "features"`` EncA reads it beside the action's one-hot, so
            what the model learns of one offer carries over to offers that keep similar items.
    """

    def __init__(
        self,
        config: WorldModelConfig,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        labels: LabelSpec,
        behaviour_key: str | None = None,
        action_structure: tuple[tuple[int, ...], ...] | None = None,
        action_features: Sequence[Sequence[float]] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(action_space, spaces.Discrete):
            raise ValueError(f"the world models take Discrete actions, got {action_space}")
        c = config
        self.config = c
        self.observation_space = observation_space
        self.action_space = action_space
        self.labels = labels
        self.mods = modalities(observation_space)
        keys = [m.key for m in self.mods]
        if behaviour_key is not None and behaviour_key not in keys:
            raise ValueError(f"behaviour_key {behaviour_key!r} is not an observation key {keys}")
        self.behaviour_key = behaviour_key
        self.num_actions = int(action_space.n)
        self.P = labels.partners if c.uses_emotion else 0
        self.K = labels.classes
        z_dim = c.stoch * c.classes
        e_in = c.emotion_embed if c.uses_emotion else 0

        self.encoder = ObsEncoder(self.mods, c.per_modality, c.hidden, c.embed)  # EncS
        self.action_structure = (tuple(tuple(k) for k in action_structure)
                                 if action_structure is not None else None)
        code = torch.eye(self.num_actions)  # (A, codes): what EncA reads of each action
        if self.action_structure is not None and c.action_embed == "structured":
            structure = ActionStructure(self.action_structure)
            if structure.num_actions != self.num_actions:
                raise ValueError(f"action_structure {self.action_structure} has "
                                 f"{structure.num_actions} actions, the action space "
                                 f"{self.num_actions}")
            code = structure.incidence.t()
        self.action_features = (tuple(tuple(float(x) for x in row) for row in action_features)
                                if action_features is not None else None)
        if c.action_embed == "features":
            if self.action_features is None:
                raise ValueError("action_embed='features' needs the env's action_features (the "
                                 "negotiation declares them); this env declares none: use 'flat' "
                                 "or 'structured'")
            features = torch.tensor(self.action_features, dtype=torch.float32)
            if features.dim() != 2 or len(features) != self.num_actions:
                raise ValueError(f"action_features must be ({self.num_actions}, d), got "
                                 f"{tuple(features.shape)}")
            code = torch.cat([code, features], 1)
        self.register_buffer("action_code", code, persistent=False)
        self.enc_a = nn.Linear(code.shape[1], c.per_modality)  # EncA
        self.img_in = nn.Sequential(*dense(z_dim + c.per_modality + e_in, c.hidden))
        self.gru = nn.GRUCell(c.hidden, c.deter)
        # q(z, E | h, S): one trunk, heads for the latents and (emotion models) the emotion.
        self.post = mlp(c.deter + c.embed, c.hidden, z_dim + self.P * self.K)
        self.ts = mlp(c.deter + (e_in if c.kind == "lewm" else 0), c.hidden, z_dim)  # TS
        if c.uses_emotion:
            e_dim = self.P * self.K
            self.enc_e = nn.Linear(e_dim, c.emotion_embed)  # EncE
            self.te = mlp(c.deter + (z_dim if c.kind == "state_first" else 0), c.hidden, e_dim)
        feat = c.deter + z_dim
        self.decoder = ObsDecoder(self.mods, feat, c.hidden, c.decoder_targets)  # DecS
        self.twohot = TwoHot(c.reward_bins) if c.reward_head == "twohot" else None
        self.reward_head = mlp(feat, c.hidden, c.reward_bins if self.twohot else 1)
        if self.twohot:
            zero_output(self.reward_head)  # DreamerV3's outscale 0: rewards start at 0
        self.cont_head = mlp(feat, c.hidden, 1)
        # Heads 1.. of a reward ensemble, built last so that one head initialises as before.
        self.reward_ensemble = nn.ModuleList(
            mlp(feat, c.hidden, c.reward_bins if self.twohot else 1)
            for _ in range(c.reward_heads - 1))
        if self.twohot:
            for head in self.reward_ensemble:
                zero_output(head)
        # An ensemble of state priors beside TS, measuring what the dynamics do not know (built
        # last, like the reward ensemble, so that the rest initialises as before).
        self.ts_ensemble = nn.ModuleList(
            mlp(c.deter + (e_in if c.kind == "lewm" else 0), c.hidden, z_dim)
            for _ in range(c.prior_ensemble))

    # ------------------------------------------------------------------------------------------
    @property
    def feature_dim(self) -> int:
        """Size of :meth:`features`: ``deter + stoch*classes`` (+ ``P*K + P`` with emotions)."""
        c = self.config
        return c.deter + c.stoch * c.classes + (self.P * self.K + self.P)

    @property
    def device(self) -> torch.device:
        return self.gru.weight_hh.device

    def initial(self, batch_size: int) -> State:
        """The state before any observation: zeros, and a uniform emotion belief."""
        c, dev = self.config, self.device
        return State(
            torch.zeros(batch_size, c.deter, device=dev),
            torch.zeros(batch_size, c.stoch, c.classes, device=dev),
            torch.full((batch_size, self.P, self.K), 1.0 / self.K, device=dev),
        )

    def features(self, state: State) -> Tensor:
        """What the actor, the critic and SB3 policies read: ``(..., F)``.

        ``[h; z]``, plus, for every model with an emotion pathway, the emotion distribution and its
        entropy per partner, so that emotion predictions shape planning.
        """
        lead = state.shape
        parts = [state.deter, state.stoch.reshape(*lead, -1)]
        if self.P:
            e = state.emotion
            parts += [e.reshape(*lead, -1), entropy(e)]
        return torch.cat(parts, -1)

    def _state_features(self, state: State) -> Tensor:
        """``[h; z]``: what the decoder and the reward and continuation heads read."""
        return torch.cat([state.deter, state.stoch.reshape(*state.shape, -1)], -1)

    def decode(self, state: State) -> dict[str, Tensor]:
        """DecS of states with any leading dims: per modality, box means in symlog space and
        categorical logits (:class:`~lewm_rl.world_models.codec.ObsDecoder`)."""
        return self.decoder(self._state_features(state))

    def _reward_heads(self, sfeat: Tensor) -> list[Tensor]:
        """Every reward head's prediction ``(...)`` from state features ``(..., F)``."""
        outs = [head(sfeat) for head in (self.reward_head, *self.reward_ensemble)]
        return [self.twohot.mean(o) if self.twohot else o.squeeze(-1) for o in outs]

    def reward(self, sfeat: Tensor) -> Tensor:
        """Predicted reward ``(...)`` from state features ``(..., F)``: the mean of the heads."""
        return self.reward_spread(sfeat)[0]

    def reward_spread(self, sfeat: Tensor) -> tuple[Tensor, Tensor]:
        """``(mean, standard deviation)`` of the reward heads' predictions ``(...)`` (the sample
        standard deviation over heads; zero with one head)."""
        heads = self._reward_heads(sfeat)
        if len(heads) == 1:
            return heads[0], torch.zeros_like(heads[0])
        stacked = torch.stack(heads)
        return stacked.mean(0), stacked.std(0)

    def reward_loss(self, sfeat: Tensor, target: Tensor,
                    generator: torch.Generator | None = None) -> Tensor:
        """``(...)`` the reward heads' loss: two-hot cross-entropy, or the squared error. With an
        ensemble, the mean over heads of each head's loss weighted by its own Poisson(1) bootstrap
        draw per step (``generator`` draws them)."""
        losses = [self.twohot.loss(head(sfeat), target) if self.twohot
                  else (head(sfeat).squeeze(-1) - target) ** 2
                  for head in (self.reward_head, *self.reward_ensemble)]
        if len(losses) == 1:
            return losses[0]
        rate = torch.ones(len(losses), *target.shape, device=target.device)
        weight = torch.poisson(rate, generator=generator)
        return (weight * torch.stack(losses)).mean(0)

    def _head_losses(self, sfeat: Tensor, batch: dict[str, Tensor],
                     generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """The reward and continuation heads' losses on features ``sfeat`` ``(B, T, F)``."""
        reward = self.reward_loss(sfeat, batch["reward"].float(), generator).mean()
        cont = F.binary_cross_entropy_with_logits(self.cont_head(sfeat).squeeze(-1),
                                                  1.0 - batch["is_terminal"].float())
        return reward, cont

    # ------------------------------------------------------------------------------------------
    def _embed_action(self, action: Tensor, keep: Tensor | None = None) -> Tensor:
        """EncA of actions ``(N,)``: a column of its weight (what it does to a one-hot),
        zero where ``keep`` is False (no previous action at an episode's start)."""
        a = F.embedding(action.long(), self.action_code @ self.enc_a.weight.t())
        if keep is not None:
            a = a * keep[:, None]
        return a + self.enc_a.bias

    def _recur(self, prev: State, prev_action: Tensor) -> Tensor:
        """``h_t`` from the previous state and the embedded previous action ``(N, per_modality)``
        (:meth:`_embed_action`)."""
        parts = [prev.stoch.reshape(len(prev.deter), -1), prev_action]
        if self.P:
            parts.append(self.enc_e(prev.emotion.reshape(len(prev.deter), -1)))
        x, h = self.img_in(torch.cat(parts, -1)), prev.deter
        if x.dtype != h.dtype:  # under the actor-critic's bfloat16 autocast: bfloat16 matmuls
            return gru_cell(self.gru, x, h)
        return self.gru(x, h)

    def _ts_input(self, h: Tensor, emotion: Tensor | None) -> Tensor:
        """What TS reads: ``h``, and for lewm the embedded emotion ``(N, P, K)``."""
        if self.config.kind != "lewm":
            return h
        return torch.cat([h, self.enc_e(emotion.flatten(1))], -1)

    def _ts(self, h: Tensor, emotion: Tensor | None) -> Tensor:
        """TS prior logits ``(N, S, C)``; ``emotion`` ``(N, P, K)`` conditions it for lewm."""
        c = self.config
        return self.ts(self._ts_input(h, emotion)).reshape(len(h), c.stoch, c.classes)

    def _ensemble_probs(self, x: Tensor) -> Tensor:
        """``(M, ..., S, C)``: the ensemble members' prior distributions from TS's input ``x``
        ``(..., D)`` (detached: the members learn from their KL alone and shape nothing else)."""
        c = self.config
        x = x.detach()
        return torch.stack([_probs(m(x).reshape(*x.shape[:-1], c.stoch, c.classes), c.unimix)
                            for m in self.ts_ensemble])

    def prior_disagreement(self, h: Tensor) -> Tensor:
        """How much the state-prior ensemble disagrees about the latent that follows ``h``
        ``(..., D)``, given what imagination conditions TS on (lewm: the predicted emotion):
        ``(...)`` (:func:`disagreement`); zeros without an ensemble."""
        if not len(self.ts_ensemble):
            return torch.zeros(h.shape[:-1], device=h.device)
        flat = h.reshape(-1, h.shape[-1])
        emotion = torch.softmax(self._te(flat), -1) if self.config.kind == "lewm" else None
        return disagreement(self._ensemble_probs(self._ts_input(flat, emotion))
                            ).reshape(h.shape[:-1])

    def _te(self, h: Tensor, z_probs: Tensor | None = None) -> Tensor:
        """TE emotion prior logits ``(N, P, K)`` (state_first reads the predicted z too)."""
        x = h if self.config.kind != "state_first" else torch.cat([h, z_probs.flatten(1)], -1)
        return self.te(x).reshape(len(h), self.P, self.K)

    def _reset(self, prev: State, prev_action: Tensor, is_first: Tensor) -> tuple[State, Tensor]:
        """Starts episodes where ``is_first``: initial state and no previous action. Returns the
        state and the embedded previous action."""
        if not bool(is_first.any()):
            return prev, self._embed_action(prev_action)
        init = self.initial(len(is_first))
        m = is_first[:, None]
        state = State(
            torch.where(m, init.deter, prev.deter),
            torch.where(m[..., None], init.stoch, prev.stoch),
            torch.where(m[..., None], init.emotion, prev.emotion),
        )
        return state, self._embed_action(prev_action, (~is_first).float())

    def observe_step(
        self,
        prev: State,
        prev_action: Tensor,
        embed: Tensor,
        is_first: Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[State, dict[str, Tensor]]:
        """One posterior step: what acting needs, and what the recurrence needs.

        Args:
            prev: state at ``t - 1`` ``(N, ...)``.
            prev_action: ``(N,)`` action taken at ``t - 1``.
            embed: ``(N, embed)`` EncS embedding of ``S_t``.
            is_first: ``(N,)`` bool, ``S_t`` starts an episode.
            generator: for sampling z.

        Returns:
            The posterior state at ``t`` (labels never enter it) and the posterior distributions.
        """
        return self._observe_step(prev, prev_action, self._embed_proj(embed), is_first, generator)

    def _embed_proj(self, embed: Tensor) -> Tensor:
        """The embedding's share of the posterior's first layer: ``(..., hidden)``."""
        return F.linear(embed, self.post[0].weight[:, self.config.deter:])

    def _observe_step(self, prev: State, prev_action: Tensor, embed_proj: Tensor,
                      is_first: Tensor, generator: torch.Generator | None
                      ) -> tuple[State, dict[str, Tensor]]:
        c = self.config
        prev, prev_a = self._reset(prev, prev_action, is_first.bool())
        h = self._recur(prev, prev_a)
        first = self.post[0]  # Linear over [h; embed], split so embed's part is precomputed
        x = F.linear(h, first.weight[:, : c.deter], first.bias) + embed_proj
        logits = self.post[1:](x)
        z_dim = c.stoch * c.classes
        post_probs = _probs(logits[:, :z_dim].reshape(len(h), c.stoch, c.classes), c.unimix)
        z = _sample_onehot(post_probs, generator)
        out = {"post": post_probs}
        emotion = prev.emotion[:, :0]
        if self.P:
            post_e = logits[:, z_dim:].reshape(len(h), self.P, self.K)
            emotion = torch.softmax(post_e, -1)
            out["post_e_logits"] = post_e
        return State(h, z, emotion), out

    def priors(
        self, h: Tensor, label: Tensor | None = None, force_label: Tensor | None = None
    ) -> dict[str, Tensor]:
        """The one-step predictions from ``h_t`` ``(N, D)``, batched over all steps at once.

        They do not feed the recurrence when observing, so ``observe`` computes them after its
        loop in one call.

        Args:
            h: history states.
            label: ``(N, P)`` labels of the same steps; with them (lewm) TS is also conditioned
                on the label, for the consistency term and teacher forcing.
            force_label: ``(N,)`` bool, rows whose training prior is the label-conditioned one.

        Returns:
            ``prior`` ``(N, S, C)`` (the prior over z the KL trains), ``te_logits`` ``(N, P, K)``
            (emotion models), and for lewm with labels ``ts_pred`` and ``ts_label``.
        """
        c = self.config
        out: dict[str, Tensor] = {}
        cond = None  # the emotion the training prior is conditioned on (lewm)
        if c.kind == "lewm":
            te = self._te(h)
            pred = torch.softmax(te, -1)
            out["te_logits"] = te
            cond = pred
            if label is not None:
                onehot = F.one_hot(label.clamp_min(0).long(), self.K).float()
                both = self._ts(torch.cat([h, h]), torch.cat([pred, onehot]))  # (2N, S, C)
                ts_pred, ts_label = both[: len(h)], both[len(h):]
                out["ts_pred"] = _probs(ts_pred, c.unimix)
                out["ts_label"] = _probs(ts_label, c.unimix)
                prior = ts_pred
                if force_label is not None:
                    prior = torch.where(force_label[:, None, None], ts_label, ts_pred)
                    cond = torch.where(force_label[:, None, None], onehot, pred)
            else:
                prior = self._ts(h, pred)
        else:
            prior = self._ts(h, None)
            if self.P:
                zp = _probs(prior, c.unimix) if c.kind == "state_first" else None
                out["te_logits"] = self._te(h, zp)
        out["prior"] = _probs(prior, c.unimix)
        if len(self.ts_ensemble):  # on what the training prior reads
            out["prior_ensemble"] = self._ensemble_probs(self._ts_input(h, cond))
        return out

    def observe(
        self,
        obs: dict[str, Tensor],
        action: Tensor,
        is_first: Tensor,
        emotion: Tensor | None = None,
        state: tuple[State, Tensor] | None = None,
        teacher_forcing: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> tuple[State, dict[str, Tensor], tuple[State, Tensor]]:
        """Posterior states over a ``(B, T)`` sequence, and the one-step priors.

        Args:
            obs: observation tensors ``(B, T, ...)`` per modality.
            action: ``(B, T)`` action taken at each step.
            is_first: ``(B, T)`` bool.
            emotion: ``(B, T, P)`` labels, or ``None``. They shape only the prior outputs used by
                the loss; the returned states do not depend on them.
            state: carry ``(State (B, ...), previous action (B,))`` from the last call, or
                ``None`` to start from :meth:`initial`.
            teacher_forcing: share of steps whose TS prior is conditioned on the label.
            generator: for sampling.

        Returns:
            ``(states (B, T, ...), outputs (B, T, ...), carry)``.
        """
        B, T = is_first.shape
        assert action.shape == (B, T), f"action must be (B, T) = {(B, T)}, got {action.shape}"
        embed_proj = self._embed_proj(self.encoder(obs))  # (B, T, hidden), for all t at once
        prev, prev_action = state if state is not None else (
            self.initial(B), torch.zeros(B, dtype=torch.long, device=self.device))
        states, outs = [], []
        for t in range(T):
            prev, out = self._observe_step(prev, prev_action, embed_proj[:, t], is_first[:, t],
                                           generator)
            prev_action = action[:, t]
            states.append(prev)
            outs.append(out)
        stacked = {k: torch.stack([o[k] for o in outs], 1) for k in outs[0]}
        seq = State.stack(states, 1)
        force = None
        label = None
        if emotion is not None:
            label = emotion.reshape(B * T, -1)
            if teacher_forcing > 0:
                u = torch.rand(B * T, generator=generator, device=self.device)
                force = u < teacher_forcing
        pri = self.priors(seq.deter.reshape(B * T, -1), label, force)  # (B*T, ...)
        members = pri.pop("prior_ensemble", None)  # (M, B*T, ...)
        stacked.update({k: v.reshape(B, T, *v.shape[1:]) for k, v in pri.items()})
        if members is not None:
            stacked["prior_ensemble"] = members.reshape(len(members), B, T, *members.shape[2:])
        return seq, stacked, (prev, prev_action)

    # ------------------------------------------------------------------------------------------
    def img_step(
        self,
        prev: State,
        action: Tensor,
        force: tuple[int, int] | None = None,
        generator: torch.Generator | None = None,
    ) -> State:
        """One imagined step from ``prev`` ``(N, ...)`` under ``action`` ``(N,)``.

        Args:
            force: ``(partner, emotion)`` to force the predicted emotion of this step (what-if).
        """
        c = self.config
        h = self._recur(prev, self._embed_action(action))
        emotion = prev.emotion[:, :0]
        if c.kind == "lewm":
            emotion = self._force(torch.softmax(self._te(h), -1), force)
            prior = self._ts(h, emotion)
        else:
            prior = self._ts(h, None)
        probs = _probs(prior, c.unimix)
        z = _sample_onehot(probs, generator)
        if c.kind == "state_first":
            emotion = self._force(torch.softmax(self._te(h, probs), -1), force)
        elif c.kind == "parallel":
            emotion = self._force(torch.softmax(self._te(h), -1), force)
        return State(h, z, emotion)

    def _force(self, emotion: Tensor, force: tuple[int, int] | None) -> Tensor:
        if force is None:
            return emotion
        partner, label = force
        emotion = emotion.clone()
        emotion[:, partner] = F.one_hot(torch.tensor(label), self.K).to(emotion)
        return emotion

    def imagine(
        self,
        start: State,
        policy: Callable[[Tensor], Tensor],
        horizon: int,
        intervention: EmotionIntervention | None = None,
        generator: torch.Generator | None = None,
        decode_behaviour: bool = True,
    ) -> Trajectory:
        """Rolls the model forward ``horizon`` steps under ``policy``.

        Args:
            start: start states ``(N, ...)`` (for example flattened posterior states).
            policy: maps features ``(N, F)`` to actions ``(N,)``.
            horizon: number of imagined steps ``H``.
            intervention: force the partner's emotion at chosen steps (what-if imagination); a
                blind model has no emotion to force and raises ``ValueError``.
            generator: for sampling.
            decode_behaviour: also decode the behaviour modality (what-if analysis); the agents
                skip it.

        Returns:
            The :class:`Trajectory`.
        """
        if intervention is not None:
            if not self.P:
                raise ValueError("an emotion-blind model has no emotion to intervene on")
            if not 0 <= intervention.emotion < self.K or not 0 <= intervention.partner < self.P:
                raise ValueError(f"intervention must name an emotion in [0, {self.K}) and a "
                                 f"partner in [0, {self.P})")
        assert start.deter.dim() == 2, "start states must be flattened to (N, ...)"
        state = start
        if intervention is not None and intervention.active(0):
            state = State(start.deter, start.stoch,
                          self._force(start.emotion, (intervention.partner, intervention.emotion)))
        states, actions = [state], []
        for k in range(1, horizon + 1):
            action = policy(self.features(state))
            force = None
            if intervention is not None and intervention.active(k):
                force = (intervention.partner, intervention.emotion)
            state = self.img_step(state, action, force, generator)
            states.append(state)
            actions.append(action)
        traj = State.stack(states, 0)
        sfeat = self._state_features(traj)
        behaviour = None
        if self.behaviour_key is not None and decode_behaviour:
            behaviour = torch.softmax(self.decoder(sfeat)[self.behaviour_key], -1)
        reward, reward_std = self.reward_spread(sfeat)
        # TE again over all steps at once, rather than the states' stored emotions (equal up to
        # rounding): the committed runs were made so, and reproduce bit-exactly.
        unknown = self.prior_disagreement(traj.deter) if len(self.ts_ensemble) else None
        return Trajectory(
            states=traj,
            features=self.features(traj),
            actions=(torch.stack(actions, 0) if actions
                     else torch.zeros(0, len(start.deter), device=start.deter.device)),
            emotion=traj.emotion,
            reward=reward,
            reward_std=reward_std,
            disagreement=unknown,
            cont=torch.sigmoid(self.cont_head(sfeat).squeeze(-1)),
            behaviour=behaviour,
        )

    # ------------------------------------------------------------------------------------------
    def loss(
        self,
        batch: dict[str, Tensor],
        generator: torch.Generator | None = None,
        with_metrics: bool = True,
    ) -> tuple[Tensor, dict[str, float]]:
        """``L_state + lambda L_emotion + beta C`` over a ``(B, T)`` batch (see
        :meth:`loss_and_states`)."""
        loss, metrics, _ = self.loss_and_states(batch, generator, with_metrics)
        return loss, metrics

    def loss_and_states(
        self,
        batch: dict[str, Tensor],
        generator: torch.Generator | None = None,
        with_metrics: bool = True,
    ) -> tuple[Tensor, dict[str, float], State]:
        """``L_state + lambda L_emotion + beta C`` over a ``(B, T)`` batch, and the posterior
        states.

        Args:
            batch: observation keys ``(B, T, ...)``, ``action`` ``(B, T)``, ``reward`` ``(B, T)``
                (received on arriving at each step), ``is_first`` and ``is_terminal`` ``(B, T)``,
                and for emotion models the training labels under ``config.label_key`` ``(B, T, P)``
                (``-1`` where unknown) and the true labels ``emotion`` for metrics.
            generator: for sampling.
            with_metrics: also compute the prediction metrics (slower).

        Returns:
            ``(loss, metrics, posterior states (B, T, ...))``, metrics keyed ``world_model/...``.
        """
        c = self.config
        obs = {m.key: batch[m.key] for m in self.mods}
        B, T = batch["is_first"].shape
        labels = None
        if self.P:
            labels = batch[c.label_key].reshape(B, T, self.P).long()
        # Labels condition TS only when they feed the loss (consistency or teacher forcing).
        cond = labels if c.kind == "lewm" and (c.consistency_weight > 0 or c.teacher_forcing > 0
                                               ) else None
        states, out, _ = self.observe(obs, batch["action"], batch["is_first"].bool(), cond,
                                      teacher_forcing=c.teacher_forcing if c.kind == "lewm" else 0,
                                      generator=generator)
        sfeat = self._state_features(states)  # (B, T, F)
        recon = self.decoder.loss(self.decoder(sfeat), obs)
        recon_loss = sum(v.mean() for v in recon.values())
        reward_loss, cont_loss = self._head_losses(sfeat, batch, generator)
        post, prior = out["post"], out["prior"]
        lp, lq = torch.log(post), torch.log(prior)
        kl_dyn = _kl((post.detach(), lp.detach()), (prior, lq))
        kl_rep = _kl((post, lp), (prior.detach(), lq.detach()))
        kl_loss = (c.kl_dyn * kl_dyn.clamp_min(c.free_nats).mean()
                   + c.kl_rep * kl_rep.clamp_min(c.free_nats).mean())
        total = recon_loss + reward_loss + cont_loss + kl_loss
        losses = {"recon": recon_loss, "reward": reward_loss, "cont": cont_loss,
                  "kl": kl_dyn.mean()}
        if c.prior_heads:
            losses["prior_heads"] = self.prior_head_loss(states, imagined_prior(out), batch,
                                                         generator)
            total = total + c.prior_heads * losses["prior_heads"]
        if "prior_ensemble" in out:
            losses["prior_ensemble"] = self.prior_ensemble_loss(post, out["prior_ensemble"],
                                                                generator)
            total = total + losses["prior_ensemble"]

        if self.P:
            valid = labels >= 0  # (B, T, P)
            safe = labels.clamp_min(0)
            ce_post = F.cross_entropy(out["post_e_logits"].reshape(-1, self.K), safe.reshape(-1),
                                      reduction="none").reshape(B, T, self.P)
            ce_prior = F.cross_entropy(out["te_logits"].reshape(-1, self.K), safe.reshape(-1),
                                       reduction="none").reshape(B, T, self.P)
            not_first = (~batch["is_first"].bool())[..., None]
            emotion_loss = _masked_mean(ce_post, valid) + _masked_mean(ce_prior, valid & not_first)
            total = total + c.emotion_weight * emotion_loss
            losses["emotion"] = emotion_loss
            if c.kind == "lewm" and "ts_pred" in out:
                cons = consistency(out["ts_pred"], out["ts_label"])  # (B, T)
                cons_loss = _masked_mean(cons, valid.all(-1))
                total = total + c.consistency_weight * cons_loss
                losses["consistency"] = cons_loss
        metrics = {f"world_model/loss_{k}": float(v.detach()) for k, v in losses.items()}
        metrics["world_model/loss"] = float(total.detach())
        if with_metrics:
            with torch.no_grad():
                metrics.update(self._metrics(batch, states, out))
        return total, metrics, states

    def prior_ensemble_loss(self, post: Tensor, members: Tensor,
                            generator: torch.Generator | None = None) -> Tensor:
        """The state-prior ensemble's loss: each member's KL from the (detached) posterior
        ``post`` ``(B, T, S, C)`` to its distribution ``members[k]``, weighted per step by the
        member's own Poisson(1) bootstrap draw, without free bits (the members shape nothing
        else, so they fit as closely as the data lets them: where they disagree, data were few).
        """
        p = post.detach()
        kl = _kl((p, torch.log(p)), (members, torch.log(members)))  # (M, B, T)
        weight = torch.poisson(torch.ones_like(kl), generator=generator)
        return (weight * kl).mean()

    def prior_head_loss(self, states: State, prior: Tensor, batch: dict[str, Tensor],
                        generator: torch.Generator | None = None) -> Tensor:
        """The reward and continuation heads' loss on ``[h; z]`` with ``z`` drawn from the prior
        probabilities ``prior`` ``(B, T, stoch, classes)`` (``config.prior_heads``), which the
        world-model loss takes from :func:`imagined_prior` (the prior imagination draws from,
        never the label-conditioned one). The latents are detached: only the heads learn from
        it."""
        z = F.one_hot(sample_index(prior.detach(), generator), prior.shape[-1]).to(prior.dtype)
        reward, cont = self._head_losses(torch.cat([states.deter.detach(), z.flatten(-2)], -1),
                                         batch, generator)
        return reward + cont

    @torch.no_grad()
    def _metrics(self, batch: dict[str, Tensor], states: State, out: dict[str, Tensor]
                 ) -> dict[str, float]:
        """Prediction quality: next state, reward, partner behaviour, emotions (vs true labels)."""
        m: dict[str, float] = {}
        B, T = batch["is_first"].shape
        not_first = ~batch["is_first"].bool()
        # One-step predictions from the prior imagination draws from (never the label-conditioned
        # one teacher forcing trains): the mode of p(z_t | h_t, ...).
        prior = imagined_prior(out)
        zmode = F.one_hot(prior.argmax(-1), prior.shape[-1]).float()
        pfeat = torch.cat([states.deter, zmode.flatten(-2)], -1)
        pred = self.decoder(pfeat)
        obs = {mm.key: batch[mm.key] for mm in self.mods}
        nll = self.decoder.loss(pred, obs, weighted=False)  # symlog units under any targets
        boxes = [mm.key for mm in self.mods if mm.kind == "box"]
        if boxes:
            m["world_model/next_state_error"] = float(
                sum(nll[k][not_first].mean() for k in boxes) / len(boxes))
        rew = self.reward(pfeat)
        target = batch["reward"].float()
        m["world_model/reward_error"] = float(((rew - target) ** 2)[not_first].mean())
        paid = not_first & (target != 0)  # the steps that pay (a deal closes, a round ends)
        if bool(paid.any()):
            m["world_model/reward_error_paid"] = float(((rew - target) ** 2)[paid].mean())
        # The continuation head on the steps that end an episode, and on the others.
        ends = torch.sigmoid(self.cont_head(pfeat).squeeze(-1)) < 0.5
        terminal = batch["is_terminal"].bool()
        if bool(terminal.any()):
            m["world_model/end_recall"] = float(ends[terminal].float().mean())
        if bool((~terminal).any()):
            m["world_model/continue_accuracy"] = float((~ends[~terminal]).float().mean())
        if self.behaviour_key is not None:
            key = self.behaviour_key
            mod = next(mm for mm in self.mods if mm.key == key)
            logits = pred[key]  # (B, T, size, classes)
            target = batch[key].reshape(B, T, mod.size).long()
            f = f1_scores(target[not_first].cpu().numpy(),
                          logits.argmax(-1)[not_first].cpu().numpy(), mod.classes)
            m["world_model/partner_act_accuracy"] = f["accuracy"]
            m["world_model/partner_act_macro_f1"] = f["macro_f1"]
        if self.P and "emotion" in batch:
            true = batch["emotion"].reshape(B, T, self.P).long()
            cur = out["post_e_logits"].argmax(-1)
            f = f1_scores(true.cpu().numpy(), cur.cpu().numpy(), self.K)
            m["world_model/emotion_accuracy"] = f["accuracy"]
            m["world_model/emotion_macro_f1"] = f["macro_f1"]
            m["world_model/emotion_weighted_f1"] = f["weighted_f1"]
            nxt = out["te_logits"].argmax(-1)
            f = f1_scores(true[not_first].cpu().numpy(), nxt[not_first].cpu().numpy(), self.K)
            m["world_model/next_emotion_accuracy"] = f["accuracy"]
            m["world_model/next_emotion_macro_f1"] = f["macro_f1"]
            m["world_model/next_emotion_weighted_f1"] = f["weighted_f1"]
            p = torch.softmax(out["te_logits"], -1)
            m["world_model/emotion_entropy"] = float(entropy(p).mean())
            if self.config.kind == "lewm":
                m["world_model/ts_sensitivity"] = self.ts_sensitivity(states, true)
        return m

    @torch.no_grad()
    def ts_sensitivity(self, states: State, labels: Tensor) -> float:
        """How much TS's prior moves when its emotion input is swapped for another one.

        Mean L2 distance between ``TS(h, E)`` and ``TS(h, E')`` with ``E'`` a different label
        (``E + 1 + U{0..K-2}`` mod K). Near zero means the factorisation failed: the state
        prediction ignores the emotion.
        """
        h = states.deter.reshape(-1, states.deter.shape[-1])
        lab = labels.reshape(len(h), self.P).clamp_min(0)
        other = (lab + 1 + torch.randint(0, self.K - 1, lab.shape, device=lab.device)) % self.K
        a = _probs(self._ts(h, F.one_hot(lab, self.K).float()), self.config.unimix)
        b = _probs(self._ts(h, F.one_hot(other, self.K).float()), self.config.unimix)
        return float(consistency(a, b).mean())

    # ------------------------------------------------------------------------------------------
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def save(self, path: str | Path) -> None:
        """Writes config, spaces, label spec, behaviour key and weights: a data-only checkpoint
        (strings and tensors) that :meth:`load` rebuilds the model from, with no env."""
        spec = {"config": dataclasses.asdict(self.config),
                "observation_space": space_to_dict(self.observation_space),
                "action_space": space_to_dict(self.action_space),
                "labels": dataclasses.asdict(self.labels), "behaviour_key": self.behaviour_key,
                "action_structure": self.action_structure,
                "action_features": self.action_features}
        torch.save({"config": dataclasses.asdict(self.config), "spec": json.dumps(spec),
                    "state_dict": self.state_dict()}, path)

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu"
             ) -> EmotionalWorldModel:
        """Rebuilds a model written by :meth:`save` (``weights_only=True``: data, never code)."""
        payload = torch.load(path, map_location=map_location, weights_only=True)
        if "spec" not in payload:
            raise ValueError(f"{path}: no spaces saved (written by an older version); build the "
                             "model with build_world_model and call load_weights")
        spec = json.loads(payload["spec"])
        labels = spec["labels"]
        saved = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["config"].items()}
        model = cls(WorldModelConfig(**{**ADDED_LATER, **saved}),
                    space_from_dict(spec["observation_space"]),
                    space_from_dict(spec["action_space"]),
                    LabelSpec(labels["partners"], labels["classes"], tuple(labels["names"])),
                    spec["behaviour_key"], spec.get("action_structure"),
                    spec.get("action_features"))
        model.load_state_dict(payload["state_dict"])
        return model.to(map_location)

    def load_weights(self, path: str | Path) -> None:
        """Loads weights saved by :meth:`save` (``weights_only=True``: data, never code)."""
        payload = torch.load(path, map_location=self.device, weights_only=True)
        if payload["config"] != dataclasses.asdict(self.config):
            raise ValueError(f"{path}: saved with a different config {payload['config']}")
        self.load_state_dict(payload["state_dict"])


def _masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    mask = mask.float()
    return (x * mask).sum() / mask.sum().clamp_min(1.0)


def build_world_model(
    config: WorldModelConfig,
    observation_space: spaces.Space,
    action_space: spaces.Discrete,
    emotion_space: spaces.Space | None = None,
    emotion_names: tuple[str, ...] = (),
    behaviour_key: str | None = None,
    action_structure: tuple[tuple[int, ...], ...] | None = None,
    action_features: Sequence[Sequence[float]] | None = None,
) -> EmotionalWorldModel:
    """Builds the world model ``config.kind`` for the given spaces (and the env's action
    structure, which a ``structured`` EncA reads).

    The blind model is widened (``deter``, ``hidden``, ``embed`` scaled together) until its
    parameter count is within ``config.param_tolerance`` of the ``lewm`` model built from the same
    config and spaces, so every comparison is at equal capacity.
    """
    if emotion_space is None:
        if config.uses_emotion:
            raise ValueError(f"world model {config.kind!r} needs the env's emotion_space")
        labels = LabelSpec(1, 7, tuple(emotion_names))
    else:
        labels = LabelSpec.from_space(emotion_space, tuple(emotion_names))
    if config.kind != "blind":
        return EmotionalWorldModel(config, observation_space, action_space, labels, behaviour_key,
                                   action_structure, action_features)
    reference = dataclasses.replace(config, kind="lewm")
    target = EmotionalWorldModel(reference, observation_space, action_space, labels,
                                 behaviour_key, action_structure, action_features).num_parameters()

    def build(scale: float) -> EmotionalWorldModel:
        cfg = dataclasses.replace(config, deter=max(1, round(config.deter * scale)),
                                  hidden=max(1, round(config.hidden * scale)),
                                  embed=max(1, round(config.embed * scale)))
        return EmotionalWorldModel(cfg, observation_space, action_space, labels, behaviour_key,
                                   action_structure, action_features)

    # Bisection on the width scale: the parameter count grows monotonically with it.
    lo, hi = 1.0, 3.0
    best = build(1.0)
    for _ in range(40):
        if abs(best.num_parameters() - target) <= config.param_tolerance * target / 2:
            break
        mid = (lo + hi) / 2
        model = build(mid)
        lo, hi = (mid, hi) if model.num_parameters() < target else (lo, mid)
        if abs(model.num_parameters() - target) < abs(best.num_parameters() - target):
            best = model
    if abs(best.num_parameters() - target) > config.param_tolerance * target:
        raise RuntimeError(f"could not match the blind model's size to {target:,} parameters")
    return best


def explained(model: EmotionalWorldModel) -> str:
    """A one-line description: kind, sizes and parameter count."""
    c = model.config
    return (f"{c.kind}: deter={c.deter} stoch={c.stoch}x{c.classes} hidden={c.hidden} "
            f"emotion={model.P}x{model.K} params={model.num_parameters():,}")


__all__ = ["EmotionIntervention", "EmotionalWorldModel", "State", "Trajectory",
           "build_world_model", "consistency", "explained", "sample_index"]
