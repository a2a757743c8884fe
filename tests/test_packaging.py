"""A non-editable install ships every subpackage (setuptools drops unlisted ones silently)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def source_packages() -> set[str]:
    """Every package under the three source roots, as installed names."""
    roots = {"lewm_rl": ROOT / "lewm_rl", "lewm_rl.envs": ROOT / "envs",
             "lewm_rl.agents": ROOT / "agents"}
    found = set(roots)
    for prefix, path in roots.items():
        for info in pkgutil.walk_packages([str(path)], prefix=prefix + "."):
            if info.ispkg:
                found.add(info.name)
    return found


@pytest.mark.slow
def test_wheel_contains_and_imports_every_subpackage(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True)
    wheel = next(tmp_path.glob("lewm_rl-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for pkg in source_packages():
        init = pkg.replace(".", "/") + "/__init__.py"
        assert init in names, f"{pkg} missing from the wheel: list it in pyproject.toml"
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import importlib, sys; sys.path.insert(0, sys.argv[1]); "
            "[importlib.import_module(m) for m in sys.argv[2:]]; "
            "import lewm_rl; assert lewm_rl.__file__.startswith(sys.argv[1]), lewm_rl.__file__")
    subprocess.run([sys.executable, "-c", code, str(site), *sorted(source_packages())],
                   check=True, cwd=tmp_path)
