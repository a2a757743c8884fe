"""Dreamer-style actor-critic trained in the imagination of any world model."""

from lewm_rl.agents.dreamer.agent import DreamerAgent, DreamerConfig, lambda_returns

__all__ = ["DreamerAgent", "DreamerConfig", "lambda_returns"]
