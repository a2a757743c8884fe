"""The training CLI as a user runs it: TensorBoard output, checkpoints, resume, errors."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--steps", "320", "--prefill", "96", "--num-envs", "4", "--batch-size", "4",
        "--seq-len", "8", "--eval-every", "160", "--checkpoint-every", "160", "--log-every", "80",
        "--eval-episodes", "2", "--eval-populations", "stoic", "--train-ratio", "8",
        "--wm.deter", "32", "--wm.hidden", "32", "--wm.embed", "32", "--dreamer.hidden", "32",
        "--dreamer.horizon", "4", "--threads", "1", "--no-progress"]


def train(*args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "lewm_rl.train", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def only_run(logdir: Path) -> Path:
    runs = sorted(p.parent for p in logdir.glob("*/*/config.json"))
    assert len(runs) == 1, runs
    return runs[0]


def test_cli_smoke_writes_tensorboard_and_checkpoint(tmp_path):
    train("--env", "SocialNegotiation-v0", "--logdir", str(tmp_path), *TINY)
    run = only_run(tmp_path)
    assert run.name == "lewm" and (run / "checkpoint.pt").is_file()
    results = json.loads((run / "results.json").read_text())
    assert results["step"] >= 320 and math.isfinite(results["eval/episode_return"])
    assert "eval/stoic/episode_return" in results
    acc = EventAccumulator(str(run), size_guidance={"images": 0, "tensors": 0})
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    for tag in ("eval/episode_return", "train/episode_return", "train/fps", "imag/return",
                "world_model/loss", "world_model/emotion_accuracy",
                "world_model/emotion_macro_f1", "world_model/next_emotion_accuracy",
                "world_model/partner_act_accuracy", "actor/entropy"):
        assert tag in scalars, f"{tag} missing from {sorted(scalars)}"
        assert all(math.isfinite(e.value) for e in acc.Scalars(tag)), tag
    # held-out populations and the references at every evaluation, each step logged once
    for tag in ("eval/stoic/episode_return", "eval/reference/random", "eval/reference/greedy",
                "eval/reference/oracle", "eval/normalised_return", "eval/stoic/normalised_return"):
        steps = [e.step for e in acc.Scalars(tag)]
        assert len(steps) >= 2 and len(set(steps)) == len(steps), (tag, steps)
    assert (acc.Scalars("eval/reference/oracle")[0].value
            > acc.Scalars("eval/reference/random")[0].value)
    assert "custom_scalars__config__" in acc.Tags()["tensors"]
    assert {"hparam/eval/episode_return", "hparam/eval/stoic/normalised_return",
            "eval/emotion_accuracy", "eval/emotion_macro_f1"} <= scalars
    images = set(acc.Tags()["images"])
    assert {"eval/emotion_prediction", "eval/video", "eval/what_if"} <= images
    texts = {t.split("/text_summary")[0] for t in acc.Tags()["tensors"]}
    assert {"hyperparameters", "eval/transcript"} <= texts
    # a finished run extends with a larger budget (its replay grows, nothing is lost)
    train("--resume", str(run), "--steps", "480")
    assert json.loads((run / "results.json").read_text())["step"] >= 480


def test_evaluation_is_deterministic_and_leaves_the_training_rng_alone(tmp_path):
    import torch

    from lewm_rl import train as T

    cfg = T.resolved(T.TrainConfig(num_envs=2, eval_episodes=8, prefill=16, seq_len=8,
                                   progress=False, run_dir=str(tmp_path),
                                   wm=T.WorldModelConfig(deter=32, hidden=32, embed=32),
                                   dreamer=T.DreamerConfig(hidden=32)))
    trainer = T.Trainer(cfg, tmp_path)
    returns = []
    for seed in range(4):  # whatever the global generator holds
        torch.manual_seed(seed)
        before = torch.get_rng_state()
        returns.append(trainer._eval_returns("default"))
        assert torch.equal(before, torch.get_rng_state())
    assert len(set(returns)) == 1, returns


def test_compare_trains_lewm_and_blind_side_by_side(tmp_path):
    proc = train("--compare", "--logdir", str(tmp_path), *TINY, "--steps", "192",
                 "--eval-populations")
    assert "%|" not in proc.stderr, "--no-progress drew progress bars in the children"
    assert "| eval/episode_return |" in proc.stdout and "lewm - blind" in proc.stdout
    assert "| wall time (s) |" in proc.stdout and "| eval/emotion_accuracy |" in proc.stdout
    parents = list(tmp_path.iterdir())
    assert len(parents) == 1
    assert sorted(p.name for p in parents[0].iterdir()) == ["blind", "lewm"]
    for kind in ("lewm", "blind"):
        assert (parents[0] / kind / "results.json").is_file()
        assert json.loads((parents[0] / kind / "config.json").read_text())["seed"] == 0


def test_pettingzoo_env_trains_every_seat(tmp_path):
    train("--env", "social_negotiation_v0", "--logdir", str(tmp_path), *TINY, "--steps", "192",
          "--eval-populations")
    run = only_run(tmp_path)
    acc = EventAccumulator(str(run))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/negotiator_0/episode_return", "train/negotiator_1/episode_return"} <= tags


def test_sigkill_then_resume_carries_on(tmp_path):
    args = ["--logdir", str(tmp_path), *TINY, "--steps", "2000", "--checkpoint-every", "96",
            "--eval-every", "100000", "--eval-populations"]
    proc = subprocess.Popen([sys.executable, "-m", "lewm_rl.train", *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    ckpt = None
    while time.time() < deadline:
        found = list(tmp_path.glob("*/*/checkpoint.pt"))
        if found:
            ckpt = found[0]
            time.sleep(3)  # let it run on past the first checkpoint
            break
        time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert ckpt is not None, proc.stderr.read().decode()
    import torch

    from lewm_rl.checkpoint import load

    saved = load(ckpt)["step"]
    assert saved >= 96
    run = ckpt.parent
    train("--resume", str(run), "--steps", str(saved + 128))
    # whatever temporary the kill left half-written is gone, and was never read as a checkpoint
    assert not list(run.glob("*.tmp")), list(run.glob("*.tmp"))
    final = load(run / "checkpoint.pt")
    assert final["step"] >= saved + 128
    assert isinstance(final["learners"][0]["wm"], dict)
    del torch


def test_unknown_env_names_the_available_ones(tmp_path):
    proc = train("--env", "Chess-v0", "--logdir", str(tmp_path), check=False)
    assert proc.returncode == 2
    assert "SocialNegotiation-v0" in proc.stderr and "Chess-v0" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_invalid_option_value_says_what_is_allowed(tmp_path):
    proc = train("--world-model", "psychic", "--logdir", str(tmp_path), check=False)
    assert proc.returncode == 2
    assert "lewm" in proc.stderr and "blind" in proc.stderr
    proc = train("--population", "grumpy", "--logdir", str(tmp_path), check=False)
    assert proc.returncode == 2 and "volatile" in proc.stderr


def test_prefill_too_small_for_seq_len_fails_at_validation(tmp_path):
    proc = train("--logdir", str(tmp_path), *TINY, "--prefill", "8", check=False)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--prefill" in lines[0] and "--seq-len" in lines[0], proc.stderr
    assert not list(tmp_path.iterdir()), "the run directory was created before the error"


def test_corrupt_checkpoint_gives_one_line(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    from lewm_rl.train import TrainConfig, config_to_dict, resolved

    cfg = resolved(TrainConfig(run_dir=str(run)))
    (run / "config.json").write_text(json.dumps(config_to_dict(cfg)))
    (run / "checkpoint.pt").write_bytes(b"this is not a checkpoint")
    proc = train("--resume", str(run), check=False)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and str(run / "checkpoint.pt") in lines[0], proc.stderr


def test_persistent_nan_stops_with_a_clear_message(tmp_path, monkeypatch):
    from lewm_rl import train as T

    def nan_step(*args, **kwargs):
        wm = args[0]
        return {"world_model/skipped": 1.0}, wm.initial(1)

    monkeypatch.setattr(T, "fit_step", nan_step)
    cfg = T.TrainConfig(steps=400, prefill=8, num_envs=2, batch_size=2, seq_len=4,
                        max_skipped_updates=3, progress=False, run_dir=str(tmp_path / "r"),
                        eval_every=10_000, checkpoint_every=10_000)
    with pytest.raises(T.TrainingError, match="not finite for 3 updates in a row"):
        T.train(cfg)


# -- nothing lost, nothing silent (issue 16) -------------------------------------------------------
def _one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_forced_divergence_keeps_a_healthy_checkpoint_and_stops_with_one_line(
        tmp_path, monkeypatch, capsys):
    from lewm_rl import train as T
    from lewm_rl.checkpoint import find_nonfinite, load

    real_update = T.Trainer._update
    explode = {"at": 284}

    def exploding_schedule(self):  # the world model's lr turns NaN just before a checkpoint
        if self.step >= explode["at"]:  # (NaN weights at once: bounded two-hot losses survive a
            for ln in self.learners:    # huge lr for a while, which made the step uncertain)
                for group in ln.wm_opt.param_groups:
                    group["lr"] = float("nan")
        return real_update(self)

    monkeypatch.setattr(T.Trainer, "_update", exploding_schedule)
    run = tmp_path / "run"
    args = ["--run-dir", str(run), *TINY, "--steps", "400", "--checkpoint-every", "96",
            "--eval-every", "100000", "--eval-populations"]
    assert T.main(args) == 2
    line = _one_line(capsys.readouterr().err)
    assert "training diverged at step" in line and "not finite" in line, line
    assert f"{run / 'checkpoint.pt'} (step 192)" in line and "checkpoint.prev.pt" in line, line
    saved = load(run / "checkpoint.pt")
    assert saved["step"] == 192 and find_nonfinite(saved["learners"]) is None
    assert load(run / "checkpoint.prev.pt")["step"] == 96
    # the kept checkpoint is sound: it resumes and trains on (with a sane learning rate)
    explode["at"] = 10**9
    trainer = T.Trainer(T.read_run_config(run), run)
    trainer.restore()
    assert trainer.health() is None
    assert T.main(["--resume", str(run), "--steps", "240", "--no-progress"]) == 0
    assert json.loads((run / "results.json").read_text())["step"] == 240


def test_nonfinite_actor_critic_updates_are_not_applied(tmp_path):
    import torch

    from lewm_rl import train as T

    cfg = T.resolved(T.TrainConfig(num_envs=2, prefill=16, seq_len=4, batch_size=2,
                                   progress=False, run_dir=str(tmp_path),
                                   wm=T.WorldModelConfig(deter=32, hidden=32, embed=32),
                                   dreamer=T.DreamerConfig(hidden=32, horizon=3)))
    ln = T.Trainer(cfg, tmp_path).learners[0]
    start = ln.wm.initial(4)
    with torch.no_grad():  # NaN imagined rewards: the returns, and both losses, are NaN
        for p in ln.wm.reward_head.parameters():
            p.fill_(float("nan"))
    before = [p.clone() for p in (*ln.agent.actor.parameters(), *ln.agent.critic.parameters())]
    metrics = ln.agent.update(start, generator=torch.Generator().manual_seed(0))
    assert metrics["actor/skipped"] == 1.0 and metrics["critic/skipped"] == 1.0
    after = [*ln.agent.actor.parameters(), *ln.agent.critic.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert torch.isfinite(ln.agent.return_scale)


def test_sigterm_saves_and_the_resumed_run_ends_as_the_uninterrupted_one(tmp_path):
    args = [*TINY, "--checkpoint-every", "96", "--eval-populations"]
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    cmd = [sys.executable, "-m", "lewm_rl.train", *args]
    ref = subprocess.Popen([*cmd, "--run-dir", str(whole)], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    proc = subprocess.Popen([*cmd, "--run-dir", str(stopped)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not (stopped / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # a scheduler's preemption, mid-run
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "SIGTERM" in err and f"--resume {stopped}" in err, err
    from lewm_rl.checkpoint import load

    assert 96 <= load(stopped / "checkpoint.pt")["step"] < 320
    assert not list(stopped.glob("*.tmp"))
    train("--resume", str(stopped))  # to the saved --steps
    assert ref.wait(timeout=240) == 0, ref.stderr.read()
    a = json.loads((whole / "results.json").read_text())
    b = json.loads((stopped / "results.json").read_text())
    assert b["step"] == 320 and a == b

    def curve(run: Path, tag: str) -> list[tuple[int, float]]:
        acc = EventAccumulator(str(run))
        acc.Reload()
        return [(e.step, e.value) for e in acc.Scalars(tag)]

    # the whole learning curve, not only its end: each evaluation once, at the same values
    for tag in ("eval/episode_return", "train/episode_return", "world_model/loss"):
        assert curve(stopped, tag) == curve(whole, tag), tag


def test_resume_keeps_scalars_at_the_checkpoint_step_and_removes_stale_temporaries(tmp_path):
    run = tmp_path / "run"
    train("--run-dir", str(run), *TINY, "--steps", "160", "--eval-populations")
    stale = run / "checkpoint.pt.k3j2x9.tmp"
    stale.write_bytes(b"\0" * 4096)  # a write killed midway
    train("--resume", str(run), "--steps", "240")
    assert not stale.exists()
    acc = EventAccumulator(str(run))
    acc.Reload()
    for tag in ("eval/episode_return", "train/fps", "world_model/loss"):
        steps = [e.step for e in acc.Scalars(tag)]
        assert 160 in steps and len(steps) == len(set(steps)), (tag, steps)
    assert max(e.step for e in acc.Scalars("eval/episode_return")) == 240


def test_resume_continues_to_the_saved_steps_unless_steps_is_given(tmp_path, monkeypatch):
    from lewm_rl import train as T

    run = tmp_path / "run"
    run.mkdir()
    cfg = T.resolved(T.TrainConfig(steps=2000, run_dir=str(run)))
    (run / "config.json").write_text(json.dumps(T.config_to_dict(cfg)))
    seen = []
    monkeypatch.setattr(T, "train", lambda config: seen.append(config))
    assert T.main(["--resume", str(run)]) == 0
    assert T.main(["--resume", str(run), "--steps", "500"]) == 0
    assert T.main(["--resume", str(run), "--steps=30000"]) == 0
    assert [c.steps for c in seen] == [2000, 500, 30000]


def _cases():
    import torch

    cases = [
        (["--device", "cuda:64"], "--device"),
        (["--device", "tpu9"], "--device"),
        (["--agent", "ppo", "--device", "cuda:64"], "--device"),
        (["--train-ratio", "nan"], "--train-ratio"),
        (["--train-ratio", "inf"], "--train-ratio"),
        (["--annotation-noise", "nan"], "--annotation-noise"),
        (["--wm.lr", "inf"], "--wm.lr"),
        (["--dreamer.entropy", "nan"], "--dreamer.entropy"),
        (["--agent", "ppo", "--sb3.learning-rate", "nan"], "--sb3.learning-rate"),
        (["--num-envs", "64"], "--num-envs"),
    ]
    if not torch.cuda.is_available():
        cases += [(["--device", "cuda"], "--device"),
                  (["--agent", "ppo", "--device", "cuda"], "--device")]
    return cases


@pytest.mark.parametrize(("args", "flag"), _cases(), ids=lambda x: " ".join(x)
                         if isinstance(x, list) else x)
def test_validation_errors_are_one_line_exit_2_and_create_nothing(tmp_path, capsys, args, flag):
    from lewm_rl import train as T

    assert T.main(["--logdir", str(tmp_path / "runs"), "--no-progress", *args]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("error: ") and flag in line, line
    assert not (tmp_path / "runs").exists(), "a run directory was created before the error"


def test_resume_of_a_config_with_unknown_keys_is_one_line(tmp_path, capsys):
    from lewm_rl import train as T

    run = tmp_path / "run"
    run.mkdir()
    d = T.config_to_dict(T.resolved(T.TrainConfig(run_dir=str(run))))
    d["colour"] = "blue"
    d["wm"]["depth"] = 3
    (run / "config.json").write_text(json.dumps(d))
    assert T.main(["--resume", str(run)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "colour" in line and "wm.depth" in line and "config.json" in line, line
    assert sorted(p.name for p in run.iterdir()) == ["config.json"]
    (run / "config.json").write_text("{not json")
    assert T.main(["--resume", str(run)]) == 2
    assert "config.json" in _one_line(capsys.readouterr().err)


# ---------------------------------------------------------------------------------------------
# --filter-cues: the agent never sees the partners' expression or tone; the labels still train


@pytest.mark.parametrize("env_id", ["SocialNegotiation-v1", "public_goods_v0"])
def test_filtered_adapter_neutralises_the_cues_and_keeps_the_rest(env_id):
    import numpy as np

    from lewm_rl.env_adapters import make_adapter

    plain, filtered = (make_adapter(env_id, 3, {}, filter_cues=f) for f in (False, True))
    (obs_p, info_p), (obs_f, info_f) = plain.reset(seed=5), filtered.reset(seed=5)
    rng = np.random.default_rng(0)
    cues_seen = False
    for _ in range(12):
        for seat in plain.seats:
            for k in obs_p[seat]:
                if k in ("expression", "tone"):
                    assert np.all(obs_f[seat][k] == 0), (seat, k)
                    cues_seen |= bool(np.any(obs_p[seat][k] != 0))
                else:
                    np.testing.assert_array_equal(obs_f[seat][k], obs_p[seat][k])
            np.testing.assert_array_equal(info_f[seat]["emotion"], info_p[seat]["emotion"])
        actions = {s: rng.integers(0, plain.action_space(s).n, 3) for s in plain.seats}
        obs_p, _, _, _, info_p = plain.step(actions)
        obs_f, _, _, _, info_f = filtered.step(actions)
    assert cues_seen  # the unfiltered env did show cues: the comparison above could fail


def test_filter_cues_run_stores_no_cues_but_every_label(tmp_path):
    import numpy as np

    from lewm_rl import train as T

    def replay_after_steps(filter_cues: bool):
        cfg = T.resolved(T.TrainConfig(env="SocialNegotiation-v1", num_envs=4, prefill=16,
                                       seq_len=8, progress=False, filter_cues=filter_cues,
                                       run_dir=str(tmp_path / str(filter_cues)),
                                       wm=T.WorldModelConfig(deter=32, hidden=32, embed=32),
                                       dreamer=T.DreamerConfig(hidden=32)))
        trainer = T.Trainer(cfg, tmp_path / str(filter_cues))
        trainer._start_episodes()
        for _ in range(20):
            trainer._env_step()
        rb = trainer.learners[0].replay
        return {k: v[:, :rb.filled] for k, v in rb.data.items()}

    plain, filtered = replay_after_steps(False), replay_after_steps(True)
    assert np.any(plain["expression"] != 0) and np.any(plain["tone"] != 0)
    assert np.all(filtered["expression"] == 0) and np.all(filtered["tone"] == 0)
    np.testing.assert_array_equal(filtered["emotion"], plain["emotion"])  # same seeds, same labels
    assert len(np.unique(filtered["emotion"])) > 1


def test_filter_cues_cli_is_saved_and_old_configs_read_as_unfiltered_and_float32(tmp_path):
    from lewm_rl import train as T

    train("--env", "SocialNegotiation-v1", "--filter-cues", "--logdir", str(tmp_path), *TINY,
          "--steps", "192")
    saved = json.loads((only_run(tmp_path) / "config.json").read_text())
    assert saved["filter_cues"] is True
    del saved["filter_cues"]  # a run written before the switch existed
    assert T.config_from_dict(saved).filter_cues is False
    results = json.loads((only_run(tmp_path) / "results.json").read_text())
    from lewm_rl.nets import bfloat16_native

    assert saved["dreamer"]["compute_dtype"] == "auto"
    assert results["compute_dtype"] == ("bfloat16" if bfloat16_native("cpu") else "float32")
    del saved["dreamer"]["compute_dtype"]  # written when float32 was the only precision
    assert T.config_from_dict(saved).dreamer.compute_dtype == "float32"


def test_one_step_records_each_live_move_its_predicted_and_its_real_reward_and_ending(tmp_path):
    import numpy as np
    import torch

    from lewm_rl import train as T

    cfg = T.resolved(T.TrainConfig(env="SocialNegotiation-v1", num_envs=2, prefill=16, seq_len=8,
                                   progress=False, run_dir=str(tmp_path),
                                   wm=T.WorldModelConfig(deter=32, hidden=32, embed=32),
                                   dreamer=T.DreamerConfig(hidden=32)))
    trainer = T.Trainer(cfg, tmp_path)
    head = trainer.learners[0].wm.reward_head[-1]
    cont = trainer.learners[0].wm.cont_head[-1]
    with torch.no_grad():  # the model predicts 0.25 for every move, and goes on with p 0.8
        head.weight.zero_()
        head.bias.fill_(0.25)
        cont.weight.zero_()
        cont.bias.fill_(float(np.log(0.8 / 0.2)))
    plain = T.play_episodes(trainer.learners, cfg.env, trainer.env_kwargs, 6)
    played = T.play_episodes(trainer.learners, cfg.env, trainer.env_kwargs, 6, one_step=True)
    np.testing.assert_array_equal(played["returns"], plain["returns"])  # the episodes unchanged
    m = len(played["step_actions"])
    assert m == len(played["step_reward"]) == len(played["step_reward_predicted"]) > 6
    np.testing.assert_allclose(played["step_reward_predicted"], 0.25, rtol=1e-6)
    # every live step once: the rewards add up to the episodes' returns
    assert played["step_reward"].sum() == pytest.approx(played["returns"].sum(), rel=1e-6)
    assert played["step_actions"].min() >= 0 and played["step_actions"].max() < 98
    # one live move per step of every episode; the model expects an episode of 1 to 32 steps
    assert played["lengths"].sum() == m and (played["lengths"] >= 1).all()
    assert played["imagined_lengths"].shape == (6,)
    assert ((played["imagined_lengths"] >= 1) & (played["imagined_lengths"] <= 32)).all()
    # the continuation it predicted for each move, and whether the episode really ended there
    np.testing.assert_allclose(played["step_cont_predicted"], 0.8, rtol=1e-5)
    assert played["step_terminal"].dtype == bool and played["step_terminal"].sum() == 6
    assert played["step_terminal"][-1]  # the last live move ends the last episode
    # other policies: random moves are not the mode's, seeded, and imagine nothing
    rand = T.play_episodes(trainer.learners, cfg.env, trainer.env_kwargs, 6, one_step=True,
                           policy="random")
    again = T.play_episodes(trainer.learners, cfg.env, trainer.env_kwargs, 6, one_step=True,
                            policy="random")
    np.testing.assert_array_equal(rand["step_actions"], again["step_actions"])
    assert len(np.unique(rand["step_actions"])) > len(np.unique(played["step_actions"]))
    assert "imagined_returns" not in rand and rand["step_terminal"].sum() == 6
    sampled = T.play_episodes(trainer.learners, cfg.env, trainer.env_kwargs, 6, policy="sample")
    assert sampled["lengths"].shape == (6,)
    with pytest.raises(ValueError, match="allowed: mode, sample, random"):
        T.play_episodes(trainer.learners, cfg.env, trainer.env_kwargs, 6, policy="greedy")


def test_record_returns_every_live_steps_belief_its_decoding_and_the_observation(tmp_path):
    import numpy as np
    import torch

    from lewm_rl import train as T

    cfg = T.resolved(T.TrainConfig(env="SocialNegotiation-v1", num_envs=2, prefill=16, seq_len=8,
                                   progress=False, run_dir=str(tmp_path),
                                   wm=T.WorldModelConfig(deter=32, hidden=32, embed=32),
                                   dreamer=T.DreamerConfig(hidden=32)))
    (ln,) = T.Trainer(cfg, tmp_path).learners
    head = ln.wm.decoder.heads["task"]
    with torch.no_grad():  # the decoder reads back 0.5 in symlog space for every task field
        head.weight.zero_()
        head.bias.fill_(0.5)
    plain = T.play_episodes([ln], cfg.env, {}, 5, policy="sample")
    played = T.play_episodes([ln], cfg.env, {}, 5, policy="sample", record="task")
    np.testing.assert_array_equal(played["returns"], plain["returns"])  # the episodes unchanged
    m = played["lengths"].sum()
    assert played["step_features"].shape == (m, ln.wm.feature_dim)
    assert played["step_observed"].shape == played["step_decoded"].shape == (m, 18)
    np.testing.assert_allclose(played["step_decoded"], 0.5)
    np.testing.assert_array_equal(np.bincount(played["step_episode"]), played["lengths"])
    # the first observation of every episode, as the env gives it at its seed
    from lewm_rl.env_adapters import make_adapter

    first, _ = make_adapter(cfg.env, 5, {}).reset(seed=T.EVAL_SEED)
    rows = [np.flatnonzero(played["step_episode"] == i)[0] for i in range(5)]
    np.testing.assert_array_equal(played["step_observed"][rows], first["learner"]["task"])


def test_pessimism_and_disagreement_need_their_ensembles_and_train_with_them(tmp_path):
    from lewm_rl.agents.dreamer import DreamerConfig
    from lewm_rl.train import TrainConfig
    from lewm_rl.world_models import WorldModelConfig

    with pytest.raises(ValueError, match="--wm.reward-heads"):
        TrainConfig(dreamer=DreamerConfig(pessimism=1.0)).validate()
    with pytest.raises(ValueError, match="--wm.prior-ensemble"):
        TrainConfig(dreamer=DreamerConfig(disagreement=1.0)).validate()
    TrainConfig(dreamer=DreamerConfig(pessimism=1.0),
                wm=WorldModelConfig(reward_heads=3)).validate()
    run = tmp_path / "run"
    train("--run-dir", str(run), *TINY, "--wm.reward-heads", "3", "--dreamer.pessimism", "1.0",
          "--wm.prior-ensemble", "3", "--dreamer.disagreement", "1.0")
    saved = json.loads((run / "config.json").read_text())
    assert saved["wm"]["reward_heads"] == 3 and saved["dreamer"]["pessimism"] == 1.0
    assert saved["wm"]["prior_ensemble"] == 3 and saved["dreamer"]["disagreement"] == 1.0
    from lewm_rl.tensorboard import read_scalars

    _, spread, _ = read_scalars(run, "imag/reward_std")
    assert len(spread) and (spread > 0).all()
    _, unknown, _ = read_scalars(run, "imag/disagreement")
    assert len(unknown) and (unknown > 0).all()


def test_replay_recency_reaches_the_replay_and_is_checked(tmp_path, monkeypatch):
    from lewm_rl import train as T
    from lewm_rl.data.replay import SequenceReplay

    with pytest.raises(ValueError, match=r"--replay-recency must be in \[0, 1\]"):
        T.TrainConfig(replay_recency=1.5).validate()
    asked = []
    sample = SequenceReplay.sample

    def spy(self, batch_size, seq_len, rng, recency=0.0):
        asked.append(recency)
        return sample(self, batch_size, seq_len, rng, recency)

    monkeypatch.setattr(SequenceReplay, "sample", spy)
    cfg = T.resolved(T.TrainConfig(env="SocialNegotiation-v1", num_envs=2, prefill=16, seq_len=8,
                                   batch_size=2, steps=40, replay_recency=0.5, progress=False,
                                   eval_every=10_000, run_dir=str(tmp_path),
                                   wm=T.WorldModelConfig(deter=16, hidden=16, embed=16),
                                   dreamer=T.DreamerConfig(hidden=16)))
    trainer = T.Trainer(cfg, tmp_path)
    trainer._start_episodes()
    for _ in range(cfg.seq_len):
        trainer._env_step()
    trainer._update()
    assert asked and set(asked) == {0.5}


@pytest.mark.parametrize("mix", [0.0, 1.0])
def test_explore_mix_reaches_the_training_loops_moves(tmp_path, mix):
    import numpy as np

    from lewm_rl import train as T
    from lewm_rl.envs import negotiation_core as C

    cfg = T.resolved(T.TrainConfig(env="SocialNegotiation-v1", num_envs=64, prefill=64,
                                   seq_len=8, batch_size=2, steps=2_000, progress=False,
                                   eval_every=10_000, run_dir=str(tmp_path),
                                   wm=T.WorldModelConfig(deter=16, hidden=16, embed=16),
                                   dreamer=T.DreamerConfig(hidden=16, explore_mix=mix)))
    trainer = T.Trainer(cfg, tmp_path)
    trainer._start_episodes()
    trainer.step = cfg.prefill  # past the prefill's random moves: the agent's own
    moves = np.concatenate([trainer._act(trainer.live["obs"], trainer.live["is_first"])
                            ["learner"] for _ in range(20)])
    ends = np.isin(moves, [C.ACCEPT, C.WALK_AWAY]).mean()
    if mix:  # accept and walk away a third of the time each
        assert ends == pytest.approx(2 / 3, abs=0.05)
    else:  # the near-uniform first policy: 2 moves in 98
        assert ends < 0.05
