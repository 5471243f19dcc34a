"""searchlm: local semantic search over a folder of documents.

The public API, importable from the package itself (nothing heavy is imported until it is used):

    import searchlm

    with searchlm.Index("notes") as index:        # ./indexes/notes, or SEARCHLM_HOME / home=...
        report = index.update("~/notes")           # incremental: only what changed
        hits = index.search("how do bees keep warm", k=5)
        answer = index.ask("How do bees keep warm in winter?")

- `Index`: one named index; `update`, `search`, `ask`, `summarize`, `document`, `status`, `drop`.
- `Searcher`: the open search objects of one index, for warm loops; `RemoteSearcher` asks a `searchlm serve`.
- `list_indexes`, `evaluate` (BEIR datasets), `Settings`.
- Option and result types: `SearchOptions`, `Hit`, `AskOptions`, `Answer`, `Citation`, `SummaryOptions`,
  `Summary`, `IndexReport`, `EvalReport`, `DocumentView`.
- Errors: `SearchlmError` and its subclasses (see `searchlm.errors`).
- Plugins: `hookimpl` marks a plugin's hook implementations; `get_plugins` lists those installed (see
  `searchlm.plugins`).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> module that defines it; resolved on first access (PEP 562), so `import searchlm` stays cheap.
_EXPORTS = {
    "Index": "searchlm.index",
    "list_indexes": "searchlm.index",
    "Searcher": "searchlm.search",
    "SearchOptions": "searchlm.search",
    "RemoteSearcher": "searchlm.client",
    "Settings": "searchlm.settings",
    "Hit": "searchlm.records",
    "IndexReport": "searchlm.records",
    "Citation": "searchlm.records",
    "AskOptions": "searchlm.answer",
    "Answer": "searchlm.answer",
    "SummaryOptions": "searchlm.summarize",
    "Summary": "searchlm.summarize",
    "DocumentView": "searchlm.documents",
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


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'searchlm' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
