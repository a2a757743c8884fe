"""The prediction benchmark: cue filters (rule and learned), open-loop scoring, plumbing."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

import lewm_rl  # noqa: F401  (registers the ids)
from benchmarks import prediction as P
from benchmarks._prediction_eval import ReplayActions, open_loop_mask, score_open_loop
from lewm_rl.emotion_filter import (
    EmotionFilter,
    EmotionFilterConfig,
    apply_filter,
    fit_filter,
    flat_cues,
    gradient_reversal,
    probe_accuracy,
)
from lewm_rl.envs import affect as A
from lewm_rl.envs.wrappers import FilterEmotionCues, FilterEmotionCuesVector, filter_cues
from lewm_rl.world_models import LabelSpec, WorldModelConfig

torch.set_num_threads(1)  # tiny networks: threads only add overhead (and the machine is shared)

# ---------------------------------------------------------------------------------------------
# FilterEmotionCues


@pytest.mark.parametrize("env_id", ["SocialNegotiation-v0", "PublicGoods-v0"])
def test_filter_keeps_the_space_and_everything_but_the_cues(env_id):
    plain, wrapped = gym.make(env_id), FilterEmotionCues(gym.make(env_id))
    assert wrapped.observation_space == plain.observation_space
    obs_p, _ = plain.reset(seed=3)
    obs_w, _ = wrapped.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(10):
        assert wrapped.observation_space.contains(obs_w)
        for k in obs_p:
            if k in ("expression", "tone"):
                assert np.all(np.asarray(obs_w[k]) == 0)
            else:
                np.testing.assert_array_equal(obs_w[k], obs_p[k])
        a = int(rng.integers(plain.action_space.n))
        obs_p, _, term, trunc, _ = plain.step(a)
        obs_w, *_ = wrapped.step(a)
        if term or trunc:
            break


def test_vector_filter_matches_the_function():
    env = FilterEmotionCuesVector(gym.make_vec("SocialNegotiation-v0", num_envs=3,
                                               vectorization_mode="vector_entry_point"))
    obs, _ = env.reset(seed=0)
    assert env.single_observation_space == gym.make("SocialNegotiation-v0").observation_space
    assert np.all(obs["expression"] == 0) and np.all(obs["tone"] == 0)
    assert obs["task"].shape == (3, 18) and obs["expression"].dtype == np.float32


def test_filtered_cues_carry_no_emotion_for_the_best_reader():
    env = gym.make_vec("SocialNegotiation-v0", num_envs=16, vectorization_mode="vector_entry_point")
    obs, info = env.reset(seed=0)
    rng = np.random.default_rng(0)
    expr, tone, emo = [], [], []
    for _ in range(40):
        expr.append(obs["expression"])
        tone.append(obs["tone"])
        emo.append(info["emotion"])
        obs, _, _, _, info = env.step(rng.integers(0, 98, 16))
    expr, tone, emo = np.concatenate(expr), np.concatenate(tone), np.concatenate(emo)
    space = env.single_observation_space
    filtered = filter_cues({"expression": expr, "tone": tone, "task": np.zeros((len(emo), 18))},
                           space, batched=True)
    majority = np.bincount(emo, minlength=A.NUM_EMOTIONS).max() / len(emo)
    raw_acc = (A.best_single_step_reader(expr, tone, 0.85) == emo).mean()
    pred = A.best_single_step_reader(filtered["expression"], filtered["tone"], 0.85)
    assert raw_acc > majority + 0.2  # the cues are informative...
    assert len(np.unique(pred)) == 1  # ...the filtered ones are all alike: one answer for all
    assert (pred == emo).mean() <= majority + 1e-9


# ---------------------------------------------------------------------------------------------
# The learned filter


def _synthetic(n, rng):
    """Four emotions, a face cue (one-hot + noise), a tone cue (the emotion w.p. 0.8), and an
    emotion-free key that the filter must leave alone."""
    y = rng.integers(0, 4, n)
    face = (2.0 * np.eye(4)[y] + 0.5 * rng.standard_normal((n, 4))).astype(np.float32)
    tone = np.where(rng.random(n) < 0.8, y, rng.integers(0, 4, n))
    return {"face": face, "tone": tone, "other": rng.random((n, 2)).astype(np.float32)}, y


SYNTH_SPACE = spaces.Dict({"face": spaces.Box(-10, 10, (4,), np.float32),
                           "tone": spaces.Discrete(4),
                           "other": spaces.Box(0, 1, (2,), np.float32)})


def test_gradient_reversal_flips_the_gradient():
    x = torch.ones(3, requires_grad=True)
    (gradient_reversal(x, 2.0) * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [-2.0, -4.0, -6.0])


def test_learned_filter_lowers_emotion_decodability_and_learns_alpha():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    train, y_train = _synthetic(600, rng)
    test, y_test = _synthetic(400, rng)
    module = EmotionFilter(EmotionFilterConfig(hidden=32, adversary_hidden=32, steps=250,
                                               batch_size=128),
                           SYNTH_SPACE, ("face", "tone"), LabelSpec(1, 4))
    assert module.log_var.requires_grad
    alpha0 = float(module.alpha.detach())
    fit_filter(module, {k: torch.as_tensor(train[k]) for k in ("face", "tone")},
               torch.as_tensor(y_train), seed=0)
    assert abs(float(module.alpha.detach()) - alpha0) > 0.01  # alpha moved: it is learned
    f_train, f_test = apply_filter(module, train), apply_filter(module, test)
    assert SYNTH_SPACE.contains({k: v[0] for k, v in f_test.items()})
    np.testing.assert_array_equal(f_test["other"], test["other"])  # not a cue: untouched
    raw = probe_accuracy(flat_cues(module, train), y_train, flat_cues(module, test), y_test, 4,
                         steps=100)
    filtered = probe_accuracy(flat_cues(module, f_train), y_train, flat_cues(module, f_test),
                              y_test, 4, steps=100)
    assert raw > 0.9
    assert filtered < raw - 0.25


def test_learned_filter_rejects_unknown_keys():
    with pytest.raises(ValueError, match="cue keys"):
        EmotionFilter(EmotionFilterConfig(), SYNTH_SPACE, ("smell",), LabelSpec(1, 4))


# ---------------------------------------------------------------------------------------------
# Open-loop scoring


def test_open_loop_scoring_exact():
    # One stream of 6 rows; an episode starts at rows 0 and 3.
    is_first = np.array([[True, False, False, True, False, False]])
    target = np.array([[0, 1, 2, 0, 3, 1]])
    starts = np.array([[0, 0], [0, 1], [0, 3]])
    mask = open_loop_mask(is_first, starts, 3)
    # t0=0: rows 1, 2 scored, row 3 starts a new episode; t0=1: row 2 only; t0=3: rows 4, 5,
    # then the stream ends.
    np.testing.assert_array_equal(mask, [[1, 1, 1], [1, 0, 1], [0, 0, 0]])
    pred = np.array([[1, 2, 0],   # k=1: truth rows 1, 2, 4 = 1, 2, 3 -> 2 of 3 right
                     [2, 9, 1],   # k=2: truth rows 2, -, 5 = 2, -, 1 -> 2 of 2 (9 is masked)
                     [5, 5, 5]])  # k=3: nothing scored
    pred = np.where(pred == 9, 0, pred)
    out = score_open_loop(pred, target, is_first, starts, (1, 2, 3), classes=6)
    assert out[1]["accuracy"] == pytest.approx(2 / 3) and out[1]["count"] == 3
    # classes 1, 2 perfect (F1 1); 3 missed and 0 wrongly predicted (F1 0): macro 0.5
    assert out[1]["macro_f1"] == pytest.approx(0.5)
    assert out[2]["accuracy"] == 1.0 and out[2]["count"] == 2
    assert out[3]["count"] == 0 and np.isnan(out[3]["accuracy"])


def test_replay_actions_replays_in_order():
    policy = ReplayActions(torch.tensor([[1, 2], [3, 4]]))
    feats = torch.zeros(2, 5)
    assert policy(feats).tolist() == [1, 2] and policy(feats).tolist() == [3, 4]


# ---------------------------------------------------------------------------------------------
# Plumbing: the benchmark on a micro budget


def test_benchmark_plumbing_micro(tmp_path, monkeypatch):
    monkeypatch.setattr(P, "probe_accuracy",
                        lambda *a, **k: probe_accuracy(*a, **{**k, "steps": 5}))
    config = P.Config(
        seeds=1, envs=("SocialNegotiation-v0", "ObjectiveNegotiation-v0"), kinds=("lewm", "blind"),
        train_steps=256, small_steps=128, val_steps=128, test_steps=128, num_envs=8,
        updates=2, small_updates=1, batch_size=4, seq_len=8, eval_every=1, patience=1,
        horizons=(1, 3), open_loop_starts=16, open_loop_samples=2, held_out=("stoic",),
        betas=(0.0, 0.01), noises=(0.1, 0.3), teacher_forcings=(0.5, 1.0), filter_kinds=("lewm",),
        learned_filter_kinds=("lewm",),
        world_model=WorldModelConfig(deter=16, stoch=4, classes=4, hidden=16, embed=16,
                                     per_modality=8, emotion_embed=8),
        emotion_filter=EmotionFilterConfig(hidden=8, adversary_hidden=8, steps=2,
                                           batch_size=32),
        workers=1, out_dir=tmp_path)
    logs = []
    todo = P.cells(config.resolved())
    cache = tmp_path / "prediction.cache.json"
    P.run_cells(config.resolved(), todo[:2], cache, log=logs.append)  # a run cut short...
    logs.clear()
    out = P.run(config, log=logs.append)  # ...resumes from its cache
    assert any("2 cells cached" in line for line in logs)
    assert any(f"{len(todo) - 2} to run" in line for line in logs)
    assert set(out["results"]) == {c.key for c in todo}, [x for x in logs if "FAILED" in x]
    for name in ("prediction.md", "prediction.json", "prediction.png"):
        assert (tmp_path / name).stat().st_size > 0
    report = (tmp_path / "prediction.md").read_text()
    for section in ("Regime 1", "Regime 2", "Regime 3", "Regime 4", "Emotion filtering",
                    "ceiling", "Verdicts", "class frequencies", "Teacher-forcing sweep"):
        assert section in report
    payload = json.loads((tmp_path / "prediction.json").read_text())
    assert payload["verdicts"] and len(payload["paper_claims"]) == 3  # read by suite.py
    assert all(c["verdict"] in ("supported", "partly supported", "not supported", "not measured")
               for c in payload["paper_claims"])
    cell = payload["cells"]["main|SocialNegotiation-v0|lewm|0"]
    assert set(cell["test"]) == {"default", "stoic"}
    assert set(cell["test"]["default"]["open_loop"]) == {"1", "3"}
    assert "ceiling_behaviour_accuracy" in cell["test"]["default"]
