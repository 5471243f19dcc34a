"""What the CLI takes in and prints: control characters in documents and file names never reach the terminal
raw, queries are bounded, and the server's token can stay off the command line."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from searchlm.cli import app
from searchlm.errors import InputError
from searchlm.limits import MAX_QUERY_CHARS, SQLITE_MAX_ID, check_id
from searchlm.settings import load_token
from searchlm.terminal import safe_text

runner = CliRunner()

# ESC ] 0 ; sets the window title, ESC ] 52 ; writes the clipboard, CSI (ESC [ or the C1 byte 0x9b) moves the
# cursor and clears the screen, U+202E reverses the line; "[bold red]" would be markup to a rich console.
EVIL_NAME = "evil\x1b]0;pwned\x07.md"
EVIL_TEXT = ("# Garden \x1b]52;c;Zm9v\x07 heading\n\nThe garden [bold red]tomatoes[/] grow \x1b[31m red\x7f "
             "\x9b2J here \u202eevil.\n")
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]")


def run(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def test_safe_text_shows_every_control_character_and_keeps_the_rest():
    assert safe_text("a\x1b]0;t\x07b") == "a\\x1b]0;t\\x07b"
    assert safe_text("\x9b2J\x7f\u202e\x00") == "\\x9b2J\\x7f\\u202e\\x00"
    assert safe_text("one\ntwo\tthree\r") == "one\\x0atwo\\x09three\\x0d"  # a name stays on its line
    assert safe_text("one\ntwo\tthree\r", lines=True) == "one\ntwo\tthree\\x0d"  # text keeps its lines
    assert safe_text("crème brûlée 熊猫 [bold]") == "crème brûlée 熊猫 [bold]"
    assert safe_text(3.5) == "3.5"


def test_documents_and_file_names_print_escaped_and_json_keeps_them(tmp_path, make_index):
    settings, _, corpus = make_index({EVIL_NAME: EVIL_TEXT, "plain.md": "# Plain\n\nNothing about tomatoes here.\n"})
    home = settings.home
    outputs = [
        run("index", corpus, "--name", "t", "--home", home, "-q"),  # a re-run: names what it found
        run("search", "garden tomatoes red", "--name", "t", "--home", home),
        run("search", "garden tomatoes red", "--name", "t", "--home", home, "--explain", "--mode", "keyword"),
        run("indexes", "--home", home),
        run("status", "--name", "t", "--home", home),
    ]
    for result in outputs:
        assert result.exit_code == 0, result.output
        assert not RAW.search(result.stdout), result.stdout
        assert not RAW.search(result.stderr), result.stderr
    shown = outputs[1].stdout
    assert "evil\\x1b]0;pwned\\x07.md" in shown and "Garden \\x1b]52;c;Zm9v\\x07 heading" in shown
    assert "[bold red]tomatoes[/]" in shown and "\\x9b2J" in shown and "\\u202eevil" in shown

    data = json.loads(run("search", "garden tomatoes red", "--name", "t", "--home", home, "--json").stdout)
    evil = next(h for h in data["hits"] if "evil" in h["path"])
    assert evil["path"].endswith(EVIL_NAME) and "\x1b[31m" in evil["text"]  # JSON escapes them itself


def test_a_file_name_in_an_error_is_escaped(tmp_path):
    result = run("index", tmp_path / "no\x1b]0;x\x07such", "--name", "t", "--home", tmp_path / "idx")
    assert result.exit_code == 1
    assert "\\x1b]0;x\\x07" in result.stderr and not RAW.search(result.stderr)


def test_queries_over_the_limit_are_refused_on_one_line_before_anything_loads(tmp_path, make_index):
    settings, _, _ = make_index({"a.md": "# Bees\n\nHoney bees dance.\n"})
    home = settings.home
    huge = "bees " * 2_000_000  # 10 MB
    for args in (("search", huge), ("search", "b" * (MAX_QUERY_CHARS + 1)), ("ask", huge),
                 ("summarize", "--query", huge)):
        result = run(*args, "--name", "t", "--home", home)
        assert result.exit_code == 1, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "over the limit of 1,000" in lines[0] and "shorten" in lines[0]
        assert len(lines[0]) < 200  # the query is not repeated
    result = run("search", "bees " * (MAX_QUERY_CHARS // 5), "--name", "t", "--home", home, "--json")
    assert result.exit_code == 0, result.output  # exactly the limit
    assert json.loads(result.stdout)["hits"][0]["path"].endswith("a.md")


def test_answers_are_bounded_the_same_on_the_command_line(tmp_path):
    result = run("ask", "why?", "--max-tokens", "100000", "--home", tmp_path)
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: max_tokens 100000 is over the limit of 1024 (use --max-tokens 1024 or less)"


def test_ids_must_fit_sqlite():
    assert check_id(1) == 1 and check_id(SQLITE_MAX_ID) == SQLITE_MAX_ID
    for bad in (0, -1, SQLITE_MAX_ID + 1, 2**70, True, "3", None):
        with pytest.raises(InputError, match="not an id"):
            check_id(bad)


def test_the_token_comes_from_a_flag_a_file_or_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("SEARCHLM_TOKEN", raising=False)
    secret = tmp_path / "token"
    secret.write_text("s3cret-token-value\n")
    assert load_token(None, secret) == "s3cret-token-value"
    assert load_token("from-the-flag", None) == "from-the-flag"
    assert load_token(None, None) is None
    monkeypatch.setenv("SEARCHLM_TOKEN", "from-the-environment")
    assert load_token(None, None) == "from-the-environment"
    assert load_token(None, secret) == "s3cret-token-value"  # a flag beats the environment
    (tmp_path / "empty").write_text("\n  \n")
    for path, words in ((tmp_path / "missing", "cannot be read"), (tmp_path / "empty", "is empty"),
                        (tmp_path, "cannot be read")):
        with pytest.raises(InputError, match=words):
            load_token(None, path)
    with pytest.raises(InputError, match="both"):
        load_token("x", secret)


def test_serve_refuses_a_token_file_it_cannot_use_on_one_line(tmp_path, make_index, monkeypatch):
    monkeypatch.delenv("SEARCHLM_TOKEN", raising=False)
    settings, _, _ = make_index({"a.md": "# Bees\n\nHoney bees dance.\n"})
    (tmp_path / "empty").write_text("")
    for path, words in ((tmp_path / "missing", "cannot be read"), (tmp_path / "empty", "is empty")):
        result = run("serve", "--name", "t", "--home", settings.home, "--host", "0.0.0.0", "--token-file", path)
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0] and "token file" in lines[0], result.stderr
    result = run("serve", "--name", "t", "--home", settings.home, "--host", "0.0.0.0")
    assert result.exit_code == 1 and "needs a token" in result.stderr
