"""The one place world models are fitted: a gradient step with NaN protection."""

from __future__ import annotations

import math

import torch

from lewm_rl.world_models.model import EmotionalWorldModel, State


def make_optimizer(model: EmotionalWorldModel) -> torch.optim.Optimizer:
    """Adam with the config's learning rate (eps as DreamerV3)."""
    return torch.optim.Adam(model.parameters(), lr=model.config.lr, eps=1e-8)


def fit_step(
    model: EmotionalWorldModel,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    with_metrics: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[dict[str, float], State]:
    """One world-model update on a ``(B, T)`` batch.

    A non-finite loss or gradient skips the update (nothing is applied) and is reported as
    ``world_model/skipped = 1``; the caller decides when repeated skips must stop training.

    Returns:
        The metrics and the (detached) posterior states ``(B, T, ...)``, from which an agent can
        start imagining.
    """
    model.train()
    model.decoder.observe({m.key: batch[m.key] for m in model.mods})
    loss, metrics, states = model.loss_and_states(batch, generator=generator,
                                                  with_metrics=with_metrics)
    states = states.detach()
    optimizer.zero_grad(set_to_none=True)
    if not torch.isfinite(loss):
        metrics["world_model/skipped"] = 1.0
        return metrics, states
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), model.config.grad_clip)
    if not math.isfinite(float(norm)):
        optimizer.zero_grad(set_to_none=True)
        metrics["world_model/skipped"] = 1.0
        return metrics, states
    optimizer.step()
    metrics["world_model/grad_norm"] = float(norm)
    metrics["world_model/skipped"] = 0.0
    return metrics, states
