"""The value-of-emotional-information instrument: its arithmetic, its cache and one real cell."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import emotion_value as ev


def test_emotion_value_is_the_share_of_the_gain_over_random_exactly():
    v, lo, hi = ev.emotion_value(np.array([2.0, 2.2]), np.array([1.6, 1.8]), random=1.0)
    assert v == pytest.approx((2.1 - 1.7) / (2.1 - 1.0))
    assert lo <= v <= hi
    # nothing to gain: 0 with a degenerate interval; one seed: no interval
    assert ev.emotion_value(np.array([2.0, 2.0]), np.array([2.0, 2.0]), 1.0)[0] == 0.0
    assert ev.emotion_value(np.array([2.0]), np.array([1.5]), 1.0) == (0.5, 0.5, 0.5)


def test_reveal_emotion_replaces_the_cues_with_the_label():
    obs = {"task": np.zeros((2, 3)), "expression": np.ones((2, 7), np.float32),
           "tone": np.array([2, 3])}
    out = ev.reveal_emotion(obs, np.array([3, 0]))
    np.testing.assert_array_equal(out["expression"][0], ev.TRUTH_GAIN * np.eye(7)[3])
    np.testing.assert_array_equal(out["tone"], [0, 0])
    assert obs["expression"].sum() == 14  # the input is left alone


def _record(env, view, seed, ret, kappa=None):
    cell = ev.Cell(env, kappa, (), "ppo", view, seed, 100, (), 8, ("default",))
    return {"cell": {**cell.__dict__}, "curve": [(100, ret)], "returns": {"default": ret},
            "wall_s": 1.0}


def test_summary_and_criterion_on_hand_built_records(monkeypatch, tmp_path):
    monkeypatch.setattr(ev, "random_return", lambda env, kwargs, pop, episodes: 1.0)
    records = [_record("SocialNegotiation-v0", "cues", s, r) for s, r in enumerate((2.0, 2.0))]
    records += [_record("SocialNegotiation-v0", "filtered", s, 1.6) for s in range(2)]
    records += [_record("ObjectiveNegotiation-v0", v, s, 2.0) for v in ("cues", "filtered")
                for s in range(2)]
    rows = ev.summarise(records)
    by = {r["env"]: r for r in rows}
    assert by["SocialNegotiation-v0"]["value"] == pytest.approx(0.4)
    assert by["ObjectiveNegotiation-v0"]["value"] == 0.0
    [verdict] = ev.verdicts(rows)
    assert "criterion met" in verdict
    # a twin where the cues pay as much fails the criterion
    records = [r for r in records if r["cell"]["env"] == "SocialNegotiation-v0"]
    records += [_record("ObjectiveNegotiation-v0", "cues", s, 2.0) for s in range(2)]
    records += [_record("ObjectiveNegotiation-v0", "filtered", s, 1.9) for s in range(2)]
    assert "criterion not met" in ev.verdicts(ev.summarise(records))[0]
    assert "| SocialNegotiation-v0 |" in ev.render(ev.summarise(records), records, "cmd")
    ev.plot(ev.summarise(records), records, tmp_path / "value.png")
    assert (tmp_path / "value.png").stat().st_size > 10_000


def test_cached_cells_are_not_run_again(tmp_path, monkeypatch):
    cell = ev.Cell("SocialNegotiation-v0", None, (), "ppo", "cues", 0, 100, (), 8,
                   ("default",))
    (tmp_path / f"{cell.name}.json").write_text(json.dumps(_record(
        "SocialNegotiation-v0", "cues", 0, 1.5)))

    def fail(cell):
        raise AssertionError("a cached cell ran again")

    monkeypatch.setattr(ev, "run_cell", fail)
    [record] = ev.run_cells([cell], tmp_path, jobs=1)
    assert record["returns"]["default"] == 1.5


@pytest.mark.parametrize(("learner", "view"), [("ppo", "truth"), ("recurrent-ppo", "filtered")])
def test_one_real_cell_trains_and_evaluates(learner, view):
    cell = ev.Cell("SocialNegotiation-v0", 2.0, ("accept_first", "mood_decides"), learner, view,
                   0, 2_048, (), 8, ("default", "stoic"))
    record = ev.run_cell(cell)
    assert record["curve"][-1][0] >= 2_048
    assert set(record["returns"]) == {"default", "stoic"}
    assert all(0.0 <= r <= 4.0 for r in record["returns"].values())


def test_objective_twins_get_no_influence_and_names_carry_the_rules():
    cfg = ev.Config(kappas=(1.0, 2.0), rules=("accept_first",), seeds=1)
    made = ev.cells(cfg)
    assert {c.kappa for c in made if c.env == "ObjectiveNegotiation-v0"} == {None}
    assert {c.kappa for c in made if c.env == "SocialNegotiation-v0"} == {1.0, 2.0}
    assert all("__accept_first__" in c.name for c in made)
    assert len({c.name for c in made}) == len(made) == 2 * 2 + 2  # (2 kappas + twin) x 2 views
