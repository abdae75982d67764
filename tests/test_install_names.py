"""Import names (issue 23, item 4): the install puts one package on the path, ``landscape``; the repository's
``models/``, ``callbacks/`` and ``scripts/`` are ``landscape.models``, ``landscape.callbacks`` and ``landscape.cli``,
so a user project's own ``models`` package is the one its code imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
MAPPED = {"landscape.models": "models", "landscape.callbacks": "callbacks", "landscape.cli": "scripts"}


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_installed_package_lives_under_landscape():
    """The package list is explicit (a mapped folder cannot be found by search), so it must name every folder with
    an ``__init__.py`` under ``landscape/`` and the three mapped folders, and nothing outside ``landscape``."""
    cfg = _setuptools()
    packages = set(cfg["packages"])
    assert all(p == "landscape" or p.startswith("landscape.") for p in packages)
    assert cfg["package-dir"] == MAPPED
    core = {".".join(f.parent.relative_to(ROOT).parts) for f in (ROOT / "landscape").rglob("__init__.py")}
    assert packages == core | set(MAPPED)
    for folder in MAPPED.values():
        assert (ROOT / folder / "__init__.py").is_file()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"landscape": "landscape.cli.cli:main"}


def test_a_user_project_with_its_own_models_package_imports_its_own(tmp_path):
    """In a project folder with its own ``models``, ``callbacks`` and ``scripts`` packages, those names are the
    project's, and the toolkit's are reachable under ``landscape`` (the installed mapping, not the current folder)."""
    for name in ("models", "callbacks", "scripts"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("WHO = 'user'\n")
    code = (
        "import models, callbacks, scripts\n"
        "assert models.WHO == callbacks.WHO == scripts.WHO == 'user'\n"
        "from landscape.models import build_model, model_config\n"
        "from landscape.callbacks import LandscapeCallback\n"
        "from landscape.cli.cli import main\n"
        "import landscape.models as m\n"
        "print('OK', m.__name__)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "OK landscape.models"
