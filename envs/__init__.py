"""Emotional social-simulation environments (Gymnasium and PettingZoo).

Importing ``lewm_rl`` (or this package) registers the Gymnasium ids; ``gym.make("lewm_rl:ID")``
works with no import. The PettingZoo environments are the modules ``social_negotiation_v0``,
``social_negotiation_v1`` and ``public_goods_v0``, each exporting ``env``, ``parallel_env`` and
``raw_env``.

This package imports only numpy, gymnasium and pettingzoo: it knows nothing of models or agents.
"""

from __future__ import annotations

import warnings

from gymnasium.envs.registration import register, registry

from lewm_rl.envs.affect import EMOTIONS, NUM_EMOTIONS, POPULATIONS, TONES
from lewm_rl.envs.negotiation import (
    ObjectiveNegotiationEnv,
    ObjectiveNegotiationVectorEnv,
    SocialNegotiationEnv,
    SocialNegotiationVectorEnv,
)
from lewm_rl.envs.negotiation_core import V1_EMOTION_INFLUENCE, V1_RULES
from lewm_rl.envs.public_goods import (
    ObjectivePublicGoodsEnv,
    ObjectivePublicGoodsVectorEnv,
    PublicGoodsEnv,
    PublicGoodsVectorEnv,
)

GYM_ENV_IDS: tuple[str, ...] = (
    "SocialNegotiation-v0",
    "ObjectiveNegotiation-v0",
    "PublicGoods-v0",
    "ObjectivePublicGoods-v0",
    "SocialNegotiation-v1",
    "ObjectiveNegotiation-v1",
)
"""Every Gymnasium id this package registers, subjective first then its objective twin."""

V0_ENV_IDS: tuple[str, ...] = GYM_ENV_IDS[:4]
"""The v0 ids, which the committed v0 benchmark results were measured on."""

PETTINGZOO_MODULES: tuple[str, ...] = ("social_negotiation_v0", "public_goods_v0",
                                       "social_negotiation_v1")
"""PettingZoo environment modules of this package (each exports env, parallel_env, raw_env)."""

SUBJECTIVE_TWIN: dict[str, str] = {
    "ObjectiveNegotiation-v0": "SocialNegotiation-v0",
    "ObjectivePublicGoods-v0": "PublicGoods-v0",
    "ObjectiveNegotiation-v1": "SocialNegotiation-v1",
}
OBJECTIVE_TWIN: dict[str, str] = {v: k for k, v in SUBJECTIVE_TWIN.items()}

# No fixed registry time limit: every env ends by itself within a bound that follows its
# arguments (n_deals * round_limit steps, n_rounds rounds); a fixed limit truncated n_deals=8 at
# step 24. Pass gym.make(..., max_episode_steps=N) for a shorter limit of your own.
_NEGOTIATION_STEPS: int | None = None
_PUBLIC_GOODS_STEPS: int | None = None


def _register() -> None:
    specs = {
        "SocialNegotiation-v0": dict(
            entry_point="lewm_rl.envs.negotiation:SocialNegotiationEnv",
            vector_entry_point="lewm_rl.envs.negotiation:SocialNegotiationVectorEnv",
            max_episode_steps=_NEGOTIATION_STEPS,
        ),
        "ObjectiveNegotiation-v0": dict(
            entry_point="lewm_rl.envs.negotiation:ObjectiveNegotiationEnv",
            vector_entry_point="lewm_rl.envs.negotiation:ObjectiveNegotiationVectorEnv",
            max_episode_steps=_NEGOTIATION_STEPS,
        ),
        "PublicGoods-v0": dict(
            entry_point="lewm_rl.envs.public_goods:PublicGoodsEnv",
            vector_entry_point="lewm_rl.envs.public_goods:PublicGoodsVectorEnv",
            max_episode_steps=_PUBLIC_GOODS_STEPS,
        ),
        "ObjectivePublicGoods-v0": dict(
            entry_point="lewm_rl.envs.public_goods:ObjectivePublicGoodsEnv",
            vector_entry_point="lewm_rl.envs.public_goods:ObjectivePublicGoodsVectorEnv",
            max_episode_steps=_PUBLIC_GOODS_STEPS,
        ),
        # v1: the v0 negotiation under the rule changes V1_RULES (negotiation_core documents each
        # and why they were chosen); the objective twin is kappa = 0 of the same rules.
        "SocialNegotiation-v1": dict(
            entry_point="lewm_rl.envs.negotiation:SocialNegotiationEnv",
            vector_entry_point="lewm_rl.envs.negotiation:SocialNegotiationVectorEnv",
            max_episode_steps=_NEGOTIATION_STEPS,
            kwargs={"rules": V1_RULES, "emotion_influence": V1_EMOTION_INFLUENCE},
        ),
        "ObjectiveNegotiation-v1": dict(
            entry_point="lewm_rl.envs.negotiation:ObjectiveNegotiationEnv",
            vector_entry_point="lewm_rl.envs.negotiation:ObjectiveNegotiationVectorEnv",
            max_episode_steps=_NEGOTIATION_STEPS,
            kwargs={"rules": V1_RULES},
        ),
    }
    for env_id, spec in specs.items():
        if env_id not in registry:
            register(id=env_id, **spec)


_register()

# v0 is not deprecated by v1: both are frozen worlds, and the committed v0 results stand. Gymnasium
# warns on every make of an id with a newer version; silence that note for these ids only.
warnings.filterwarnings("ignore", message=r".*The environment (Social|Objective)Negotiation-v0 is "
                        r"out of date", category=DeprecationWarning)

__all__ = [
    "EMOTIONS",
    "GYM_ENV_IDS",
    "NUM_EMOTIONS",
    "OBJECTIVE_TWIN",
    "PETTINGZOO_MODULES",
    "POPULATIONS",
    "SUBJECTIVE_TWIN",
    "TONES",
    "V0_ENV_IDS",
    "ObjectiveNegotiationEnv",
    "ObjectiveNegotiationVectorEnv",
    "ObjectivePublicGoodsEnv",
    "ObjectivePublicGoodsVectorEnv",
    "PublicGoodsEnv",
    "PublicGoodsVectorEnv",
    "SocialNegotiationEnv",
    "SocialNegotiationVectorEnv",
]
