"""The hooks a searchlm plugin implements (searchlm/plugins.py says how plugins are found and used)."""

from __future__ import annotations

import pluggy

GROUP = "searchlm"  # the entry-point group and the pluggy project name
hookspec = pluggy.HookspecMarker(GROUP)
hookimpl = pluggy.HookimplMarker(GROUP)


@hookspec
def register_embedders(register):
    """Register indexing embedders: register(name, class or 'module:Class', extra=None)."""


@hookspec
def register_stores(register):
    """Register vector indexes, the name a store starts with: register(name, VectorIndex subclass or
    'module:Class', extra=None)."""


@hookspec
def register_keyword_indexes(register):
    """Register keyword indexes, the name after a store's '+': register(name, KeywordIndex subclass or
    'module:Class', extra=None)."""


@hookspec
def register_rerankers(register):
    """Register rerankers: register(name, Reranker subclass or 'module:Class', extra=None)."""


@hookspec
def register_generators(register):
    """Register generator kinds: register(name, factory(model, device) or 'module:function', extra=None)."""
