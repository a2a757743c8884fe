"""PettingZoo view of the repeated public-goods game: every seat can be a learner.

Exports ``env`` (AEC, wrapped), ``raw_env`` (AEC) and ``parallel_env`` (the native parallel form),
as PettingZoo's own environments do::

    from lewm_rl.envs import public_goods_v0
    env = public_goods_v0.parallel_env(background=(2, 3))  # two learners, two characters

The dynamics are :class:`lewm_rl.envs.public_goods_core.PublicGoodsCore` (the same code as the
Gymnasium envs); the rules are documented on :class:`lewm_rl.envs.public_goods.PublicGoodsEnv`.
Learners move simultaneously each round: the contribution and the punishment target they name
(for what they saw last round); background characters give on their current emotion and punish
within the round, after appraising the contributions, as in the Gymnasium env. Learner seats have
a persona and an affect too, appraised by the same rules (they bring no incidental moods), so the
others see their cues.

Each learner's reward is its payoff normalised to [0, 1] (as in the Gymnasium env) with the
inequity-aversion term of Fehr & Schmidt (1999) over the other seats,
``r_i - alpha mean_j max(r_j - r_i, 0) - beta mean_j max(r_i - r_j, 0)`` (``r``: normalised
payoffs; default ``alpha = 0.5``, ``beta = 0.25``, the median player of Fehr & Schmidt's
calibration; Hughes et al. 2018 use the same term in multi-agent RL): with several learners,
feelings about fairness shape what learners do as well as what characters do. Pass
``inequity_aversion=(0, 0)`` for the plain payoff. A learner's reward then lies in
``[-alpha, 1]``.

Each agent's ``info`` carries the labels of the other seats, in seat order: ``emotion``
``(n_players - 1,)``, ``emotion_annotated``, ``affect`` ``(n_players - 1, 3)``, plus its
``payoff`` in tokens. Labels are training targets, never inputs.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from gymnasium import spaces

from lewm_rl.envs import affect as A
from lewm_rl.envs import public_goods_core as C
from lewm_rl.envs._checks import check_influence, check_render_mode, named_kwargs
from lewm_rl.envs._parallel import CoreParallelEnv, aec_constructors
from lewm_rl.envs._single import first_row
from lewm_rl.envs.public_goods import public_goods_observation_space, render_group, transcript_line


class PublicGoodsParallelEnv(CoreParallelEnv):
    """The repeated public-goods game with punishment as a PettingZoo ``ParallelEnv``.

    Agents are named ``player_<seat>``; seats listed in ``background`` are emotion-driven
    characters and not agents.

    Args:
        background: seat indices filled by emotion-driven characters (at least one seat must stay
            a learner).
        subjective: ``False`` gives the objective twin (characters decide on what they observed).
        emotion_influence: ``kappa >= 0`` (default 1 subjective, 0 objective; see
            ``PublicGoodsCore``).
        population: persona population (``default``, ``volatile``, ``stoic``).
        annotation_noise: probability that an annotated label is wrong.
        n_players: group size (default 4).
        n_rounds: rounds per episode (default 20).
        mpcr: marginal per-capita return; default ``1.6 / n_players``.
        max_cycles: truncate after this many rounds (default: ``n_rounds``).
        inequity_aversion: ``(alpha, beta)`` of the learners' affective reward term.
        render_mode: ``"ansi"`` or ``"rgb_array"`` (seen from the first learner's seat).
    """

    metadata = {
        "name": "public_goods_v0",
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
        n_players: int = 4,
        n_rounds: int = 20,
        mpcr: float | None = None,
        max_cycles: int | None = None,
        inequity_aversion: tuple[float, float] = (0.5, 0.25),
        emotion_influence: float | None = None,
        render_mode: str | None = None,
    ) -> None:
        background = tuple(int(b) for b in background)
        if (any(not 0 <= b < n_players for b in background)
                or len(set(background)) < len(background) or len(background) >= n_players):
            raise ValueError(
                f"background must name distinct seats in [0, {n_players - 1}] and leave at least "
                f"one learner, got {background}")
        learners = tuple(s not in background for s in range(n_players))
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self.core = C.PublicGoodsCore(
            1, subjective=subjective, population=population, annotation_noise=annotation_noise,
            learners=learners, n_rounds=n_rounds, mpcr=mpcr, inequity_aversion=inequity_aversion,
            emotion_influence=check_influence(type(self), subjective, emotion_influence),
        )
        self.n_players = n_players
        self.max_cycles = max_cycles if max_cycles is not None else n_rounds
        self._seat = {f"player_{s}": s for s in range(n_players) if learners[s]}
        self.possible_agents = list(self._seat)
        self.agents: list[str] = []
        self._rng: np.random.Generator | None = None
        self._actions = np.zeros((1, n_players), dtype=np.int64)
        self._transcript: list[str] = []
        self.num_actions = C.num_actions(n_players)
        self._view = learners.index(True)

    @functools.cache  # noqa: B019  (PettingZoo's idiom: one space per agent)
    def observation_space(self, agent: str) -> spaces.Dict:
        return public_goods_observation_space(self.n_players)

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.Discrete:
        return spaces.Discrete(C.num_actions(self.n_players))

    @functools.cache  # noqa: B019
    def emotion_space(self, agent: str) -> spaces.MultiDiscrete:
        """Label space of what ``agent``'s info reports: the other seats' emotions."""
        return spaces.MultiDiscrete([A.NUM_EMOTIONS] * (self.n_players - 1))

    @property
    def emotion_names(self) -> tuple[str, ...]:
        return A.EMOTIONS

    @property
    def action_structure(self) -> tuple[tuple[int, ...], ...]:
        """The flat actions as kinds of factors (``lewm_rl.distributions.ActionStructure``)."""
        return C.action_structure(self.n_players)

    def _obs(self, seat: int) -> dict[str, np.ndarray]:
        return first_row(self.core.observation(seat))

    def _info(self, seat: int) -> dict[str, Any]:
        return first_row(self.core.info(seat))

    def _transcript_step(self, before: None) -> list[str]:
        return [transcript_line(self.core, 0, viewer=self._view)]

    def _frame(self) -> np.ndarray:
        return render_group(self.core, 0, viewer=self._view)


def parallel_env(**kwargs) -> PublicGoodsParallelEnv:
    """The native parallel environment (see :class:`PublicGoodsParallelEnv`)."""
    return PublicGoodsParallelEnv(**kwargs)


raw_env, env = aec_constructors(parallel_env)
