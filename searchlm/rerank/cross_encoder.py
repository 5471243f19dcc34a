"""`cross-encoder[:MODEL]`: a sentence-transformers CrossEncoder reads query and passage together.

No cross-encoder ships offline with searchlm, so MODEL is usually a local folder (anything
`CrossEncoder.save_pretrained` wrote); a hub name works where the model is cached or the hub is reachable.
"""

from __future__ import annotations

from pathlib import Path

from searchlm.devices import autocast, cpu_has_bf16, hugging_face_defaults, pick_device
from searchlm.errors import ModelError
from searchlm.cache import model_fingerprint
from searchlm.rerank.base import Reranker

DEFAULT_CROSS_ENCODER = "cross-encoder/ms-marco-MiniLM-L6-v2"
BATCH = 16
MAX_LENGTH = 512


class CrossEncoderReranker(Reranker):
    weight = 0.7

    def __init__(self, model: str | None = None, device: str = "auto"):
        hugging_face_defaults()
        try:
            from sentence_transformers import CrossEncoder
        except ImportError as exc:
            raise ModelError("sentence-transformers is not installed (pip install sentence-transformers)") from exc
        name = model or DEFAULT_CROSS_ENCODER
        source = _source(name)
        self.device = pick_device(device)
        try:
            self.model = CrossEncoder(source, device=self.device, max_length=MAX_LENGTH)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}" if str(exc) else type(exc).__name__
            raise ModelError(
                f"cannot load cross-encoder '{name}' ({reason}); no cross-encoder ships offline",
                "pass a local sentence-transformers CrossEncoder folder: rerank='cross-encoder:PATH'",
                "pass a local sentence-transformers CrossEncoder folder: --rerank cross-encoder:PATH",
            ) from exc
        self.key = self.cache_key(model)
        self.bf16 = self.device == "cpu" and cpu_has_bf16()

    @classmethod
    def cache_key(cls, model: str | None) -> str:
        source = _source(model or DEFAULT_CROSS_ENCODER)
        stamp = model_fingerprint(source)
        return f"cross-encoder:{source}" + (f"@{stamp}" if stamp else "")

    def score(self, query: str, passages: list[str]) -> list[float]:
        import torch

        if not passages:
            return []
        with torch.inference_mode(), autocast(self.device, cpu_bf16=self.bf16, cuda_fp16=False):
            scores = self.model.predict(
                [(query, p) for p in passages], batch_size=BATCH, show_progress_bar=False, convert_to_numpy=True
            )
        return [float(s) for s in scores.reshape(len(passages), -1)[:, -1]]


def _source(name: str) -> str:
    """A local folder as its absolute path (so the cache key does not depend on the working folder), else the name."""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name
