"""Text encoders. `load_embedder(model, backend)` picks a backend by name:

- "sentence-transformers": the index path; torch, bf16 autocast on CPUs that support it, CUDA when present.
- "onnx": the query path; ONNX Runtime + tokenizers, no torch, loaded from an index's exported encoder.
"""

from searchlm.embed.base import Embedder, resolve_model

__all__ = ["Embedder", "resolve_model"]
