"""The world model's belief as an SB3 observation: a Gymnasium wrapper and a features extractor.

The *belief* is ``world_model.features(state)`` of the posterior state: the deterministic history
state ``h``, the stochastic state ``z`` and, for every model with an emotion pathway, the predicted
partner-emotion distribution and its entropy. It is computed from observations and the learner's
own actions only; ``info`` (where the emotion labels live) is passed through untouched and never
read on the way to an action.

Where the recurrent state lives (the design choice):

* :class:`LEWMBeliefWrapper` runs the posterior online, one ``observe_step`` per env step, and
  resets it on ``reset``. The recurrence lives on the env side, which is what a feed-forward SB3
  policy (``MlpPolicy``) needs: every algorithm that takes a ``Box`` observation works unchanged
  (PPO, A2C, DQN). Limits: the world model is not trained by the policy's loss (it is fitted on
  its own objective, e.g. by :class:`~lewm_rl.agents.sb3.callbacks.RealDataRefitCallback`); if it
  is refitted during training, beliefs already stored by an off-policy algorithm (DQN's replay)
  were computed by older weights.
* :class:`LEWMFeaturesExtractor` computes a belief *inside* the policy. Fed the wrapper's ``Box``
  belief it passes it through (the honest, full-history design). Fed a raw ``Dict`` observation it
  can only encode the current observation and carries nothing between steps: its belief is the
  posterior of an episode's first step, ``q(z, E | h_0, S_t)``, whatever ``t`` is. That reads the
  emotion off the current cues alone (a single-step recogniser) and forgets the history
  (accumulated anger, inferred values), and mid-episode observations are out of the distribution
  the posterior was trained on at ``h_0``. It is deterministic (posterior probabilities, not a
  sample of ``z``) and holds a frozen copy of the world model (``trainable=True`` lets the RL loss
  fine-tune the copy). SB3 has no recurrent PPO (sb3-contrib's ``RecurrentPPO`` is not a
  dependency), so no extractor can carry ``h`` across steps.

SAC and TD3 need ``Box`` actions; the environments of this project have ``Discrete`` actions, so
only PPO, A2C and DQN apply.
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from lewm_rl.data.replay import SequenceReplay
from lewm_rl.world_models.codec import to_tensor_obs
from lewm_rl.world_models.model import EmotionalWorldModel, State

LABEL_KEYS = ("emotion", "emotion_annotated")


def belief_space(world_model: EmotionalWorldModel) -> spaces.Box:
    """The belief's observation space: ``Box(-inf, inf, (feature_dim,), float32)``."""
    return spaces.Box(-np.inf, np.inf, shape=(world_model.feature_dim,), dtype=np.float32)


class BeliefTracker:
    """The posterior of ``N`` parallel episodes, advanced one step at a time.

    Args:
        world_model: any world-model configuration.
        num_envs: ``N``.
    """

    def __init__(self, world_model: EmotionalWorldModel, num_envs: int = 1) -> None:
        self.world_model = world_model
        self.num_envs = num_envs
        self.generator = torch.Generator(device=world_model.device)
        self.generator.seed()
        self.state: State = world_model.initial(num_envs)
        self.prev_action = torch.zeros(num_envs, dtype=torch.long, device=world_model.device)

    def seed(self, seed: int) -> None:
        """Seeds the sampling of ``z``."""
        self.generator.manual_seed(int(seed))

    @torch.no_grad()
    def observe(self, obs: dict[str, np.ndarray], is_first: np.ndarray,
                prev_action: np.ndarray | None = None) -> np.ndarray:
        """Advances the posterior by one step.

        Args:
            obs: observations batched ``(N, ...)`` per key.
            is_first: ``(N,)`` bool, the observation starts an episode (the state is reset there).
            prev_action: ``(N,)`` action taken at the previous step (ignored where ``is_first``).

        Returns:
            ``(N, F)`` float32 beliefs.
        """
        wm = self.world_model
        assert len(is_first) == self.num_envs, f"is_first must be ({self.num_envs},)"
        if prev_action is not None:
            self.prev_action = torch.as_tensor(np.asarray(prev_action), dtype=torch.long,
                                               device=wm.device).reshape(self.num_envs)
        embed = wm.encoder(to_tensor_obs(obs, wm.mods, wm.device))  # (N, embed)
        first = torch.as_tensor(np.asarray(is_first, dtype=bool), device=wm.device)
        self.state, _ = wm.observe_step(self.state, self.prev_action, embed, first,
                                        generator=self.generator)
        return wm.features(self.state).cpu().numpy().astype(np.float32)


class LEWMBeliefWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Replaces an env's observation by the world model's belief (see the module docstring).

    Args:
        env: a single env whose observation space the world model was built for.
        world_model: any world-model configuration (not owned: it may be refitted meanwhile).
        record: keep each finished episode's rows (raw observations, actions, rewards, labels) for
            :meth:`pop_episodes`, to refit the world model on what the policy experienced.

    Attributes:
        last_obs: the raw observation behind the current belief.

    The sampling of ``z`` is seeded by ``reset(seed=...)``: two wrapped envs reset with the same
    seed and stepped with the same actions give the same beliefs. Rewards, termination and ``info``
    are the wrapped env's, untouched.
    """

    def __init__(self, env: gym.Env, world_model: EmotionalWorldModel, record: bool = False
                 ) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, world_model=world_model, record=record)
        gym.Wrapper.__init__(self, env)
        wm_keys = {m.key for m in world_model.mods}
        space = env.observation_space
        keys = set(space.spaces) if isinstance(space, spaces.Dict) else {"obs"}
        if keys != wm_keys:
            raise ValueError(f"the world model was built for observation keys {sorted(wm_keys)}, "
                             f"the env has {sorted(keys)}")
        self.world_model = world_model
        self.observation_space = belief_space(world_model)
        self.record = record
        self.tracker = BeliefTracker(world_model, 1)
        self.last_obs: dict[str, np.ndarray] | None = None
        self._rows: list[dict[str, Any]] = []
        self._episodes: list[list[dict[str, Any]]] = []

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        if seed is not None:
            self.tracker.seed(seed)
        self._rows = []
        self._record(obs, 0.0, True, False, info)
        return self._belief(obs, first=True), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self._rows:
            self._rows[-1]["action"] = int(action)
        self._record(obs, reward, False, terminated, info)
        if (terminated or truncated) and self.record and self._rows:
            self._episodes.append(self._rows)
            self._rows = []
        return self._belief(obs, first=False, action=action), reward, terminated, truncated, info

    def pop_episodes(self) -> list[list[dict[str, Any]]]:
        """The rows of the episodes finished since the last call (``record=True`` only).

        Each row follows :class:`~lewm_rl.data.SequenceReplay`'s convention: the observation
        ``S_t``, the reward received on arriving at it, ``is_first``, ``is_terminal``, the labels
        of ``S_t`` (training targets of the world model) and the action taken at it (0 on the last
        row).
        """
        out, self._episodes = self._episodes, []
        return out

    def _belief(self, obs, first: bool, action=None) -> np.ndarray:
        self.last_obs = obs
        batched = {k: np.asarray(v)[None] for k, v in obs.items()} if isinstance(obs, dict) \
            else {"obs": np.asarray(obs)[None]}
        prev = None if action is None else np.array([int(action)])
        return self.tracker.observe(batched, np.array([first]), prev)[0]

    def _record(self, obs, reward: float, is_first: bool, is_terminal: bool,
                info: dict[str, Any]) -> None:
        if not self.record:
            return
        # Copies: an env may reuse its observation buffers.
        row = ({k: np.array(v) for k, v in obs.items()} if isinstance(obs, dict)
               else {"obs": np.array(obs)})
        row.update(action=0, reward=float(reward), is_first=is_first,
                   is_terminal=bool(is_terminal))
        for k in LABEL_KEYS:  # training targets of the world model; never reach the belief
            if k in info:
                row[k] = info[k]
        self._rows.append(row)


def add_episodes(replay: SequenceReplay, episodes: list[list[dict[str, Any]]]) -> int:
    """Appends recorded episodes row by row to a one-stream replay; returns the rows added."""
    if replay.num_streams != 1:
        raise ValueError(f"episodes go to a one-stream replay, this one has {replay.num_streams}")
    n = 0
    for rows in episodes:
        for row in rows:
            replay.add({k: np.asarray(v)[None] for k, v in row.items()})
            n += 1
    return n


class LEWMFeaturesExtractor(BaseFeaturesExtractor):
    """A world model's belief as the features of any SB3 policy (see the module docstring).

    Args:
        observation_space: either the belief ``Box`` of :class:`LEWMBeliefWrapper` (passed
            through), or the raw ``Dict`` observation space the world model was built for (a
            one-step belief from the current observation alone).
        world_model: required for a ``Dict`` space; for a ``Box`` it only checks the size.
        trainable: let the policy's loss fine-tune the extractor's copy of the world model.

    Example::

        PPO("MlpPolicy", LEWMBeliefWrapper(env, wm),
            policy_kwargs=dict(features_extractor_class=LEWMFeaturesExtractor))
        PPO("MultiInputPolicy", env, policy_kwargs=dict(
            features_extractor_class=LEWMFeaturesExtractor,
            features_extractor_kwargs=dict(world_model=wm)))
    """

    def __init__(self, observation_space: spaces.Space,
                 world_model: EmotionalWorldModel | None = None, trainable: bool = False) -> None:
        if isinstance(observation_space, spaces.Box):
            dim = int(np.prod(observation_space.shape))
            if world_model is not None and dim != world_model.feature_dim:
                raise ValueError(f"a belief Box of size {dim} does not match the world model's "
                                 f"feature_dim {world_model.feature_dim}")
            super().__init__(observation_space, dim)
            self.world_model = None
            return
        if not isinstance(observation_space, spaces.Dict):
            raise ValueError(f"LEWMFeaturesExtractor reads a belief Box or a raw Dict observation, "
                             f"got {observation_space}")
        if world_model is None:
            raise ValueError("a raw Dict observation needs features_extractor_kwargs="
                             "dict(world_model=...)")
        if set(observation_space.spaces) != {m.key for m in world_model.mods}:
            raise ValueError(f"the world model was built for {[m.key for m in world_model.mods]}, "
                             f"the observation space has {list(observation_space.spaces)}")
        super().__init__(observation_space, world_model.feature_dim)
        self.world_model = copy.deepcopy(world_model).requires_grad_(trainable)

    def apply(self, fn) -> LEWMFeaturesExtractor:
        """``nn.Module.apply`` on everything but the world model: PPO's and A2C's orthogonal
        initialisation (``ortho_init``) runs ``apply`` on the features extractor, and must not
        overwrite the trained world model."""
        for name, module in self.named_children():
            if name != "world_model":
                module.apply(fn)
        fn(self)
        return self

    def forward(self, observations: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
        """``(B, F)`` beliefs from ``(B, F)`` beliefs or SB3-preprocessed Dict observations."""
        if self.world_model is None:
            return observations.flatten(1)
        wm = self.world_model
        obs = {}
        for m in wm.mods:
            x = observations[m.key]
            B = len(x)
            if m.kind == "box":
                obs[m.key] = x.reshape(B, *m.shape)
            elif isinstance(self._observation_space[m.key], spaces.MultiBinary):
                obs[m.key] = x.reshape(B, *m.shape).long()
            else:  # SB3 one-hot encodes Discrete / MultiDiscrete: back to class indices
                obs[m.key] = x.reshape(B, m.size, m.classes).argmax(-1).reshape(B, *m.shape)
        embed = wm.encoder(obs)  # (B, embed)
        B = len(embed)
        first = torch.ones(B, dtype=torch.bool, device=embed.device)
        no_action = torch.zeros(B, dtype=torch.long, device=embed.device)
        state, post = wm.observe_step(wm.initial(B), no_action, embed, first)
        # Posterior probabilities instead of a sampled z: deterministic features.
        return wm.features(State(state.deter, post["post"], state.emotion))
