"""`--store http://HOST:PORT` against a real Milvus server: Milvus Lite's own gRPC server in a subprocess (one per
test session, the `milvus_server` fixture), driven through the `searchlm` command as a user would: index,
an incremental update (an edit and a delete), search, `check`, the server lost and back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_files

pytestmark = pytest.mark.slow

DOCS = {
    "bees.md": "# Bees\n\nHoney bees cluster in winter and shiver their flight muscles to keep the hive warm.\n",
    "tides.md": "# Tides\n\nSpring tides happen when the sun and the moon pull in a line, at new and full moon.\n",
    "volcano.md": "# Volcanoes\n\nMagma rises through the crust and erupts as lava from volcanic vents.\n",
    "tea.md": "# Tea\n\nGreen tea leaves are steamed, rolled and dried; black tea is fully oxidised.\n",
    "chess.md": "# Chess\n\nThe Sicilian Defence answers 1.e4 with c5 and leads to sharp positions.\n",
}


def searchlm(*args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "searchlm", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def top_paths(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [h["path"] for h in json.loads(result.stdout)["hits"]]


def cli_env(home: Path) -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "SEARCHLM_HOME": str(home), "PYTHONPATH": str(Path.cwd())}


def test_index_update_search_check_and_server_loss_through_the_cli(milvus_server, tmp_path):
    corpus = write_files(tmp_path / "corpus", DOCS)
    env = cli_env(tmp_path / "indexes")
    made = searchlm("index", str(corpus), "--name", "srv", "--store", milvus_server.uri, env=env)
    assert made.returncode == 0, made.stderr
    manifest = json.loads((tmp_path / "indexes" / "srv" / "manifest.json").read_text())
    assert manifest["store"] == {"backend": "milvus", "uri": milvus_server.uri, "collection": "searchlm_srv",
                                 "schema": manifest["store"]["schema"]}
    assert not (tmp_path / "indexes" / "srv" / "vectors.faiss").exists()  # the vectors are in the server
    assert top_paths(searchlm("search", "how do bees keep warm", "--name", "srv", "-k", "2", "--json",
                              env=env))[0].endswith("bees.md")

    # An edit and a delete: the next run (no --store: the manifest remembers the server) changes just those.
    (corpus / "tea.md").write_text("# Tea\n\nOolong is partly oxidised, between green and black tea; brew it "
                                   "with water below boiling.\n", encoding="utf-8")
    (corpus / "chess.md").unlink()
    again = searchlm("index", str(corpus), "--name", "srv", env=env)
    assert again.returncode == 0, again.stderr
    assert top_paths(searchlm("search", "how to brew oolong", "--name", "srv", "-k", "1", "--json",
                              env=env))[0].endswith("tea.md")
    oolong = searchlm("search", "oolong", "--name", "srv", "--mode", "keyword", "--json", env=env)
    assert [p.split("/")[-1] for p in top_paths(oolong)] == ["tea.md"]
    steamed = searchlm("search", "steamed rolled", "--name", "srv", "--mode", "keyword", "--json", env=env)
    assert top_paths(steamed) == []  # the old text of tea.md is gone from Milvus's BM25
    sicilian = searchlm("search", "Sicilian Defence chess opening", "--name", "srv", "--json", env=env)
    assert not any(p.endswith("chess.md") for p in top_paths(sicilian))  # the deleted file is gone

    checked = searchlm("check", "--name", "srv", env=env)
    assert checked.returncode == 0 and "ok" in checked.stdout, checked.stdout + checked.stderr

    milvus_server.stop()  # the server is lost
    try:
        lost = searchlm("search", "how do bees keep warm", "--name", "srv", env=env, timeout=120)
        assert lost.returncode == 1
        lines = lost.stderr.strip().splitlines()
        assert len(lines) == 1 and milvus_server.uri in lines[0] and "Traceback" not in lost.stderr, lost.stderr
    finally:
        milvus_server.start()  # and back, on the same data
    back = searchlm("search", "how do bees keep warm", "--name", "srv", "-k", "2", "--json", env=env)
    assert top_paths(back)[0].endswith("bees.md")
