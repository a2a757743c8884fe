"""``--imagination simulator``: the actor-critic's rollouts in copies of the real env."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lewm_rl import train as T
from lewm_rl.env_adapters import make_adapter
from lewm_rl.simulator import SimulatorRollouts

ENV = "SocialNegotiation-v1"
KWARGS = {"population": "default", "annotation_noise": 0.1}


def pool(n: int = 3, seed: int = 7) -> SimulatorRollouts:
    torch.manual_seed(0)
    adapter = make_adapter(ENV, n, KWARGS)
    cfg = T.TrainConfig(env=ENV, wm=T.WorldModelConfig(deter=16, hidden=16, embed=16),
                        dreamer=T.DreamerConfig(hidden=16))
    _, agent = T.build_models(cfg, adapter, "learner", "cpu")
    return SimulatorRollouts(adapter, agent, seed)


def test_rollouts_are_the_real_env_under_the_actions_taken_cut_at_every_ending():
    sim = pool()
    gen = torch.Generator().manual_seed(0)
    trajs = [sim.rollout(20, gen) for _ in range(3)]  # 60 steps: every copy ends an episode
    ref = make_adapter(ENV, 3, KWARGS)
    ref.reset(seed=7)
    done = np.zeros(3, dtype=bool)
    ended = 0
    for traj in trajs:
        assert traj.features.shape[:2] == (21, 3) and traj.actions.shape == (20, 3)
        torch.testing.assert_close(traj.features, sim.agent.world_model.features(traj.states))
        assert (traj.reward[0] == 0).all() and (traj.cont[0] == 1).all()
        for k in range(20):
            _, reward, term, trunc, _ = ref.step({"learner": traj.actions[k].numpy()})
            first, done = done, term | trunc
            np.testing.assert_allclose(traj.reward[k + 1].numpy(), reward["learner"])
            np.testing.assert_array_equal(traj.cont[k + 1].numpy(), ~(term | first))
            ended += int(term.sum())
    assert ended >= 3 and sim.steps == 180


def test_the_pool_resumes_where_it_stood():
    a, b = pool(), pool()
    gen = torch.Generator().manual_seed(1)
    a.rollout(6, gen)
    saved, gen_state = a.state_dict(), gen.get_state()
    after = a.rollout(6, gen)
    b.load_state_dict(saved)
    gen.set_state(gen_state)
    again = b.rollout(6, gen)
    for field in ("actions", "reward", "cont", "features"):
        torch.testing.assert_close(getattr(again, field), getattr(after, field))
    assert b.steps == a.steps == 36


@pytest.mark.parametrize("changes", [{"agent": "ppo"}, {"env": "public_goods_v0"}])
def test_simulator_imagination_is_refused_where_it_cannot_run(changes):
    allowed = r"--imagination simulator .* \(allowed: --agent dreamer with"
    with pytest.raises(ValueError, match=allowed):
        T.TrainConfig(imagination="simulator", **changes).validate()


def test_a_simulator_run_learns_from_the_pool_and_reports_its_steps(tmp_path, monkeypatch):
    from lewm_rl.agents.dreamer import DreamerAgent

    imagined = []
    monkeypatch.setattr(DreamerAgent, "update", lambda self, *a, **k: imagined.append(1))
    cfg = T.resolved(T.TrainConfig(env=ENV, num_envs=2, prefill=16, seq_len=8, batch_size=2,
                                   steps=40, imagination="simulator", progress=False,
                                   eval_every=10_000, run_dir=str(tmp_path),
                                   wm=T.WorldModelConfig(deter=16, hidden=16, embed=16),
                                   dreamer=T.DreamerConfig(hidden=16, horizon=4,
                                                           max_starts=5)))
    trainer = T.Trainer(cfg, tmp_path)
    trainer._start_episodes()
    for _ in range(cfg.seq_len):
        trainer._env_step()
    trainer._update()
    trainer._update()
    (ln,) = trainer.learners
    assert not imagined and ln.simulator.steps == 2 * 4 * 5
    assert trainer.metrics["imag/simulator_steps"][-1] == 40.0
    assert "actor/entropy" in trainer.metrics
