"""Golden trajectories of the environments: every observable output, frozen.

``tests/data/negotiation_golden.npz`` holds trajectories recorded from the v0 implementation, and
``tests/data/negotiation_v1_golden.npz`` from v1 (the v0 rules under ``V1_RULES``): every
step's observation (all keys), reward, termination flags and labels (``emotion``,
``emotion_annotated``, ``affect``, ``partner_act``, ``deal_outcome``), for

* the Gymnasium env through ``gym.make`` (both twins, every population, a fixed biased-random
  action sequence over two episodes per seed, and one episode each of the scripted greedy and
  oracle policies);
* the batched vector env through ``gym.make_vec`` at 16 envs, across autoresets (random actions for
  every population, greedy and oracle on the default one);
* the PettingZoo ``parallel_env()`` with two learners.

(v1 records the same streams for its twins on the default population.) ``tests/data/
public_goods_golden.npz`` records the same streams of ``PublicGoods-v0``, its twin and
``public_goods_v0`` (uniform random actions; the default population, as v1).

The test replays the recorded actions (so the scripted policies may change freely) and compares
every output exactly (integers) or to ``1e-6`` (floats). Any
change of rules, constants, random-draw order or output assembly shows up here. Performance work on
``NegotiationCore`` must keep it green; a deliberate rule change is a new version (``-v2``) and
records a new file; a frozen version's file is never re-recorded::

    .venv/bin/python tests/test_golden.py --write v2
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from lewm_rl.agents.baselines import make_policy
from lewm_rl.envs import negotiation_core as C
from lewm_rl.envs import public_goods_v0, social_negotiation_v0, social_negotiation_v1

DATA = Path(__file__).parent / "data"
VERSIONS = {
    # version: (golden file, Gymnasium twins, PettingZoo module, populations)
    "v0": (DATA / "negotiation_golden.npz", ("SocialNegotiation-v0", "ObjectiveNegotiation-v0"),
           social_negotiation_v0, ("default", "volatile", "stoic")),
    "v1": (DATA / "negotiation_v1_golden.npz",
           ("SocialNegotiation-v1", "ObjectiveNegotiation-v1"), social_negotiation_v1,
           ("default",)),
    "public-goods-v0": (DATA / "public_goods_golden.npz",
                        ("PublicGoods-v0", "ObjectivePublicGoods-v0"), public_goods_v0,
                        ("default",)),
}
SINGLE_SEEDS = (0, 1)
VECTOR_ENVS = 16
VECTOR_STEPS = 60
NEGOTIATION_KEYS = (("task", "partner_act", "expression", "tone"),
                    ("emotion", "emotion_annotated", "affect", "partner_act", "deal_outcome"))
PUBLIC_GOODS_KEYS = (("task", "expression", "tone"),
                     ("emotion", "emotion_annotated", "affect", "payoff"))


def keys_of(env: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(observation keys, info keys)`` recorded for an env id or PettingZoo module name."""
    return PUBLIC_GOODS_KEYS if "ublic" in env else NEGOTIATION_KEYS


def biased_actions(rng: np.random.Generator, size: int | tuple[int, ...],
                   uniform_over: int | None = None) -> np.ndarray:
    """Negotiation: random actions that accept (6 %) and walk away (1 %) often enough to close
    deals. Public goods: uniform over its ``uniform_over`` actions."""
    if uniform_over is not None:
        return rng.integers(0, uniform_over, size)
    u = rng.random(size)
    offers = rng.integers(0, C.NUM_OFFER_ACTIONS, size)
    return np.where(u < 0.06, C.ACCEPT, np.where(u < 0.07, C.WALK_AWAY, offers))


class Recorder:
    """Collects one row per reset or step; ``arrays()`` stacks them into ``(N, ...)`` arrays."""

    def __init__(self, env: str) -> None:
        self.rows: dict[str, list] = {}
        self.obs_keys, self.info_keys = keys_of(env)

    def add(self, action, obs: dict, reward, terminated, truncated, info: dict) -> None:
        row = {"action": action, "reward": reward, "terminated": terminated,
               "truncated": truncated}
        row.update({f"obs_{k}": obs[k] for k in self.obs_keys})
        row.update({f"info_{k}": info[k] for k in self.info_keys})
        for k, v in row.items():
            self.rows.setdefault(k, []).append(np.array(v))

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.stack(v) for k, v in self.rows.items()}


def _batched(obs: dict) -> dict[str, np.ndarray]:
    return {k: np.asarray(v)[None] for k, v in obs.items()}


class Actor:
    """Chooses actions: biased-random, a scripted policy, or a replay of recorded actions."""

    def __init__(self, env_id: str, policy: str, seed: int, replay: np.ndarray | None,
                 n_actions: int = 0) -> None:
        self.uniform_over = n_actions if "ublic" in env_id else None
        self.rng = np.random.default_rng(seed)
        self.scripted = None if policy == "random" or replay is not None else make_policy(
            policy, env_id)
        # Recorded actions, reset rows (-1) dropped: (steps,) or (steps, num_envs).
        self.replay = None if replay is None else iter(replay[(replay >= 0).all(
            tuple(range(1, replay.ndim)))])

    def reset(self, rows: np.ndarray | int) -> None:
        if self.scripted is not None:
            if isinstance(rows, int):
                self.scripted.reset(rows)
            else:
                self.scripted.reset_rows(rows)

    def act(self, obs: dict, emotion: np.ndarray, size: int | tuple[int, ...]) -> np.ndarray:
        if self.replay is not None:
            return next(self.replay)
        if self.scripted is not None:
            return self.scripted.act(obs, emotion if self.scripted.reads_emotion else None)
        return biased_actions(self.rng, size, self.uniform_over)


def record_single(env_id: str, population: str, seed: int, policy: str,
                  replay: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """``gym.make`` env: two biased-random episodes (``policy="random"``) or one scripted one."""
    env = gym.make(env_id, population=population)
    rec = Recorder(env_id)
    actor = Actor(env_id, policy, 1000 + seed, replay, env.action_space.n)
    for episode in range(2 if policy == "random" else 1):
        obs, info = env.reset(seed=seed if episode == 0 else None)
        rec.add(-1, obs, 0.0, False, False, info)
        actor.reset(1)
        done = False
        while not done:
            action = int(np.asarray(actor.act(_batched(obs), np.array([info["emotion"]]), ())
                                    ).reshape(-1)[0])
            obs, reward, terminated, truncated, info = env.step(action)
            rec.add(action, obs, reward, terminated, truncated, info)
            done = terminated or truncated
    return rec.arrays()


def record_vector(env_id: str, population: str, seed: int, policy: str,
                  replay: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Batched vector env, 16 envs for 60 steps (with autoresets), as ``run_policy`` drives it."""
    env = gym.make_vec(env_id, num_envs=VECTOR_ENVS, vectorization_mode="vector_entry_point",
                       population=population)
    rec = Recorder(env_id)
    actor = Actor(env_id, policy, 2000 + seed, replay, env.single_action_space.n)
    obs, info = env.reset(seed=seed)
    rec.add(np.full(VECTOR_ENVS, -1), obs, np.zeros(VECTOR_ENVS), np.zeros(VECTOR_ENVS, bool),
            np.zeros(VECTOR_ENVS, bool), info)
    actor.reset(VECTOR_ENVS)
    just_done = np.zeros(VECTOR_ENVS, dtype=bool)
    for _ in range(VECTOR_STEPS):
        actions = np.asarray(actor.act(obs, info["emotion"], VECTOR_ENVS), dtype=np.int64)
        obs, reward, terminated, truncated, info = env.step(actions)
        if just_done.any():  # these envs were reset by this step (next-step autoreset)
            actor.reset(np.flatnonzero(just_done))
        just_done = terminated | truncated
        rec.add(actions, obs, reward, terminated, truncated, info)
    return rec.arrays()


def record_pettingzoo(module, seed: int, replay: dict[str, np.ndarray] | None = None
                      ) -> dict[str, np.ndarray]:
    """``module.parallel_env()`` with two learners, two biased-random episodes."""
    env = module.parallel_env()
    name = module.__name__.rsplit(".", 1)[-1]
    actors = {a: Actor(name, "random", 3000 + seed + i, None if replay is None else replay[a],
                       env.action_space(a).n) for i, a in enumerate(env.possible_agents)}
    recs = {a: Recorder(name) for a in env.possible_agents}
    for episode in range(2):
        obs, infos = env.reset(seed=seed if episode == 0 else None)
        for a, rec in recs.items():
            rec.add(-1, obs[a], 0.0, False, False, infos[a])
        while env.agents:
            actions = {a: int(actors[a].act({}, np.zeros(1), ())) for a in env.agents}
            obs, rewards, terms, truncs, infos = env.step(actions)
            for a, rec in recs.items():
                rec.add(actions[a], obs[a], rewards[a], terms[a], truncs[a], infos[a])
    return {f"{a}.{k}": v for a, rec in recs.items() for k, v in rec.arrays().items()}


Recording = Callable[[dict[str, np.ndarray] | None], dict[str, np.ndarray]]


def streams(version: str = "v0") -> dict[str, Recording]:
    """Every recorded stream of ``version`` by name: a function of the recorded arrays to replay
    actions from (``None`` when recording), returning the stream's arrays."""
    out: dict[str, Recording] = {}
    _, env_ids, module, populations = VERSIONS[version]

    def actions(rec: dict[str, np.ndarray] | None) -> np.ndarray | None:
        return None if rec is None else rec["action"]

    for env_id in env_ids:
        for pop in populations:
            for seed in SINGLE_SEEDS:
                out[f"single.{env_id}.{pop}.random.{seed}"] = (
                    lambda r, e=env_id, p=pop, s=seed: record_single(e, p, s, "random", actions(r)))
            for policy in ("greedy", "oracle"):
                out[f"single.{env_id}.{pop}.{policy}.0"] = (
                    lambda r, e=env_id, p=pop, q=policy: record_single(e, p, 0, q, actions(r)))
            out[f"vector.{env_id}.{pop}.random.0"] = (
                lambda r, e=env_id, p=pop: record_vector(e, p, 0, "random", actions(r)))
        for policy in ("greedy", "oracle"):
            out[f"vector.{env_id}.default.{policy}.0"] = (
                lambda r, e=env_id, q=policy: record_vector(e, "default", 0, q, actions(r)))
    name = module.__name__.rsplit(".", 1)[-1]
    out[f"pettingzoo.{name}.0"] = lambda r: record_pettingzoo(
        module, 0, None if r is None else {a: r[f"{a}.action"]
                                           for a in module.parallel_env().possible_agents})
    return out


def _compact(x: np.ndarray) -> np.ndarray:
    """Stores integers and flags in the smallest exact dtype, to keep the file small."""
    if x.dtype == bool:
        return x
    if np.issubdtype(x.dtype, np.integer):
        assert x.min() >= -128 and x.max() <= 127
        return x.astype(np.int8)
    return x


def write(version: str) -> None:
    """Records every stream of ``version`` from the current implementation into its file."""
    path = VERSIONS[version][0]
    data = {f"{name}/{k}": _compact(v) for name, fn in streams(version).items()
            for k, v in fn(None).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **data)
    print(f"wrote {len(data)} arrays to {path} ({path.stat().st_size / 1e3:.0f} kB)")


@pytest.fixture(scope="module")
def goldens() -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for version, (path, *_) in VERSIONS.items():
        with np.load(path) as f:
            out[version] = dict(f)
    return out


@pytest.mark.parametrize(("version", "name"),
                         [(v, n) for v in VERSIONS for n in streams(v)])
def test_trajectory_matches_golden(version, name, goldens):
    golden = goldens[version]
    want_keys = sorted(k.split("/", 1)[1] for k in golden if k.startswith(name + "/"))
    assert want_keys, f"{name}: not in the {version} golden file"
    # Replays the recorded actions (so the scripted policies may change without touching this).
    got = streams(version)[name]({k: golden[f"{name}/{k}"].astype(np.int64) for k in want_keys
                                  if k.endswith("action")})
    assert sorted(got) == want_keys, f"{name}: recorded keys differ"
    for key in want_keys:
        want, have = golden[f"{name}/{key}"], got[key]
        assert have.shape == want.shape, f"{name}/{key}: shape {have.shape} != {want.shape}"
        if np.issubdtype(want.dtype, np.floating):
            np.testing.assert_allclose(have, want, rtol=0, atol=1e-6, err_msg=f"{name}/{key}")
        else:
            np.testing.assert_array_equal(have, want, err_msg=f"{name}/{key}")


@pytest.mark.parametrize("version", [v for v in VERSIONS if "public" not in v])
def test_golden_covers_every_outcome(version, goldens):
    """The recorded inputs exercise agreements, walk-aways (both sides) and timeouts."""
    golden = goldens[version]
    outcomes = np.concatenate([v.ravel() for k, v in golden.items()
                               if k.endswith("info_deal_outcome")])
    for outcome in (C.AGREEMENT, C.WALKED_AWAY, C.TIMED_OUT):
        assert (outcomes == outcome).any(), C.OUTCOMES[outcome]
    vector_terms = [v for k, v in golden.items() if k.startswith("vector.") and
                    k.endswith("/terminated")]
    assert all(v.sum() > VECTOR_ENVS for v in vector_terms), "vector streams must autoreset"


def test_v1_is_v0_under_the_v1_rules():
    """The v1 ids are the v0 classes with ``V1_RULES`` and ``V1_EMOTION_INFLUENCE``, nothing else;
    the rules differ from v0's (the golden files show how the trajectories differ)."""
    assert C.V1_RULES and C.check_rules(C.V1_RULES) == C.V1_RULES
    for v0, v1, kappa in (("SocialNegotiation-v0", "SocialNegotiation-v1", C.V1_EMOTION_INFLUENCE),
                          ("ObjectiveNegotiation-v0", "ObjectiveNegotiation-v1", 0.0)):
        a, b = gym.make(v0).unwrapped, gym.make(v1).unwrapped
        assert type(a) is type(b)
        assert b.core.rules == C.V1_RULES and b.core.emotion_influence == kappa
        assert a.core.rules == ()
    pz = social_negotiation_v1.parallel_env()
    assert pz.core.rules == C.V1_RULES and pz.core.emotion_influence == C.V1_EMOTION_INFLUENCE
    assert social_negotiation_v1.parallel_env(subjective=False).core.emotion_influence == 0.0
    assert pz.metadata["name"] == "social_negotiation_v1"


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--write" or sys.argv[2] not in VERSIONS:
        sys.exit(f"usage: python tests/test_golden.py --write VERSION  (one of "
                 f"{', '.join(VERSIONS)}; records that version's file)")
    write(sys.argv[2])
