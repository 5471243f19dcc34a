"""Index housekeeping: status and drop."""

from __future__ import annotations

import shutil
from dataclasses import asdict

from searchlm.errors import IndexNotFoundError
from searchlm.indexing.lock import write_lock
from searchlm.indexing.manifest import DB_FILE, MANIFEST, Manifest
from searchlm.settings import Settings
from searchlm.indexing.database import Database


def _located(settings: Settings) -> Settings:
    from searchlm.indexing.homes import describe_indexes, locate

    found = locate(settings.name, settings.home)
    if found is None:
        have = describe_indexes(settings.home)
        raise IndexNotFoundError(
            f"index '{settings.name}' not found in {settings.home}" + (f"; your indexes: {have}" if have else "")
            + " (see `searchlm indexes`)"
        )
    return settings.with_(home=found)


def index_status(settings: Settings) -> dict:
    settings = _located(settings)
    manifest = Manifest.load(settings.index_dir)
    store = Database(settings.index_dir / DB_FILE, readonly=True, existing=True)
    try:
        docs, chunks = store.counts()
        generation = store.generation
        pending = store.has_pending_vector_changes() if store.schema_version >= 2 else False
    finally:
        store.close()
    info = asdict(manifest)
    info.update(
        documents=docs,
        chunks=chunks,
        path=str(settings.index_dir),
        vectors_current=manifest.ann.get("generation") == generation and not pending,
        encoder=_encoder_line(manifest),
        size_mb=round(sum(f.stat().st_size for f in settings.index_dir.rglob("*") if f.is_file()) / 2**20, 1),
    )
    from searchlm.errors import InputError
    from searchlm.stores.base import vector_search_line

    try:
        searching = vector_search_line(manifest)
    except InputError:  # a plugin's backend that is not installed: status still says the rest
        searching = None
    if searching:  # how vector searches run, in words (the `ann` entry holds the measurement)
        info["vectors"] = searching
    return info


def _encoder_line(manifest: Manifest) -> str:
    """Which encoder the index's vectors are from: the packaged model, or the one `adapt` fine-tuned."""
    if not manifest.adapted:
        return manifest.model
    import datetime

    when = manifest.adapted.get("adapted_at")
    day = datetime.date.fromtimestamp(when).isoformat() if isinstance(when, (int, float)) else "?"
    return (f"{manifest.adapted.get('model')}/ (adapted from {manifest.adapted.get('base', manifest.model)} on {day}; "
            f"fusion weight {manifest.dense_weight}; `searchlm adapt --undo` restores {manifest.model})")


def drop_index(settings: Settings) -> None:
    """Delete the folder of index `settings.name`, and only a folder that holds a searchlm manifest (even a
    damaged one): the name is checked by `Settings`, so it cannot lead outside the index home."""
    index_dir = settings.index_dir
    if not index_dir.exists() and not index_dir.is_symlink():
        settings = _located(settings)  # only a complete index is dropped from another home
        index_dir = settings.index_dir
    if not (index_dir / MANIFEST).is_file() or index_dir.is_symlink():
        raise IndexNotFoundError(
            f"index '{settings.name}' not found in {settings.home}: no {MANIFEST} in that folder, so it is "
            "not deleted", "list_indexes() gives the names", "see `searchlm indexes` for the names",
        )
    with write_lock(index_dir, settings.name):
        shutil.rmtree(index_dir)
