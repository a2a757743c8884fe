"""The Stable-Baselines3 bridges: belief wrapper and extractor, imagination VecEnv, run()."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.vec_env import VecCheckNan, VecMonitor
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import lewm_rl  # noqa: F401  (registers the envs)
from lewm_rl.agents.baselines import make_policy
from lewm_rl.agents.sb3 import (
    ImaginationVecEnv,
    LEWMBeliefWrapper,
    LEWMFeaturesExtractor,
    RealCollector,
    SB3Config,
    add_episodes,
    evaluate,
    run,
)
from lewm_rl.data import SequenceReplay, fill_replay
from lewm_rl.train import TrainConfig
from lewm_rl.world_models import WorldModelConfig, build_world_model

ENV = "SocialNegotiation-v0"
TINY_WM = WorldModelConfig(deter=32, hidden=32, embed=32)
SMALL_PPO = dict(n_steps=64, batch_size=64, n_epochs=2, seed=0, device="cpu")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_wm(kind: str = "lewm"):
    env = gym.make(ENV)
    torch.manual_seed(0)
    return build_world_model(dataclasses.replace(TINY_WM, kind=kind), env.observation_space,
                             env.action_space, env.unwrapped.emotion_space,
                             env.unwrapped.emotion_names, "partner_act")


@pytest.fixture(scope="module")
def wm():
    return make_wm()


@pytest.fixture(scope="module")
def replay():
    policy = make_policy("random", ENV, n_actions=98, seed=0)
    return fill_replay(ENV, policy, 256, seed=0, num_envs=8)


@pytest.fixture(scope="module")
def belief_ppo(wm):
    """PPO trained a few thousand steps on the LEWM belief."""
    venv = make_vec_env(lambda: LEWMBeliefWrapper(gym.make(ENV), wm), n_envs=4, seed=0)
    model = PPO("MlpPolicy", venv, **{**SMALL_PPO, "n_steps": 128, "batch_size": 128})
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(2048)
    return model, before


class ScrambledLabels(gym.Wrapper):
    """Replaces the emotion labels in ``info`` by random ones."""

    def __init__(self, env: gym.Env, seed: int) -> None:
        super().__init__(env)
        self.rng = np.random.default_rng(seed)

    def _scramble(self, info):
        return {**info, "emotion": int(self.rng.integers(7)),
                "emotion_annotated": int(self.rng.integers(7))}

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs, self._scramble(info)

    def step(self, action):
        obs, r, te, tr, info = self.env.step(action)
        return obs, r, te, tr, self._scramble(info)


# -- belief wrapper and features extractor --------------------------------------------------------
@pytest.mark.parametrize("kind", ["lewm", "blind"])
def test_belief_wrapper_passes_sb3_check_env(kind):
    wm = make_wm(kind)
    env = LEWMBeliefWrapper(gym.make(ENV), wm)
    check_env(env)
    obs, _ = env.reset(seed=3)
    assert obs.shape == (wm.feature_dim,) and obs.dtype == np.float32
    again, _ = env.reset(seed=3)
    np.testing.assert_array_equal(obs, again)  # reset(seed) also seeds the sampling of z


def test_ppo_on_lewm_belief_trains_a_few_thousand_steps(belief_ppo):
    model, before = belief_ppo
    assert model.num_timesteps >= 2048
    after = list(model.policy.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))
    assert all(torch.isfinite(p).all() for p in after)


@pytest.mark.parametrize("algo", [PPO, A2C, DQN])
def test_algorithms_on_belief_and_on_raw_dict_with_the_extractor(wm, algo):
    extra = dict(learning_starts=32, buffer_size=1000) if algo is DQN else {}
    if algo is PPO:
        extra = dict(n_steps=32, batch_size=32, n_epochs=1)
    on_belief = algo("MlpPolicy", LEWMBeliefWrapper(gym.make(ENV), wm), seed=0, **extra,
                     policy_kwargs=dict(features_extractor_class=LEWMFeaturesExtractor))
    on_belief.learn(64)
    on_raw = algo("MultiInputPolicy", gym.make(ENV), seed=0, **extra, policy_kwargs=dict(
        features_extractor_class=LEWMFeaturesExtractor,
        features_extractor_kwargs=dict(world_model=wm)))
    on_raw.learn(64)
    obs, _ = gym.make(ENV).reset(seed=0)
    assert on_raw.action_space.contains(on_raw.predict(obs, deterministic=True)[0].item())


def test_extractor_on_raw_dict_is_the_first_step_belief(wm):
    """Fed a raw observation, the extractor gives the posterior of an episode's first step."""
    env = gym.make(ENV)
    obs, _ = env.reset(seed=0)
    model = PPO("MultiInputPolicy", env, **SMALL_PPO, policy_kwargs=dict(
        features_extractor_class=LEWMFeaturesExtractor,
        features_extractor_kwargs=dict(world_model=wm)))
    extractor = model.policy.features_extractor
    assert not any(p.requires_grad for p in extractor.parameters())  # a frozen copy ...
    for mine, theirs in zip(extractor.world_model.parameters(), wm.parameters(), strict=True):
        assert torch.equal(mine, theirs)  # ... that PPO's orthogonal initialisation left alone
    tensor_obs, _ = model.policy.obs_to_tensor(obs)
    with torch.no_grad():
        feats = extractor(preprocess_obs(tensor_obs, model.observation_space))
    c = wm.config
    h_dim, z_dim = c.deter, c.stoch * c.classes
    belief, _ = LEWMBeliefWrapper(gym.make(ENV), wm).reset(seed=0)
    # h and the emotion distribution are deterministic: identical to the wrapper's first step.
    np.testing.assert_allclose(feats[0, :h_dim].numpy(), belief[:h_dim], atol=1e-5)
    np.testing.assert_allclose(feats[0, h_dim + z_dim:].numpy(), belief[h_dim + z_dim:],
                               atol=1e-5)
    # z is the posterior distribution rather than a sample: each latent sums to one.
    z = feats[0, h_dim:h_dim + z_dim].reshape(c.stoch, c.classes)
    torch.testing.assert_close(z.sum(-1), torch.ones(c.stoch))


def test_extractor_rejects_a_mismatched_space(wm):
    with pytest.raises(ValueError, match="feature_dim"):
        LEWMFeaturesExtractor(gym.spaces.Box(-1, 1, (3,)), world_model=wm)
    with pytest.raises(ValueError, match="world_model"):
        LEWMFeaturesExtractor(gym.make(ENV).observation_space)


def test_belief_actions_ignore_info_labels(belief_ppo, wm):
    """ppo-belief: replacing the labels in info by random ones changes no action."""
    model, _ = belief_ppo

    def actions(scramble: bool) -> list[int]:
        out = []
        for seed in range(3):
            inner = gym.make(ENV)
            env = LEWMBeliefWrapper(ScrambledLabels(inner, seed) if scramble else inner, wm)
            obs, _ = env.reset(seed=100 + seed)
            done = False
            while not done:
                a = int(model.predict(obs, deterministic=True)[0])
                out.append(a)
                obs, _, te, tr, _ = env.step(a)
                done = te or tr
        return out

    assert actions(False) == actions(True)


def test_recorded_rows_follow_the_replay_convention(wm):
    env = LEWMBeliefWrapper(gym.make(ENV), wm, record=True)
    replay = SequenceReplay.for_spaces(200, 1, gym.make(ENV).observation_space,
                                       env.unwrapped.emotion_space)
    collector = RealCollector([env], replay, seed=0)
    returns = collector.collect(60, None)
    assert collector.steps == 60 and returns
    rows = replay.filled  # finished episodes only: one row per observation, the last included
    data = {k: v[0, :rows] for k, v in replay.data.items()}
    starts = np.flatnonzero(data["is_first"])
    assert len(starts) == len(returns) and starts[0] == 0 and np.all(data["reward"][starts] == 0)
    np.testing.assert_allclose(np.add.reduceat(data["reward"], starts), returns, atol=1e-5)
    ends = np.append(starts[1:], rows) - 1
    assert np.all(data["is_terminal"][ends]) and np.all(data["action"][ends] == 0)
    assert np.all(data["emotion"] >= 0)  # labels recorded as training targets
    assert add_episodes(replay, []) == 0


# -- imagination ----------------------------------------------------------------------------------
def test_imagination_vecenv_contract(wm, replay):
    n, horizon = 6, 3
    venv = ImaginationVecEnv(wm, replay, n_envs=n, horizon=horizon, seq_len=8, burn_in=2,
                             start_sequences=8, seed=0)
    space = venv.observation_space
    assert space.shape == (wm.feature_dim,) and venv.action_space == wm.action_space
    obs = venv.reset()
    assert obs.shape == (n, wm.feature_dim) and obs.dtype == np.float32
    assert all(space.contains(o) for o in obs)
    seen_done = np.zeros(n, dtype=bool)
    for t in range(2 * horizon):
        actions = np.array([venv.action_space.sample() for _ in range(n)])
        obs, rewards, dones, infos = venv.step(actions)
        assert obs.shape == (n, wm.feature_dim) and obs.dtype == np.float32
        assert rewards.shape == (n,) and rewards.dtype == np.float32
        assert dones.shape == (n,) and dones.dtype == bool
        assert isinstance(infos, list) and len(infos) == n
        assert all(space.contains(o) for o in obs)
        steps = venv.get_attr("episode_step")
        for i in range(n):
            assert isinstance(infos[i]["TimeLimit.truncated"], bool)
            if dones[i]:
                term = infos[i]["terminal_observation"]
                assert term.shape == (wm.feature_dim,) and space.contains(term)
                assert steps[i] == 0  # auto-reset: obs[i] already starts a new episode
                length = infos[i]["imagined_length"]
                # Truncated only at the horizon (SB3 then bootstraps), terminated before it.
                assert length <= horizon
                assert length == horizon or not infos[i]["TimeLimit.truncated"]
            else:
                assert "terminal_observation" not in infos[i]
                assert not infos[i]["TimeLimit.truncated"]
        if t == horizon - 1:  # every episode ended by the horizon at the latest
            assert (seen_done | dones).all()
        seen_done |= dones
    venv.set_attr("termination", "sample")  # terminations drawn from the continuation head
    venv.reset()
    for _ in range(horizon):
        venv.step(np.zeros(n, dtype=np.int64))
    with pytest.raises(ValueError, match="actions"):
        venv.step(np.zeros(n + 1, dtype=np.int64))
    venv.close()


def test_imagination_vecenv_attributes_methods_and_seeding(wm, replay):
    n = 4
    venv = ImaginationVecEnv(wm, replay, n_envs=n, horizon=5, seq_len=8, burn_in=2,
                             start_sequences=8)
    assert venv.seed(7) == [7, 8, 9, 10]
    first = venv.reset()
    steps_a = [venv.step(np.arange(n))[0] for _ in range(3)]
    venv.seed(7)
    np.testing.assert_array_equal(venv.reset(), first)
    steps_b = [venv.step(np.arange(n)) for _ in range(3)]
    for a, b in zip(steps_a, steps_b, strict=True):
        np.testing.assert_array_equal(a, b[0])
    assert venv.get_attr("horizon") == [5] * n
    assert venv.get_attr("horizon", indices=[1, 3]) == [5, 5]
    # steps since env 2's imagined episode started (it may have ended and restarted in between)
    done = [bool(b[2][2]) for b in steps_b]
    since = 3 - (max(i for i, d in enumerate(done) if d) + 1) if any(done) else 3
    assert venv.get_attr("episode_step", indices=2) == [since]
    assert venv.has_attr("horizon") and not venv.has_attr("no_such_attribute")
    venv.set_attr("episode_return", 0.0, indices=[0])
    assert venv.get_attr("episode_return", indices=0) == [0.0]
    venv.set_attr("horizon", 6)
    assert venv.get_attr("horizon") == [6] * n
    with pytest.raises(ValueError, match="shared"):
        venv.set_attr("horizon", 2, indices=[0])
    sizes = venv.env_method("refresh_starts")
    assert len(sizes) == n and len(set(sizes)) == 1 and sizes[0] > 0
    assert venv.env_is_wrapped(Monitor) == [False] * n
    assert venv.render_mode is None
    # SB3's VecEnv wrappers work on it.
    wrapped = VecCheckNan(VecMonitor(venv), raise_exception=True)
    wrapped.reset()
    for _ in range(6):
        wrapped.step(np.zeros(n, dtype=np.int64))


@pytest.mark.parametrize("algo", [PPO, DQN])
def test_sb3_trains_in_imagination(wm, replay, algo):
    venv = ImaginationVecEnv(wm, replay, n_envs=8, horizon=4, seq_len=8, burn_in=2,
                             start_sequences=8, seed=0)
    extra = (dict(n_steps=16, batch_size=64, n_epochs=2) if algo is PPO
             else dict(learning_starts=32, buffer_size=1000))
    model = algo("MlpPolicy", venv, seed=0, **extra).learn(256)
    # The policy trained in imagination acts in the real env through the belief wrapper.
    returns = evaluate(model, lambda: LEWMBeliefWrapper(gym.make(ENV), wm), 2, seed=0)
    assert returns.shape == (2,) and np.all(np.isfinite(returns))


def test_save_load_round_trip_gives_identical_actions(belief_ppo, wm, tmp_path):
    model, _ = belief_ppo
    env = LEWMBeliefWrapper(gym.make(ENV), wm)
    beliefs = np.stack([env.reset(seed=s)[0] for s in range(16)])
    model.save(tmp_path / "belief.zip")
    loaded = PPO.load(tmp_path / "belief.zip", device="cpu")
    np.testing.assert_array_equal(model.predict(beliefs, deterministic=True)[0],
                                  loaded.predict(beliefs, deterministic=True)[0])
    raw = PPO("MultiInputPolicy", gym.make(ENV), **SMALL_PPO, policy_kwargs=dict(
        features_extractor_class=LEWMFeaturesExtractor,
        features_extractor_kwargs=dict(world_model=wm)))
    raw.learn(64)
    obs = [gym.make(ENV).reset(seed=s)[0] for s in range(16)]
    batch = {k: np.stack([o[k] for o in obs]) for k in obs[0]}
    raw.save(tmp_path / "raw.zip")
    loaded = PPO.load(tmp_path / "raw.zip", device="cpu")
    np.testing.assert_array_equal(raw.predict(batch, deterministic=True)[0],
                                  loaded.predict(batch, deterministic=True)[0])


# -- run() ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Config(TrainConfig):
    """TrainConfig with the ``sb3`` field the CLI nests (``--sb3.*``)."""

    sb3: SB3Config = field(default_factory=SB3Config)


@pytest.mark.parametrize(("agent", "kind"), [("ppo", "lewm"), ("recurrent-ppo", "lewm"),
                                             ("ppo-belief", "blind"), ("ppo-imagination", "lewm")])
def test_run_end_to_end_writes_results_and_tensorboard(tmp_path, agent, kind):
    config = _Config(
        env=ENV, world_model=kind, steps=400, prefill=64, num_envs=4, batch_size=4, seq_len=8,
        eval_every=200, eval_episodes=2, eval_populations=("stoic",), train_ratio=8, threads=1,
        progress=False, wm=TINY_WM,
        sb3=SB3Config(n_steps=32, batch_size=64, n_epochs=1, imagination_envs=16, horizon=6,
                      imagination_ratio=16, pretrain_updates=5, start_sequences=8, burn_in=2))
    config = dataclasses.replace(config, agent=agent)
    results = run(config, tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["step"] == 400 and saved["agent"] == agent
    for key in ("eval/episode_return", "eval/stoic/episode_return"):
        assert math.isfinite(results[key]) and saved[key] == results[key]
    assert (tmp_path / "sb3_model.zip").is_file()
    model_free = agent in ("ppo", "recurrent-ppo")
    assert (tmp_path / "world_model.pt").is_file() == (not model_free)
    # lewm_rl.load_run: SB3's own load, plus the world model
    from lewm_rl import load_run
    from lewm_rl.train import config_to_dict

    (tmp_path / "config.json").write_text(json.dumps(config_to_dict(config)))
    wm, model, loaded = load_run(tmp_path)
    assert loaded.agent == agent and hasattr(model, "predict")
    assert (wm is None) == model_free
    if wm is not None:
        assert wm.config.kind == kind
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    expected = {"eval/episode_return", "eval/stoic/episode_return", "train/episode_return"}
    if not model_free:
        expected |= {"world_model/loss", "world_model/emotion_accuracy"} if kind == "lewm" \
            else {"world_model/loss"}
    if agent == "ppo-imagination":
        expected.add("imag/return")
    assert expected <= scalars, expected - scalars
    curve = [e.step for e in acc.Scalars("eval/episode_return")]
    assert curve[-1] == 400 and curve == sorted(curve)
    held_out = [e.step for e in acc.Scalars("eval/stoic/episode_return")]
    assert held_out == curve  # held-out populations at every evaluation, each step once
    assert all(math.isfinite(e.value) for tag in expected for e in acc.Scalars(tag))


def test_run_rejects_unknown_agents_and_envs(tmp_path):
    with pytest.raises(ValueError, match="ppo-imagination"):
        run(dataclasses.replace(_Config(), agent="sac"), tmp_path)
    with pytest.raises(ValueError, match="Gymnasium"):
        run(dataclasses.replace(_Config(env="social_negotiation_v0"), agent="ppo"), tmp_path)
    with pytest.raises(ValueError, match="blind"):
        run(dataclasses.replace(_Config(world_model="parallel"), agent="ppo-belief"), tmp_path)


# -- SB3 runs checkpoint and resume (issue 16) -----------------------------------------------------
SB3_TINY = ["--steps", "400", "--prefill", "64", "--num-envs", "4", "--batch-size", "4",
            "--seq-len", "8", "--eval-every", "200", "--checkpoint-every", "100",
            "--eval-episodes", "2", "--eval-populations", "--train-ratio", "8", "--threads", "1",
            "--no-progress", "--wm.deter", "32", "--wm.hidden", "32", "--wm.embed", "32",
            "--sb3.n-steps", "32", "--sb3.batch-size", "64", "--sb3.n-epochs", "1",
            "--sb3.imagination-envs", "16", "--sb3.horizon", "6", "--sb3.imagination-ratio", "16",
            "--sb3.pretrain-updates", "5", "--sb3.start-sequences", "8", "--sb3.burn-in", "2"]
PREEMPTED_AT_FIRST_EVALUATION = """
import os, signal, sys
from lewm_rl.agents.sb3 import runner
real, sent = runner.evaluate, []
def evaluate(*args, **kwargs):
    if not sent:  # a scheduler's SIGTERM, in the middle of the first evaluation
        sent.append(os.kill(os.getpid(), signal.SIGTERM))
    return real(*args, **kwargs)
runner.evaluate = evaluate
from lewm_rl.train import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("agent", ["ppo", "recurrent-ppo", "ppo-belief", "ppo-imagination"])
def test_sb3_run_stopped_by_sigterm_resumes_to_the_same_step_count(tmp_path, agent):
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from lewm_rl.checkpoint import load

    root = Path(__file__).resolve().parents[1]
    run_dir = tmp_path / "run"
    args = ["--agent", agent, "--run-dir", str(run_dir), *SB3_TINY]
    proc = subprocess.run([sys.executable, "-c", PREEMPTED_AT_FIRST_EVALUATION, *args], cwd=root,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr
    assert f"--resume {run_dir}" in proc.stderr
    stopped = load(run_dir / "checkpoint.pt")
    assert 200 <= stopped["step"] < 400 and stopped["agent"] == agent
    assert not (run_dir / "results.json").exists()
    proc = subprocess.run([sys.executable, "-m", "lewm_rl.train", "--resume", str(run_dir),
                           "--no-progress"], cwd=root, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((run_dir / "results.json").read_text())["step"] == 400
    final = load(run_dir / "checkpoint.pt")
    assert final["step"] == 400 and final["num_timesteps"] > stopped["num_timesteps"]
    assert final["evaluator"]["history"][0] == stopped["evaluator"]["history"][0]
    acc = EventAccumulator(str(run_dir), size_guidance={"tensors": 0})
    acc.Reload()  # carried on, not trained again from scratch
    assert len(acc.Tensors("hyperparameters/text_summary")) == 1
    assert (run_dir / "sb3_model.zip").is_file()


def test_resume_refuses_an_sb3_run_without_a_checkpoint_and_leaves_it_intact(tmp_path, capsys):
    from lewm_rl import train as T

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    cfg = T.resolved(T.TrainConfig(agent="ppo", steps=64, num_envs=2, eval_episodes=1,
                                   eval_populations=(), progress=False, run_dir=str(run_dir),
                                   sb3=SB3Config(n_steps=16, batch_size=16, n_epochs=1)))
    (run_dir / "config.json").write_text(json.dumps(T.config_to_dict(cfg)))
    (run_dir / "sb3_model.zip").write_bytes(b"a finished model")
    (run_dir / "results.json").write_text('{"step": 64}')
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    assert T.main(["--resume", str(run_dir)]) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "cannot be resumed" in lines[0], lines
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


def test_filter_cues_reaches_every_sb3_env_training_and_evaluation(tmp_path, monkeypatch):
    from lewm_rl.agents.sb3 import runner as R
    from lewm_rl.envs.wrappers import FilterEmotionCues

    seen = []

    class Recording(FilterEmotionCues):
        def observation(self, observation):
            out = super().observation(observation)
            seen.append((float(np.abs(out["expression"]).sum()), int(out["tone"])))
            return out

    monkeypatch.setattr(R, "FilterEmotionCues", Recording)
    config = dataclasses.replace(
        _Config(env=ENV, steps=64, num_envs=2, eval_every=64, eval_episodes=2,
                eval_populations=("stoic",), threads=1, progress=False, filter_cues=True,
                sb3=SB3Config(n_steps=32, batch_size=64, n_epochs=1)), agent="ppo")
    run(config, tmp_path)
    # 64 training steps and two evaluations of 2 episodes each (default and stoic partners)
    assert len(seen) >= 64 + 4
    assert all(obs == (0.0, 0) for obs in seen)
    seen.clear()
    run(dataclasses.replace(config, filter_cues=False), tmp_path / "plain")
    assert not seen  # unfiltered runs never wrap
