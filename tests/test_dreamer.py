"""The Dreamer actor-critic: exact lambda-returns, and an update on a stub world model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lewm_rl.agents.dreamer import DreamerAgent, DreamerConfig, lambda_returns
from lewm_rl.world_models.model import State, Trajectory


def test_lambda_returns_exact():
    reward = torch.tensor([[1.0], [0.0], [2.0]])  # r_1, r_2, r_3
    cont = torch.tensor([[1.0], [1.0], [0.0]])
    value = torch.tensor([[0.5], [1.0], [2.0], [3.0]])  # v_0..v_3
    g, lam = 0.9, 0.5
    r3 = 3.0  # R_3 = v_3
    r2 = 2.0 + g * 0.0 * ((1 - lam) * 3.0 + lam * r3)
    r1 = 0.0 + g * 1.0 * ((1 - lam) * 2.0 + lam * r2)
    r0 = 1.0 + g * 1.0 * ((1 - lam) * 1.0 + lam * r1)
    out = lambda_returns(reward, cont, value, g, lam)
    torch.testing.assert_close(out[:, 0], torch.tensor([r0, r1, r2]))
    # lambda = 1 with zero values: discounted reward sums, cut at the end of the episode.
    out = lambda_returns(reward, cont, torch.zeros(4, 1), 0.9, 1.0)
    torch.testing.assert_close(out[:, 0], torch.tensor([1 + 0.9 * 0.9 * 2, 0.9 * 2, 2.0]))


def zero_critics(agent: DreamerAgent) -> None:
    """Critic and slow critic output 0 everywhere: lambda-returns become reward sums."""
    for net in (agent.slow_critic, agent.critic):
        for p in net.parameters():
            torch.nn.init.zeros_(p)


class StubWorldModel:
    """Imagines fixed rewards and continuations, whatever the actions."""

    num_actions = 3
    feature_dim = 4
    P = 0
    device = torch.device("cpu")

    def __init__(self, reward, cont):
        self.reward, self.cont = reward, cont

    def features(self, state):
        return torch.ones(*state.deter.shape[:-1], self.feature_dim)

    def imagine(self, start, policy, horizon, intervention=None, generator=None,
                decode_behaviour=True):
        n = len(start.deter)
        states = State(torch.zeros(horizon + 1, n, 1), torch.zeros(horizon + 1, n, 1, 1),
                       torch.zeros(horizon + 1, n, 0, 7))
        feats = self.features(states)
        actions = torch.stack([policy(feats[k]) for k in range(horizon)])
        return Trajectory(states, feats, actions, states.emotion,
                          self.reward[:, None].expand(horizon + 1, n),
                          self.cont[:, None].expand(horizon + 1, n), None)


def test_update_on_a_stub_world_model_reports_the_exact_return():
    reward = torch.tensor([0.0, 1.0, 0.0, 2.0])  # index 0 unused
    cont = torch.tensor([1.0, 1.0, 0.0, 1.0])
    wm = StubWorldModel(reward, cont)
    agent = DreamerAgent(wm, DreamerConfig(horizon=3, gamma=0.9, lambda_=1.0))
    zero_critics(agent)  # values are 0: returns are discounted reward sums
    start = State(torch.zeros(5, 1), torch.zeros(5, 1, 1), torch.zeros(5, 0, 7))
    metrics = agent.update(start)
    # R_0 = r_1 + 0.9 c_1 (r_2 + 0.9 c_2 r_3) = 1 + 0.9 * (0 + 0.9 * 0 * 2) = 1
    assert metrics["imag/return"] == pytest.approx(1.0)
    assert metrics["imag/reward"] == pytest.approx(1.0)
    assert set(metrics) >= {"actor/loss", "actor/entropy", "critic/loss", "imag/return_scale"}


def test_actor_learns_the_rewarded_action():
    """On a bandit imagined by a stub, the actor comes to prefer the action that pays."""

    class Bandit(StubWorldModel):
        def imagine(self, start, policy, horizon, intervention=None, generator=None,
                    decode_behaviour=True):
            traj = super().imagine(start, policy, horizon)
            paid = (traj.actions == 2).float()  # action 2 pays 1, others 0
            traj.reward = torch.cat([torch.zeros(1, len(start.deter)), paid])
            return traj

    wm = Bandit(torch.zeros(2), torch.ones(2))
    torch.manual_seed(0)
    agent = DreamerAgent(wm, DreamerConfig(horizon=1, actor_lr=3e-3, entropy=0.0))
    start = State(torch.zeros(64, 1), torch.zeros(64, 1, 1), torch.zeros(64, 0, 7))
    for _ in range(150):
        agent.update(start)
    probs = agent.policy(torch.ones(1, 4)).probs[0]
    assert probs[2] > 0.9, probs


def test_imagined_return_is_the_expected_undiscounted_sum():
    reward = torch.tensor([0.0, 1.0, 0.5, 2.0])  # index 0 unused
    cont = torch.tensor([1.0, 0.8, 0.5, 1.0])
    agent = DreamerAgent(StubWorldModel(reward, cont), DreamerConfig(horizon=3))
    start = State(torch.zeros(2, 1), torch.zeros(2, 1, 1), torch.zeros(2, 0, 7))
    # r_1 + c_1 r_2 + c_1 c_2 r_3 = 1 + 0.8 * 0.5 + 0.8 * 0.5 * 2
    torch.testing.assert_close(agent.imagined_return(start, 3), torch.full((2,), 2.2))
    ret, length = agent.imagined_episode(start, 3)
    torch.testing.assert_close(ret, torch.full((2,), 2.2))
    torch.testing.assert_close(length, torch.full((2,), 1 + 0.8 + 0.8 * 0.5))  # steps 1, 2, 3


def test_heads_start_neutral_and_the_structured_actor_uniform():
    from lewm_rl.distributions import ActionStructure
    from lewm_rl.envs import negotiation_core as C

    class Wide(StubWorldModel):
        num_actions = C.NUM_ACTIONS

    torch.manual_seed(0)
    agent = DreamerAgent(Wide(torch.zeros(2), torch.ones(2)),
                         DreamerConfig(actor_head="structured", critic_head="twohot"),
                         ActionStructure(C.ACTION_STRUCTURE))
    assert agent.actor[-1].out_features == 3 + C.NUM_SPLITS + 4
    feats = torch.randn(16, 4)
    probs = agent.policy(feats).probs
    torch.testing.assert_close(probs.sum(-1), torch.ones(16))
    # outscale 0.01 and the uniform bias: every flat action near 1/98, accept and walk included
    assert float((probs * C.NUM_ACTIONS - 1).abs().max()) < 0.1
    # the two-hot critic and its slow copy start at 0 (zero-initialised output)
    assert float(agent.value(feats).abs().max()) < 1e-5
    assert float(agent.value(feats, slow=True).abs().max()) < 1e-5
    with pytest.raises(ValueError, match="action structure"):
        DreamerAgent(StubWorldModel(torch.zeros(2), torch.ones(2)),
                     DreamerConfig(actor_head="structured"), ActionStructure(C.ACTION_STRUCTURE))
    # the default (flat) head ignores the structure: one logit per action, uniform at first
    flat = DreamerAgent(Wide(torch.zeros(2), torch.ones(2)), DreamerConfig(),
                        ActionStructure(C.ACTION_STRUCTURE))
    assert flat.actor[-1].out_features == C.NUM_ACTIONS
    assert float((flat.policy(feats).probs * C.NUM_ACTIONS - 1).abs().max()) < 0.1


@pytest.mark.parametrize("field, value", [("actor_head", "tree"), ("critic_head", "l1"),
                                          ("entropy", -1.0), ("bins", 1)])
def test_bad_recipe_fields_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        DreamerConfig(**{field: value})


def test_pessimism_subtracts_the_reward_heads_spread_and_needs_an_ensemble():
    from types import SimpleNamespace

    class Ensemble(StubWorldModel):
        config = SimpleNamespace(reward_heads=3, prior_ensemble=0)

        def imagine(self, start, policy, horizon, intervention=None, generator=None,
                    decode_behaviour=True):
            traj = super().imagine(start, policy, horizon)
            traj.reward_std = torch.full_like(traj.reward, 0.25)
            return traj

    class Single(Ensemble):
        config = SimpleNamespace(reward_heads=1, prior_ensemble=0)

    reward = torch.tensor([0.0, 1.0, 0.0, 2.0])  # index 0 unused
    cont = torch.tensor([1.0, 1.0, 0.0, 1.0])
    start = State(torch.zeros(5, 1), torch.zeros(5, 1, 1), torch.zeros(5, 0, 7))
    for pessimism in (0.0, 2.0):
        agent = DreamerAgent(Ensemble(reward, cont),
                             DreamerConfig(horizon=3, gamma=1.0, lambda_=1.0, pessimism=pessimism))
        zero_critics(agent)  # values are 0: returns are reward sums
        metrics = agent.update(start)
        penalty = pessimism * 0.25
        # R_0 = (r_1 - penalty) + c_1 (r_2 - penalty); c_2 = 0 ends it before r_3
        assert metrics["imag/return"] == pytest.approx(1.0 + 0.0 - 2 * penalty)
        assert metrics["imag/reward"] == pytest.approx((1.0 + 0.0 + 2.0) / 3 - penalty)
        assert metrics["imag/reward_std"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="reward_heads"):
        DreamerAgent(Single(reward, cont), DreamerConfig(pessimism=1.0))
    with pytest.raises(ValueError, match="pessimism"):
        DreamerConfig(pessimism=-0.5)


def test_disagreement_subtracts_or_adds_the_state_priors_disagreement_and_needs_an_ensemble():
    from types import SimpleNamespace

    class Ensemble(StubWorldModel):
        config = SimpleNamespace(reward_heads=1, prior_ensemble=3)

        def imagine(self, start, policy, horizon, intervention=None, generator=None,
                    decode_behaviour=True):
            traj = super().imagine(start, policy, horizon)
            steps = torch.tensor([9.0, 0.1, 0.2, 0.3])  # index 0 (the start) unused
            traj.disagreement = steps[:, None].expand_as(traj.reward)
            return traj

    reward = torch.tensor([0.0, 1.0, 0.5, 2.0])
    cont = torch.tensor([1.0, 1.0, 0.0, 1.0])
    start = State(torch.zeros(5, 1), torch.zeros(5, 1, 1), torch.zeros(5, 0, 7))
    for weight in (0.0, 2.0, -0.5):  # negative: a bonus
        agent = DreamerAgent(Ensemble(reward, cont),
                             DreamerConfig(horizon=3, gamma=1.0, lambda_=1.0,
                                           disagreement=weight))
        zero_critics(agent)
        metrics = agent.update(start)
        # R_0 = (r_1 - w 0.1) + c_1 (r_2 - w 0.2); c_2 = 0 ends it before r_3
        assert metrics["imag/return"] == pytest.approx(1.5 - weight * 0.3)
        assert metrics["imag/disagreement"] == pytest.approx(0.2)
    plain = type("Plain", (Ensemble,), {"config": SimpleNamespace(reward_heads=1,
                                                                   prior_ensemble=0)})
    with pytest.raises(ValueError, match="--wm.prior-ensemble"):
        DreamerAgent(plain(reward, cont), DreamerConfig(disagreement=1.0))
    with pytest.raises(ValueError, match="--wm.prior-ensemble"):
        DreamerAgent(plain(reward, cont), DreamerConfig(disagreement=-0.3))


def test_explore_mix_draws_that_share_of_the_training_moves_from_each_action_kind_alike():
    from lewm_rl import train as T
    from lewm_rl.env_adapters import make_adapter
    from lewm_rl.envs import negotiation_core as C
    from lewm_rl.world_models.codec import to_tensor_obs

    n = 4000
    adapter = make_adapter("SocialNegotiation-v1", n, {})
    obs, _ = adapter.reset(seed=3)
    first = torch.ones(n, dtype=torch.bool)

    def moves(mix: float, **kwargs) -> torch.Tensor:
        torch.manual_seed(0)
        cfg = T.TrainConfig(env="SocialNegotiation-v1",
                            wm=T.WorldModelConfig(deter=16, hidden=16, embed=16),
                            dreamer=T.DreamerConfig(hidden=16, explore_mix=mix))
        wm, agent = T.build_models(cfg, adapter, "learner", "cpu")
        tobs = to_tensor_obs(obs["learner"], wm.mods)
        if mix == 1.0:  # offers share a third, accept and walk away a third each
            offer = 1 / (3 * C.NUM_SPLITS * 4)
            expected = torch.tensor([offer] * (C.NUM_ACTIONS - 2) + [1 / 3] * 2)
            torch.testing.assert_close(agent.kind_uniform, expected)
        action, _ = agent.act(None, tobs, first, generator=torch.Generator().manual_seed(1),
                              **kwargs)
        return action

    def share(action: torch.Tensor, which: int) -> float:
        return float((action == which).float().mean())

    own = moves(0.0, behaviour=True)  # the actor's own samples: near uniform over 98
    assert share(own, C.ACCEPT) < 0.03 and share(own, C.WALK_AWAY) < 0.03
    torch.testing.assert_close(moves(0.5), own)  # behaviour=False: the actor's samples
    mixed = moves(0.5, behaviour=True)  # half kind-uniform: accept ~ 1/6 + 1/196
    for kind in (C.ACCEPT, C.WALK_AWAY):
        assert share(mixed, kind) == pytest.approx(0.5 / 3 + 0.5 / C.NUM_ACTIONS, abs=0.02)
    explored = moves(1.0, behaviour=True)
    for kind in (C.ACCEPT, C.WALK_AWAY):
        assert share(explored, kind) == pytest.approx(1 / 3, abs=0.025)
    # the mode (evaluation) is the actor's whatever the mix
    torch.testing.assert_close(moves(1.0, behaviour=True, explore=False),
                               moves(0.0, explore=False))
    with pytest.raises(ValueError, match="explore_mix"):
        DreamerConfig(explore_mix=1.5)


def test_gru_cell_written_out_is_torchs_gru_cell():
    from lewm_rl.world_models.model import gru_cell

    torch.manual_seed(0)
    cell = torch.nn.GRUCell(5, 7)
    x, h = torch.randn(4, 5), torch.randn(4, 7)
    torch.testing.assert_close(gru_cell(cell, x, h), cell(x, h))


def test_bfloat16_update_keeps_heads_distributions_and_weights_in_float32(monkeypatch):
    """compute_dtype=bfloat16: the matmuls run in bfloat16, every head's output, the policy's
    probabilities and the weights stay float32, and the update's figures stay those of float32
    up to bfloat16's rounding; auto is exactly bfloat16 where it is native, float32 elsewhere."""
    from lewm_rl import train as T
    from lewm_rl.agents.baselines import make_policy
    from lewm_rl.agents.dreamer import agent as dreamer_agent
    from lewm_rl.data import fill_replay, to_torch
    from lewm_rl.env_adapters import make_adapter
    from lewm_rl.nets import mlp
    from lewm_rl.world_models import fit_step, make_optimizer

    net = mlp(6, 16, 3)
    x = torch.randn(5, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = net(x)
        hidden = net[:-1](x)
    assert low.dtype == torch.float32 and hidden.dtype == torch.bfloat16
    torch.testing.assert_close(low, net(x), atol=0.05, rtol=0.05)
    assert not torch.equal(low, net(x))  # the matmuls did run in bfloat16

    env = "SocialNegotiation-v1"
    adapter = make_adapter(env, 1, {})
    replay = fill_replay(env, make_policy("random", "x", n_actions=98, seed=0), 400, seed=0)
    batch = to_torch(replay.sample(4, 8, np.random.default_rng(0)))

    def update(dtype: str) -> tuple[dict[str, float], DreamerAgent]:
        torch.manual_seed(0)
        cfg = T.TrainConfig(env=env, wm=T.WorldModelConfig(deter=32, hidden=32, embed=32),
                            dreamer=T.DreamerConfig(hidden=32, compute_dtype=dtype,
                                                    actor_head="structured"))
        wm, agent = T.build_models(cfg, adapter, "learner", "cpu")
        gen = torch.Generator().manual_seed(0)
        _, states = fit_step(wm, make_optimizer(wm), batch, generator=gen)
        return agent.update(states, generator=gen), agent

    full, _ = update("float32")
    half, agent = update("bfloat16")
    assert all(p.dtype == torch.float32 for p in agent.actor.parameters())
    for key in ("imag/return", "imag/reward", "imag/cont", "critic/value", "actor/entropy"):
        assert half[key] == pytest.approx(full[key], rel=0.05, abs=0.05), key
    assert half["imag/return"] != full["imag/return"]
    for native, same in ((True, half), (False, full)):
        monkeypatch.setattr(dreamer_agent, "bfloat16_native", lambda _, native=native: native)
        auto, auto_agent = update("auto")
        assert auto_agent.compute_dtype == ("bfloat16" if native else "float32")
        assert auto == same, native
    monkeypatch.undo()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        probs = agent.policy(torch.randn(3, agent.world_model.feature_dim)).probs
    assert probs.dtype == torch.float32
    torch.testing.assert_close(probs.sum(-1), torch.ones(3))
    start = State(torch.zeros(6, 32), torch.zeros(6, 8, 8), torch.full((6, 1, 7), 1 / 7))
    with torch.no_grad(), agent._autocast():  # the imagination's state and outputs: float32
        traj = agent.world_model.imagine(start, lambda f: agent.policy(f).probs.argmax(-1), 3,
                                         decode_behaviour=False)
    for name in ("deter", "stoch", "emotion"):
        assert getattr(traj.states, name).dtype == torch.float32, name
    for name in ("features", "reward", "cont"):
        assert getattr(traj, name).dtype == torch.float32, name
    with pytest.raises(ValueError, match="compute_dtype must be auto, float32 or bfloat16"):
        DreamerConfig(compute_dtype="float16")
    assert DreamerConfig().compute_dtype == "auto"


def test_bfloat16_native_answers_per_device_type(monkeypatch):
    """bfloat16 is native on an x86 CPU with AVX512-BF16 or AMX and on a GPU of compute
    capability 8 or more; an AVX2-only CPU, an older GPU or an unknown device type: no."""
    from lewm_rl import nets

    def answer(device_type, avx512_bf16=False, amx=False, capability=(8, 0)):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16,
                            raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
        nets.bfloat16_native.cache_clear()
        try:
            return nets.bfloat16_native(device_type)
        finally:
            nets.bfloat16_native.cache_clear()

    assert answer("cpu") is False
    assert answer("cpu", avx512_bf16=True) is True
    assert answer("cpu", amx=True) is True
    assert answer("cuda", capability=(7, 0)) is False  # V100: emulated
    assert answer("cuda", capability=(8, 0)) is True
    assert answer("meta", avx512_bf16=True) is False
