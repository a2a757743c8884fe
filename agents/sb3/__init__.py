"""Stable-Baselines3 bridges: any SB3 algorithm on a world model's belief, or in its imagination.

This package is the only place in the project that imports Stable-Baselines3.

* :class:`LEWMBeliefWrapper` / :class:`LEWMFeaturesExtractor`: the world model's belief (``h``,
  ``z`` and the predicted partner-emotion distribution) as what an SB3 policy reads.
* :class:`ImaginationVecEnv`: an SB3 ``VecEnv`` stepped by the world model from replayed start
  states; :class:`RealDataRefitCallback` refits the model on real data while SB3 trains (Dyna).
* :class:`GymnasiumVecEnv`: a batched Gymnasium vector env as an SB3 ``VecEnv``.
* :func:`run`: the ``ppo``, ``recurrent-ppo``, ``ppo-belief`` and ``ppo-imagination`` agents of
  the training CLI.

Example::

    from stable_baselines3 import PPO
    model = PPO("MlpPolicy", LEWMBeliefWrapper(gym.make("SocialNegotiation-v0"), wm))
    model = PPO("MlpPolicy", ImaginationVecEnv(wm, replay, n_envs=16, horizon=16))
"""

from lewm_rl.agents.sb3.belief import (
    BeliefTracker,
    LEWMBeliefWrapper,
    LEWMFeaturesExtractor,
    add_episodes,
    belief_space,
)
from lewm_rl.agents.sb3.callbacks import (
    RealCollector,
    RealDataRefitCallback,
    RealEvalCallback,
    SaveAndStop,
    StopAtRealSteps,
    TrainReturnCallback,
    evaluate,
)
from lewm_rl.agents.sb3.config import SB3Config
from lewm_rl.agents.sb3.imagination import ImaginationVecEnv
from lewm_rl.agents.sb3.runner import AGENTS, SB3_WORLD_MODELS, run
from lewm_rl.agents.sb3.vec_env import GymnasiumVecEnv

__all__ = [
    "AGENTS",
    "SB3_WORLD_MODELS",
    "BeliefTracker",
    "GymnasiumVecEnv",
    "ImaginationVecEnv",
    "LEWMBeliefWrapper",
    "LEWMFeaturesExtractor",
    "RealCollector",
    "RealDataRefitCallback",
    "RealEvalCallback",
    "SB3Config",
    "SaveAndStop",
    "StopAtRealSteps",
    "TrainReturnCallback",
    "add_episodes",
    "belief_space",
    "evaluate",
    "run",
]
