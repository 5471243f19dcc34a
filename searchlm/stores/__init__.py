"""Where an index keeps its vectors and its keyword index, derived from the SQLite database (indexing/database.py).

    base.py             the contracts (`VectorIndex`, `KeywordIndex`), their composition (`ComposedStore`), the
                        parsed store setting (`StoreSpec`, `parse_store`) and `open_store`
    faiss.py            vector index: a FAISS file (flat, or HNSW with a measured efSearch)
    milvus.py           vector index: a Milvus collection (Lite file or server); milvus_grpc.py its light reader;
                        milvus_keywords.py its BM25 as the keyword index
    fts5.py             keyword index: SQLite's own keyword tables (the default)
    tantivy.py          keyword index: a tantivy folder beside the vectors
    query.py            what the keyword indexes search for: the query's words, safely quoted
    fallback.py         SQLite's copies as a store, for a search whose store is damaged or gone
    replica.py          an index read from a store server alone (no index folder here)

Backends are chosen by name from searchlm/plugins.py (the built-ins register in searchlm/default_plugins.py).
"""

DEFAULT_STORE = "faiss"  # a new index's store when neither --store nor SEARCHLM_STORE names one
