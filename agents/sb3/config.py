"""Configuration of the Stable-Baselines3 bridges (nested on the command line as ``--sb3.*``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class SB3Config:
    """PPO and imagination hyperparameters of the SB3 agents (``ppo``, ``ppo-belief``,
    ``ppo-imagination``). Env count, world-model batch, ``train_ratio``, ``prefill``, evaluation and
    logging come from the training config, as for Dreamer."""

    n_steps: int = 128
    """PPO rollout length per env (real for ppo and ppo-belief, imagined for ppo-imagination)."""
    batch_size: int = 256
    """PPO minibatch size."""
    n_epochs: int = 10
    """PPO epochs over each rollout."""
    learning_rate: float = 3e-4
    """PPO Adam learning rate."""
    gamma: float = 0.99
    """Discount."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_range: float = 0.2
    """PPO clipping range."""
    ent_coef: float = 0.01
    """Entropy bonus (98 discrete actions: some is needed to keep exploring)."""
    net_arch: tuple[int, ...] = (128, 128)
    """Hidden layers of the policy and value MLPs (separate networks)."""
    lstm_hidden: int = 128
    """recurrent-ppo: size of the LSTM (sb3-contrib ``RecurrentPPO``'s ``lstm_hidden_size``)."""
    imagination_envs: int = 64
    """ppo-imagination: imagined rollouts stepped in parallel (the VecEnv's ``n_envs``)."""
    horizon: int = 16
    """ppo-imagination: imagined episodes are truncated after this many steps (PPO bootstraps from
    the value of the last belief, as for any time limit)."""
    imagination_ratio: float = 64.0
    """ppo-imagination: imagined env steps per real env step; the refit callback collects
    ``imagination_envs * n_steps / imagination_ratio`` real steps after every PPO rollout."""
    termination: Literal["threshold", "sample"] = "threshold"
    """ppo-imagination: an imagined episode terminates where the continuation head predicts
    ``cont < 0.5`` (threshold) or with probability ``1 - cont`` (sample)."""
    start_sequences: int = 64
    """ppo-imagination: replayed sequences whose posterior states form the pool of start states
    (refreshed after every world-model refit)."""
    burn_in: int = 8
    """ppo-imagination: the first rows of each replayed sequence only warm up the posterior; they
    never start an imagined rollout (their history is cut off)."""
    pretrain_updates: int = 200
    """ppo-belief and ppo-imagination: world-model updates on the prefill data before PPO starts."""
    refit_belief: bool = True
    """ppo-belief: keep fitting the world model on the real episodes PPO plays (otherwise it is
    frozen after pretraining)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "net_arch", tuple(int(w) for w in self.net_arch))  # from JSON
        for name in ("n_steps", "batch_size", "n_epochs", "imagination_envs", "horizon",
                     "start_sequences", "lstm_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"--sb3.{name.replace('_', '-')} must be >= 1, got "
                                 f"{getattr(self, name)}")
        for name in ("learning_rate", "imagination_ratio"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--sb3.{name.replace('_', '-')} must be > 0, got "
                                 f"{getattr(self, name)}")
        if self.burn_in < 0 or self.pretrain_updates < 0:
            raise ValueError("--sb3.burn-in and --sb3.pretrain-updates must be >= 0")
        if not 0 < self.gamma <= 1 or not 0 <= self.gae_lambda <= 1:
            raise ValueError(f"need 0 < gamma <= 1 and 0 <= gae_lambda <= 1, got {self.gamma}, "
                             f"{self.gae_lambda}")
