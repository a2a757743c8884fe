"""A sequence replay buffer that samples ``(B, T)`` windows, for offline and online training alike.

Rows follow DreamerV3's convention: row ``t`` holds the observation ``S_t``, the reward received on
arriving at it, ``is_first`` (it starts an episode), ``is_terminal`` (the episode ended there), the
emotion labels of ``S_t`` (true and annotated: training targets only) and the action taken at it.
Each parallel env writes its own stream, so a window is contiguous in time; windows may cross
episode boundaries, which ``is_first`` marks (the world model resets its state there).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

CORE_KEYS = ("action", "reward", "is_first", "is_terminal")
LABEL_KEYS = ("emotion", "emotion_annotated")


class SequenceReplay:
    """Per-stream ring buffers of steps.

    Args:
        capacity: total number of steps kept (split evenly over streams); oldest are overwritten.
        num_streams: number of parallel envs writing to it.
        obs_keys: observation keys with their per-step shapes and dtypes.
        label_shape: shape of one step's emotion labels (``()`` for one partner, ``(P,)``).
    """

    def __init__(
        self,
        capacity: int,
        num_streams: int,
        obs_keys: dict[str, tuple[tuple[int, ...], Any]],
        label_shape: tuple[int, ...] = (),
    ) -> None:
        if capacity < num_streams:
            raise ValueError(f"capacity {capacity} is smaller than num_streams {num_streams}")
        self.num_streams = num_streams
        self.size_per_stream = capacity // num_streams
        L = self.size_per_stream
        self.obs_keys = dict(obs_keys)
        self.label_shape = tuple(label_shape)
        self.data: dict[str, np.ndarray] = {
            k: np.zeros((num_streams, L, *shape), dtype=dtype) for k, (shape, dtype) in
            self.obs_keys.items()
        }
        self.data["action"] = np.zeros((num_streams, L), dtype=np.int64)
        self.data["reward"] = np.zeros((num_streams, L), dtype=np.float32)
        self.data["is_first"] = np.zeros((num_streams, L), dtype=bool)
        self.data["is_terminal"] = np.zeros((num_streams, L), dtype=bool)
        for k in LABEL_KEYS:
            self.data[k] = np.full((num_streams, L, *self.label_shape), -1, dtype=np.int64)
        self.cursor = 0  # next write position (same for every stream)
        self.filled = 0  # valid rows per stream

    @classmethod
    def for_spaces(cls, capacity: int, num_streams: int, observation_space,
                   emotion_space=None) -> SequenceReplay:
        """Builds the buffer from a (per-env) Dict observation space and emotion space."""
        from gymnasium import spaces

        items = (observation_space.spaces.items() if isinstance(observation_space, spaces.Dict)
                 else [("obs", observation_space)])
        keys = {k: (tuple(s.shape), s.dtype) for k, s in items}
        label_shape: tuple[int, ...] = ()
        if emotion_space is not None and isinstance(emotion_space, spaces.MultiDiscrete):
            label_shape = tuple(emotion_space.shape)
        return cls(capacity, num_streams, keys, label_shape)

    def __len__(self) -> int:
        return self.filled * self.num_streams

    def add(self, step: dict[str, np.ndarray]) -> None:
        """Appends one row to every stream; each value has leading dim ``num_streams``.

        Missing label keys are stored as ``-1`` (unknown).
        """
        i = self.cursor
        for k, buf in self.data.items():
            if k in step:
                buf[:, i] = np.asarray(step[k]).reshape(buf.shape[0], *buf.shape[2:])
            elif k in LABEL_KEYS:
                buf[:, i] = -1
            else:
                raise KeyError(f"step is missing {k!r}; it has {sorted(step)}")
        self.cursor = (i + 1) % self.size_per_stream
        self.filled = min(self.filled + 1, self.size_per_stream)

    def sample(self, batch_size: int, seq_len: int, rng: np.random.Generator,
               recency: float = 0.0) -> dict[str, np.ndarray]:
        """``batch_size`` windows of ``seq_len`` consecutive rows: arrays ``(B, T, ...)``.

        The first row of every window is marked ``is_first`` (the model starts fresh there).

        Args:
            recency: the share of windows drawn by recency rather than uniformly: each window
                chosen with probability proportional to ``1 / (1 + age)``, its age counted in
                rows from the newest window of its stream (DreamerV3's ``Recency`` selector with
                ``recexp`` 1, mixed with the uniform one as its ``replay.fracs``). 0 draws exactly
                the windows it drew before the option existed.
        """
        if self.filled < seq_len:
            raise ValueError(f"need at least {seq_len} rows per stream, have {self.filled}")
        if not 0.0 <= recency <= 1.0:
            raise ValueError(f"recency must be in [0, 1], got {recency}")
        L = self.size_per_stream
        oldest = self.cursor if self.filled == L else 0
        streams = rng.integers(0, self.num_streams, batch_size)
        starts = self.filled - seq_len + 1  # window starts per stream, oldest first
        offsets = rng.integers(0, starts, batch_size)
        if recency > 0:
            recent = rng.random(batch_size) < recency
            ages = rng.choice(starts, size=int(recent.sum()), p=recency_probs(starts))
            offsets[recent] = starts - 1 - ages
        idx = (oldest + offsets[:, None] + np.arange(seq_len)[None]) % L  # (B, T)
        out = {k: v[streams[:, None], idx] for k, v in self.data.items()}
        out["is_first"] = out["is_first"].copy()
        out["is_first"][:, 0] = True
        return out

    def state_dict(self) -> dict[str, Any]:
        """Tensors and ints only, so it loads with ``torch.load(weights_only=True)``."""
        data = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.data.items()}
        return {"data": data,
                "cursor": self.cursor, "filled": self.filled}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores a saved buffer; a buffer saved with another number of rows per stream (a run
        resumed with another ``--steps``) is loaded oldest row first, keeping the newest rows
        that fit, and this buffer keeps its capacity."""
        saved_len = None
        for k, v in state["data"].items():
            want = self.data.get(k, np.empty(0)).shape
            if (k not in self.data or v.ndim != len(want) or v.shape[0] != want[0]
                    or tuple(v.shape[2:]) != want[2:]):
                raise ValueError(f"replay state has {k} {tuple(v.shape)}, expected {want}")
            saved_len = v.shape[1]
        cursor, filled = int(state["cursor"]), int(state["filled"])
        if saved_len == self.size_per_stream:
            for k, v in state["data"].items():
                self.data[k][...] = v.cpu().numpy()  # checkpoints may be mapped to a GPU
            self.cursor, self.filled = cursor, filled
            return
        oldest = cursor if filled == saved_len else 0
        keep = min(filled, self.size_per_stream)
        order = (oldest + np.arange(filled - keep, filled)) % max(saved_len, 1)
        for k, v in state["data"].items():
            self.data[k][:, :keep] = v.cpu().numpy()[:, order]
        self.cursor, self.filled = keep % self.size_per_stream, keep


def to_torch(batch: dict[str, np.ndarray], device: torch.device | str = "cpu"
             ) -> dict[str, torch.Tensor]:
    """numpy batch -> tensors (floats stay float32, ints int64, bools bool)."""
    out = {}
    for k, v in batch.items():
        t = torch.from_numpy(np.ascontiguousarray(v))
        if t.dtype == torch.float64:
            t = t.float()
        out[k] = t.to(device)
    return out


@functools.lru_cache(maxsize=8)
def recency_probs(n: int) -> np.ndarray:
    """``(n,)`` probabilities of ages ``0..n-1`` proportional to ``1 / (1 + age)``."""
    w = 1.0 / np.arange(1, n + 1)
    return w / w.sum()
