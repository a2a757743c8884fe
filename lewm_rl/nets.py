"""The one MLP of the package: world-model heads, the actor and critic, the learned cue filter."""

from __future__ import annotations

from torch import nn


def dense(in_dim: int, out_dim: int) -> list[nn.Module]:
    """One hidden layer, ``Linear -> LayerNorm -> SiLU``, as modules to splice into a
    ``Sequential`` (its state-dict keys stay those of the flat sequence)."""
    return [nn.Linear(in_dim, out_dim), nn.LayerNorm(out_dim), nn.SiLU()]


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int = 1) -> nn.Sequential:
    """``layers`` x ``(Linear -> LayerNorm -> SiLU)`` of width ``hidden``, then ``Linear`` to
    ``out_dim``.

    Raises:
        ValueError: ``layers`` < 1.
    """
    if layers < 1:
        raise ValueError(f"an mlp needs at least one hidden layer, got layers={layers}")
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += dense(in_dim if i == 0 else hidden, hidden)
    return nn.Sequential(*mods, nn.Linear(hidden, out_dim))
