"""Snapshots of a batched core, so a training run can stop and carry on mid-episode.

A core keeps all of its changing state in numpy arrays created in ``__init__`` and only ever
written in place (some are views of others); a snapshot copies every array attribute and a restore
writes the copies back in place, so the views stay views. Generators are saved by their
``bit_generator.state`` (plain dicts of ints and strings).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def core_state(core: Any) -> dict[str, np.ndarray]:
    """Copies of every numpy array attribute of ``core``."""
    return {k: v.copy() for k, v in vars(core).items() if isinstance(v, np.ndarray)}


def load_core_state(core: Any, state: dict[str, Any]) -> None:
    """Writes a :func:`core_state` back into ``core`` in place.

    Raises:
        ValueError: the snapshot is of a different core (a missing array or another shape).
    """
    arrays = {k: v for k, v in vars(core).items() if isinstance(v, np.ndarray)}
    missing = sorted(set(arrays) - set(state))
    if missing:
        raise ValueError(f"env state lacks {', '.join(missing)}")
    for k, arr in arrays.items():
        saved = np.asarray(state[k])
        if saved.shape != arr.shape:
            raise ValueError(f"env state {k} has shape {saved.shape}, the env {arr.shape}")
        arr[...] = saved


def generator_state(generator: np.random.Generator) -> dict[str, Any]:
    """The state of ``generator``'s bit generator (a plain dict)."""
    return generator.bit_generator.state


def load_generator_state(generator: np.random.Generator, state: dict[str, Any]) -> None:
    generator.bit_generator.state = state
