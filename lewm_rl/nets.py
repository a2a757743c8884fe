"""The one MLP of the package: world-model heads, the actor and critic, the learned cue filter."""

from __future__ import annotations

import functools

import torch
from torch import nn


@functools.cache
def bfloat16_native(device_type: str) -> bool:
    """Whether a device of this type multiplies bfloat16 natively, where a bfloat16 autocast
    pays: a CUDA GPU of compute capability 8 or more (Ampere on; ``torch.cuda.is_bf16_supported``
    also says yes where it is emulated), or an x86 CPU with AVX512-BF16 or AMX (torch's own CPU
    capability checks). Elsewhere (older GPUs, AVX2, other CPUs, torch builds without the
    checks) bfloat16 would be emulated, slower than float32: ``False``."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8
    if device_type == "cpu":
        cpu = torch.cpu
        checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported",
                                                        "_is_amx_tile_supported")]
        return any(bool(check()) for check in checks if check is not None)
    return False


class Head(nn.Linear):
    """An output layer: a ``Linear`` whose result is float32 where its matmul ran in half
    precision.

    Under a bfloat16 autocast (``DreamerConfig.compute_dtype``) the hidden layers compute in
    bfloat16 while every head's output (a logit, a regression) comes back in float32, so that
    distributions, sampling, returns and losses stay in float32, as DreamerV3's ``compute_dtype``
    keeps them. Without autocast it is an ``nn.Linear`` (same parameters, same state-dict keys,
    same numbers, in any dtype).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        return out.float() if out.dtype in (torch.bfloat16, torch.float16) else out


def dense(in_dim: int, out_dim: int) -> list[nn.Module]:
    """One hidden layer, ``Linear -> LayerNorm -> SiLU``, as modules to splice into a
    ``Sequential`` (its state-dict keys stay those of the flat sequence)."""
    return [nn.Linear(in_dim, out_dim), nn.LayerNorm(out_dim), nn.SiLU()]


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int = 1) -> nn.Sequential:
    """``layers`` x ``(Linear -> LayerNorm -> SiLU)`` of width ``hidden``, then a :class:`Head`
    to ``out_dim``.

    Raises:
        ValueError: ``layers`` < 1.
    """
    if layers < 1:
        raise ValueError(f"an mlp needs at least one hidden layer, got layers={layers}")
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += dense(in_dim if i == 0 else hidden, hidden)
    return nn.Sequential(*mods, Head(hidden, out_dim))
