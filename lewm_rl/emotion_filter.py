"""A learned emotion filter: observations with the emotion taken out, for the filtering experiment.

The paper (arXiv 2512.24149) shows that removing emotionally relevant information degrades
reasoning. ``lewm_rl.envs.wrappers.FilterEmotionCues`` removes the cues by rule; this module learns
to remove them, as the paper describes, with a module trained on two tasks:

1. **classification**: a head reads the filter's hidden representation ``r = f(x)`` of the cue
   observation ``x`` and predicts the emotion (so the representation knows what the emotion looks
   like);
2. **adversarial neutralisation**: the filter emits filtered cues ``x' = g(r)`` (same space as
   ``x``); an adversary classifier is trained to predict the emotion from ``x'``, and the filter is
   trained against it. Two ways (``neutralise``):

   * ``"confusion"`` (default): the filter minimises ``KL(prior || p_adv(E | x'))`` through the
     (frozen) adversary, ``prior`` being the batch's label marginal, i.e. it makes the adversary's
     answer the same whatever the cues (the domain-confusion
     loss of Tzeng et al. 2015), while the adversary keeps training on ``x'`` with cross-entropy;
   * ``"reversal"``: one cross-entropy for both through a gradient-reversal layer (Ganin &
     Lempitsky 2015). It can be fooled by a re-encoding: the filter may map one emotion's cues to
     another's, which makes the adversary confidently wrong while a fresh probe still reads the
     emotion (measured on the negotiation cues: probe accuracy 0.63 after reversal, 0.69 raw), so
     it is kept as the textbook variant, not the default.

The two tasks of the filter (classification and neutralisation) are weighted by a learnable
``alpha`` (the classification share; neutralisation gets ``1 - alpha``): each task ``i`` has a
learned log-variance ``s_i`` and the objective is ``sum_i exp(-s_i) L_i + s_i`` (Kendall, Gal &
Cipolla 2018), so neither weight can collapse to zero and ``alpha = exp(-s_cls) / (exp(-s_cls) +
exp(-s_neu))``. The adversary's own cross-entropy is added unweighted (it is the opponent's loss,
not a task of the filter), and a reconstruction term keeps ``x'`` close to ``x`` where that does
not help the adversary (what is not emotion stays).

Only the cue modalities pass through the filter; the other keys are untouched. A ``Box`` cue is
edited additively (``x' = x + delta``); a categorical cue is re-drawn as the argmax of
``onehot(x) * keep + logits`` (straight-through one-hot for the adversary), so the filtered
observation stays in the env's observation space and any world model reads it unchanged.

The module knows nothing of any environment: it is built from an observation space, the names of
the cue keys and an emotion-label spec. Labels are training targets only: :meth:`EmotionFilter.
forward` reads observations alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

from lewm_rl.nets import mlp
from lewm_rl.world_models.codec import LabelSpec, Modality, modalities

Tensor = torch.Tensor


@dataclass(frozen=True)
class EmotionFilterConfig:
    """Hyperparameters of the learned emotion filter."""

    hidden: int = 64
    """Width of the filter's MLP and of its representation r."""
    adversary_hidden: int = 64
    """Width of the adversary classifier."""
    reconstruction_weight: float = 0.3
    """Weight of the term that keeps the filtered cues close to the input."""
    neutralise: Literal["confusion", "reversal"] = "confusion"
    """How the filter fights the adversary: push its prediction to uniform (confusion) or reverse
    its cross-entropy gradient (reversal)."""
    reversal: float = 1.0
    """Scale of the gradient-reversal layer (``neutralise="reversal"``)."""
    keep: float = 4.0
    """Logit bonus of a categorical cue's input value: the filter starts near the identity."""
    lr: float = 3e-3
    """Adam learning rate of the filter, its classification head and the task weights."""
    adversary_lr: float = 1e-2
    """Adam learning rate of the adversary (faster than the filter, so it keeps up)."""
    adversary_steps: int = 2
    """Extra adversary-only updates per filter update."""
    steps: int = 600
    """Updates of :func:`fit_filter`."""
    batch_size: int = 256
    """Single steps per update."""

    def __post_init__(self) -> None:
        for name in ("hidden", "adversary_hidden", "steps", "batch_size", "adversary_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.neutralise not in ("confusion", "reversal"):
            raise ValueError(
                f"neutralise must be 'confusion' or 'reversal', got {self.neutralise!r}")
        for name in ("reconstruction_weight", "reversal", "keep"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


class _GradientReversal(torch.autograd.Function):
    """Identity forward; the gradient times ``-scale`` backward."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return -ctx.scale * grad, None


def gradient_reversal(x: Tensor, scale: float = 1.0) -> Tensor:
    """Gradient-reversal layer (Ganin & Lempitsky 2015): ``x`` forward, ``-scale * grad`` back."""
    return _GradientReversal.apply(x, scale)


class EmotionFilter(nn.Module):
    """Learns to take the emotion out of the cue modalities of an observation.

    Args:
        config: hyperparameters.
        observation_space: the (single) observation space, a ``Dict``.
        keys: the cue keys to filter (e.g. ``("expression", "tone")``); every other key passes
            through.
        labels: the emotion-label spec (``P`` partners x ``K`` classes).
    """

    def __init__(self, config: EmotionFilterConfig, observation_space: spaces.Space,
                 keys: Sequence[str], labels: LabelSpec) -> None:
        super().__init__()
        mods = {m.key: m for m in modalities(observation_space)}
        missing = [k for k in keys if k not in mods]
        if missing or not keys:
            raise ValueError(f"cue keys {list(keys)} must be non-empty observation keys "
                             f"{list(mods)}")
        self.config = config
        self.mods: list[Modality] = [mods[k] for k in keys]
        self.labels = labels
        self.in_dim = sum(m.input_dim for m in self.mods)
        c = config
        self.trunk = nn.Sequential(nn.Linear(self.in_dim, c.hidden), nn.LayerNorm(c.hidden),
                                   nn.SiLU(), nn.Linear(c.hidden, c.hidden), nn.SiLU())  # f
        self.classifier = nn.Linear(c.hidden, labels.dim)  # task 1
        self.editor = nn.Linear(c.hidden, self.in_dim)  # g
        nn.init.zeros_(self.editor.weight)  # start at the identity
        nn.init.zeros_(self.editor.bias)
        self.adversary = mlp(self.in_dim, c.adversary_hidden, labels.dim)  # task 2's opponent
        self.log_var = nn.Parameter(torch.zeros(2))  # (s_cls, s_adv)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(m.key for m in self.mods)

    @property
    def alpha(self) -> Tensor:
        """The learnable weight of the classification task (``1 - alpha``: neutralisation)."""
        return torch.sigmoid(self.log_var[1] - self.log_var[0])

    # ------------------------------------------------------------------------------------------
    def _flat(self, obs: dict[str, Tensor]) -> Tensor:
        """``(N, in_dim)``: box cues as they are, categorical ones one-hot."""
        parts = []
        for m in self.mods:
            x = obs[m.key]
            n = x.shape[0]
            if m.kind == "box":
                parts.append(x.reshape(n, m.size).float())
            else:
                parts.append(F.one_hot(x.reshape(n, m.size).long(), m.classes).float()
                             .reshape(n, m.input_dim))
        return torch.cat(parts, -1)

    def _filter(self, obs: dict[str, Tensor]) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """``(r (N, hidden), filtered flat cues (N, in_dim), filtered cues per key)``."""
        x = self._flat(obs)
        r = self.trunk(x)
        edit = self.editor(r)
        flat_parts, out = [], {}
        i = 0
        for m in self.mods:
            xi, ei = x[:, i: i + m.input_dim], edit[:, i: i + m.input_dim]
            n = len(xi)
            if m.kind == "box":
                y = xi + ei
                flat_parts.append(y)
                out[m.key] = y.reshape(n, *m.shape)
            else:
                logits = (xi * self.config.keep + ei).reshape(n, m.size, m.classes)
                probs = torch.softmax(logits, -1)
                idx = probs.argmax(-1)
                hard = F.one_hot(idx, m.classes).float()
                flat_parts.append((hard + probs - probs.detach()).reshape(n, m.input_dim))
                out[m.key] = idx.reshape(n, *m.shape)
            i += m.input_dim
        return r, torch.cat(flat_parts, -1), out

    def forward(self, obs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Filtered observations: the cue keys replaced, the others as given.

        Args:
            obs: observation tensors ``(N, ...)`` per key (at least the cue keys).

        Returns:
            The same keys; a box cue ``(N, *shape)`` float, a categorical cue ``(N, *shape)``
            int64 (the space's values).
        """
        _, _, filtered = self._filter(obs)
        return {**obs, **filtered}

    def adversary_loss(self, obs: dict[str, Tensor], labels: Tensor) -> Tensor:
        """The adversary's cross-entropy on the (detached) filtered cues: trains the adversary."""
        P, K = self.labels.partners, self.labels.classes
        y = labels.reshape(len(labels), P).long()
        with torch.no_grad():
            _, filtered, _ = self._filter(obs)
        logits = self.adversary(filtered).reshape(-1, K)
        return F.cross_entropy(logits, y.reshape(-1), ignore_index=-1)

    def loss(self, obs: dict[str, Tensor], labels: Tensor) -> tuple[Tensor, dict[str, float]]:
        """The two weighted tasks plus reconstruction on a batch of single steps.

        Args:
            obs: cue tensors ``(N, ...)``.
            labels: ``(N, P)`` or ``(N,)`` emotion labels (``-1`` where unknown).

        Returns:
            ``(loss, metrics)``, metrics keyed ``filter/...``: the task losses, ``alpha``, and the
            adversary's and the classifier's accuracy.
        """
        P, K = self.labels.partners, self.labels.classes
        y = labels.reshape(len(labels), P).long()
        valid = y >= 0
        safe = y.clamp_min(0)
        x = self._flat(obs)
        r, filtered, _ = self._filter(obs)
        cls_logits = self.classifier(r).reshape(-1, P, K)

        def ce(logits: Tensor) -> Tensor:
            per = F.cross_entropy(logits.reshape(-1, K), safe.reshape(-1), reduction="none")
            m = valid.reshape(-1).float()
            return (per * m).sum() / m.sum().clamp_min(1.0)

        l_cls = ce(cls_logits)
        if self.config.neutralise == "reversal":
            adv_logits = self.adversary(gradient_reversal(filtered, self.config.reversal)
                                        ).reshape(-1, P, K)
            l_neu = l_adv = ce(adv_logits)  # one term: the adversary descends, the filter ascends
            opponent = torch.zeros(())
        else:
            adv_logits = self.adversary(filtered.detach()).reshape(-1, P, K)
            opponent = l_adv = ce(adv_logits)  # trains the adversary only
            frozen = {n: p.detach() for n, p in self.adversary.named_parameters()}
            logits_f = torch.func.functional_call(self.adversary, frozen, (filtered,))
            logp = torch.log_softmax(logits_f.reshape(-1, P, K), -1)
            # The target is the batch's label marginal: an answer independent of the cues.
            counts = (F.one_hot(safe, K).float() * valid[..., None]).sum(0) + 1.0  # (P, K)
            prior = counts / counts.sum(-1, keepdim=True)
            l_neu = (prior * (torch.log(prior) - logp)).sum(-1).mean()  # KL(prior || p_adv)
        l_rec = ((filtered - x) ** 2).sum(-1).mean()
        s = self.log_var
        total = (torch.exp(-s[0]) * l_cls + s[0] + torch.exp(-s[1]) * l_neu + s[1] + opponent
                 + self.config.reconstruction_weight * l_rec)
        with torch.no_grad():
            def acc(lg: Tensor) -> float:
                return float(((lg.argmax(-1) == y) & valid).sum() / valid.sum().clamp_min(1))

            metrics = {"filter/loss_classify": float(l_cls), "filter/loss_adversary": float(l_adv),
                       "filter/loss_neutralise": float(l_neu),
                       "filter/loss_reconstruction": float(l_rec),
                       "filter/alpha": float(self.alpha),
                       "filter/classifier_accuracy": acc(cls_logits),
                       "filter/adversary_accuracy": acc(adv_logits)}
        return total, metrics


def fit_filter(
    module: EmotionFilter,
    obs: dict[str, Tensor],
    labels: Tensor,
    steps: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Trains the filter on single steps (``obs`` ``(N, ...)``, ``labels`` ``(N, P)``).

    Returns:
        The metrics of the last update.
    """
    n = len(labels)
    if any(len(v) != n for v in obs.values()):
        raise ValueError("every observation key and the labels need the same leading size N")
    c = module.config
    adversary = list(module.adversary.parameters())
    ids = {id(p) for p in adversary}
    opt = torch.optim.Adam([
        {"params": [p for p in module.parameters() if id(p) not in ids], "lr": c.lr},
        {"params": adversary, "lr": c.adversary_lr},
    ])
    adv_opt = torch.optim.Adam(adversary, lr=c.adversary_lr)
    gen = torch.Generator().manual_seed(seed)
    module.train()
    metrics: dict[str, float] = {}
    m = min(c.batch_size, n)
    for _ in range(c.steps if steps is None else steps):
        for _ in range(c.adversary_steps):  # let the adversary catch up with the filter
            idx = torch.randint(0, n, (m,), generator=gen)
            adv_opt.zero_grad(set_to_none=True)
            module.adversary_loss({k: v[idx] for k, v in obs.items()}, labels[idx]).backward()
            adv_opt.step()
        idx = torch.randint(0, n, (m,), generator=gen)
        loss, metrics = module.loss({k: v[idx] for k, v in obs.items()}, labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    module.eval()
    return metrics


@torch.no_grad()
def apply_filter(module: EmotionFilter, obs: dict[str, np.ndarray], batch_size: int = 65536
                 ) -> dict[str, np.ndarray]:
    """Filters numpy observations with any leading shape ``(..., *event)``; dtypes are kept."""
    mods = {m.key: m for m in module.mods}
    key = module.keys[0]
    lead = np.asarray(obs[key]).shape[: np.asarray(obs[key]).ndim - len(mods[key].shape)]
    n = int(np.prod(lead))
    flat = {k: torch.as_tensor(np.asarray(obs[k]).reshape(n, *mods[k].shape)) for k in mods}
    out = {k: [] for k in mods}
    for i in range(0, n, batch_size):
        res = module({k: v[i: i + batch_size] for k, v in flat.items()})
        for k in mods:
            out[k].append(res[k].numpy())
    result = dict(obs)
    for k in mods:
        result[k] = np.concatenate(out[k]).reshape(*lead, *mods[k].shape).astype(
            np.asarray(obs[k]).dtype)
    return result


def probe_accuracy(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
    classes: int, steps: int = 300, seed: int = 0,
) -> float:
    """How decodable the emotion is: test accuracy of a fresh MLP probe trained on ``train_x``.

    Args:
        train_x, test_x: ``(N, D)`` features (e.g. flattened cues, one-hot for categorical ones).
        train_y, test_y: ``(N,)`` labels in ``[0, classes)``.
    """
    torch.manual_seed(seed)
    xs = torch.as_tensor(train_x, dtype=torch.float32)
    ys = torch.as_tensor(train_y, dtype=torch.long)
    mean, std = xs.mean(0), xs.std(0).clamp_min(1e-6)
    probe = mlp(xs.shape[1], 64, classes)
    opt = torch.optim.Adam(probe.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(xs), (min(512, len(xs)),), generator=gen)
        loss = F.cross_entropy(probe((xs[idx] - mean) / std), ys[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = probe((torch.as_tensor(test_x, dtype=torch.float32) - mean) / std).argmax(-1)
    return float((pred.numpy() == np.asarray(test_y)).mean())


def flat_cues(module: EmotionFilter, obs: dict[str, np.ndarray]) -> np.ndarray:
    """``(N, in_dim)`` the cue features the filter reads (for :func:`probe_accuracy`)."""
    mods = {m.key: m for m in module.mods}
    key = module.keys[0]
    n = len(np.asarray(obs[key]).reshape(-1, *mods[key].shape))
    with torch.no_grad():
        return module._flat({k: torch.as_tensor(np.asarray(obs[k]).reshape(n, *mods[k].shape))
                             for k in mods}).numpy()


__all__ = ["EmotionFilter", "EmotionFilterConfig", "apply_filter", "fit_filter", "flat_cues",
           "gradient_reversal", "probe_accuracy"]
