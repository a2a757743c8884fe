"""A Dreamer-style actor-critic that learns inside any world model's imagination.

It sees the world model only through its interface (``features``, ``imagine``, ``initial``,
``observe_step``), so it runs unchanged on LEWM, the blind model and every ablation. With an
emotion model, the features it reads include the predicted emotion distribution and its entropy:
that is how emotion-first predictions shape planning.

Actor: REINFORCE on imagined lambda-returns with DreamerV3's return normalisation (advantages
divided by ``max(1, P95 - P5)`` of the returns, an EMA) and an entropy bonus, its output layer
scaled by 0.01 (a near-uniform first policy, as DreamerV3). Critic: regression on lambda-returns
bootstrapped from a slow (EMA) copy of itself.

DreamerV3's other pieces are configuration, measured one at a time by
``benchmarks/dreamer_diagnosis.py`` and not the default because none raised the return at the
default budget: ``critic_head="twohot"`` (symlog two-hot critic, zero-initialised output, pulled
towards the slow critic's prediction), ``actor_head="structured"`` (one logit per action kind and
per factor of the env's ``action_structure``: kind, then split and tone in the negotiation, the
env keeping its flat ``Discrete`` space) and ``entropy=3e-4``. So is ``pessimism`` (the imagined
reward minus the spread of the world model's reward ensemble, MOPO's penalty, against a policy
that picks the moves the model overrates), which did not raise the return either, and
``disagreement`` (the imagined reward minus the disagreement of an ensemble of state priors about
each imagined step: it halves the gap between imagined and real returns, and the actor then
prefers the moves the model is sure of, for no better return; negative, the same disagreement as
a bonus, optimism that sends the actor to the moves its model has seen too few times).

:meth:`DreamerAgent.learn` takes any rollout of the actor's sampled policy: the world model's
imagination (:meth:`DreamerAgent.update`) or, as a diagnostic, copies of the real env
(``--imagination simulator``, :mod:`lewm_rl.simulator`), which shows what the actor-critic reaches
with a perfect model.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from lewm_rl.distributions import ActionStructure, TwoHot, entropy, zero_output
from lewm_rl.nets import bfloat16_native, mlp
from lewm_rl.world_models.config import WorldModelConfig
from lewm_rl.world_models.model import EmotionalWorldModel, State, Trajectory, sample_index

Tensor = torch.Tensor


ADDED_LATER: dict[str, object] = {"actor_head": "flat", "critic_head": "mse",
                                   "compute_dtype": "float32"}
"""Fields added after runs were written, at the values that rebuild those runs."""


@dataclass(frozen=True)
class DreamerConfig:
    """Actor-critic hyperparameters."""

    horizon: int = 8
    """Imagination horizon H (steps rolled out from each start state). DreamerV3 imagines 15; the
    negotiation's episodes last about 6 steps and the critic bootstraps the rest, and 8 learns as
    well for half the imagination's time (``benchmarks/results/dreamer_diagnosis/bfloat16``, 5
    seeds; 15 was the default until 2026-12)."""
    gamma: float = 0.99
    """Discount per step."""
    lambda_: float = 0.95
    """lambda of the lambda-returns."""
    hidden: int = 128
    """Width of the actor and critic MLPs."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critic."""
    entropy: float = 3e-2
    """Entropy bonus of the actor, on advantages normalised by the return scale. DreamerV3's
    3e-4 lets the actor collapse (0.7 nats within 7k env steps) onto actions the world model
    overrates, and returns fall (``benchmarks/results/dreamer_diagnosis``)."""
    actor_head: Literal["structured", "flat"] = "flat"
    """structured: one logit per action kind and per factor value of the env's
    ``action_structure`` (flat where the env declares none); flat: one logit per action."""
    critic_head: Literal["twohot", "mse"] = "mse"
    """twohot: DreamerV3's symlog two-hot critic with a zero-initialised output; mse: a scalar
    critic regressed with a squared error (the earlier recipe)."""
    bins: int = 255
    """Bins of the two-hot critic (evenly spaced in symlog space over [-20, 20])."""
    slow_reg: float = 1.0
    """Weight of the critic's regulariser towards the slow critic's prediction (DreamerV3's
    ``slowreg``)."""
    slow_critic: float = 0.02
    """EMA rate of the slow critic."""
    return_decay: float = 0.99
    """EMA decay of the return scale (P95 - P5)."""
    unimix: float = 0.01
    """Uniform mix in the actor's distribution (keeps exploring)."""
    grad_clip: float = 100.0
    """Gradient-norm clipping of actor and critic."""
    max_starts: int = 256
    """At most this many posterior states start imagined rollouts per update."""
    compute_dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    """Precision of the actor-critic update's matmuls (the imagination, the world model's heads in
    it, the actor and critic): bfloat16 runs them under a CPU/GPU autocast while weights,
    optimiser states, every head's output (:class:`~lewm_rl.nets.Head`), distributions, returns
    and losses stay float32, as DreamerV3's ``compute_dtype: bfloat16``. It pays where the
    processor multiplies bfloat16 natively (1.27x the loop's env steps per second on an
    AVX512-BF16 CPU, ``git show 8dbd5e3:benchmarks/results/dreamer_speed.md``, for the same
    return over 5 seeds in ``benchmarks/results/dreamer_diagnosis/bfloat16``);
    auto: bfloat16 there (:func:`~lewm_rl.nets.bfloat16_native`), float32 elsewhere (the run's
    ``results.json`` says which ran). The world model's own update and acting stay float32."""
    explore_mix: float = 0.0
    """Share of the behaviour policy (the training loop's moves in the real env, not the
    imagination's, not evaluation) drawn from a uniform choice of the env's action kinds, then
    uniformly within the kind (the negotiation: offer, accept or walk away a third of the time
    each; uniform over the actions where the env declares no structure): epsilon-greedy
    exploration, so that the world model sees the outcome of moves its policy seldom makes.
    0: the actor's own samples."""
    pessimism: float = 0.0
    """The actor and critic learn from the imagined reward minus this many standard deviations
    of the world model's reward heads (MOPO's uncertainty penalty, against a policy that picks
    the moves the model overrates); needs ``reward_heads`` >= 2 in the world model."""
    disagreement: float = 0.0
    """The actor and critic learn from the imagined reward minus this many times the world
    model's state-prior ensemble's disagreement about each imagined step's latent (nats; MOPO's
    penalty on the dynamics' uncertainty, where the moves the model overrates are those whose
    outcome, an acceptance or a walk-away, it has seen too few times); negative, a bonus of as
    much (optimism where the model has seen too few such moves, as Plan2Explore's intrinsic
    reward but on the task's actor: the agent collects its data online, so the moves it tries
    for the bonus are the ones its model then learns, where a penalty keeps it from the moves
    its model underrates); needs ``prior_ensemble`` >= 2."""

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}")
        if not 0 < self.gamma <= 1 or not 0 <= self.lambda_ <= 1:
            raise ValueError(f"need 0 < gamma <= 1 and 0 <= lambda <= 1, got {self.gamma}, "
                             f"{self.lambda_}")
        if self.actor_head not in ("structured", "flat"):
            raise ValueError(f"actor_head must be structured or flat, got {self.actor_head!r}")
        if self.critic_head not in ("twohot", "mse"):
            raise ValueError(f"critic_head must be twohot or mse, got {self.critic_head!r}")
        if self.pessimism < 0:
            raise ValueError(f"pessimism must be >= 0, got {self.pessimism}")
        if not 0.0 <= self.explore_mix <= 1.0:
            raise ValueError(f"explore_mix must be in [0, 1], got {self.explore_mix}")
        if self.compute_dtype not in ("auto", "float32", "bfloat16"):
            raise ValueError(f"compute_dtype must be auto, float32 or bfloat16, got "
                             f"{self.compute_dtype!r}")
        if self.entropy < 0 or self.slow_reg < 0 or self.bins < 2:
            raise ValueError(f"need entropy >= 0, slow_reg >= 0 and bins >= 2, got "
                             f"{self.entropy}, {self.slow_reg}, {self.bins}")


def check_penalties(config: DreamerConfig, world_model: WorldModelConfig) -> None:
    """Raises ``ValueError`` where a penalty is asked of a world model without the ensemble that
    measures it: ``pessimism`` without reward heads to spread, ``disagreement`` without state
    priors to disagree."""
    if config.pessimism > 0 and world_model.reward_heads < 2:
        raise ValueError(f"pessimism {config.pessimism} (--dreamer.pessimism) needs a reward "
                         f"ensemble to measure the model's uncertainty: set reward_heads "
                         f"(--wm.reward-heads) to 2 or more, got {world_model.reward_heads}")
    if config.disagreement and world_model.prior_ensemble < 2:
        raise ValueError(f"disagreement {config.disagreement} (--dreamer.disagreement) needs an "
                         f"ensemble of state priors to disagree: set prior_ensemble "
                         f"(--wm.prior-ensemble) to 2 or more, got {world_model.prior_ensemble}")


Carry = tuple[State, Tensor]
"""What acting carries from one step to the next: the belief and the action taken in it."""


def carry_tensors(carry: Carry | None) -> dict[str, Tensor] | None:
    """A carry as plain tensors (a checkpoint's)."""
    if carry is None:
        return None
    state, action = carry
    return {"deter": state.deter, "stoch": state.stoch, "emotion": state.emotion,
            "action": action}


def carry_from_tensors(saved: dict[str, Tensor] | None, device: str | torch.device
                       ) -> Carry | None:
    """The inverse of :func:`carry_tensors`, on ``device``."""
    if saved is None:
        return None
    state = State(*(saved[k].to(device) for k in ("deter", "stoch", "emotion")))
    return state, saved["action"].to(device)


def lambda_returns(reward: Tensor, cont: Tensor, value: Tensor, gamma: float, lambda_: float
                   ) -> Tensor:
    """Lambda-returns over an imagined trajectory.

    ``R_t = r_{t+1} + gamma c_{t+1} ((1 - lambda) v_{t+1} + lambda R_{t+1})``, ``R_H = v_H``.

    Args:
        reward: ``(H, N)`` reward on arriving at steps ``1..H``.
        cont: ``(H, N)`` continuation probability at steps ``1..H``.
        value: ``(H + 1, N)`` values of steps ``0..H``.
        gamma: discount.
        lambda_: lambda.

    Returns:
        ``(H, N)`` returns of steps ``0..H-1``.
    """
    H = reward.shape[0]
    assert cont.shape == reward.shape and value.shape[0] == H + 1
    out = []
    last = value[H]
    for t in reversed(range(H)):
        last = reward[t] + gamma * cont[t] * ((1 - lambda_) * value[t + 1] + lambda_ * last)
        out.append(last)
    return torch.stack(out[::-1], 0)


def survival(cont: Tensor, discount: float = 1.0) -> Tensor:
    """``(H, N)`` weight of imagined steps ``0..H-1``: ``prod_{j<k} discount * c_j`` (1 at the
    start), the (discounted) probability that the episode is still going, from the continuation
    probabilities ``cont`` of steps ``1..H``."""
    return torch.cumprod(torch.cat([torch.ones_like(cont[:1]), discount * cont[:-1]]), 0)


def _step(optimizer: torch.optim.Optimizer, loss: Tensor, net: nn.Module, grad_clip: float
          ) -> bool:
    """One clipped gradient step on ``loss``; skipped (nothing applied) where the loss or the
    gradient is not finite. Returns whether it was skipped."""
    optimizer.zero_grad(set_to_none=True)
    if not torch.isfinite(loss):
        return True
    loss.backward()
    norm = nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
    if not torch.isfinite(norm):
        optimizer.zero_grad(set_to_none=True)
        return True
    optimizer.step()
    return False


class DreamerAgent:
    """Actor and critic over a world model's features.

    Args:
        world_model: any :class:`EmotionalWorldModel` configuration (not owned: the training loop
            fits it).
        config: hyperparameters.
        action_structure: the env's action structure (``None``: flat); read only by the
            ``structured`` actor head.
    """

    def __init__(self, world_model: EmotionalWorldModel, config: DreamerConfig | None = None,
                 action_structure: ActionStructure | None = None) -> None:
        self.config = config or DreamerConfig()
        c = self.config
        self.world_model = world_model
        self.num_actions = world_model.num_actions
        if c.pessimism or c.disagreement:
            check_penalties(c, world_model.config)
        if action_structure is None:
            action_structure = ActionStructure.flat(self.num_actions)
        if action_structure.num_actions != self.num_actions:
            raise ValueError(f"the action structure {action_structure} has "
                             f"{action_structure.num_actions} actions, the world model "
                             f"{self.num_actions}")
        # The exploration distribution of explore_mix: each kind alike, uniform within a kind.
        self.kind_uniform = torch.softmax(
            action_structure.logits(torch.zeros(action_structure.num_logits)), -1)
        if c.actor_head == "flat":
            action_structure = ActionStructure.flat(self.num_actions)
        self.actions = action_structure
        f = world_model.feature_dim
        self.actor = mlp(f, c.hidden, action_structure.num_logits, layers=2)
        last = self.actor[-1]
        with torch.no_grad():  # DreamerV3's policy outscale 0.01: a near-uniform first policy
            last.weight.mul_(0.01)
            last.bias.copy_(action_structure.uniform_bias())
        self.twohot = TwoHot(c.bins) if c.critic_head == "twohot" else None
        self.critic = mlp(f, c.hidden, c.bins if self.twohot else 1, layers=2)
        if self.twohot:
            zero_output(self.critic)
        self.slow_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=c.actor_lr, eps=1e-5)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=c.critic_lr, eps=1e-5)
        self.return_scale = torch.ones(())
        self.to(world_model.device)

    def to(self, device: torch.device | str) -> DreamerAgent:
        for net in (self.actor, self.critic, self.slow_critic):
            net.to(device)
        self.return_scale = self.return_scale.to(device)
        self.kind_uniform = self.kind_uniform.to(device)
        return self

    def state_dict(self) -> dict:
        """Weights, optimiser states and the return scale (tensors only: a data checkpoint)."""
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "slow_critic": self.slow_critic.state_dict(),
                "actor_opt": self.actor_opt.state_dict(),
                "critic_opt": self.critic_opt.state_dict(), "return_scale": self.return_scale}

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.slow_critic.load_state_dict(state["slow_critic"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.return_scale = state["return_scale"].to(self.return_scale.device)

    # ------------------------------------------------------------------------------------------
    def policy(self, features: Tensor) -> torch.distributions.Categorical:
        """The actor's distribution over the flat actions for features ``(..., F)``."""
        probs = torch.softmax(self.actions.logits(self.actor(features)), -1)
        probs = (1 - self.config.unimix) * probs + self.config.unimix / self.num_actions
        return torch.distributions.Categorical(probs=probs)

    def value(self, features: Tensor, slow: bool = False) -> Tensor:
        """The critic's (or the slow critic's) value of features ``(..., F)``: ``(...)``."""
        out = (self.slow_critic if slow else self.critic)(features)
        return self.twohot.mean(out) if self.twohot else out.squeeze(-1)

    @torch.no_grad()
    def act(
        self,
        carry: Carry | None,
        obs: dict[str, Tensor],
        is_first: Tensor,
        explore: bool = True,
        generator: torch.Generator | None = None,
        behaviour: bool = False,
    ) -> tuple[Tensor, Carry]:
        """Updates the belief with one observation per env and picks actions.

        Reads observations only: no label reaches the belief or the action.

        Args:
            carry: ``(state (N, ...), previous action (N,))`` or ``None`` at the start.
            obs: observation tensors ``(N, ...)``.
            is_first: ``(N,)`` bool, the observation starts an episode.
            explore: sample from the actor (training) or take its mode (evaluation).
            generator: for sampling.
            behaviour: the training loop's moves in the real env: with ``explore``, a share
                ``explore_mix`` of them comes from the kind-uniform distribution (the actor's
                own samples where ``explore_mix`` is 0).

        Returns:
            ``(actions (N,), new carry)``.
        """
        wm = self.world_model
        n = len(is_first)
        if carry is None:
            carry = (wm.initial(n), torch.zeros(n, dtype=torch.long, device=wm.device))
        state, prev_action = carry
        embed = wm.encoder(obs)
        state, _ = wm.observe_step(state, prev_action, embed, is_first, generator)
        probs = self.policy(wm.features(state)).probs
        if explore and behaviour and self.config.explore_mix:
            mix = self.config.explore_mix
            probs = (1 - mix) * probs + mix * self.kind_uniform
        action = sample_index(probs, generator) if explore else probs.argmax(-1)
        return action, (state, action)

    @torch.no_grad()
    def imagined_return(self, start: State, horizon: int,
                        generator: torch.Generator | None = None) -> Tensor:
        """What the world model expects the actor's mode policy to earn from ``start`` ``(N, ...)``
        over ``horizon`` steps (longer than an episode, to compare with its real return):
        ``sum_k r_k prod_{j<k} c_j``, undiscounted (``(N,)``). Beside the real return of the same
        policy it measures model exploitation."""
        return self.imagined_episode(start, horizon, generator)[0]

    @torch.no_grad()
    def imagined_episode(self, start: State, horizon: int,
                         generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """:meth:`imagined_return` and, from the same rollout, the episode's expected length
        ``sum_k prod_{j<k} c_j`` (``(N,)`` each): an episode the model expects to last longer than
        it does is one whose endings (a walk-away, say) the model does not see coming."""
        traj = self.world_model.imagine(start, lambda f: self.policy(f).probs.argmax(-1),
                                        horizon, generator=generator, decode_behaviour=False)
        alive = survival(traj.cont[1:])
        return (alive * traj.reward[1:]).sum(0), alive.sum(0)

    # ------------------------------------------------------------------------------------------
    def update(self, start: State, generator: torch.Generator | None = None) -> dict[str, float]:
        """One actor-critic update on rollouts imagined from posterior states ``start``.

        Args:
            start: posterior states with any leading dims (e.g. ``(B, T, ...)``), detached.

        Returns:
            Metrics keyed ``imag/...``, ``actor/...`` and ``critic/...``; ``actor/skipped`` and
            ``critic/skipped`` are 1 where a non-finite loss or gradient was not applied.
        """
        c = self.config
        wm = self.world_model
        start = start.flatten().detach()
        if len(start.deter) > c.max_starts:
            idx = torch.randperm(len(start.deter), generator=generator,
                                 device=start.deter.device)[: c.max_starts]
            start = start[idx]

        def sample(features: Tensor) -> Tensor:
            return sample_index(self.policy(features).probs, generator)

        with torch.no_grad(), self._autocast():
            traj = wm.imagine(start, sample, c.horizon, generator=generator,
                              decode_behaviour=False)
        return self.learn(traj)

    @property
    def compute_dtype(self) -> str:
        """The precision the actor-critic update runs in on the world model's device: the
        config's ``compute_dtype`` with ``auto`` resolved (bfloat16 where it is native)."""
        dtype = self.config.compute_dtype
        if dtype == "auto":
            return "bfloat16" if bfloat16_native(self.world_model.device.type) else "float32"
        return dtype

    def _autocast(self) -> torch.autocast:
        """The actor-critic update's precision (:attr:`compute_dtype`)."""
        return torch.autocast(self.world_model.device.type, dtype=torch.bfloat16,
                              enabled=self.compute_dtype == "bfloat16")

    def learn(self, traj: Trajectory) -> dict[str, float]:
        """One actor-critic step on a rollout of the actor's sampled policy: imagined by the world
        model (:meth:`update`) or, as a diagnostic, run in copies of the real env
        (:class:`~lewm_rl.simulator.SimulatorRollouts`).

        Returns:
            The metrics of :meth:`update`.
        """
        with self._autocast():
            return self._learn(traj)

    def _learn(self, traj: Trajectory) -> dict[str, float]:
        c = self.config
        wm = self.world_model
        with torch.no_grad():
            feats = traj.features  # (H + 1, N, F)
            reward, cont = traj.reward[1:], traj.cont[1:]  # (H, N)
            spread = (traj.reward_std[1:] if traj.reward_std is not None
                      else torch.zeros_like(reward))
            if c.pessimism:
                reward = reward - c.pessimism * spread
            unknown = (traj.disagreement[1:] if traj.disagreement is not None
                       else torch.zeros_like(reward))
            if c.disagreement:
                reward = reward - c.disagreement * unknown
            slow = self.value(feats, slow=True)  # (H + 1, N)
            ret = lambda_returns(reward, cont, slow, c.gamma, c.lambda_)  # (H, N)
            weight = survival(cont, c.gamma)
            lo, hi = torch.quantile(ret.flatten(), torch.tensor([0.05, 0.95], device=ret.device))
            scale = torch.clamp(hi - lo, min=1.0)
            if torch.isfinite(scale):  # a non-finite rollout must not poison the running scale
                self.return_scale = (c.return_decay * self.return_scale
                                     + (1 - c.return_decay) * scale)

        # Critic: fit v(s_t) to the lambda-returns (and, two-hot, to the slow critic's value).
        out = self.critic(feats[:-1])
        if self.twohot:
            value = self.twohot.mean(out.detach())
            per_step = (self.twohot.loss(out, ret)
                        + c.slow_reg * self.twohot.loss(out, slow[:-1]))
        else:
            value = out.squeeze(-1)
            per_step = (value - ret) ** 2
            value = value.detach()
        critic_loss = (weight * per_step).mean()
        critic_skipped = _step(self.critic_opt, critic_loss, self.critic, c.grad_clip)

        # Actor: REINFORCE with normalised advantages (baseline: the critic before its step) and
        # an entropy bonus.
        dist = self.policy(feats[:-1])
        adv = (ret - value) / self.return_scale
        logp = dist.log_prob(traj.actions)
        policy_entropy = dist.entropy()
        actor_loss = -(weight * (logp * adv + c.entropy * policy_entropy)).mean()
        actor_skipped = _step(self.actor_opt, actor_loss, self.actor, c.grad_clip)

        with torch.no_grad():
            for p, q in zip(self.slow_critic.parameters(), self.critic.parameters(), strict=True):
                p.mul_(1 - c.slow_critic).add_(c.slow_critic * q)

        metrics = {
            "imag/return": float(ret[0].mean()),
            "imag/reward": float(reward.mean()),
            "imag/reward_std": float(spread.mean()),
            "imag/disagreement": float(unknown.mean()),
            "imag/cont": float(cont.mean()),
            "imag/return_scale": float(self.return_scale),
            "actor/loss": float(actor_loss.detach()),
            "actor/entropy": float(policy_entropy.mean().detach()),
            "critic/loss": float(critic_loss.detach()),
            "critic/value": float(value.mean()),
            "critic/error": float(((value - ret) ** 2).mean()),
            "actor/skipped": float(actor_skipped),
            "critic/skipped": float(critic_skipped),
        }
        if wm.P:
            e = traj.emotion[1:]
            metrics["imag/emotion_entropy"] = float(entropy(e).mean())
        return metrics


__all__ = ["Carry", "DreamerAgent", "DreamerConfig", "carry_from_tensors", "carry_tensors",
           "check_penalties", "lambda_returns"]
