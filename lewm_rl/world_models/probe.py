"""A linear probe of the partners' emotion, read from a world model's detached latent state.

It gives the emotion-blind model the same emotion charts as LEWM ("does it understand the partner
better?") without changing it: the probe trains on the labels from detached features, and nothing
it computes reaches the world model, the actor or the critic.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lewm_rl.metrics import f1_scores


class EmotionProbe(nn.Module):
    """``Linear(F -> P * K)`` over world-model features, with its own optimiser.

    Args:
        feature_dim: ``F``, the size of ``world_model.features(state)``.
        partners: ``P``, emotion variables.
        classes: ``K``, classes per variable.
        lr: Adam learning rate.
    """

    def __init__(self, feature_dim: int, partners: int, classes: int, lr: float = 1e-3) -> None:
        super().__init__()
        self.partners, self.classes = partners, classes
        self.linear = nn.Linear(feature_dim, partners * classes)
        self.opt = torch.optim.Adam(self.linear.parameters(), lr=lr)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(..., P, K)`` from features ``(..., F)``."""
        return self.linear(features).reshape(*features.shape[:-1], self.partners, self.classes)

    def update(self, features: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        """One cross-entropy step on ``features`` ``(..., F)`` (detached here) and ``labels``
        ``(..., P)`` (``-1`` where unknown); returns ``probe/loss`` and ``probe/accuracy``."""
        logits = self(features.detach()).reshape(-1, self.classes)  # (N*P, K)
        target = labels.reshape(-1).long()
        valid = target >= 0
        if not bool(valid.any()):
            return {}
        loss = F.cross_entropy(logits[valid], target[valid])
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        f = f1_scores(target[valid].cpu().numpy(), logits[valid].argmax(-1).cpu().numpy(),
                      self.classes)
        return {"probe/loss": float(loss.detach()), "probe/accuracy": f["accuracy"]}

    def full_state_dict(self) -> dict:
        """Weights and optimiser state (tensors only)."""
        return {"weights": self.state_dict(), "opt": self.opt.state_dict()}

    def load_full_state_dict(self, state: dict) -> None:
        self.load_state_dict(state["weights"])
        self.opt.load_state_dict(state["opt"])
