"""searchlm: local semantic search over a folder of documents.

The public API lives in small modules: `indexer.index_folder`, `search.Searcher`,
`ask.answer`, `evaluate.evaluate`. Importing this package imports no heavy library.
"""

__version__ = "0.1.0"
