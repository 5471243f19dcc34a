"""Text encoders. `load_embedder(model, backend)` picks an indexing backend by name:

- "sentence-transformers" (the default): torch in this process, bf16 autocast on CPUs that support it, CUDA when
  present.
- "ray": Ray Data `map_batches` over an actor pool, one sentence-transformers encoder per actor, on a local Ray
  instance or a cluster (`pip install 'searchlm[ray]'`).

The query path uses `searchlm.embed.onnx.OnnxEmbedder` (ONNX Runtime + tokenizers, no torch), loaded from an
index's exported encoder.
"""

from searchlm.embed.base import Embedder, resolve_model

__all__ = ["BACKENDS", "Embedder", "load_embedder", "resolve_model"]

BACKENDS = ("sentence-transformers", "ray")


def load_embedder(model: str, backend: str = "sentence-transformers", device: str = "auto", **options) -> Embedder:
    """An indexing embedder for `model` on the backend of that name. `options` go to the backend
    (for "ray": `address`, `actors`, `batch_size`)."""
    if backend in ("sentence-transformers", "local"):
        from searchlm.embed.sentence_transformers import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(model, device=device, **options)
    if backend == "ray":
        from searchlm.embed.ray import RayEmbedder

        return RayEmbedder(model, device=device, **options)
    from searchlm.errors import InputError

    raise InputError(f"embedder backend '{backend}' is not one of {', '.join(BACKENDS)}", "pick one of those")
