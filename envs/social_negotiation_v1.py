"""PettingZoo view of the social negotiation under the v1 rules (``SocialNegotiation-v1``).

The same environment as :mod:`lewm_rl.envs.social_negotiation_v0` (``env``, ``raw_env``,
``parallel_env``, the same arguments) with ``rules="v1"`` and, for the subjective world, the
emotional influence of ``SocialNegotiation-v1`` (``negotiation_core.EMOTION_INFLUENCE_V1``); the
v1 rules are documented in ``SocialNegotiationEnv``'s Version History::

    from lewm_rl.envs import social_negotiation_v1
    env = social_negotiation_v1.parallel_env(background=(1,))
"""

from __future__ import annotations

from lewm_rl.envs import negotiation_core as C
from lewm_rl.envs._parallel import aec_constructors
from lewm_rl.envs.social_negotiation_v0 import SocialNegotiationParallelEnv


class SocialNegotiationV1ParallelEnv(SocialNegotiationParallelEnv):
    """:class:`SocialNegotiationParallelEnv` with the v1 rules (see the module docstring)."""

    metadata = {**SocialNegotiationParallelEnv.metadata, "name": "social_negotiation_v1"}


def parallel_env(**kwargs) -> SocialNegotiationV1ParallelEnv:
    """The native parallel environment with the v1 rules (``rules`` is fixed by this module)."""
    if "rules" in kwargs:
        raise TypeError("social_negotiation_v1 fixes rules='v1'; use social_negotiation_v0 "
                        "for the v0 rules")
    if kwargs.get("subjective", True):
        kwargs.setdefault("emotion_influence", C.EMOTION_INFLUENCE_V1)
    return SocialNegotiationV1ParallelEnv(rules="v1", **kwargs)


raw_env, env = aec_constructors(parallel_env)
