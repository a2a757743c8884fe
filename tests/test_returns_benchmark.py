"""The returns benchmark's statistics: exact answers on hand-made curves."""

from __future__ import annotations

import pytest

from benchmarks.returns import (
    ReturnsConfig,
    budget,
    cell,
    censored_median,
    ratio_interval,
    steps_to_reach,
)


def test_steps_to_reach_is_the_first_evaluation_at_or_above_the_target():
    steps = [500, 1000, 1500, 2000]
    assert steps_to_reach(steps, [0.5, 1.9, 2.0, 1.0], 2.0) == 1500.0  # "at" counts
    assert steps_to_reach(steps, [0.5, 2.5, 1.0, 3.0], 2.0) == 1000.0  # first, not best
    assert steps_to_reach(steps, [0.5, 1.0, 1.5, 1.9], 2.0) is None  # censored


def test_censored_median_counts_misses_at_the_budget_and_says_so():
    out = censored_median([1000.0, 2000.0, 3000.0], 12_000)
    assert out["median"] == 2000.0 and out["reached"] == 3 and not out["censored"]
    assert 1000.0 <= out["low"] <= out["median"] <= out["high"] <= 3000.0
    out = censored_median([1000.0, None, None], 12_000)
    assert out["median"] == 12_000.0 and out["censored"] and out["reached"] == 1


def test_ratio_of_medians():
    r = ratio_interval([1000.0, 1000.0, 1000.0], [10_000.0, 10_000.0, 10_000.0])
    assert r == {"ratio": 0.1, "low": 0.1, "high": 0.1}


def test_budgets_and_cells_per_arm():
    cfg = ReturnsConfig(steps=12_000, model_free_steps=300_000, evaluations=24)
    assert budget(cfg, "lewm-dreamer") == 12_000 and budget(cfg, "recurrent-ppo") == 300_000
    c = cell(cfg, "SocialNegotiation-v1", "ppo", 3)
    assert (c.agent, c.seed, c.steps) == ("ppo", 3, 300_000)
    assert dict(c.overrides)["eval_every"] == 12_500
    assert cell(cfg, "SocialNegotiation-v1", "blind-dreamer", 0).world_model == "blind"
    with pytest.raises(ValueError, match="unknown arm"):
        ReturnsConfig(arms=("sac",))


def test_filtered_arms_add_the_switch_and_leave_the_other_cells_named_as_before():
    cfg = ReturnsConfig(evaluations=12)
    plain = cell(cfg, "SocialNegotiation-v1", "ppo", 0)
    # the name of a cell trained before the filtered arms existed (a rename would retrain them all)
    assert plain.name == "SocialNegotiation-v1__ppo__lewm__s0__300000__454c907557"
    filtered = cell(cfg, "SocialNegotiation-v1", "lewm-dreamer-filtered", 0)
    assert dict(filtered.overrides)["filter_cues"] is True
    assert "filter_cues" not in dict(cell(cfg, "SocialNegotiation-v1", "lewm-dreamer", 0).overrides)
    assert (filtered.agent, filtered.world_model, filtered.steps) == ("dreamer", "lewm", 12_000)
    assert filtered.name != cell(cfg, "SocialNegotiation-v1", "lewm-dreamer", 0).name


def test_value_of_cues_pairs_each_arm_with_its_filtered_twin():
    from benchmarks.returns import value_of_cues

    def row(values):
        return {"populations": {"default": {"values": values}}}

    rows = {"lewm-dreamer": row([2.0, 2.0]), "lewm-dreamer-filtered": row([1.5, 1.5]),
            "blind-dreamer": row([2.0, 2.0]), "ppo": row([3.0])}
    out = value_of_cues(rows, random=1.0)
    assert set(out) == {"lewm-dreamer"}  # blind and ppo have no filtered twin here
    # (2.0 - 1.5) / (2.0 - 1.0), constant samples: the interval is the point
    assert out["lewm-dreamer"]["value"] == pytest.approx(0.5)
    assert out["lewm-dreamer"]["low"] == pytest.approx(0.5) == out["lewm-dreamer"]["high"]
    assert (out["lewm-dreamer"]["runs"], out["lewm-dreamer"]["runs_filtered"]) == (2, 2)


def test_report_only_reports_the_finished_cells_and_trains_nothing(tmp_path, monkeypatch):
    import json

    from torch.utils.tensorboard import SummaryWriter

    import benchmarks.returns as R

    monkeypatch.setattr(R, "RESULTS", tmp_path / "results")
    cfg = ReturnsConfig(envs=("SocialNegotiation-v1",), arms=("ppo", "lewm-dreamer"), seeds=2,
                        eval_episodes=4, evaluations=12, root=str(tmp_path / "grid"),
                        report_only=True, out="returns_v1")
    done = R.cell(cfg, "SocialNegotiation-v1", "ppo", 0)
    run = tmp_path / "grid" / done.name
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    with SummaryWriter(str(run)) as w:
        for step, value in ((25_000, 0.5), (50_000, 9.0), (75_000, 0.5)):
            w.add_scalar("eval/episode_return", value, step)
    (run / "results.json").write_text(json.dumps({"eval/episode_return": 0.5}))

    report = R.main(cfg)
    assert (report["finished"], report["cells"]) == (1, 4)
    models = report["envs"]["SocialNegotiation-v1"]["models"]
    assert models["ppo"]["runs"] == 1 and models["lewm-dreamer"]["runs"] == 0
    assert models["ppo"]["steps_to_greedy_runs"] == [50_000.0]  # 9.0 is above any greedy
    assert sorted(p.name for p in (tmp_path / "grid").iterdir()) == [done.name]  # none trained
    md = (tmp_path / "results" / "returns_v1.md").read_text()
    assert "1 of 4 runs finished" in md and "--out returns_v1" in report["command"]
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == [
        "returns_v1.json", "returns_v1.md", "returns_v1.png"]


def test_a_censored_dreamer_median_never_meets_the_target():
    from benchmarks.returns import censored_median, verdicts

    def report(dreamer_runs):
        return {"budgets": {"lewm-dreamer": 12_000, "ppo": 300_000}, "envs": {"E": {"models": {
            "lewm-dreamer": {"steps_to_greedy_runs": dreamer_runs,
                             "steps_to_greedy": censored_median(dreamer_runs, 12_000)},
            "ppo": {"steps_to_greedy_runs": [175_000.0] * 3}}}}}

    # one run of three reached it: the median run did not, and 12k/175k < 0.1 is a lower bound
    (line,) = [v for v in verdicts(report([6_000.0, None, None])) if "tenth" in v]
    assert "**missed**" in line
    (line,) = [v for v in verdicts(report([6_000.0, 8_000.0, None])) if "tenth" in v]
    assert "**met**" in line


def test_value_at_takes_the_evaluation_at_that_step_and_never_carries_a_run_past_its_budget():
    from benchmarks.returns import value_at

    ppo = {"steps": [25_000, 50_000], "values": [1.0, 2.0]}
    dreamer = {"steps": [6_000, 12_000], "values": [0.5, 1.5]}
    assert value_at([ppo], 50_000) == 2.0 and value_at([ppo], 25_000) == 1.0
    assert value_at([ppo], 12_000) is None  # not evaluated yet
    assert value_at([dreamer], 12_000) == 1.5
    assert value_at([dreamer], 25_000) is None  # its budget ended at 12k
    assert value_at([ppo, {"steps": [25_000], "values": [3.0]}], 25_000) == 2.0


def test_one_run_a_side_gives_no_verdict_on_lewm_against_blind():
    from benchmarks.returns import verdicts

    def pops(values):
        return {"populations": {"default": {"iqm": values[0], "low": values[0],
                                            "high": values[0], "values": values}}}

    report = {"budgets": {}, "envs": {"E": {"models": {"lewm-dreamer": pops([2.0]),
                                                       "blind-dreamer": pops([1.0, 1.0])}}}}
    (line,) = [v for v in verdicts(report) if "against blind" in v]
    assert "no verdict" in line and "apart" not in line


def test_wall_curve_counts_seconds_from_the_runs_start(tmp_path):
    import os

    from torch.utils.tensorboard import SummaryWriter

    from benchmarks.returns import wall_curve
    from benchmarks.runner import Cell

    c = Cell("SocialNegotiation-v1", "ppo", "lewm", 0, 1000)
    run = tmp_path / c.name
    run.mkdir()
    with SummaryWriter(str(run)) as w:
        w.add_scalar("eval/episode_return", 1.5, 500, walltime=1_000_010.0)
        w.add_scalar("eval/episode_return", 2.0, 1000, walltime=1_000_025.0)
    (run / "config.json").write_text("{}")
    os.utime(run / "config.json", (1_000_000.0, 1_000_000.0))
    seconds, values = wall_curve(tmp_path, c)
    assert seconds.tolist() == pytest.approx([10.0, 25.0])
    assert values.tolist() == pytest.approx([1.5, 2.0])
    empty = Cell("SocialNegotiation-v1", "ppo", "lewm", 1, 1000)
    (tmp_path / empty.name).mkdir()
    assert wall_curve(tmp_path, empty)[0].size == 0


def test_a_config_field_added_later_renames_no_cell_that_leaves_it_at_its_old_value():
    import dataclasses

    from benchmarks.dreamer_diagnosis import DiagnosisConfig, cells

    grid = dict(cells(DiagnosisConfig(recipes=("earlier", "earlier+pessimism"), seeds=(0,))))
    # the name this cell had before reward_heads, pessimism and prior_heads existed
    assert grid["earlier"].name == "SocialNegotiation-v1__dreamer__lewm__s0__12000__f7d98c2e8b"
    assert grid["earlier+pessimism"].name != grid["earlier"].name
    wm = dict(grid["earlier"].overrides)["wm"]
    moved = dataclasses.replace(grid["earlier"], overrides=tuple(
        (k, dataclasses.replace(v, prior_heads=1.0) if k == "wm" else v)
        for k, v in grid["earlier"].overrides))
    assert wm.prior_heads == 0.0 and moved.name != grid["earlier"].name


def test_cells_that_name_no_dreamer_config_train_the_defaults_they_were_named_under(tmp_path):
    from benchmarks.runner import Cell, cell_config
    from lewm_rl.train import DreamerConfig, TrainConfig

    today = TrainConfig().dreamer
    assert (today.horizon, today.compute_dtype) == (8, "auto")
    plain = cell_config(Cell("SocialNegotiation-v1", "dreamer", "lewm", 0, 500), tmp_path)
    assert (plain.dreamer.horizon, plain.dreamer.compute_dtype) == (15, "float32")
    assert plain.dreamer == DreamerConfig(horizon=15, compute_dtype="float32")  # nothing else
    named = Cell("SocialNegotiation-v1", "dreamer", "lewm", 0, 500,
                 (("dreamer", DreamerConfig(entropy=1e-2)),))
    assert cell_config(named, tmp_path).dreamer == DreamerConfig(entropy=1e-2)


def test_a_finished_cell_trained_before_a_default_changed_is_refused_not_reused(tmp_path):
    import json

    from benchmarks.runner import Cell, cell_config, unfinished
    from lewm_rl.train import config_to_dict, resolved

    cells = [Cell("SocialNegotiation-v1", "dreamer", "blind", s, 500) for s in (0, 1)]
    for c in cells:
        run_dir = tmp_path / c.name
        run_dir.mkdir()
        # as train saves it: wm.kind filled from --world-model; where it ran does not matter
        saved = config_to_dict(resolved(cell_config(c, tmp_path / "elsewhere")))
        saved["threads"] = 2
        (run_dir / "config.json").write_text(json.dumps(saved))
    (tmp_path / cells[0].name / "results.json").write_text("{}")
    assert unfinished(cells, tmp_path) == [cells[1]]  # same config: finished, not rerun
    # a run written before decoder_targets existed (the field absent: symlog) under today's
    # default (standardised), and one whose budget differs
    path = tmp_path / cells[0].name / "config.json"
    old = json.loads(path.read_text())
    del old["wm"]["decoder_targets"]
    old["steps"] = 400
    path.write_text(json.dumps(old))
    with pytest.raises(SystemExit, match=r"s0__500 \(steps, wm.decoder_targets\)"):
        unfinished(cells, tmp_path)


def test_no_default_change_renames_a_benchmark_cell():
    """Every grid's cell names as they were when their cached runs were made (a digest of the
    sorted names): a new default that reaches a cell's name (a config the cell names whole, with
    the new field's value in its repr) renames it, and its cached run is lost. Pin the old value
    (``DEFAULTS_WHEN_NAMED``, ``NAMED_BEFORE``, or in the grid's overrides) rather than change a
    digest, unless the grid is meant to train new cells."""
    import hashlib

    from benchmarks import belief_features, returns, sb3, suite, sweep
    from benchmarks import dreamer_diagnosis as dd

    def digest(cells) -> str:
        return hashlib.sha1(repr(sorted(c.name for c in cells)).encode()).hexdigest()[:12]

    rc = returns.ReturnsConfig()
    recipes = ("earlier", "earlier+standardised", "twohot+actor+ent3e-4",
               "standardised+bfloat16+horizon8")
    assert {
        "returns": digest([returns.cell(rc, e, a, s) for e in rc.envs for a in returns.ARMS
                           for s in range(5)]),
        "sb3": digest(sb3.cells(sb3.Config())),
        "suite": digest(suite.trained_cells(suite.SuiteConfig())),
        "suite --quick": digest(suite.trained_cells(suite.SuiteConfig(quick=True))),
        "sweep": digest(sweep.cells(sweep.SweepConfig())),
        "belief_features": digest(belief_features.cells(belief_features.BeliefConfig())),
        "dreamer_diagnosis": digest(c for _, c in dd.cells(dd.DiagnosisConfig(recipes=recipes,
                                                                              one_seed=()))),
    } == {"returns": "3136e7e8eae1", "sb3": "0fd93b8cac2f", "suite": "ac4c5cbf32c0",
          "suite --quick": "33a9085c4129", "sweep": "95d43e436e2e",
          "belief_features": "adc951f87b4c", "dreamer_diagnosis": "c67e13875879"}
