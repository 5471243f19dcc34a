"""A torch-free query encoder: the index's transformer exported to ONNX, run with ONNX Runtime + tokenizers.

`export_onnx` (needs torch, run at index time) writes into a folder:

- `encoder.onnx`: the portable export (opset 17), the encoder's source of truth;
- `tokenizer.json` and `onnx_encoder.json` (pooling, normalization, max length);
- `ort-<onnxruntime version>/`: the same graph after ONNX Runtime's extended optimizations (attention,
  LayerNorm and GELU fusions), with its weights in a separate file. Loading that copy skips graph optimization
  and memory-maps the weights instead of parsing 90 MB of protobuf, so a cold session starts in ~10 ms of CPU.
  It is tied to the onnxruntime version that wrote it; another version rewrites it on first use.

`OnnxEmbedder` loads that folder and reproduces sentence-transformers' pooling and normalization in numpy, so
query vectors match the indexed ones (cosine ≥ 0.9999, tested).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from searchlm.embed.base import Embedder, clip, normalize
from searchlm.errors import ModelError

log = logging.getLogger(__name__)

ONNX_FILE = "encoder.onnx"
CONFIG_FILE = "onnx_encoder.json"
TOKENIZER_FILE = "tokenizer.json"
OPTIMIZED_PREFIX = "ort-"
OPTIMIZED_MODEL = "model.onnx"
OPTIMIZED_WEIGHTS = "model.weights"
# Texts per ONNX call at most. MiniLM, one thread, queries sorted by token count: 8.3 ms a query in runs of 8,
# 7.6 in runs of 16 or 32, 10.9 in runs of 64 (the activations outgrow the cache).
ENCODE_BATCH = 16
# What one more ONNX call costs, in padded tokens: ~12 ms a call (the weights are packed on each call) against
# ~0.4 ms a token of one text, on 2 cores. `_runs` ends a run where the padding it saves is worth a call.
CALL_COST_TOKENS = 30


def export_onnx(st_model, model_id: str, folder: Path) -> None:
    """Export a loaded SentenceTransformer's transformer to `folder` (atomically: temp folder + rename)."""
    import torch

    from searchlm.embed.sentence_transformers import embedding_dimension

    transformer = st_model[0]
    hf_model = transformer.auto_model
    tokenizer = transformer.tokenizer
    pooling = _pooling_mode(st_model)
    normalize_output = any(type(m).__name__ == "Normalize" for m in st_model)

    class LastHiddenState(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    wrapper = LastHiddenState(hf_model).eval().float().cpu()
    sample = tokenizer(["an example query", "a second, longer example"], padding=True, return_tensors="pt")
    ids = sample["input_ids"]
    mask = sample["attention_mask"]
    types = sample.get("token_type_ids", torch.zeros_like(ids))
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".onnx-", dir=folder.parent))
    try:
        with torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(
                wrapper,
                (ids, mask, types),
                str(tmp / ONNX_FILE),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["last_hidden_state"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "seq"},
                    "attention_mask": {0: "batch", 1: "seq"},
                    "token_type_ids": {0: "batch", 1: "seq"},
                    "last_hidden_state": {0: "batch", 1: "seq"},
                },
                opset_version=17,
                dynamo=False,
            )
        tokenizer.backend_tokenizer.save(str(tmp / TOKENIZER_FILE))
        config = {
            "model_id": model_id,
            "pooling": pooling,
            "normalize": normalize_output,
            "max_length": int(st_model.max_seq_length or 512),
            "dimension": embedding_dimension(st_model),
            "uses_token_type_ids": "token_type_ids" in sample,
        }
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        try:
            optimize_for_runtime(tmp)
        except Exception as exc:  # the portable model still works; the first search retries
            log.warning("could not write the optimized ONNX encoder (%s); searches will load the portable one", exc)
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; an index folder is as readable as its other files
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _pooling_mode(st_model) -> str:
    for module in st_model:
        if type(module).__name__ == "Pooling":
            cfg = module.get_config_dict()
            for mode in ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_lasttoken"):
                if cfg.get(mode):
                    return mode.replace("pooling_mode_", "")
            return "mean_tokens"
    return "mean_tokens"


def optimized_dir(folder: Path) -> Path:
    """Where the optimized copy for the installed onnxruntime lives."""
    import onnxruntime as ort

    return folder / f"{OPTIMIZED_PREFIX}{ort.__version__}"


def optimize_for_runtime(folder: Path) -> Path:
    """Write `folder/ort-<version>/`: the graph after extended optimizations, weights in a separate file.

    Written into a temp folder and renamed, so a killed run leaves no half copy; older versions' copies are
    removed. Takes about a second (one optimizing session)."""
    import onnxruntime as ort

    target = optimized_dir(folder)
    tmp = Path(tempfile.mkdtemp(prefix=f".{OPTIMIZED_PREFIX}", dir=folder))
    try:
        options = ort.SessionOptions()
        # EXTENDED, not ALL: ALL adds layout transforms tied to this CPU's instruction set.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(tmp / OPTIMIZED_MODEL)
        options.add_session_config_entry("session.optimized_model_external_initializers_file_name", OPTIMIZED_WEIGHTS)
        options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        options.log_severity_level = 3
        ort.InferenceSession(str(folder / ONNX_FILE), options, providers=["CPUExecutionProvider"])
        os.chmod(tmp, 0o755)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / OPTIMIZED_MODEL).is_file():  # else another process wrote it first: keep theirs
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    for old in folder.glob(f"{OPTIMIZED_PREFIX}*"):
        if old.is_dir() and old != target:
            shutil.rmtree(old, ignore_errors=True)
    return target


class OnnxEmbedder(Embedder):
    """Query encoder with no torch import.

    `warm=False` (the default, for one-shot CLI processes): one thread. `warm=True` is for long-lived processes
    (the server): half the cores, up to 4. Neither prepacks weights nor spins idle threads: a query gets the same
    vector, bit for bit, in every mode and in any batch."""

    def __init__(self, folder: Path, threads: int | None = None, warm: bool = False):
        config_path = folder / CONFIG_FILE
        if not config_path.is_file():
            raise ModelError(f"no ONNX encoder in '{folder}'", "index the folder again to export it",
                             "run `searchlm index` again to export it")
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.folder = folder
        self.warm = warm
        self.config = json.loads(config_path.read_text())
        self.model_id = self.config["model_id"]
        self.dimension = int(self.config["dimension"])
        self.tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        self.tokenizer.enable_truncation(max_length=int(self.config["max_length"]))
        self.tokenizer.no_padding()  # embed() pads each run of similar lengths itself
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # A server leaves half the cores to the Python side of its requests (HTTP, SQLite, fusion): on 2 cores
        # a second ONNX thread cost 50% more CPU per query and gained no time (benchmarks/faults.py http).
        options.intra_op_num_threads = threads or (max(1, min(4, (os.cpu_count() or 1) // 2)) if warm else 1)
        # Prepacked weights round differently (last bits): without them every process gets the same vector for
        # the same query, so a server's scores equal `searchlm search --json`'s. A server batches its queries
        # (server.engines.SearchQueue), which amortizes the packing prepacking would save.
        options.add_session_config_entry("session.disable_prepacking", "1")
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # spinning takes others' CPU
        self.session = None
        model = self._optimized_model()
        if model is not None:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            try:
                self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # a damaged copy: the portable model still works
                log.warning("cannot load the optimized ONNX encoder %s (%s); using the portable one", model, exc)
        if self.session is None:
            model = folder / ONNX_FILE
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
            self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self.model_path = model
        self._inputs = {i.name for i in self.session.get_inputs()}

    def _optimized_model(self) -> Path | None:
        """The optimized copy for this onnxruntime, written now if missing and the folder is writable."""
        path = optimized_dir(self.folder) / OPTIMIZED_MODEL
        if path.is_file():
            return path
        if not (self.folder / ONNX_FILE).is_file():
            raise ModelError(f"no ONNX encoder in '{self.folder}'", "index the folder again to export it",
                             "run `searchlm index` again to export it")
        if not os.access(self.folder, os.W_OK):
            return None
        try:
            return optimize_for_runtime(self.folder) / OPTIMIZED_MODEL
        except Exception:  # e.g. disk full, or a race with another process: the portable model still works
            return None

    def embed(self, texts: list[str]) -> np.ndarray:
        """Vectors of `texts`, in order. Sorted by token count and encoded in runs, each padded only to its own
        longest text; where the runs end is chosen to cost the least (`_runs`). A batch of short queries padded
        to its one long query would cost twice as much: 6-word queries of 8 to 82 tokens took 13.3 ms a query in
        arrival order, 7.6 sorted. A text's vector does not depend on its run (padded positions are masked and
        no weights are prepacked), so any grouping gives the same vectors."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(clip(texts))
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        for rows in _runs(order, [len(encodings[i].ids) for i in order]):
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            types = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                e = encodings[i]
                ids[r, : len(e.ids)] = e.ids
                mask[r, : len(e.ids)] = e.attention_mask
                types[r, : len(e.ids)] = e.type_ids
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = types
            hidden = self.session.run(None, feeds)[0]
            vectors[rows] = _pool(hidden, mask, self.config["pooling"])
        return normalize(vectors) if self.config.get("normalize", True) else vectors


def _runs(order: list[int], lengths: list[int]) -> list[list[int]]:
    """Split `order` (sorted by their `lengths`) into runs of at most ENCODE_BATCH that cost the least in all:
    a run costs CALL_COST_TOKENS plus its size times its longest length (every row is padded to it)."""
    n = len(order)
    best = [0.0] + [float("inf")] * n  # best[j]: least cost of the first j
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(max(0, j - ENCODE_BATCH), j):
            cost = best[i] + CALL_COST_TOKENS + (j - i) * lengths[j - 1]
            if cost < best[j]:
                best[j], cut[j] = cost, i
    runs, j = [], n
    while j:
        runs.append(order[cut[j] : j])
        j = cut[j]
    return runs[::-1]


def _pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    m = mask[..., None].astype(np.float32)
    if mode == "cls_token":
        return hidden[:, 0]
    if mode == "max_tokens":
        return np.where(m > 0, hidden, -1e9).max(axis=1)
    if mode == "lasttoken":
        last = mask.sum(axis=1) - 1
        return hidden[np.arange(hidden.shape[0]), last]
    return (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
