"""Agents: scripted reference policies, the Dreamer-style actor-critic and the SB3 bridges."""
