"""Emotional transition data: the sequence replay buffer and EWH-style collection."""

from lewm_rl.data.collect import collect_minari, collect_pettingzoo, fill_replay, minari_to_replay
from lewm_rl.data.replay import SequenceReplay, to_torch

__all__ = ["SequenceReplay", "collect_minari", "collect_pettingzoo", "fill_replay",
           "minari_to_replay", "to_torch"]
