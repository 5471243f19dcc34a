"""Where an index keeps its vectors and its keyword index: the contracts and their composition in `base.py`, one
module per backend, chosen by name (searchlm/plugins.py)."""

DEFAULT_STORE = "faiss"  # a new index's store when neither --store nor SEARCHLM_STORE names one
