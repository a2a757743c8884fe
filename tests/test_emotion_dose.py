"""The dose-response report: exact answers on hand-built result files."""

from __future__ import annotations

import json

import pytest

from benchmarks import emotion_dose as D
from lewm_rl.envs import negotiation_core as C

RULES = list(C.V1_RULES)


def row(env, kappa, value, seeds=(3, 3), rules=RULES, view="cues", learner="ppo",
        population="default"):
    return {"env": env, "kappa": kappa, "rules": rules, "learner": learner, "view": view,
            "population": population, "seeds": list(seeds), "value": value,
            "low": value - 0.01, "high": value + 0.01}


def test_value_points_pick_the_v1_rows_and_the_run_with_more_seeds():
    five = {"rows": [row("SocialNegotiation-v0", 1.0, 0.09, (5, 5)),
                     row("ObjectiveNegotiation-v0", None, -0.05, (5, 5))]}
    dose = {"rows": [row("SocialNegotiation-v0", 2.0, 0.12),
                     row("SocialNegotiation-v0", 1.0, 0.50),  # fewer seeds than the 5-seed run
                     row("SocialNegotiation-v0", 4.0, 0.30, view="truth"),  # diagnostic: ignored
                     row("SocialNegotiation-v0", 4.0, 0.30, rules=["mood_decides"]),  # other rules
                     row("SocialNegotiation-v0", 4.0, 0.30, learner="recurrent-ppo"),
                     row("SocialNegotiation-v0", 4.0, 0.30, population="stoic"),
                     row("SocialNegotiation-v0", 0.5, 0.04)]}
    got = D.value_points([five, dose], C.V1_RULES)
    assert sorted(got) == [0.0, 0.5, 1.0, 2.0]
    assert got[1.0]["value"] == 0.09 and got[1.0]["seeds"] == 5
    assert got[0.0]["value"] == -0.05 and got[0.0]["env"] == "ObjectiveNegotiation-v0"
    assert got[2.0]["value"] == 0.12 and got[0.5]["seeds"] == 3


def test_prediction_point_is_lewm_minus_blind_in_points():
    diff = {"mean": 0.012, "low": -0.002, "high": 0.03, "n": 3}
    summary = {"differences": {"SocialNegotiation-v1": {
        "default": {"accuracy": diff, "macro_f1": None},
        "open-loop H=5": {"accuracy": diff, "macro_f1": diff}}}}
    got = D.prediction_point(summary)
    assert got["one-step accuracy"] == pytest.approx({"mean": 1.2, "low": -0.2, "high": 3.0,
                                                      "n": 3})
    assert got["one-step macro_f1"] is None
    assert got["open-loop H=5 macro_f1"]["mean"] == pytest.approx(1.2)


def test_report_from_files(tmp_path):
    value = tmp_path / "results.json"
    value.write_text(json.dumps({"rows": [row("SocialNegotiation-v0", 2.0, 0.123)]}))
    diff = {"mean": 0.02, "low": 0.01, "high": 0.03, "n": 3}
    (tmp_path / "prediction_k2").mkdir()
    (tmp_path / "prediction_k2" / "prediction.json").write_text(json.dumps({"summary": {
        "differences": {"SocialNegotiation-v1": {"default": {"accuracy": diff, "macro_f1": diff},
                                                 "open-loop H=5": {}}}}}))
    assert D.main(D.Config(value=(value,), out=tmp_path)) == 0
    text = (tmp_path / "dose.md").read_text()
    assert "| 2 | +12.3 % [+11.3, +13.3] | 3 | +2.0 [+1.0, +3.0] | +2.0 [+1.0, +3.0] | " \
           "not measured | not measured | 3 |" in text
    assert "| 0.5 | not measured |" in text
    assert (tmp_path / "dose.png").stat().st_size > 1000
    assert D.main(D.Config(value=(tmp_path / "none.json",), out=tmp_path / "empty")) == 2
