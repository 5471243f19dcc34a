"""A torch-free query encoder: the index's transformer exported to ONNX, run with ONNX Runtime + tokenizers.

`export_onnx` (needs torch, run at index time) writes `encoder.onnx`, `tokenizer.json` and `onnx_encoder.json`
(pooling, normalization, max length) into a folder. `OnnxEmbedder` loads that folder and reproduces
sentence-transformers' pooling and normalization in numpy, so query vectors match the indexed ones.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from searchlm.embed.base import Embedder, normalize
from searchlm.errors import ModelError

ONNX_FILE = "encoder.onnx"
CONFIG_FILE = "onnx_encoder.json"
TOKENIZER_FILE = "tokenizer.json"


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


class OnnxEmbedder(Embedder):
    """Query encoder with no torch import: ~0.1 s to load, a few ms a query."""

    def __init__(self, folder: Path, threads: int | None = None):
        config_path = folder / CONFIG_FILE
        if not config_path.is_file():
            raise ModelError(f"no ONNX encoder in '{folder}' (run `searchlm index` again to export it)")
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.config = json.loads(config_path.read_text())
        self.model_id = self.config["model_id"]
        self.dimension = int(self.config["dimension"])
        self.tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        self.tokenizer.enable_truncation(max_length=int(self.config["max_length"]))
        self.tokenizer.enable_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(folder / ONNX_FILE), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        out = []
        for start in range(0, len(texts), 32):
            encodings = self.tokenizer.encode_batch(texts[start : start + 32])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
            hidden = self.session.run(None, feeds)[0]
            out.append(_pool(hidden, mask, self.config["pooling"]))
        vectors = np.vstack(out).astype(np.float32)
        return normalize(vectors) if self.config.get("normalize", True) else vectors


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
