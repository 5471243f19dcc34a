"""sentence-transformers encoder for indexing: bf16 autocast on CPUs with native bf16, CUDA when available."""

from __future__ import annotations

import numpy as np

from searchlm.devices import autocast, cpu_has_bf16, hugging_face_defaults, pick_device
from searchlm.embed.base import Embedder, clip, normalize, resolve_model
from searchlm.errors import ModelError


class SentenceTransformerEmbedder(Embedder):
    def __init__(self, model: str, device: str = "auto", batch_size: int = 32):
        hugging_face_defaults()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ModelError("sentence-transformers is not installed (pip install sentence-transformers)") from exc
        self.model_id = model
        self.path = resolve_model(model)
        self.device = pick_device(device)
        try:
            self.model = SentenceTransformer(self.path, device=self.device)
        except Exception as exc:
            raise ModelError(
                f"cannot load embedding model '{model}' ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
                "pass a local sentence-transformers folder as the model", "pass a local sentence-transformers folder with --model",
            ) from exc
        self.dimension = embedding_dimension(self.model)
        self.max_seq_length = int(self.model.max_seq_length or 512)
        self.batch_size = batch_size
        self.bf16 = self.device == "cpu" and cpu_has_bf16()

    @property
    def precision(self) -> str:
        return "cuda-fp16" if self.device == "cuda" else ("cpu-bf16-autocast" if self.bf16 else "cpu-fp32")

    def embed(self, texts: list[str]) -> np.ndarray:
        import torch

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with torch.inference_mode(), autocast(self.device, cpu_bf16=self.bf16):
            vecs = self.model.encode(
                clip(texts), batch_size=self.batch_size, convert_to_numpy=False, convert_to_tensor=True,
                normalize_embeddings=False, show_progress_bar=False,
            )
        return normalize(vecs.float().cpu().numpy())


def embedding_dimension(st_model) -> int:
    getter = getattr(st_model, "get_embedding_dimension", None) or st_model.get_sentence_embedding_dimension
    return int(getter())
