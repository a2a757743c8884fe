"""Observation wrappers for the emotional environments.

``FilterEmotionCues`` removes the partners' emotional cues from the observations, the control of
the paper's emotion-filtering experiment ("removing emotionally relevant information degrades
reasoning"): a model that reads the filtered observations can still see the task state and what
the partners did, but nothing of how they look or sound.

How the cues are neutralised (exactly):

* a ``Box`` cue (``expression``) is replaced by zeros of the same shape and dtype: the face of a
  character with no expressivity and no cue noise, the same for every emotion;
* a ``Discrete`` / ``MultiDiscrete`` cue (``tone``) is replaced by its lowest value (``start``, 0):
  the ``neutral`` tone, for every partner.

A value outside the space (a ``Box`` that excludes 0) is clipped into it. The observation space is
unchanged, so every model and policy runs on the wrapped env as it is, and the other keys (``task``,
``partner_act``) pass through untouched. The filter is a deterministic function of one observation
(:func:`filter_cues`), so filtering recorded data gives exactly the observations of the wrapped env.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

CUE_KEYS: tuple[str, ...] = ("expression", "tone")
"""The observation keys that carry emotional cues in this package's environments."""


def neutral_value(space: spaces.Space) -> np.ndarray | int:
    """The neutral value of one cue: zeros for a ``Box`` (clipped into it), ``start`` otherwise.

    Raises:
        ValueError: for a space other than ``Box``, ``Discrete`` or ``MultiDiscrete``.
    """
    if isinstance(space, spaces.Box):
        return np.clip(np.zeros(space.shape, dtype=space.dtype), space.low, space.high).astype(
            space.dtype)
    if isinstance(space, spaces.Discrete):
        return int(space.start)
    if isinstance(space, spaces.MultiDiscrete):
        return np.asarray(space.start, dtype=space.dtype).copy()
    raise ValueError(f"cannot neutralise a cue of space {space}; allowed: Box, Discrete, "
                     "MultiDiscrete")


def _check_keys(space: spaces.Space, keys: Sequence[str]) -> spaces.Dict:
    if not isinstance(space, spaces.Dict):
        raise ValueError(f"FilterEmotionCues needs a Dict observation space, got {space}")
    missing = [k for k in keys if k not in space.spaces]
    if missing:
        raise ValueError(f"cue keys {missing} are not observation keys {list(space.spaces)}")
    return space


def filter_cues(obs: dict[str, Any], space: spaces.Dict, keys: Sequence[str] = CUE_KEYS,
                batched: bool = False) -> dict[str, Any]:
    """Returns a copy of ``obs`` with the cue ``keys`` neutralised (see the module docstring).

    Args:
        obs: one observation, or a batch (leading axis ``N``, or any leading axes) if ``batched``.
        space: the single (unbatched) ``Dict`` observation space.
        keys: the cue keys to neutralise.
        batched: ``obs`` values carry leading axes beyond the space's shapes.
    """
    _check_keys(space, keys)
    out = dict(obs)
    for k in keys:
        value = neutral_value(space.spaces[k])
        if batched or not isinstance(space.spaces[k], spaces.Discrete):
            x = np.asarray(obs[k])
            out[k] = np.broadcast_to(np.asarray(value, dtype=x.dtype), x.shape).copy()
        else:
            out[k] = value
    return out


class FilterEmotionCues(gym.ObservationWrapper):
    """Neutralises the emotional cues of a ``Dict`` observation (see the module docstring).

    Args:
        env: an env with a ``Dict`` observation space holding ``keys``.
        keys: the cue keys (default ``("expression", "tone")``).

    Example:
        >>> env = FilterEmotionCues(gym.make("SocialNegotiation-v0"))
        >>> obs, info = env.reset(seed=0)
        >>> float(abs(obs["expression"]).sum()), obs["tone"]
        (0.0, 0)
    """

    def __init__(self, env: gym.Env, keys: Sequence[str] = CUE_KEYS) -> None:
        super().__init__(env)
        _check_keys(env.observation_space, keys)
        self.cue_keys = tuple(keys)

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        return filter_cues(observation, self.observation_space, self.cue_keys)


class FilterEmotionCuesVector(gym.vector.VectorObservationWrapper):
    """:class:`FilterEmotionCues` for a vector env (batched observations).

    Args:
        env: a vector env whose ``single_observation_space`` is a ``Dict`` holding ``keys``.
        keys: the cue keys.
    """

    def __init__(self, env: gym.vector.VectorEnv, keys: Sequence[str] = CUE_KEYS) -> None:
        super().__init__(env)
        _check_keys(env.single_observation_space, keys)
        self.cue_keys = tuple(keys)

    def observations(self, observations: dict[str, Any]) -> dict[str, Any]:
        return filter_cues(observations, self.single_observation_space, self.cue_keys,
                           batched=True)


__all__ = ["CUE_KEYS", "FilterEmotionCues", "FilterEmotionCuesVector", "filter_cues",
           "neutral_value"]
