"""World models: LEWM (emotion first), its emotion-blind twin and the factorisation ablations.

One interface in DreamerV3's four verbs (``initial``, ``observe``, ``imagine``, ``loss``); the
variants are configurations (:class:`WorldModelConfig` ``kind``) of one network. They work from
observation/action spaces and an emotion-label space; they know nothing of any env or of SB3.
"""

from lewm_rl.world_models.codec import LabelSpec, modalities
from lewm_rl.world_models.config import WORLD_MODELS, WorldModelConfig
from lewm_rl.world_models.model import (
    EmotionalWorldModel,
    EmotionIntervention,
    State,
    Trajectory,
    build_world_model,
    consistency,
    explained,
)
from lewm_rl.world_models.training import fit_step, make_optimizer

__all__ = [
    "WORLD_MODELS",
    "EmotionIntervention",
    "EmotionalWorldModel",
    "LabelSpec",
    "State",
    "Trajectory",
    "WorldModelConfig",
    "build_world_model",
    "consistency",
    "explained",
    "fit_step",
    "make_optimizer",
    "modalities",
]
