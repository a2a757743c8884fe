"""README keeps its word: its Python snippets run as written, its env ids are the CLI's."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import pytest

from lewm_rl.env_adapters import available_envs

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
SNIPPETS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_readme_has_python_snippets():
    assert len(SNIPPETS) >= 2


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_python_snippet_runs_as_written(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # what a snippet writes stays out of the repository
    matplotlib.use("Agg")
    exec(compile(SNIPPETS[index], f"README.md snippet {index}", "exec"), {"__name__": "readme"})


def test_readme_lists_every_env_id_in_the_form_the_cli_accepts():
    table = re.findall(r"^\| `([^`-][^`]*)` \|", README, flags=re.M)  # not the header
    assert table == available_envs()
    for env_id in re.findall(r"--env (\S+)", README):
        assert env_id in available_envs(), f"README's --env {env_id} is not accepted by the CLI"


def test_help_usage_reads_python_m(capsys):
    from lewm_rl.train import main

    assert main(["--help"]) == 0
    assert "usage: python -m lewm_rl.train " in capsys.readouterr().out
