"""Docs do not drift: every CLI command appears in the README and has help text."""

from pathlib import Path

import typer

from searchlm.cli import app

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_command_is_documented_and_has_help():
    group = typer.main.get_command(app)
    names = sorted(group.commands)
    assert {"index", "search", "indexes", "status", "drop"} <= set(names)
    for name in names:
        command = group.commands[name]
        assert (command.help or "").strip(), f"command {name} has no help text"
        assert f"searchlm {name}" in README, f"README never shows `searchlm {name}`"


def test_readme_gives_the_two_fresh_machine_commands():
    assert "searchlm index sample_corpus" in README
    assert "python -m pytest" in README
    assert "torch==2.13.0" in README
