"""The distributions the world models and the actor-critic share.

* ``symlog`` / ``symexp`` and :class:`TwoHot`: DreamerV3's regression by classification. A scalar
  ``y`` is encoded as two-hot weights on bins spaced evenly in ``symlog`` space (255 bins over
  ``[-20, 20]``, as DreamerV3's ``configs.yaml``); a head predicts logits over the bins, is trained
  with the cross-entropy against the two-hot target, and predicts ``symexp`` of the expected bin.
  Returns of order 1 and of order 1,000 then train with gradients of the same size.
* :class:`ActionStructure`: a ``Discrete(n)`` action space seen as kinds, each a product of
  factors (the negotiation's 98 actions are 24 splits x 4 tones, accept, walk away). A head
  predicts one logit per kind and per factor value; the log-probability of a flat action is its
  kind's plus each of its factors', so the actor shares what it learns about a split across tones.
  The result is an ordinary ``Categorical`` over the ``n`` flat actions.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn

Tensor = torch.Tensor


def entropy(probs: Tensor) -> Tensor:
    """``(...)`` entropy in nats of the categorical probabilities ``(..., K)`` (zeros count as
    contributing nothing: ``p log p`` is taken with ``p`` clamped to 1e-8 inside the log)."""
    return -(probs * torch.log(probs.clamp_min(1e-8))).sum(-1)


def symlog(x: Tensor) -> Tensor:
    """``sign(x) log(1 + |x|)`` (DreamerV3): compresses large targets, identity near zero."""
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(x: Tensor) -> Tensor:
    """The inverse of :func:`symlog`: ``sign(x) (exp(|x|) - 1)``."""
    return torch.sign(x) * torch.expm1(torch.abs(x))


class TwoHot:
    """Two-hot encoding of scalars on bins evenly spaced in ``symlog`` space.

    Args:
        bins: number of bins (odd, so that 0 is a bin).
        low, high: range of the bins in symlog space (values beyond are clipped onto the ends).
    """

    def __init__(self, bins: int = 255, low: float = -20.0, high: float = 20.0) -> None:
        if bins < 2 or not low < high:
            raise ValueError(f"need bins >= 2 and low < high, got {bins}, {low}, {high}")
        self.bins = bins
        self.low, self.high = low, high
        self._points: dict[torch.device, Tensor] = {}

    def points(self, device: torch.device | str = "cpu") -> Tensor:
        """``(bins,)`` the bin centres in symlog space."""
        device = torch.device(device)
        if device not in self._points:
            self._points[device] = torch.linspace(self.low, self.high, self.bins, device=device)
        return self._points[device]

    def encode(self, y: Tensor) -> Tensor:
        """``(..., bins)`` two-hot weights of ``symlog(y)``: the two bins around it, weighted so
        that their mean is ``symlog(y)`` exactly (within the range)."""
        x = symlog(y).clamp(self.low, self.high)
        pos = (x - self.low) / (self.high - self.low) * (self.bins - 1)
        below = pos.nan_to_num(0.0).floor().clamp(0, self.bins - 2)
        frac = pos - below  # NaN where y is NaN: the loss stays non-finite and is skipped
        idx = below.long()
        out = torch.zeros(*y.shape, self.bins, device=y.device, dtype=y.dtype)
        out.scatter_(-1, idx[..., None], (1 - frac)[..., None])
        out.scatter_add_(-1, (idx + 1)[..., None], frac[..., None])
        return out

    def mean(self, logits: Tensor) -> Tensor:
        """The prediction of logits ``(..., bins)``: ``symexp`` of the expected bin."""
        return symexp((torch.softmax(logits, -1) * self.points(logits.device)).sum(-1))

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        """``(...)`` cross-entropy of logits ``(..., bins)`` against ``encode(y)``."""
        return -(self.encode(y) * torch.log_softmax(logits, -1)).sum(-1)


def zero_output(net: nn.Sequential) -> nn.Sequential:
    """Zeroes the last Linear layer of ``net`` (DreamerV3's ``outscale: 0``): a two-hot head then
    starts by predicting 0 with a uniform spread, not a random large value."""
    last = [m for m in net if isinstance(m, nn.Linear)][-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return net


class ActionStructure:
    """A flat ``Discrete(n)`` action space as kinds, each a product of factors.

    Flat actions enumerate the kinds in order, and each kind's actions in row-major order over its
    factors. ``((24, 4), (), ())`` is 96 actions ``split * 4 + tone``, then two single actions.

    Args:
        kinds: the factor sizes of each kind (``()`` for a kind that is one action).
    """

    def __init__(self, kinds: Sequence[Sequence[int]]) -> None:
        kinds = tuple(tuple(int(f) for f in k) for k in kinds)
        if not kinds or any(f < 1 for k in kinds for f in k):
            raise ValueError(f"an action structure needs at least one kind and factors >= 1, got "
                             f"{kinds}")
        self.kinds = kinds
        self.num_actions = sum(math.prod(k) for k in kinds)
        # Head layout: one logit per kind (only if there are several), then each factor's logits.
        n_kind = len(kinds) if len(kinds) > 1 else 0
        groups = [(0, n_kind)] if n_kind else []  # slices of the head normalised together
        rows: list[list[int]] = []  # the head outputs each flat action's log-probability sums
        for k, factors in enumerate(kinds):
            starts = []
            for f in factors:
                starts.append(groups[-1][1] if groups else 0)
                groups.append((starts[-1], starts[-1] + f))
            for values in itertools.product(*[range(f) for f in factors]):
                rows.append(([k] if n_kind else []) + [s + v for s, v in zip(starts, values,
                                                                              strict=True)])
        if not groups:
            raise ValueError(f"an action structure needs at least two actions, got {kinds}")
        self._groups = groups
        self.num_logits = groups[-1][1]
        self.incidence = torch.zeros(self.num_logits, self.num_actions)
        """``(num_logits, n)``: 1 where a head output enters a flat action's log-probability."""
        for a, r in enumerate(rows):
            self.incidence[r, a] = 1.0
        self._on: dict[tuple[torch.device, torch.dtype], Tensor] = {}

    @classmethod
    def flat(cls, n: int) -> ActionStructure:
        """No structure: one kind with ``n`` values."""
        return cls(((n,),))

    def logits(self, head: Tensor) -> Tensor:
        """Flat-action log-probabilities ``(..., n)`` from head outputs ``(..., num_logits)``.

        Each group (the kinds, each factor) is normalised on its own; a flat action's
        log-probability is the sum of its kind's and its factors' log-probabilities, so the ``n``
        probabilities sum to one.
        """
        if len(self._groups) == 1:
            return torch.log_softmax(head, -1)
        logp = torch.cat([torch.log_softmax(head[..., a:b], -1) for a, b in self._groups], -1)
        key = (head.device, head.dtype)
        if key not in self._on:
            self._on[key] = self.incidence.to(head.device, head.dtype)
        with torch.autocast(head.device.type, enabled=False):  # sums of log-probabilities:
            return logp @ self._on[key]  # in the head's precision, not a bfloat16 matmul's

    def uniform_bias(self) -> Tensor:
        """``(num_logits,)`` head outputs that give every flat action the same probability: each
        kind's logit is the log of its number of actions, every factor's logits 0 (a head
        initialised near it explores as a flat uniform policy does, not walking away a third of
        the time in the negotiation)."""
        bias = torch.zeros(self.num_logits)
        if len(self.kinds) > 1:
            bias[: len(self.kinds)] = torch.log(torch.tensor([float(math.prod(k))
                                                              for k in self.kinds]))
        return bias

    def __repr__(self) -> str:
        return f"ActionStructure({self.kinds})"


__all__ = ["ActionStructure", "TwoHot", "symexp", "symlog", "zero_output"]
