"""lewm_rl: model-based reinforcement learning in social worlds.

Importing the package registers the Gymnasium environments (``SocialNegotiation-v0`` and the
others listed in ``lewm_rl.envs.GYM_ENV_IDS``). ``lewm_rl.load_run(run_dir)`` loads a trained run
(:mod:`lewm_rl.runs`).
"""

from lewm_rl import envs  # noqa: F401  (registers the Gymnasium ids)

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy, so that importing lewm_rl for its envs does not import torch.
    if name in ("load_run", "Run"):
        from lewm_rl import runs

        return getattr(runs, name)
    raise AttributeError(f"module 'lewm_rl' has no attribute {name!r}")
