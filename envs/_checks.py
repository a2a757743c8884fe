"""Argument checks shared by the environments: errors that say what was wrong and what is
allowed."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

F = TypeVar("F", bound=Callable[..., Any])


def named_kwargs(init: F) -> F:
    """Makes an unknown keyword argument raise ``TypeError`` listing the allowed ones."""
    sig = inspect.signature(init)
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    allowed = [n for n, p in sig.parameters.items() if n != "self" and p.kind in kinds]

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unknown keyword argument(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(allowed)}"
            )
        return init(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def check_discrete_action(action: Any, n: int) -> int:
    """Returns ``action`` as an int, or raises ``ValueError`` naming the valid range."""
    if isinstance(action, (int, np.integer)) and not isinstance(action, bool):
        a = int(action)
    elif isinstance(action, np.ndarray) and action.shape in ((), (1,)) and np.issubdtype(
            action.dtype, np.integer):
        a = int(action.reshape(()))
    else:
        raise ValueError(f"invalid action {action!r}: expected an integer in [0, {n - 1}]")
    if not 0 <= a < n:
        raise ValueError(f"invalid action {a}: expected an integer in [0, {n - 1}]")
    return a


def check_num_envs(num_envs: Any) -> int:
    """Returns ``num_envs`` as an int, or raises ``ValueError`` unless it is an integer >= 1."""
    if (not isinstance(num_envs, (int, np.integer)) or isinstance(num_envs, bool)
            or num_envs < 1):
        raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
    return int(num_envs)


def check_render_mode(render_mode: str | None, allowed: list[str]) -> str | None:
    """Validates ``render_mode`` against the env's metadata."""
    if render_mode is not None and render_mode not in allowed:
        raise ValueError(f"unknown render_mode {render_mode!r}; allowed: {allowed} or None")
    return render_mode


def check_influence(cls: type, subjective: bool, emotion_influence: float | None) -> float | None:
    """``emotion_influence`` for an env class: any ``kappa >= 0`` for a subjective env, only 0 for
    an objective twin (whose partners decide on utility alone by definition)."""
    if emotion_influence is None or subjective:
        return emotion_influence
    if float(emotion_influence) != 0.0:
        raise ValueError(
            f"{cls.__name__} is the objective twin: emotion_influence must be 0, got "
            f"{emotion_influence!r}; use the subjective env for emotion_influence > 0")
    return 0.0
