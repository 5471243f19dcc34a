"""An index read from a store server alone, with no index folder on this machine (a search replica)."""

from __future__ import annotations


def open_replica(name: str, uri: str):
    """(manifest, records) of index `name` on the server at `uri`."""
    from searchlm.stores.milvus import open_replica

    return open_replica(name, uri)
