"""searchlm: local semantic search over a folder of documents.

The public API, importable from the package itself (nothing heavy is imported until it is used):

    import searchlm

    with searchlm.Index("notes") as index:        # ./indexes/notes, or SEARCHLM_HOME / home=...
        report = index.update("~/notes")           # incremental: only what changed
        hits = index.search("how do bees keep warm", k=5)
        answer = index.ask("How do bees keep warm in winter?")

- `Index`: one named index; `update`, `search`, `ask`, `summarize`, `document`, `status`, `drop`.
- `Searcher`: the open search objects of one index, for warm loops; `RemoteSearcher` asks a `searchlm serve`.
- `list_indexes`, `all_indexes` (every home), `evaluate` (BEIR datasets), `check_index`, `watch_folder`,
  `tune_lm_reranker`, `get_generator` (an answer model), `IndexWatch` (is an open index still the one on disk),
  `Settings`.
- Option and result types: `SearchOptions` (`SearchOptions.from_params` reads loose parameters), `SearchResult`
  (hits, correction, why filters emptied it, `IndexRef`, timings; `to_json` is every surface's search JSON),
  `Hit`, `SearchResources` (loaded parts searchers share), `AskOptions`, `Answer`, `Citation`, `SummaryOptions`,
  `Summary`, `IndexReport`, `EvalReport`, `DocumentView`.
- Errors: `SearchlmError` and its subclasses (see `searchlm.errors`).
- Plugins: `hookimpl` marks a plugin's hook implementations; `get_plugins` lists those installed (see
  `searchlm.plugins`).

Besides the package itself, the surfaces (the CLI, the HTTP server, the MCP server) use only the modules in
`SURFACE_MODULES`: what a surface needs to check and show input and output the same way as the others.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> module that defines it; resolved on first access (PEP 562), so `import searchlm` stays cheap.
_EXPORTS = {
    "Index": "searchlm.index",
    "list_indexes": "searchlm.index",
    "Searcher": "searchlm.search.searcher",
    "SearchOptions": "searchlm.search.searcher",
    "SearchResources": "searchlm.search.searcher",
    "SearchResult": "searchlm.records",
    "IndexRef": "searchlm.records",
    "all_indexes": "searchlm.indexing.homes",
    "check_index": "searchlm.indexing.check",
    "watch_folder": "searchlm.indexing.watch",
    "tune_lm_reranker": "searchlm.tune",
    "get_generator": "searchlm.generate",
    "IndexWatch": "searchlm.indexing.identity",
    "RemoteSearcher": "searchlm.client",
    "Settings": "searchlm.settings",
    "Hit": "searchlm.records",
    "IndexReport": "searchlm.records",
    "Citation": "searchlm.records",
    "AskOptions": "searchlm.search.answer",
    "Answer": "searchlm.search.answer",
    "SummaryOptions": "searchlm.search.summarize",
    "Summary": "searchlm.search.summarize",
    "DocumentView": "searchlm.search.documents",
    "evaluate": "searchlm.evaluate",
    "EvalReport": "searchlm.evaluate",
    "SearchlmError": "searchlm.errors",
    "InputError": "searchlm.errors",
    "NothingToIndexError": "searchlm.errors",
    "IndexNotFoundError": "searchlm.errors",
    "DocumentNotFoundError": "searchlm.errors",
    "IndexMismatchError": "searchlm.errors",
    "IndexBusyError": "searchlm.errors",
    "ModelError": "searchlm.errors",
    "ExtractionError": "searchlm.errors",
    "ServerError": "searchlm.errors",
    "IndexDamagedError": "searchlm.errors",
    "DiskFullError": "searchlm.errors",
    "ServerBusyError": "searchlm.errors",
    "StoreError": "searchlm.errors",
    "PluginError": "searchlm.errors",
    "hookimpl": "searchlm.hookspecs",
    "get_plugins": "searchlm.plugins",
}

__all__ = sorted(_EXPORTS)

SURFACE_MODULES = (
    "searchlm.errors",  # the error tree
    "searchlm.indexing.db_errors",  # an sqlite3 error that escapes a command or request, as the same library error
    "searchlm.settings",  # configuration: flag, SEARCHLM_* variable, default
    "searchlm.limits",  # the bounds every surface holds input to (query length, ids, answer tokens)
    "searchlm.search.snippets",  # a hit's excerpt with the query's words marked
    "searchlm.terminal",  # text made safe to print on a terminal
    "searchlm.progress",  # the command line's progress display
)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'searchlm' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
