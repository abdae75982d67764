"""README is a promise: its Python blocks run, and every subcommand it shows exists."""

import re
import subprocess
import sys
from pathlib import Path

from landscape.cli.cli import SUBCOMMANDS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_python_blocks_run(tmp_path, monkeypatch):
    """Every block, as written, from an empty folder. A block that starts with ``import lightning`` runs in a fresh
    interpreter: the toolkit binds to one Lightning package per process, at its first import."""
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    fresh = [b for b in blocks if b.startswith("import lightning")]
    assert fresh, "README's Lightning 2.x example is missing"
    for block in blocks:
        if block in fresh:
            run = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, timeout=600)
            assert run.returncode == 0, run.stderr[-3000:]
            assert re.search(r"^λmax [0-9.e+-]+$", run.stdout, re.M), run.stdout[-2000:]
        else:
            exec(compile(block, "README.md", "exec"), {})
    assert (tmp_path / "runs" / "readme" / "sample.npz").is_file()
    assert list((tmp_path / "runs" / "readme-lightning").rglob("results.json"))


def test_documented_subcommands_exist():
    commands = set(re.findall(r"landscape ([a-z]+) --", README)) | set(re.findall(r"`landscape ([a-z]+)`", README))
    assert "train" in commands
    assert commands <= set(SUBCOMMANDS), commands - set(SUBCOMMANDS)


def test_every_subcommand_has_help(capsys):
    import pytest

    from landscape.cli import cli

    for name in SUBCOMMANDS:
        with pytest.raises(SystemExit) as exc:
            cli.main([name, "--help"])
        assert exc.value.code == 0
        assert "usage: landscape " + name in capsys.readouterr().out
