"""README is a promise: its Python blocks run, and every subcommand it shows exists."""

import re
from pathlib import Path

from scripts.cli import SUBCOMMANDS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_python_blocks_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    assert (tmp_path / "runs" / "readme" / "sample.npz").is_file()


def test_documented_subcommands_exist():
    commands = set(re.findall(r"landscape ([a-z]+) --", README)) | set(re.findall(r"`landscape ([a-z]+)`", README))
    assert "train" in commands
    assert commands <= set(SUBCOMMANDS), commands - set(SUBCOMMANDS)


def test_every_subcommand_has_help(capsys):
    import pytest

    from scripts import cli

    for name in SUBCOMMANDS:
        with pytest.raises(SystemExit) as exc:
            cli.main([name, "--help"])
        assert exc.value.code == 0
        assert "usage: landscape " + name in capsys.readouterr().out
