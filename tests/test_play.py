"""``python -m lewm_rl.play``: a person in the learner's seat sees the cues, never the emotion,
until each deal closes."""

from __future__ import annotations

from lewm_rl.envs import EMOTIONS
from lewm_rl.play import PlayConfig, main, play


def scripted(moves):
    moves = iter(moves)
    return lambda prompt: next(moves)


def test_a_person_plays_a_negotiation_and_sees_the_emotion_only_after_each_deal():
    lines: list[str] = []
    total = play(PlayConfig(env="SocialNegotiation-v0", seed=0),
                 scripted(["h", "oops", "96"] + ["97"] * 4), lines.append)
    text = "\n".join(lines)
    assert "face (noisy)" in text and "tone:" in text and "your values" in text
    assert "keep book" in text and "'oops' is not a move" in text  # h lists, bad input says so
    reveals = [ln for ln in lines if ln.startswith("** deal closed")]
    assert len(reveals) == 4 and all(any(e in ln for e in EMOTIONS) for ln in reveals)
    before_first_reveal = text[:text.index("** deal closed")]
    assert "really felt" not in before_first_reveal
    assert "episode over" in text and total == 0.0  # four walk-aways pay nothing


def test_public_goods_reveals_every_round_and_q_quits():
    lines: list[str] = []
    play(PlayConfig(env="PublicGoods-v0"), scripted(["0", "q"]), lines.append)
    assert sum("the others really felt" in ln for ln in lines) == 1
    assert any(ln.startswith("P3 face") for ln in lines)


def test_pettingzoo_without_a_run_says_what_to_pass(capsys):
    assert main(["--env", "social_negotiation_v0"]) == 2
    assert "--run" in capsys.readouterr().err


def test_pettingzoo_seat_against_a_trained_agent(tmp_path):
    from lewm_rl import train as T

    T.train(T.TrainConfig(env="social_negotiation_v0", steps=64, prefill=32, num_envs=2,
                          batch_size=2, seq_len=8, train_ratio=4, eval_every=10_000,
                          checkpoint_every=10_000, eval_episodes=1, eval_populations=(),
                          threads=1, progress=False, run_dir=str(tmp_path),
                          wm=T.WorldModelConfig(deter=16, hidden=16, embed=16),
                          dreamer=T.DreamerConfig(hidden=16, horizon=2)))
    lines: list[str] = []
    play(PlayConfig(run=str(tmp_path)), scripted(["97"] * 4 + ["q"] * 40), lines.append)
    assert sum(ln.startswith("** deal closed") for ln in lines) >= 1
    assert "episode over" in lines[-1]
