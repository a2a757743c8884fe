"""The benchmark suite's --quick run, end to end, as CI's smoke test of the whole pipeline."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_suite_quick_builds_its_report_and_resumes(tmp_path):
    args = [sys.executable, "-m", "benchmarks.suite", "--quick", "--jobs", "2",
            "--root", str(tmp_path / "grid"), "--out", str(tmp_path / "report")]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = (tmp_path / "report" / "REPORT.md").read_text()
    for heading in ("# LEWM-RL benchmark report", "## Aggregate", "## SocialNegotiation-v0",
                    "## PublicGoods-v0", "## social_negotiation_v0", "## Speed",
                    "## The paper, checked"):
        assert heading in report, heading
    assert "Quick run" in report
    data = json.loads((tmp_path / "report" / "suite.json").read_text())
    assert data["failed"] == []
    trained = data["trained"]
    for env in ("SocialNegotiation-v0", "ObjectiveNegotiation-v0", "PublicGoods-v0",
                "ObjectivePublicGoods-v0"):
        assert set(trained[env]) == {"lewm-dreamer", "blind-dreamer", "ppo", "ppo-belief",
                                     "ppo-imagination"}, env
        assert set(data["scripted"][env]["default"]) == {"oracle", "greedy", "random"}
    assert set(trained["social_negotiation_v0"]) == {"lewm-dreamer", "blind-dreamer"}
    for png in ("suite_curves.png", "suite_profiles.png"):
        assert (tmp_path / "report" / png).stat().st_size > 1000
    start = time.time()  # everything is finished: a rerun only rebuilds the report
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and time.time() - start < 60


def test_open_checks_lists_every_sweep_value_and_factorisation():
    from benchmarks.suite import open_checks

    ci = {"mean": 0.5, "low": 0.25, "high": 0.75}
    row = {"behaviour_accuracy": ci, "behaviour_macro_f1": {"mean": 0.1, "low": 0.0, "high": 0.2}}
    summary = {"beta": {"E": {"0": row, "1": row}}, "noise": {"E": {"0.3": row}},
               "main": {"E": {"blind": row, "lewm": row, "other": row}}}
    lines = open_checks(summary)
    assert lines[2:] == [
        "| beta (consistency weight) = 0 | E | lewm | 50.0 [25.0, 75.0] / 10.0 [0.0, 20.0] |",
        "| beta (consistency weight) = 1 | E | lewm | 50.0 [25.0, 75.0] / 10.0 [0.0, 20.0] |",
        "| annotation noise = 0.3 | E | lewm | 50.0 [25.0, 75.0] / 10.0 [0.0, 20.0] |",
        "| factorisation | E | lewm | 50.0 [25.0, 75.0] / 10.0 [0.0, 20.0] |",
        "| factorisation | E | blind | 50.0 [25.0, 75.0] / 10.0 [0.0, 20.0] |",
    ]
    assert open_checks({}) == ["The prediction results hold no sweeps."]


def test_included_tables_stay_separate_markdown_tables():
    from benchmarks.suite import _tables

    text = "# T\n\nMachine: x\n| a |\n|---|\n| 1 |\nprose\n\n| b |\n|---|\nmore\n"
    assert _tables(text) == ["Machine: x", "", "| a |", "|---|", "| 1 |", "", "| b |", "|---|"]
