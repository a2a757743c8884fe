"""PettingZoo view of ``SocialNegotiation-v1``: the v0 negotiation under the frozen v1 rules.

The same environment as :mod:`lewm_rl.envs.social_negotiation_v0` (its docstring documents seats,
rewards and infos) with ``rules=negotiation_core.V1_RULES`` and, for the subjective world,
``emotion_influence=V1_EMOTION_INFLUENCE``; ``subjective=False`` gives the objective twin of the
same rules (``ObjectiveNegotiation-v1``)::

    from lewm_rl.envs import social_negotiation_v1
    env = social_negotiation_v1.parallel_env(background=(1,))  # one learner, seat 1 a character
"""

from __future__ import annotations

from lewm_rl.envs import negotiation_core as C
from lewm_rl.envs._parallel import aec_constructors
from lewm_rl.envs.social_negotiation_v0 import SEATS, SocialNegotiationParallelEnv


class SocialNegotiationV1ParallelEnv(SocialNegotiationParallelEnv):
    """:class:`SocialNegotiationParallelEnv` whose defaults are the v1 rules and influence."""

    metadata = {**SocialNegotiationParallelEnv.metadata, "name": "social_negotiation_v1"}

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("rules", C.V1_RULES)
        if kwargs.get("subjective", True):
            kwargs.setdefault("emotion_influence", C.V1_EMOTION_INFLUENCE)
        super().__init__(**kwargs)


def parallel_env(**kwargs) -> SocialNegotiationV1ParallelEnv:
    """The native parallel environment (see :class:`SocialNegotiationV1ParallelEnv`)."""
    return SocialNegotiationV1ParallelEnv(**kwargs)


raw_env, env = aec_constructors(parallel_env)

__all__ = ["SEATS", "SocialNegotiationV1ParallelEnv", "env", "parallel_env", "raw_env"]
