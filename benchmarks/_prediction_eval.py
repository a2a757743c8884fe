"""Scoring world models as predictors of the partners' behaviour (for ``benchmarks/prediction.py``).

Everything here reads recorded data in the replay layout (``lewm_rl.data.replay``: row ``t`` holds
``S_t``, the action taken at it, ``is_first``, and the labels of ``S_t``), as whole streams
``(S, L, ...)`` (``S`` parallel envs, ``L`` consecutive rows), and a trained world model through
its public verbs (``observe``, ``priors``, ``imagine``) and its observation decoder.

* **One step**: at row ``t`` the prior of ``h_t`` (history up to ``t - 1`` and the action taken
  there) predicts ``S_t``; its mode is decoded and the partners' behaviour read off it. Rows that
  start an episode are not scored (nothing predicts them).
* **Ceiling** (``lewm`` only): the same, with TS conditioned on the *true* label of ``S_t``
  instead of TE's prediction: what knowing the emotion is worth to this model.
* **Open loop**: from the posterior state at row ``t0`` the model imagines ``H`` steps under the
  *recorded* actions ``a_t0, a_t0+1, ...`` and the behaviour decoded at imagined step ``k`` is
  scored against row ``t0 + k``; a step is masked once the episode has ended (a row in
  ``(t0, t0 + k]`` starts a new episode) or the stream does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from lewm_rl.metrics import class_frequencies, f1_scores
from lewm_rl.world_models import EmotionalWorldModel, State
from lewm_rl.world_models.codec import to_tensor_obs


@dataclass(frozen=True)
class BehaviourSpec:
    """Where the partners' social behaviour lives in an observation, and its classes.

    Attributes:
        key: the observation key (``partner_act``, or ``task`` for the public-goods game).
        classes: number of behaviour classes.
        names: class names.
        index: for a ``Box`` key, the entries that hold the behaviour (e.g. each other seat's
            contribution); ``None`` for a categorical key.
        levels: for a ``Box`` key, the values of the classes; a value is read as the nearest one.
    """

    key: str
    classes: int
    names: tuple[str, ...] = ()
    index: tuple[int, ...] | None = None
    levels: tuple[float, ...] | None = None

    @property
    def is_box(self) -> bool:
        return self.index is not None

    def _nearest(self, x: np.ndarray | torch.Tensor):
        lv = np.asarray(self.levels, dtype=np.float32)
        if isinstance(x, torch.Tensor):
            return (x[..., None] - torch.as_tensor(lv)).abs().argmin(-1)
        return np.abs(x[..., None] - lv).argmin(-1)

    def targets(self, data: dict[str, np.ndarray], lead: int = 2) -> np.ndarray:
        """``(*lead, B)`` int behaviour classes of recorded rows (``B`` behaviour variables)."""
        x = np.asarray(data[self.key])
        shape = x.shape[:lead]
        if self.is_box:
            return self._nearest(x.reshape(*shape, -1)[..., list(self.index)])
        return x.reshape(*shape, -1).astype(np.int64)

    def point(self, decoded: dict[str, torch.Tensor]) -> torch.Tensor:
        """What can be averaged over samples: class probabilities ``(..., B, classes)`` of a
        categorical key, values ``(..., B)`` in observation units of a ``Box`` key."""
        y = decoded[self.key]
        if self.is_box:
            x = torch.sign(y) * torch.expm1(torch.abs(y))  # symexp: back to observation units
            return x[..., list(self.index)]
        return torch.softmax(y, -1)  # (..., size, classes)

    def classify(self, point: torch.Tensor) -> torch.Tensor:
        """``(..., B)`` classes from :meth:`point` (argmax, or the nearest level)."""
        return self._nearest(point) if self.is_box else point.argmax(-1)

    def predict(self, decoded: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(..., B)`` predicted classes from the decoder's output (box means in symlog space)."""
        return self.classify(self.point(decoded))


def decode(model: EmotionalWorldModel, deter: torch.Tensor, stoch: torch.Tensor
           ) -> dict[str, torch.Tensor]:
    """The observation decoder DecS on ``[h; z]`` (``deter`` ``(..., D)``, ``stoch``
    ``(..., S, C)``)."""
    return model.decoder(torch.cat([deter, stoch.flatten(-2)], -1))


def _scores(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> dict[str, float]:
    f = f1_scores(np.asarray(y_true).ravel(), np.asarray(y_pred).ravel(), classes)
    return {"accuracy": f["accuracy"], "macro_f1": f["macro_f1"],
            "count": float(np.asarray(y_true).size)}


def tensors(data: dict[str, np.ndarray], model: EmotionalWorldModel) -> dict[str, torch.Tensor]:
    """The observation tensors ``(S, L, ...)`` the model reads, from recorded streams."""
    return to_tensor_obs({m.key: data[m.key] for m in model.mods}, model.mods)


@torch.no_grad()
def observe_streams(model: EmotionalWorldModel, data: dict[str, np.ndarray], seed: int = 0
                    ) -> tuple[State, dict[str, torch.Tensor]]:
    """Posterior states ``(S, L, ...)`` and one-step priors over whole recorded streams."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    states, out, _ = model.observe(
        tensors(data, model), torch.as_tensor(data["action"]),
        torch.as_tensor(data["is_first"]), generator=gen)
    return states, out


@torch.no_grad()
def one_step(model: EmotionalWorldModel, data: dict[str, np.ndarray], spec: BehaviourSpec,
             seed: int = 0, ceiling: bool = True,
             observed: tuple[State, dict[str, torch.Tensor]] | None = None) -> dict[str, float]:
    """One-step prediction scores over recorded streams ``(S, L, ...)``.

    Returns:
        ``behaviour_{accuracy,macro_f1}``; for emotion models ``next_emotion_*`` (TE against the
        true label) and ``emotion_*`` (the current-emotion posterior); for lewm with ``ceiling``
        ``ceiling_behaviour_*`` (TS given the true label); ``behaviour_majority`` (the share of
        the most frequent class) and ``count``.
    """
    states, out = observed if observed is not None else observe_streams(model, data, seed)
    S, L = data["is_first"].shape
    scored = ~np.asarray(data["is_first"], dtype=bool)  # (S, L)
    target = spec.targets(data)  # (S, L, B)
    h = states.deter.reshape(S * L, -1)
    prior = out["prior"].reshape(S * L, *out["prior"].shape[2:])

    def behaviour(prior_probs: torch.Tensor) -> np.ndarray:
        zmode = F.one_hot(prior_probs.argmax(-1), prior_probs.shape[-1]).float()
        return spec.predict(decode(model, h, zmode)).reshape(S, L, -1).numpy()

    res: dict[str, float] = {}
    pred = behaviour(prior)
    for k, v in _scores(target[scored], pred[scored], spec.classes).items():
        res[f"behaviour_{k}"] = v
    res["behaviour_majority"] = float(class_frequencies(target[scored], spec.classes).max())
    if model.P:
        true = np.asarray(data["emotion"]).reshape(S, L, -1)
        post = out["post_e_logits"].argmax(-1).numpy()
        nxt = out["te_logits"].argmax(-1).numpy()
        for k, v in _scores(true, post, model.K).items():
            res[f"emotion_{k}"] = v
        for k, v in _scores(true[scored], nxt[scored], model.K).items():
            res[f"next_emotion_{k}"] = v
        res["emotion_majority"] = float(class_frequencies(true, model.K).max())
        if ceiling and model.config.kind == "lewm":
            label = torch.as_tensor(true.reshape(S * L, -1))
            pri = model.priors(h, label, torch.ones(S * L, dtype=torch.bool))
            cpred = behaviour(pri["prior"])
            for k, v in _scores(target[scored], cpred[scored], spec.classes).items():
                res[f"ceiling_behaviour_{k}"] = v
    return res


def open_loop_mask(is_first: np.ndarray, starts: np.ndarray, horizon: int) -> np.ndarray:
    """``(H, N)`` bool: imagined step ``k`` from start ``(s, t0)`` is scored.

    Step ``k`` (1-based, row ``k - 1``) is scored iff ``t0 + k < L`` and no row in
    ``(t0, t0 + k]`` of stream ``s`` starts an episode.

    Args:
        is_first: ``(S, L)`` bool.
        starts: ``(N, 2)`` int ``(stream, t0)``.
        horizon: ``H``.
    """
    is_first = np.asarray(is_first, dtype=bool)
    S, L = is_first.shape
    s, t0 = starts[:, 0], starts[:, 1]
    k = np.arange(1, horizon + 1)[:, None]  # (H, 1)
    rows = t0[None] + k  # (H, N)
    inside = rows < L
    new_episode = is_first[s[None], np.minimum(rows, L - 1)] & inside
    crossed = np.cumsum(new_episode, axis=0) > 0  # an episode began at or before step k
    return inside & ~crossed


def score_open_loop(pred: np.ndarray, target: np.ndarray, is_first: np.ndarray,
                    starts: np.ndarray, horizons: Sequence[int], classes: int
                    ) -> dict[int, dict[str, float]]:
    """Scores open-loop behaviour predictions ``k`` steps ahead.

    Args:
        pred: ``(H, N, ...)`` int: the class predicted ``k`` steps after start ``n`` (row
            ``k - 1``).
        target: ``(S, L, ...)`` int: the recorded classes.
        is_first: ``(S, L)`` bool.
        starts: ``(N, 2)`` ``(stream, t0)``.
        horizons: the ``k`` to score (each ``<= H``).
        classes: number of classes.

    Returns:
        Per ``k``: ``accuracy``, ``macro_f1`` and ``count`` (scored predictions) over the
        unmasked steps (``nan`` scores when none is left).
    """
    H = pred.shape[0]
    if max(horizons) > H:
        raise ValueError(f"horizons {list(horizons)} exceed the rollout length {H}")
    mask = open_loop_mask(is_first, starts, H)
    L = target.shape[1]
    out = {}
    for k in horizons:
        rows = np.minimum(starts[:, 1] + k, L - 1)
        truth = target[starts[:, 0], rows]  # (N, ...)
        keep = mask[k - 1]
        if keep.any():
            out[k] = _scores(truth[keep], pred[k - 1][keep], classes)
        else:
            out[k] = {"accuracy": float("nan"), "macro_f1": float("nan"), "count": 0.0}
    return out


class ReplayActions:
    """A policy for ``imagine`` that replays recorded actions: call ``k`` returns ``actions[k]``.

    Args:
        actions: ``(H, N)`` the actions to take at imagined steps ``0..H-1``.
    """

    def __init__(self, actions: torch.Tensor) -> None:
        self.actions = actions
        self.k = 0

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        a = self.actions[self.k]
        assert len(a) == len(features), "one recorded action per start state"
        self.k += 1
        return a


@torch.no_grad()
def open_loop(model: EmotionalWorldModel, data: dict[str, np.ndarray], spec: BehaviourSpec,
              horizons: Sequence[int] = (1, 5, 15), max_starts: int = 2048, seed: int = 0,
              observed: tuple[State, dict[str, torch.Tensor]] | None = None, samples: int = 1,
              ) -> dict[int, dict[str, float]]:
    """Open-loop behaviour prediction ``k`` steps ahead under the recorded actions.

    Args:
        max_starts: start rows sampled (without replacement) from the test rows.
        samples: imagined rollouts per start; the decoded behaviour (class probabilities, or
            values of a box key) is averaged over them before classifying.
    """
    states, _ = observed if observed is not None else observe_streams(model, data, seed)
    S, L = data["is_first"].shape
    H = max(horizons)
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(np.arange(S), np.arange(L - 1), indexing="ij"), -1).reshape(-1, 2)
    starts = grid[rng.permutation(len(grid))[:max_starts]]  # (N, 2)
    N = len(starts)
    idx = (torch.as_tensor(starts[:, 0]).repeat(samples),
           torch.as_tensor(starts[:, 1]).repeat(samples))
    start = states[idx]  # State (R*N, ...): the starts repeated R times
    action = np.asarray(data["action"])
    rows = np.minimum(starts[:, 1][None] + np.arange(H)[:, None], L - 1)  # (H, N)
    recorded = torch.as_tensor(action[starts[:, 0][None], rows]).repeat(1, samples)  # (H, R*N)
    gen = torch.Generator().manual_seed(seed)
    traj = model.imagine(start, ReplayActions(recorded), H, generator=gen, decode_behaviour=False)
    point = spec.point(decode(model, traj.states.deter[1:], traj.states.stoch[1:]))  # (H, R*N, ..)
    point = point.reshape(H, samples, N, *point.shape[2:]).mean(1)  # (H, N, ...)
    pred = spec.classify(point)  # (H, N, B)
    return score_open_loop(pred.numpy(), spec.targets(data), data["is_first"], starts, horizons,
                           spec.classes)


__all__ = ["BehaviourSpec", "ReplayActions", "decode", "observe_streams", "one_step", "open_loop",
           "open_loop_mask", "score_open_loop"]
