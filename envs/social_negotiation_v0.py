"""PettingZoo view of the social negotiation: either seat can be a learner.

Exports ``env`` (AEC, wrapped), ``raw_env`` (AEC) and ``parallel_env`` (the native parallel form),
as PettingZoo's own environments do::

    from lewm_rl.envs import social_negotiation_v0
    env = social_negotiation_v0.parallel_env(background=(1,))  # one learner, seat 1 a character

The dynamics are :class:`lewm_rl.envs.negotiation_core.NegotiationCore` (the same code as the
Gymnasium envs); the rules are documented on :class:`lewm_rl.envs.negotiation.SocialNegotiationEnv`.
With two learners, both move simultaneously each round against the state they observed (an
``accept`` takes the other's standing offer as observed, seat 0's move settling a tie); background
characters answer within the round, after the learners. Each learner's reward is its utility of the
agreed split with the inequity-aversion term of Fehr & Schmidt (1999),
``u_i - alpha max(u_j - u_i, 0) - beta max(u_i - u_j, 0)``: with several learners, feelings about
fairness shape what learners do as well as what characters do.

Each agent's ``info`` carries the labels of the other seat: ``emotion``, ``emotion_annotated``,
``affect``, plus ``partner_act`` and ``deal_outcome``. Labels are training targets, never inputs.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from gymnasium import spaces

from lewm_rl.envs import affect as A
from lewm_rl.envs import negotiation_core as C
from lewm_rl.envs._checks import check_influence, check_render_mode, named_kwargs
from lewm_rl.envs._parallel import CoreParallelEnv, aec_constructors
from lewm_rl.envs._single import first_row
from lewm_rl.envs.negotiation import (
    deal_header,
    negotiation_observation_space,
    render_table,
    transcript_step,
)

SEATS = ("negotiator_0", "negotiator_1")


class SocialNegotiationParallelEnv(CoreParallelEnv):
    """Two-seat social negotiation as a PettingZoo ``ParallelEnv``.

    Args:
        background: seat indices filled by emotion-driven characters (at most one of the two).
        subjective: ``False`` gives the objective twin (characters decide on utility alone).
        population: persona population (``default``, ``volatile``, ``stoic``).
        annotation_noise: probability that an annotated label is wrong.
        n_deals, round_limit: episode structure.
        max_cycles: truncate after this many rounds (default: the natural maximum, 24).
        inequity_aversion: ``(alpha, beta)`` of the learners' affective reward term.
        emotion_influence: ``kappa >= 0`` (default 1 subjective, 0 objective; see
            ``NegotiationCore``).
        rules: candidate rule changes (``negotiation_core.RULE_CHANGES``); ``()`` is v0.
        render_mode: ``"ansi"`` or ``"rgb_array"`` (from seat 0's side of the table).
    """

    metadata = {
        "name": "social_negotiation_v0",
        "render_modes": ["ansi", "rgb_array"],
        "is_parallelizable": True,
        "render_fps": 2,
    }

    @named_kwargs
    def __init__(
        self,
        *,
        background: tuple[int, ...] = (),
        subjective: bool = True,
        population: str = "default",
        annotation_noise: float = 0.1,
        n_deals: int = 4,
        round_limit: int = 6,
        max_cycles: int | None = None,
        inequity_aversion: tuple[float, float] = (0.5, 0.25),
        emotion_influence: float | None = None,
        rules: tuple[str, ...] = (),
        render_mode: str | None = None,
    ) -> None:
        background = tuple(int(b) for b in background)
        if any(b not in (0, 1) for b in background) or len(set(background)) >= 2:
            raise ValueError(
                f"background must name at most one of the seats 0 and 1, got {background}")
        learners = tuple(s not in background for s in range(2))
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self.core = C.NegotiationCore(
            1, subjective=subjective, population=population, annotation_noise=annotation_noise,
            learners=learners, n_deals=n_deals, round_limit=round_limit,
            inequity_aversion=inequity_aversion,
            emotion_influence=check_influence(type(self), subjective, emotion_influence),
            rules=rules,
        )
        self.max_cycles = max_cycles if max_cycles is not None else n_deals * round_limit
        self._seat = {name: s for s, name in enumerate(SEATS) if learners[s]}
        self.possible_agents = list(self._seat)
        self.agents: list[str] = []
        self._rng: np.random.Generator | None = None
        self._actions = np.zeros((1, 2), dtype=np.int64)
        self._transcript: list[str] = []
        self.num_actions = C.NUM_ACTIONS
        self._view = 0 if learners[0] else 1

    @functools.cache  # noqa: B019  (PettingZoo's idiom: one space per agent)
    def observation_space(self, agent: str) -> spaces.Dict:
        return negotiation_observation_space()

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.Discrete:
        return spaces.Discrete(C.NUM_ACTIONS)

    def emotion_space(self, agent: str) -> spaces.Discrete:
        """Label space of what ``agent``'s info reports: the other seat's emotion."""
        return spaces.Discrete(A.NUM_EMOTIONS)

    @property
    def emotion_names(self) -> tuple[str, ...]:
        return A.EMOTIONS

    @property
    def action_structure(self) -> tuple[tuple[int, ...], ...]:
        """The flat actions as kinds of factors (``lewm_rl.distributions.ActionStructure``)."""
        return C.ACTION_STRUCTURE

    @property
    def action_features(self) -> np.ndarray:
        """``(num_actions, d)`` every flat action in numbers (``C.ACTION_FEATURES``)."""
        return C.ACTION_FEATURES

    def _obs(self, seat: int) -> dict[str, Any]:
        return first_row(self.core.observation(seat))

    def _info(self, seat: int) -> dict[str, Any]:
        return first_row(self.core.info(seat))

    def _transcript_start(self) -> list[str]:
        return ["new episode", deal_header(self.core, 0, learner=self._view)]

    def _before_step(self) -> tuple[int, int]:
        return int(self.core.deal[0]), int(self.core.round[0])

    def _transcript_step(self, before: tuple[int, int]) -> list[str]:
        return transcript_step(self.core, 0, self._view, before)

    def _frame(self) -> np.ndarray:
        return render_table(self.core, 0, learner=self._view)


def parallel_env(**kwargs) -> SocialNegotiationParallelEnv:
    """The native parallel environment (see :class:`SocialNegotiationParallelEnv`)."""
    return SocialNegotiationParallelEnv(**kwargs)


raw_env, env = aec_constructors(parallel_env)
