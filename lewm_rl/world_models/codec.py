"""Observation and label codecs: from Gymnasium spaces to tensors, encoders and decoders.

The world models work from spaces alone (never an env object): a ``Dict`` observation space gets
one encoder and one decoder head per modality; ``Box`` modalities are reconstructed in symlog
space with a squared error (optionally divided by each dimension's running variance),
``Discrete`` / ``MultiDiscrete`` ones with a cross-entropy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

from lewm_rl.distributions import symlog
from lewm_rl.nets import Head, dense


@dataclass(frozen=True)
class Modality:
    """One key of a Dict observation space.

    Attributes:
        key: the key.
        kind: ``"box"`` or ``"categorical"``.
        size: flattened dimension (box) or number of categorical variables.
        classes: classes per categorical variable (0 for box).
        shape: the event shape of one observation of this key.
    """

    key: str
    kind: str
    size: int
    classes: int = 0
    shape: tuple[int, ...] = ()

    def lead_shape(self, x: torch.Tensor) -> torch.Size:
        """The leading (batch, time) dims of a tensor of this modality."""
        return x.shape[: x.dim() - len(self.shape)]

    @property
    def input_dim(self) -> int:
        return self.size if self.kind == "box" else self.size * self.classes


def modalities(space: spaces.Space) -> list[Modality]:
    """The modalities of an observation space (a non-Dict space is one modality, ``"obs"``)."""
    items = space.spaces.items() if isinstance(space, spaces.Dict) else [("obs", space)]
    out = []
    for key, sub in items:
        if isinstance(sub, spaces.Box):
            out.append(Modality(key, "box", int(np.prod(sub.shape)), 0, tuple(sub.shape)))
        elif isinstance(sub, spaces.Discrete):
            out.append(Modality(key, "categorical", 1, int(sub.n), ()))
        elif isinstance(sub, spaces.MultiDiscrete):
            nvec = np.asarray(sub.nvec).ravel()
            if not np.all(nvec == nvec[0]):
                raise ValueError(f"{key}: MultiDiscrete with unequal sizes {nvec} is not supported")
            out.append(Modality(key, "categorical", len(nvec), int(nvec[0]), tuple(sub.shape)))
        elif isinstance(sub, spaces.MultiBinary):
            out.append(Modality(key, "categorical", int(np.prod(sub.shape)), 2, tuple(sub.shape)))
        else:
            raise ValueError(
                f"unsupported observation modality {key!r}: {sub}; allowed: Box, Discrete, "
                "MultiDiscrete, MultiBinary (inside a Dict or alone)")
    return out


def space_to_dict(space: spaces.Space) -> dict:
    """A JSON-able description of an observation or action space (see :func:`space_from_dict`)."""
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_dict(v) for k, v in space.spaces.items()}}
    if isinstance(space, spaces.Box):
        return {"type": "Box", "low": space.low.tolist(), "high": space.high.tolist(),
                "shape": list(space.shape), "dtype": str(space.dtype)}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": np.asarray(space.nvec).tolist()}
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": list(np.atleast_1d(space.n))}
    raise ValueError(f"cannot describe space {space}; allowed: Dict, Box, Discrete, "
                     "MultiDiscrete, MultiBinary")


def space_from_dict(d: dict) -> spaces.Space:
    """The inverse of :func:`space_to_dict`."""
    kind = d["type"]
    if kind == "Dict":
        return spaces.Dict({k: space_from_dict(v) for k, v in d["spaces"].items()})
    if kind == "Box":
        dtype = np.dtype(d["dtype"])
        return spaces.Box(np.asarray(d["low"], dtype), np.asarray(d["high"], dtype),
                          tuple(d["shape"]), dtype)
    if kind == "Discrete":
        return spaces.Discrete(d["n"], start=d.get("start", 0))
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(np.asarray(d["nvec"], dtype=np.int64))
    if kind == "MultiBinary":
        n = d["n"]
        return spaces.MultiBinary(n[0] if len(n) == 1 else n)
    raise ValueError(f"unknown space type {kind!r}")


@dataclass(frozen=True)
class LabelSpec:
    """The emotion-label space of an environment: ``partners`` variables of ``classes`` classes."""

    partners: int
    classes: int
    names: tuple[str, ...] = ()

    @classmethod
    def from_space(cls, space: spaces.Space, names: tuple[str, ...] = ()) -> LabelSpec:
        """From an env's ``emotion_space`` (``Discrete(K)`` or ``MultiDiscrete([K] * P)``)."""
        if isinstance(space, spaces.Discrete):
            return cls(1, int(space.n), tuple(names))
        if isinstance(space, spaces.MultiDiscrete):
            nvec = np.asarray(space.nvec).ravel()
            if not np.all(nvec == nvec[0]):
                raise ValueError(f"emotion space with unequal sizes {nvec} is not supported")
            return cls(len(nvec), int(nvec[0]), tuple(names))
        raise ValueError(f"emotion_space must be Discrete or MultiDiscrete, got {space}")

    @property
    def dim(self) -> int:
        return self.partners * self.classes


def to_tensor_obs(obs: dict[str, np.ndarray] | np.ndarray, mods: list[Modality],
                  device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Converts (batched) numpy observations to tensors: floats for Box, int64 for categorical."""
    if not isinstance(obs, dict):
        obs = {"obs": obs}
    out = {}
    for m in mods:
        x = np.asarray(obs[m.key])
        dtype = torch.float32 if m.kind == "box" else torch.int64
        out[m.key] = torch.as_tensor(x, dtype=dtype, device=device)
    return out


class ObsEncoder(nn.Module):
    """One linear layer per modality, concatenated, then an MLP: ``(..., *) -> (..., D)``."""

    def __init__(self, mods: list[Modality], per_modality: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.mods = mods
        self.inputs = nn.ModuleDict({m.key: nn.Linear(m.input_dim, per_modality) for m in mods})
        self.mlp = nn.Sequential(
            nn.LayerNorm(per_modality * len(mods)), nn.SiLU(),
            nn.Linear(per_modality * len(mods), hidden), nn.LayerNorm(hidden), nn.SiLU(),
            nn.Linear(hidden, out_dim),
        )

    def flat_inputs(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per modality, the network input: symlog of a box, one-hot of a categorical."""
        out = {}
        for m in self.mods:
            x = obs[m.key]
            lead = m.lead_shape(x)
            if m.kind == "box":
                out[m.key] = symlog(x.reshape(*lead, m.size))  # (..., size)
            else:
                onehot = F.one_hot(x.reshape(*lead, m.size).long(), m.classes).float()
                out[m.key] = onehot.reshape(*lead, m.input_dim)  # (..., size * classes)
        return out

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        flat = self.flat_inputs(obs)
        parts = [self.inputs[m.key](flat[m.key]) for m in self.mods]
        return self.mlp(torch.cat(parts, -1))


STD_FLOOR = 0.05
"""Smallest spread (in symlog space) a standardised decoder target is divided by: a dimension that
varies less is treated as constant to within it (the negotiation's item counts never vary)."""


class ObsDecoder(nn.Module):
    """Per-modality heads from features: box means (in symlog space) and categorical logits.

    With ``targets="standardised"`` each box dimension's squared error is divided by that
    dimension's variance in the data fitted so far (running over every batch passed to
    :meth:`observe`, floored at ``STD_FLOOR ** 2``), so that each dimension weighs by the share of
    its spread left unexplained rather than by its units: a field that spans 0.1 then counts as
    much as one that spans 10. The head predicts the standardised value and :meth:`forward` returns
    it in symlog space either way.
    """

    def __init__(self, mods: list[Modality], in_dim: int, hidden: int,
                 targets: str = "symlog") -> None:
        super().__init__()
        if targets not in ("symlog", "standardised"):
            raise ValueError(f"targets must be symlog or standardised, got {targets!r}")
        self.mods = mods
        self.targets = targets
        self.trunk = nn.Sequential(*dense(in_dim, hidden))
        self.heads = nn.ModuleDict({m.key: Head(hidden, m.input_dim) for m in mods})
        if targets == "standardised":
            for m in mods:
                if m.kind == "box":
                    self.register_buffer(f"count_{m.key}", torch.zeros(()))
                    self.register_buffer(f"mean_{m.key}", torch.zeros(m.size))
                    self.register_buffer(f"var_{m.key}", torch.ones(m.size))

    def scale(self, key: str) -> torch.Tensor:
        """The spread a standardised box modality's targets are divided by, ``(size,)``."""
        return getattr(self, f"var_{key}").sqrt().clamp_min(STD_FLOOR)

    @torch.no_grad()
    def observe(self, obs: dict[str, torch.Tensor]) -> None:
        """Adds a batch of observations to the running mean and variance of every box dimension
        (in symlog space; Chan et al.'s parallel update, as SB3's ``RunningMeanStd``). Nothing to
        do for ``targets="symlog"``."""
        if self.targets != "standardised":
            return
        for m in (m for m in self.mods if m.kind == "box"):
            x = symlog(obs[m.key].reshape(-1, m.size).float())  # (N, size)
            count, mean, var = (getattr(self, f"{n}_{m.key}") for n in ("count", "mean", "var"))
            n = x.shape[0]
            total = count + n
            delta = x.mean(0) - mean
            m2 = var * count + x.var(0, unbiased=False) * n + delta ** 2 * count * n / total
            mean += delta * n / total
            var.copy_(m2 / total)
            count.copy_(total)

    def forward(self, feat: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.trunk(feat)
        out = {}
        for m in self.mods:
            y = self.heads[m.key](h)
            if m.kind == "box" and self.targets == "standardised":
                y = y * self.scale(m.key) + getattr(self, f"mean_{m.key}")
            out[m.key] = y if m.kind == "box" else y.reshape(*y.shape[:-1], m.size, m.classes)
        return out

    def loss(self, pred: dict[str, torch.Tensor], obs: dict[str, torch.Tensor],
             weighted: bool = True) -> dict[str, torch.Tensor]:
        """Per-modality negative log-likelihoods, each ``(...)`` (summed over event dims); box
        errors divided by their dimensions' variance where targets are standardised, unless
        ``weighted`` is False (plain symlog squared errors, comparable across configs)."""
        out = {}
        for m in self.mods:
            target = obs[m.key]
            lead = m.lead_shape(target)
            if m.kind == "box":
                t = symlog(target.reshape(*lead, m.size))
                err = pred[m.key] - t
                if weighted and self.targets == "standardised":
                    err = err / self.scale(m.key)
                out[m.key] = (err ** 2).sum(-1)
            else:
                logits = pred[m.key]  # (..., size, classes)
                t = target.reshape(*lead, m.size).long()
                ce = F.cross_entropy(logits.reshape(-1, m.classes), t.reshape(-1), reduction="none")
                out[m.key] = ce.reshape(t.shape).sum(-1)
        return out
