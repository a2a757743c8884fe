"""World models: shapes, exact consistency term, fairness of capacity, no label leak, learning."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

import lewm_rl  # noqa: F401
from lewm_rl.data import SequenceReplay, fill_replay, to_torch
from lewm_rl.world_models import (
    WORLD_MODELS,
    EmotionIntervention,
    WorldModelConfig,
    build_world_model,
    consistency,
    fit_step,
    make_optimizer,
)

SMALL = WorldModelConfig(deter=32, stoch=4, classes=4, hidden=32, embed=32, per_modality=8,
                         emotion_embed=8)


def negotiation_spaces():
    env = gym.make("SocialNegotiation-v0")
    return env.observation_space, env.action_space, env.unwrapped.emotion_space


def build(kind="lewm", config=SMALL, spaces_=None, seed=0):
    torch.manual_seed(seed)
    obs_space, act_space, emo_space = spaces_ or negotiation_spaces()
    return build_world_model(dataclasses.replace(config, kind=kind), obs_space, act_space,
                             emo_space, behaviour_key="partner_act")


class _Random:
    def __init__(self, n, seed=0):
        self.rng, self.n = np.random.default_rng(seed), n

    def reset(self, n):
        pass

    def reset_rows(self, rows):
        pass

    def act(self, obs):
        return self.rng.integers(0, self.n, len(obs["task"]))


@pytest.fixture(scope="module")
def negotiation_batch():
    replay = fill_replay("SocialNegotiation-v0", _Random(98), 2000, seed=0, num_envs=8)
    return to_torch(replay.sample(4, 12, np.random.default_rng(0)))


def test_consistency_term_exact():
    a = torch.tensor([[[0.5, 0.5], [1.0, 0.0]]])  # (N=1, S=2, C=2)
    b = torch.tensor([[[0.5, 0.5], [0.0, 1.0]]])
    # ||a - b||_2 over all latents and classes = sqrt(1 + 1)
    assert consistency(a, b).item() == pytest.approx(np.sqrt(2.0))
    assert consistency(a, a).item() == 0.0


@pytest.mark.parametrize("kind", WORLD_MODELS)
def test_shapes_at_every_entry(kind, negotiation_batch):
    wm = build(kind)
    c = wm.config  # the blind model is widened: its own sizes
    B, T = negotiation_batch["is_first"].shape
    s0 = wm.initial(3)
    assert s0.deter.shape == (3, c.deter) and s0.stoch.shape == (3, c.stoch, c.classes)
    obs = {m.key: negotiation_batch[m.key] for m in wm.mods}
    states, out, (carry, prev_a) = wm.observe(obs, negotiation_batch["action"],
                                              negotiation_batch["is_first"])
    assert states.deter.shape == (B, T, c.deter)
    assert wm.features(states).shape == (B, T, wm.feature_dim)
    assert out["prior"].shape == (B, T, c.stoch, c.classes)
    if kind != "blind":
        assert out["te_logits"].shape == (B, T, 1, 7)
        assert states.emotion.shape == (B, T, 1, 7)
    start = states.flatten()
    traj = wm.imagine(start, lambda f: torch.zeros(len(f), dtype=torch.long), horizon=5)
    N = B * T
    assert traj.features.shape == (6, N, wm.feature_dim)
    assert traj.actions.shape == (5, N) and traj.reward.shape == (6, N)
    assert traj.cont.shape == (6, N) and traj.behaviour.shape == (6, N, 1, 4)
    loss, metrics = wm.loss(negotiation_batch)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert "world_model/partner_act_accuracy" in metrics
    if kind != "blind":
        for key in ("emotion_accuracy", "next_emotion_macro_f1", "emotion_entropy"):
            assert f"world_model/{key}" in metrics
    with pytest.raises(AssertionError):
        wm.observe(obs, negotiation_batch["action"][:, :-1], negotiation_batch["is_first"])


def test_blind_model_has_the_same_capacity_within_5_percent():
    for cfg in (SMALL, WorldModelConfig()):
        lewm, blind = build("lewm", cfg), build("blind", cfg)
        assert abs(blind.num_parameters() - lewm.num_parameters()) <= 0.05 * lewm.num_parameters()
        assert blind.P == 0 and lewm.P == 1


def test_multi_partner_label_space():
    obs_space = spaces.Dict({"x": spaces.Box(-1, 1, (3,)), "act": spaces.MultiDiscrete([3, 3])})
    wm = build_world_model(SMALL, obs_space, spaces.Discrete(4), spaces.MultiDiscrete([7, 7, 7]))
    assert wm.P == 3 and wm.features(wm.initial(2)).shape == (2, wm.feature_dim)
    blind = build_world_model(dataclasses.replace(SMALL, kind="blind"), obs_space,
                              spaces.Discrete(4), spaces.MultiDiscrete([7, 7, 7]))
    assert abs(blind.num_parameters() - wm.num_parameters()) <= 0.05 * wm.num_parameters()


@pytest.mark.parametrize("kind", ["lewm", "state_first", "parallel"])
def test_labels_never_reach_posteriors_or_imagination(kind, negotiation_batch):
    wm = build(kind)
    obs = {m.key: negotiation_batch[m.key] for m in wm.mods}
    labels = negotiation_batch["emotion"][..., None]
    shuffled = labels[torch.randperm(len(labels))]
    runs = []
    for emotion in (None, labels, shuffled):
        g = torch.Generator().manual_seed(7)
        states, _, _ = wm.observe(obs, negotiation_batch["action"], negotiation_batch["is_first"],
                                  emotion=emotion, generator=g)
        policy = lambda f: f[:, :3].argmax(-1)  # noqa: E731  (deterministic in the features)
        traj = wm.imagine(states.flatten(), policy, 4, generator=torch.Generator().manual_seed(1))
        runs.append((states, traj))
    for states, traj in runs[1:]:
        torch.testing.assert_close(states.deter, runs[0][0].deter, rtol=0, atol=0)
        torch.testing.assert_close(states.emotion, runs[0][0].emotion, rtol=0, atol=0)
        torch.testing.assert_close(traj.features, runs[0][1].features, rtol=0, atol=0)


def test_intervention_forces_the_emotion_and_blind_refuses(negotiation_batch):
    wm = build("lewm")
    obs = {m.key: negotiation_batch[m.key] for m in wm.mods}
    states, _, _ = wm.observe(obs, negotiation_batch["action"], negotiation_batch["is_first"])
    stay = lambda f: torch.zeros(len(f), dtype=torch.long)  # noqa: E731
    traj = wm.imagine(states.flatten(), stay, 4, EmotionIntervention(emotion=3, step=2, until=4))
    assert torch.all(traj.emotion[2:4, :, 0, 3] == 1.0)
    assert not torch.all(traj.emotion[1, :, 0, 3] == 1.0)
    with pytest.raises(ValueError, match="emotion-blind"):
        build("blind").imagine(states.flatten(), stay, 2, EmotionIntervention(emotion=3))
    with pytest.raises(ValueError, match="intervention"):
        wm.imagine(states.flatten(), stay, 2, EmotionIntervention(emotion=9))


def test_save_load_round_trip_and_seeded_determinism(tmp_path, negotiation_batch):
    wm = build("lewm", seed=3)
    path = tmp_path / "wm.pt"
    wm.save(path)
    other = build("lewm", seed=4)
    assert not torch.equal(other.gru.weight_hh, wm.gru.weight_hh)
    other.load_weights(path)
    l1, _ = wm.loss(negotiation_batch, generator=torch.Generator().manual_seed(0))
    l2, _ = other.loss(negotiation_batch, generator=torch.Generator().manual_seed(0))
    assert l1.item() == l2.item()
    assert build("lewm", seed=3).gru.weight_hh.equal(wm.gru.weight_hh)
    with pytest.raises(ValueError, match="different config"):
        build("lewm", dataclasses.replace(SMALL, deter=16)).load_weights(path)


@pytest.mark.parametrize("kind", ["lewm", "blind"])
def test_save_then_load_rebuilds_the_model_with_its_spaces(tmp_path, negotiation_batch, kind):
    from lewm_rl.world_models import EmotionalWorldModel

    wm = build(kind, seed=3)
    wm.save(tmp_path / "wm.pt")
    other = EmotionalWorldModel.load(tmp_path / "wm.pt")
    assert other.config == wm.config and other.labels == wm.labels
    assert other.observation_space == wm.observation_space
    assert other.action_space == wm.action_space and other.behaviour_key == "partner_act"
    l1, _ = wm.loss(negotiation_batch, generator=torch.Generator().manual_seed(0))
    l2, _ = other.loss(negotiation_batch, generator=torch.Generator().manual_seed(0))
    assert l1.item() == l2.item()


def test_the_blind_models_emotion_probe_trains_only_itself(negotiation_batch):
    from lewm_rl.world_models.probe import EmotionProbe

    wm = build("blind")
    probe = EmotionProbe(wm.feature_dim, wm.labels.partners, wm.labels.classes, lr=1e-2)
    _, _, states = wm.loss_and_states(negotiation_batch)
    before = [p.detach().clone() for p in wm.parameters()]
    features = wm.features(states)  # not detached here: the probe must detach it
    losses = [probe.update(features, negotiation_batch["emotion_annotated"])["probe/loss"]
              for _ in range(30)]
    assert losses[-1] < losses[0]
    assert all(p.grad is None for p in wm.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, wm.parameters(), strict=True))
    assert probe(features.detach()).shape == (*features.shape[:-1], 1, 7)


@pytest.mark.parametrize("kind", ["lewm", "blind"])
def test_observe_over_a_sequence_is_observe_step_at_each_step(kind, negotiation_batch):
    """observe over a sequence gives the states of observe_step, step by step, to the bit
    (episodes starting inside the window included); a diverged posterior raises in both."""
    wm = build(kind)
    obs = {m.key: negotiation_batch[m.key] for m in wm.mods}
    action, first = negotiation_batch["action"], negotiation_batch["is_first"].bool()
    assert first[:, 0].all() and first[:, 1:].any()  # episodes start inside the windows too
    with torch.no_grad():
        states, out, _ = wm.observe(obs, action, first, generator=torch.Generator().manual_seed(5))
        gen = torch.Generator().manual_seed(5)
        embed = wm.encoder(obs)
        state, prev = wm.initial(len(action)), torch.zeros(len(action), dtype=torch.long)
        for t in range(action.shape[1]):
            state, post = wm.observe_step(state, prev, embed[:, t], first[:, t], gen)
            prev = action[:, t]
            assert torch.equal(state.deter, states.deter[:, t])
            assert torch.equal(state.stoch, states.stoch[:, t])
            assert torch.equal(state.emotion, states.emotion[:, t])
            assert torch.equal(post["post"], out["post"][:, t])
        wm.post[-1].bias[0] = float("nan")
        with pytest.raises(RuntimeError, match="probability tensor contains"):
            wm.observe(obs, action, first)
        with pytest.raises(RuntimeError, match="probability tensor contains"):
            wm.observe_step(state, prev, embed[:, 0], first[:, 0])


@pytest.mark.parametrize("reward_head", ["mse", "twohot"])
def test_fit_step_skips_non_finite_loss(negotiation_batch, reward_head):
    wm = build("lewm", dataclasses.replace(SMALL, reward_head=reward_head))
    opt = make_optimizer(wm)
    bad = dict(negotiation_batch)
    bad["reward"] = torch.full_like(bad["reward"], float("nan"))
    before = [p.detach().clone() for p in wm.parameters()]
    metrics, _ = fit_step(wm, opt, bad)
    assert metrics["world_model/skipped"] == 1.0
    assert all(torch.equal(a, b) for a, b in zip(before, wm.parameters(), strict=True))
    metrics, states = fit_step(wm, opt, negotiation_batch)
    assert metrics["world_model/skipped"] == 0.0
    assert states.deter.shape[:2] == negotiation_batch["is_first"].shape
    assert not states.deter.requires_grad


def test_two_hot_reward_head_starts_at_zero_and_learns_a_constant():
    wm = build("blind", dataclasses.replace(SMALL, reward_head="twohot"))
    assert wm.reward_head[-1].out_features == 255
    feats = torch.randn(10, wm.config.deter + SMALL.stoch * SMALL.classes)  # blind: widened
    assert float(wm.reward(feats).abs().max()) < 1e-5  # zero-initialised output
    opt = torch.optim.Adam(wm.reward_head.parameters(), lr=1e-2)
    for _ in range(200):
        opt.zero_grad()
        wm.reward_loss(feats, torch.full((10,), 0.7)).mean().backward()
        opt.step()
    torch.testing.assert_close(wm.reward(feats), torch.full((10,), 0.7), atol=0.02, rtol=0)


@pytest.mark.parametrize("reward_head", ["mse", "twohot"])
def test_reward_ensemble_mean_spread_and_bootstrap_loss(negotiation_batch, reward_head):
    one = build("lewm", dataclasses.replace(SMALL, reward_head=reward_head))
    three = build("lewm", dataclasses.replace(SMALL, reward_head=reward_head, reward_heads=3))
    # the extra heads are built last: every other weight initialises as with one head
    extra = {k for k in three.state_dict() if k.startswith("reward_ensemble.")}
    assert extra and len(three.reward_ensemble) == 2
    for k, v in one.state_dict().items():
        torch.testing.assert_close(three.state_dict()[k], v, rtol=0, atol=0)
    feats = torch.randn(6, SMALL.deter + SMALL.stoch * SMALL.classes)
    heads = torch.stack([three._reward_heads(feats)[i] for i in range(3)])
    if reward_head == "mse":
        assert float((heads[0] - heads[1]).abs().max()) > 1e-4  # independently initialised
    mean, std = three.reward_spread(feats)
    torch.testing.assert_close(mean, heads.mean(0))
    torch.testing.assert_close(three.reward(feats), heads.mean(0))
    torch.testing.assert_close(std, heads.std(0))
    m1, s1 = one.reward_spread(feats)
    torch.testing.assert_close(m1, one.reward(feats))
    assert float(s1.abs().max()) == 0.0
    # each head's loss weighted by its own Poisson(1) draw per step
    target = torch.rand(6)
    gen = torch.Generator().manual_seed(3)
    got = three.reward_loss(feats, target, gen)
    weight = torch.poisson(torch.ones(3, 6), generator=torch.Generator().manual_seed(3))
    per_head = []
    for head in (three.reward_head, *three.reward_ensemble):
        out = head(feats)
        per_head.append(three.twohot.loss(out, target) if three.twohot
                        else (out.squeeze(-1) - target) ** 2)
    torch.testing.assert_close(got, (weight * torch.stack(per_head)).mean(0))
    assert not torch.equal(weight[0], weight[1])  # the heads see different resamples
    # imagination reports the spread, and one head reports none
    start = three.initial(4)
    traj = three.imagine(start, lambda f: torch.zeros(len(f), dtype=torch.long), 3)
    assert traj.reward_std.shape == traj.reward.shape == (4, 4)
    if reward_head == "mse":
        assert float(traj.reward_std[1:].min()) > 0
    traj1 = one.imagine(one.initial(4), lambda f: torch.zeros(len(f), dtype=torch.long), 3)
    assert float(traj1.reward_std.abs().max()) == 0.0
    # the ensemble trains: a fit step moves every head's output layer
    opt = make_optimizer(three)
    before = [head[-1].weight.detach().clone() for head in three.reward_ensemble]
    metrics, _ = fit_step(three, opt, negotiation_batch)
    assert metrics["world_model/skipped"] == 0.0
    assert all(not torch.equal(a, head[-1].weight)
               for a, head in zip(before, three.reward_ensemble, strict=True))
    with pytest.raises(ValueError, match="reward_heads"):
        dataclasses.replace(SMALL, reward_heads=0)


# ---------------------------------------------------------------------------------------------
# Learning: a tiny deterministic emotional world.


class TinyEmotionalEnv(gym.Env):
    """The partner's emotion cycles with the action: ``E' = (E + a + 1) mod 3`` over
    {neutral, joy, anger}; its visible act is a fixed function of its emotion."""

    EMOTIONS = (0, 1, 3)
    observation_space = spaces.Dict({"act": spaces.Discrete(3), "x": spaces.Box(0, 1, (1,))})
    action_space = spaces.Discrete(2)
    emotion_space = spaces.Discrete(7)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.e, self.t = int(self.np_random.integers(3)), 0
        return self._obs(), {"emotion": self.EMOTIONS[self.e]}

    def _obs(self):
        return {"act": self.e, "x": np.array([self.t / 16], dtype=np.float32)}

    def step(self, action):
        self.e, self.t = (self.e + int(action) + 1) % 3, self.t + 1
        return self._obs(), 0.0, False, self.t >= 16, {"emotion": self.EMOTIONS[self.e]}


def tiny_replay(steps=3000, seed=0):
    env = TinyEmotionalEnv()
    replay = SequenceReplay.for_spaces(steps, 1, env.observation_space, env.emotion_space)
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    first = True
    for _ in range(steps):
        a = int(rng.integers(2))
        replay.add({"act": [obs["act"]], "x": obs["x"][None], "action": [a], "reward": [0.0],
                    "is_first": [first], "is_terminal": [False], "emotion": [info["emotion"]],
                    "emotion_annotated": [info["emotion"]]})
        obs, _, _, trunc, info = env.step(a)
        first = trunc
        if trunc:
            obs, info = env.reset()
    return env, replay


def test_lewm_learns_deterministic_emotion_transitions():
    env, replay = tiny_replay()
    torch.manual_seed(0)
    wm = build_world_model(dataclasses.replace(SMALL, label_key="emotion"), env.observation_space,
                           env.action_space, env.emotion_space, behaviour_key="act")
    opt = make_optimizer(wm)
    rng = np.random.default_rng(0)
    for _ in range(250):
        fit_step(wm, opt, to_torch(replay.sample(16, 16, rng)))
    _, m = wm.loss(to_torch(replay.sample(64, 16, rng)))
    assert m["world_model/next_emotion_accuracy"] >= 0.95, m
    assert m["world_model/emotion_accuracy"] >= 0.95, m


def test_structured_action_embedding_is_the_sum_of_kind_split_and_tone(tmp_path):
    from lewm_rl.envs import negotiation_core as C
    from lewm_rl.world_models import EmotionalWorldModel

    obs_space, act_space, emo_space = negotiation_spaces()
    torch.manual_seed(0)
    wm = build_world_model(dataclasses.replace(SMALL, kind="lewm", action_embed="structured"),
                           obs_space, act_space, emo_space, behaviour_key="partner_act",
                           action_structure=C.ACTION_STRUCTURE)
    w, b = wm.enc_a.weight, wm.enc_a.bias  # (per_modality, 3 kinds + 24 splits + 4 tones)
    assert w.shape[1] == 3 + C.NUM_SPLITS + 4
    actions = torch.tensor([0, 4 * 17 + 3, C.ACCEPT, C.WALK_AWAY])
    got = wm._embed_action(actions)
    want = [w[:, 0] + w[:, 3 + 0] + w[:, 3 + C.NUM_SPLITS + 0] + b,
            w[:, 0] + w[:, 3 + 17] + w[:, 3 + C.NUM_SPLITS + 3] + b,
            w[:, 1] + b, w[:, 2] + b]
    torch.testing.assert_close(got, torch.stack(want))
    # No previous action at an episode's start: the bias alone.
    torch.testing.assert_close(wm._embed_action(actions, torch.zeros(4))[0], b)
    # The flat embedding (and any model built without a structure) reads a one-hot.
    flat = build_world_model(dataclasses.replace(SMALL, kind="lewm", action_embed="flat"),
                             obs_space, act_space, emo_space, action_structure=C.ACTION_STRUCTURE)
    assert flat.enc_a.weight.shape[1] == C.NUM_ACTIONS
    torch.testing.assert_close(flat._embed_action(actions)[1],
                               flat.enc_a.weight[:, 4 * 17 + 3] + flat.enc_a.bias)
    # The structure travels with a saved model.
    wm.save(tmp_path / "wm.pt")
    assert EmotionalWorldModel.load(tmp_path / "wm.pt").action_structure == C.ACTION_STRUCTURE


def test_action_features_describe_every_action_as_decode_action_does():
    from lewm_rl.envs import affect as A
    from lewm_rl.envs import negotiation_core as C

    kind, split, tone = C.decode_action(np.arange(C.NUM_ACTIONS))
    f = C.ACTION_FEATURES
    assert f.shape == (C.NUM_ACTIONS, len(C.ACTION_FEATURE_NAMES)) == (98, 10)
    for a in range(C.NUM_ACTIONS):
        want = np.zeros(10, np.float32)
        want[{C.ACT_OFFER: 0, C.ACT_ACCEPT: 1, C.ACT_WALK: 2}[int(kind[a])]] = 1
        if kind[a] == C.ACT_OFFER:
            want[3:6] = C.SPLITS[split[a]] / C.ITEM_COUNTS
            want[6 + tone[a]] = 1
        np.testing.assert_allclose(f[a], want, err_msg=f"action {a}")
    assert C.ACTION_FEATURE_NAMES[6:] == tuple(f"tone_{t}" for t in A.TONES)
    # offer 4 * 17 + 3 keeps split 17's items with the fourth tone
    np.testing.assert_allclose(f[4 * 17 + 3, 3:6], C.SPLITS[17] / C.ITEM_COUNTS)


def test_feature_action_embedding_reads_the_one_hot_and_the_envs_features(tmp_path):
    from lewm_rl.envs import negotiation_core as C
    from lewm_rl.world_models import EmotionalWorldModel

    obs_space, act_space, emo_space = negotiation_spaces()
    cfg = dataclasses.replace(SMALL, kind="lewm", action_embed="features")
    wm = build_world_model(cfg, obs_space, act_space, emo_space, behaviour_key="partner_act",
                           action_structure=C.ACTION_STRUCTURE,
                           action_features=C.ACTION_FEATURES)
    w, b = wm.enc_a.weight, wm.enc_a.bias
    assert w.shape[1] == C.NUM_ACTIONS + C.ACTION_FEATURES.shape[1]
    actions = torch.tensor([0, 4 * 17 + 3, C.ACCEPT])
    feats = torch.as_tensor(C.ACTION_FEATURES)
    want = torch.stack([w[:, a] + w[:, C.NUM_ACTIONS:] @ feats[a] + b for a in actions.tolist()])
    torch.testing.assert_close(wm._embed_action(actions), want)
    # the features travel with a saved model, and the blind twin is matched with them
    wm.save(tmp_path / "wm.pt")
    loaded = EmotionalWorldModel.load(tmp_path / "wm.pt")
    torch.testing.assert_close(loaded._embed_action(actions), want)
    blind = build_world_model(dataclasses.replace(cfg, kind="blind"), obs_space, act_space,
                              emo_space, action_features=C.ACTION_FEATURES)
    assert abs(blind.num_parameters() - wm.num_parameters()) <= 0.05 * wm.num_parameters()
    with pytest.raises(ValueError, match="declares none"):
        build_world_model(cfg, obs_space, act_space, emo_space)
    with pytest.raises(ValueError, match=r"\(98, d\)"):
        build_world_model(cfg, obs_space, act_space, emo_space,
                          action_features=C.ACTION_FEATURES[:5])


def test_the_adapters_hand_the_world_model_the_envs_action_features():
    from lewm_rl.envs import negotiation_core as C
    from lewm_rl.train import make_adapter

    for env_id in ("SocialNegotiation-v1", "social_negotiation_v1"):
        adapter = make_adapter(env_id, 2, {}, False)
        np.testing.assert_array_equal(adapter.action_features, C.ACTION_FEATURES)
        adapter.close()
    adapter = make_adapter("PublicGoods-v0", 2, {}, False)
    assert adapter.action_features is None
    adapter.close()


def test_prior_heads_loss_trains_the_heads_alone_on_prior_samples(negotiation_batch):
    import torch.nn.functional as F

    wm = build("lewm", dataclasses.replace(SMALL, prior_heads=0.5))
    batch = negotiation_batch
    states, out, _ = wm.observe({m.key: batch[m.key] for m in wm.mods}, batch["action"],
                                batch["is_first"].bool(), None,
                                generator=torch.Generator().manual_seed(0))
    loss = wm.prior_head_loss(states, out["prior"], batch, torch.Generator().manual_seed(1))
    loss.backward()
    heads = [*wm.reward_head.parameters(), *wm.cont_head.parameters()]
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in heads)
    others = [p for n, p in wm.named_parameters()
              if not n.startswith(("reward_head.", "cont_head."))]
    assert all(p.grad is None for p in others)  # the latents are detached
    # exact: the heads read [h; z] with z the prior sample the generator draws
    from lewm_rl.world_models.model import sample_index

    idx = sample_index(out["prior"].detach(), torch.Generator().manual_seed(1))
    feat = torch.cat([states.deter.detach(),
                      F.one_hot(idx, out["prior"].shape[-1]).float().flatten(-2)], -1)
    want = (((wm.reward_head(feat).squeeze(-1) - batch["reward"].float()) ** 2).mean()
            + F.binary_cross_entropy_with_logits(wm.cont_head(feat).squeeze(-1),
                                                 1.0 - batch["is_terminal"].float()))
    torch.testing.assert_close(loss, want)
    # in the world-model loss with its weight, and absent at 0
    _, metrics = wm.loss(batch, torch.Generator().manual_seed(0), with_metrics=False)
    assert "world_model/loss_prior_heads" in metrics
    _, metrics = build("lewm").loss(batch, torch.Generator().manual_seed(0), with_metrics=False)
    assert "world_model/loss_prior_heads" not in metrics
    with pytest.raises(ValueError, match="prior_heads"):
        dataclasses.replace(SMALL, prior_heads=-1.0)


def test_heads_prior_loss_and_metrics_read_the_prior_imagination_draws_never_the_label(
        negotiation_batch):
    """LEWM's training prior is label-conditioned on the steps teacher forcing picks; the heads'
    prior loss and the logged one-step metrics must read ``TS(h, E_hat)`` as imagination does,
    so that changing the training labels moves neither."""
    from lewm_rl.world_models.model import imagined_prior

    wm = build("lewm", dataclasses.replace(SMALL, prior_heads=1.0, teacher_forcing=1.0))
    batch = dict(negotiation_batch)
    key = wm.config.label_key
    other = dict(batch, **{key: (batch[key] + 1) % wm.K})  # every training label changed
    keys = ("world_model/loss_prior_heads", "world_model/reward_error",
            "world_model/end_recall", "world_model/next_state_error")
    runs = []
    for b in (batch, other):
        _, metrics = wm.loss(b, torch.Generator().manual_seed(0), with_metrics=True)
        runs.append(metrics)
    for k in keys:
        assert runs[0][k] == pytest.approx(runs[1][k], rel=1e-6), k
    # and the training prior itself does move with the labels (teacher forcing 1: all steps)
    obs = {m.key: batch[m.key] for m in wm.mods}
    outs = [wm.observe(obs, batch["action"], batch["is_first"].bool(), b[key].long(),
                       teacher_forcing=1.0, generator=torch.Generator().manual_seed(0))[1]
            for b in (batch, other)]
    assert not torch.allclose(outs[0]["prior"], outs[1]["prior"])
    torch.testing.assert_close(imagined_prior(outs[0]), imagined_prior(outs[1]))
    torch.testing.assert_close(imagined_prior(outs[0]), outs[0]["ts_pred"])


def test_disagreement_is_the_mutual_information_between_member_and_latent():
    from lewm_rl.world_models.model import disagreement

    sure_a, sure_b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    even = torch.tensor([0.5, 0.5])
    # (M=2, S=1, C=2): two members sure of different classes disagree by log 2
    apart = disagreement(torch.stack([sure_a, sure_b])[:, None])
    assert apart.item() == pytest.approx(np.log(2))
    # members alike, however uncertain, do not disagree
    assert disagreement(torch.stack([even, even])[:, None]).item() == pytest.approx(0.0, abs=1e-7)
    # latents add up; leading dims are kept: (M=2, N=3, S=2, C=2)
    probs = torch.stack([torch.stack([sure_a, sure_a]), torch.stack([sure_b, sure_a])])
    out = disagreement(probs[:, None].expand(2, 3, 2, 2))
    assert out.shape == (3,)
    torch.testing.assert_close(out, torch.full((3,), float(np.log(2))))


@pytest.mark.parametrize("kind", ["lewm", "blind"])
def test_prior_ensemble_trains_its_members_alone_and_imagination_reports_its_disagreement(
        kind, negotiation_batch):
    from lewm_rl.world_models.model import _kl

    wm = build(kind, dataclasses.replace(SMALL, prior_ensemble=3))
    assert len(wm.ts_ensemble) == 3
    batch = negotiation_batch
    states, out, _ = wm.observe({m.key: batch[m.key] for m in wm.mods}, batch["action"],
                                batch["is_first"].bool(), None,
                                generator=torch.Generator().manual_seed(0))
    members = out["prior_ensemble"]
    B, T = batch["is_first"].shape
    assert members.shape == (3, B, T, SMALL.stoch, SMALL.classes)
    loss = wm.prior_ensemble_loss(out["post"], members, torch.Generator().manual_seed(1))
    # exact: each member's KL from the posterior, weighted by its own Poisson(1) draw per step
    p = out["post"].detach()
    kl = _kl((p, p.log()), (members, members.log()))
    weight = torch.poisson(torch.ones_like(kl), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(loss, (weight * kl).mean())
    loss.backward()
    trained = {n for n, p in wm.named_parameters() if p.grad is not None
               and float(p.grad.abs().sum()) > 0}
    assert trained and all(n.startswith("ts_ensemble.") for n in trained)
    # in the world-model loss, and absent without an ensemble
    _, metrics = wm.loss(batch, torch.Generator().manual_seed(0))
    assert metrics["world_model/loss_prior_ensemble"] > 0
    _, metrics = build(kind).loss(batch, torch.Generator().manual_seed(0))
    assert "world_model/loss_prior_ensemble" not in metrics
    # imagination: the members' disagreement at every step, >= 0; none without an ensemble
    start = states.flatten()[:5].detach()
    traj = wm.imagine(start, lambda f: torch.zeros(len(f), dtype=torch.long), 4,
                      generator=torch.Generator().manual_seed(2), decode_behaviour=False)
    assert traj.disagreement.shape == (5, 5) and bool((traj.disagreement >= -1e-6).all())
    torch.testing.assert_close(traj.disagreement[2], wm.prior_disagreement(traj.states.deter[2]))
    assert build(kind).imagine(start, lambda f: torch.zeros(len(f), dtype=torch.long), 2
                               ).disagreement is None
    with pytest.raises(ValueError, match="prior_ensemble must be 0"):
        dataclasses.replace(SMALL, prior_ensemble=1)


def test_standardised_decoder_keeps_running_moments_and_weighs_each_dimension_by_them():
    from lewm_rl.distributions import symlog
    from lewm_rl.world_models.codec import STD_FLOOR, ObsDecoder, modalities

    space = spaces.Dict({"x": spaces.Box(-10, 10, (3,)), "c": spaces.Discrete(4)})
    mods = modalities(space)
    dec = ObsDecoder(mods, 5, 8, "standardised")
    rng = np.random.default_rng(0)
    # column 0 wide, column 1 narrow, column 2 constant
    chunks = [np.stack([rng.normal(0, 3, n), rng.normal(1, 0.1, n), np.full(n, 2.0)], -1)
              for n in (7, 1, 12)]
    for x in chunks:
        dec.observe({"x": torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 3),
                     "c": torch.zeros(len(x), 1, dtype=torch.long)})
    every = symlog(torch.tensor(np.concatenate(chunks), dtype=torch.float32))
    assert float(dec.count_x) == 20
    torch.testing.assert_close(dec.mean_x, every.mean(0))
    torch.testing.assert_close(dec.var_x, every.var(0, unbiased=False))
    scale = dec.scale("x")
    torch.testing.assert_close(scale, every.std(0, unbiased=False).clamp_min(STD_FLOOR))
    assert float(scale[2]) == pytest.approx(STD_FLOOR)  # constant: floored, not divided by 0
    # forward: the head predicts standardised values, returned in symlog space
    with torch.no_grad():
        dec.heads["x"].weight.zero_()
        dec.heads["x"].bias.copy_(torch.tensor([1.0, -2.0, 0.0]))
    pred = dec(torch.zeros(2, 5))
    torch.testing.assert_close(pred["x"], (dec.mean_x + torch.tensor([1.0, -2.0, 0.0]) * scale
                                           ).expand(2, 3))
    # loss: each dimension's squared error divided by its variance, or plain when not weighted
    obs = {"x": torch.tensor([[0.5, 1.0, 2.0]]), "c": torch.tensor([3])}
    err = pred["x"][:1] - symlog(obs["x"])
    torch.testing.assert_close(dec.loss({k: v[:1] for k, v in pred.items()}, obs)["x"],
                               ((err / scale) ** 2).sum(-1))
    plain = dec.loss({k: v[:1] for k, v in pred.items()}, obs, weighted=False)
    torch.testing.assert_close(plain["x"], (err ** 2).sum(-1))
    torch.testing.assert_close(plain["c"], dec.loss({k: v[:1] for k, v in pred.items()}, obs)["c"])
    # symlog targets: no moments kept, observing changes nothing, errors unweighted
    plain_dec = ObsDecoder(mods, 5, 8)
    plain_dec.observe({"x": torch.ones(2, 3), "c": torch.zeros(2, dtype=torch.long)})
    assert not any(n.startswith(("mean_", "var_", "count_")) for n, _ in plain_dec.named_buffers())
    with pytest.raises(ValueError, match="symlog or standardised"):
        ObsDecoder(mods, 5, 8, "zscore")


def test_fit_step_updates_the_decoders_moments_and_a_checkpoint_keeps_them(tmp_path,
                                                                           negotiation_batch):
    from lewm_rl.distributions import symlog
    from lewm_rl.world_models import EmotionalWorldModel

    config = dataclasses.replace(SMALL, decoder_targets="standardised")
    wm = build("blind", config)
    fit_step(wm, make_optimizer(wm), negotiation_batch)
    task = symlog(negotiation_batch["task"].reshape(-1, 18))
    assert float(wm.decoder.count_task) == len(task)
    torch.testing.assert_close(wm.decoder.var_task, task.var(0, unbiased=False))
    # the item values (a tenth of the pool each) weigh more than under symlog targets
    assert float(wm.decoder.scale("task")[0]) < 0.5
    wm.save(tmp_path / "wm.pt")
    other = EmotionalWorldModel.load(tmp_path / "wm.pt")
    torch.testing.assert_close(other.decoder.var_task, wm.decoder.var_task)
    l1, _ = wm.loss(negotiation_batch, generator=torch.Generator().manual_seed(0))
    l2, _ = other.loss(negotiation_batch, generator=torch.Generator().manual_seed(0))
    assert l1.item() == l2.item()
    with pytest.raises(ValueError, match="decoder_targets must be symlog or standardised"):
        dataclasses.replace(SMALL, decoder_targets="zscore")
