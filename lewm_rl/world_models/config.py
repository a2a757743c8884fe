"""Configuration of the world models: one network, several configurations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import tyro

WORLD_MODELS: tuple[str, ...] = ("lewm", "blind", "state_first", "parallel")
"""``lewm``: emotion first, ``p(E'|h) p(S'|h, E')``; ``blind``: no emotion pathway, widened to the
same parameter count; ``state_first``: ``p(S'|h) p(E'|h, S')``; ``parallel``:
``p(S'|h) p(E'|h)``."""

Kind = Literal["lewm", "blind", "state_first", "parallel"]


ADDED_LATER: dict[str, object] = {"reward_head": "mse", "reward_bins": 255, "action_embed": "flat",
                                  "decoder_targets": "symlog"}
"""Fields added after models were saved, at the values that rebuild those models (and reproduce
the runs made before them)."""


@dataclass(frozen=True)
class WorldModelConfig:
    """World-model hyperparameters. ``kind`` picks the factorisation; the rest sizes the network."""

    kind: Annotated[Kind, tyro.conf.Suppress] = "lewm"
    """Factorisation: lewm (emotion first), blind, state_first or parallel (on the command line:
    --world-model)."""
    deter: int = 128
    """Size of the recurrent (deterministic) history state h."""
    stoch: int = 8
    """Number of categorical latent variables in the stochastic state z."""
    classes: int = 8
    """Classes per categorical latent."""
    hidden: int = 128
    """Width of the MLPs."""
    embed: int = 128
    """Size of the observation embedding (EncS output)."""
    per_modality: int = 32
    """Width of the first layer of each observation modality's encoder, and of EncA."""
    emotion_embed: int = 16
    """Size of the emotion embedding (EncE output)."""
    emotion_weight: float = 1.0
    """lambda: weight of the emotion loss (next-emotion prior and current-emotion posterior)."""
    consistency_weight: float = 0.01
    """beta: weight of the consistency term C = ||TS(h, E_hat) - TS(h, E)|| (lewm only)."""
    teacher_forcing: float = 0.5
    """Share of steps whose state prior TS is conditioned on the label rather than on the predicted
    emotion during training (lewm only); 1.0 is pure teacher forcing as in the paper."""
    action_embed: Literal["structured", "flat", "features"] = "flat"
    """flat: one embedding per action; structured: EncA embeds an action as the sum of its kind's
    and factors' embeddings, where the env declares an action structure (negotiation: kind,
    split, tone; it lowered the agent's return in ``benchmarks/dreamer_diagnosis``); features:
    EncA reads the action's one-hot and the env's ``action_features`` (negotiation: kind, the
    fraction of each item an offer keeps, tone)."""
    reward_head: Literal["twohot", "mse"] = "mse"
    """mse: a scalar head regressed with a squared error; twohot: DreamerV3's symlog two-hot head
    with a zero-initialised output (no better return at the default budget, and each update
    costs more: ``benchmarks/dreamer_diagnosis``, ``benchmarks/dreamer_speed``)."""
    reward_bins: int = 255
    """Bins of the two-hot reward head (evenly spaced in symlog space over [-20, 20])."""
    reward_heads: int = 1
    """Reward heads. With more than one, each is trained on its own bootstrap resample of every
    batch (each step weighted by a Poisson(1) draw per head), the predicted reward is their mean,
    and their spread measures where the model does not know what a move pays, which the agent's
    ``pessimism`` subtracts in imagination."""
    prior_heads: float = 0.0
    """Weight of a second loss on the reward and continuation heads, read on ``[h; z]`` with ``z``
    drawn from the prior (what imagination feeds them) rather than the posterior, the latents
    detached: it calibrates the heads to imagination (a model whose prior does not see a
    walk-away coming then still expects the episode to end as often as it does). 0: the
    posterior alone, as DreamerV3."""
    prior_ensemble: int = 0
    """State priors in an ensemble beside TS (0: none, else at least 2), each trained on its own
    bootstrap resample of every batch (Poisson(1) weights per step) by the KL from the detached
    posterior, reading what TS reads (detached): where they disagree about the next latent
    (:func:`~lewm_rl.world_models.model.disagreement`), the model has seen too few such moves,
    which the agent's ``disagreement`` penalty subtracts in imagination. Imagination still draws
    from TS."""
    decoder_targets: Literal["symlog", "standardised"] = "standardised"
    """standardised: DecS divides each Box dimension's squared error (in symlog space) by that
    dimension's variance over the data seen so far (``codec.ObsDecoder``), so that a field with
    a small range (the negotiation's own item values, fractions of the pool's worth) weighs as
    much as a wide one against the KL that encoding it costs; symlog: plain symlog squared
    errors, as DreamerV3 (the belief then loses the item values and the agent earns less:
    ``benchmarks/dreamer_diagnosis``, ``benchmarks/belief_features``)."""
    kl_dyn: float = 0.5
    """Weight of the dynamics KL (trains the prior), as DreamerV3."""
    kl_rep: float = 0.1
    """Weight of the representation KL (regularises the posterior), as DreamerV3."""
    free_nats: float = 1.0
    """KL below this many nats is not penalised."""
    unimix: float = 0.01
    """Mix of uniform probability in every categorical, against overconfident latents."""
    lr: float = 1e-3
    """Adam learning rate of the world model."""
    grad_clip: float = 100.0
    """Gradient-norm clipping."""
    label_key: Literal["emotion_annotated", "emotion"] = "emotion_annotated"
    """Which label trains the emotion heads: the annotator's (weak supervision, default) or the
    true one. Metrics are always computed against the true labels."""
    param_tolerance: float = 0.05
    """The blind model is widened until its parameter count is within this fraction of lewm's."""

    @property
    def uses_emotion(self) -> bool:
        """Whether the model has an emotion pathway (every kind but ``blind``)."""
        return self.kind != "blind"

    def __post_init__(self) -> None:
        if self.kind not in WORLD_MODELS:
            raise ValueError(
                f"unknown world model {self.kind!r}; allowed: {', '.join(WORLD_MODELS)}")
        for name in ("deter", "stoch", "classes", "hidden", "embed", "per_modality",
                     "emotion_embed"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("emotion_weight", "consistency_weight", "kl_dyn", "kl_rep", "free_nats",
                     "prior_heads"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.action_embed not in ("structured", "flat", "features"):
            raise ValueError(f"action_embed must be structured, flat or features, got "
                             f"{self.action_embed!r}")
        if self.decoder_targets not in ("symlog", "standardised"):
            raise ValueError(f"decoder_targets must be symlog or standardised, got "
                             f"{self.decoder_targets!r}")
        if self.reward_head not in ("twohot", "mse"):
            raise ValueError(f"reward_head must be twohot or mse, got {self.reward_head!r}")
        if self.prior_ensemble < 0 or self.prior_ensemble == 1:
            raise ValueError(f"prior_ensemble must be 0 (none) or >= 2 (members that can "
                             f"disagree), got {self.prior_ensemble}")
        if self.reward_heads < 1:
            raise ValueError(f"reward_heads must be >= 1, got {self.reward_heads}")
        if self.reward_bins < 2:
            raise ValueError(f"reward_bins must be >= 2, got {self.reward_bins}")
        if not 0.0 <= self.teacher_forcing <= 1.0:
            raise ValueError(f"teacher_forcing must be in [0, 1], got {self.teacher_forcing}")
