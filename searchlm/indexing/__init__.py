"""The index lifecycle: how a folder becomes an index folder, and stays in step with it.

    walk.py        the files to index under a folder (.gitignore, .searchlmignore honoured)
    indexer.py     `index_folder`: walk, extract (searchlm/extract/), chunk (chunking.py), embed what is new
                   (searchlm/embed/), write the database, sync the store (searchlm/stores/), save the manifest
    database.py    the SQLite database: documents, chunks, their vectors and keyword tables (the source of truth)
    manifest.py    manifest.json: what the folder holds and how to reopen it (model, chunker, store)
    integrity.py   digests of the derived files; check.py: verify an index part by part, repair what can be
    lock.py        one writer per index; identity.py: is the index on disk still the one a process opened
    watch.py       keep an index current as files change; admin.py: status and drop
    homes.py       where indexes live; doc_kinds.py: what kind of page a document is
"""
