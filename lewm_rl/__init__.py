"""lewm_rl: model-based reinforcement learning in social worlds.

Importing the package registers the Gymnasium environments (``SocialNegotiation-v0`` and the
others listed in ``lewm_rl.envs.GYM_ENV_IDS``).
"""

from lewm_rl import envs  # noqa: F401  (registers the Gymnasium ids)

__version__ = "0.1.0"
