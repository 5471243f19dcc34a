"""Text encoders. `load_embedder(model, backend)` picks an indexing backend by name:

- "sentence-transformers" (the default): torch in this process, bf16 autocast on CPUs that support it, CUDA when
  present.
- "ray": Ray Data `map_batches` over an actor pool, one sentence-transformers encoder per actor, on a local Ray
  instance or a cluster (`pip install 'searchlm[ray]'`).
- any backend a plugin registers (searchlm/plugins.py, `register_embedders`).

The query path uses `searchlm.embed.onnx.OnnxEmbedder` (ONNX Runtime + tokenizers, no torch), loaded from an
index's exported encoder.
"""

from searchlm.embed.base import Embedder, resolve_model

__all__ = ["Embedder", "load_embedder", "resolve_model"]


def load_embedder(model: str, backend: str = "sentence-transformers", device: str = "auto", **options) -> Embedder:
    """An indexing embedder for `model` on the backend of that name (registered in searchlm/plugins.py: the two
    above, and what plugins add). `options` go to the backend (for "ray": `address`, `actors`, `batch_size`)."""
    from searchlm.plugins import embedders

    return embedders.get(backend).load()(model, device=device, **options)
