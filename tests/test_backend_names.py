"""The store seam holds: no backend is named outside the stores package and the registry (searchlm/plugins.py,
searchlm/default_plugins.py), so the rest of searchlm works with every store alike. A name is allowed elsewhere only
where it is text a user reads (help, a message) or SQLite's own SQL; each such place is listed here with why."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "searchlm"
BACKEND = re.compile(r"faiss|tantivy|milvus|fts5", re.IGNORECASE)
INSIDE = ("stores/", "plugins.py", "default_plugins.py")

# (module, a piece of the line): why the name may stay there.
ALLOWED = {
    ("cli.py", 'help="Where the vectors live: faiss (default)'): "--store's help lists the stores",
    ("cli.py", '"milvus (a Milvus Lite file in the index folder)'): "--store's help, continued",
    ("cli.py", 'help="A Milvus server URI'): "--server's help",
    ("cli.py", "Verify an index (manifest, SQLite, FTS5, FAISS, query encoder)"): "`check`'s help",
    ("indexing/check.py", '"the keyword index (FTS5) does not match the chunks'): "a problem `check` reports",
    ("indexing/database.py", 'fts_version="FTS5"'): "SQL: SQLite's keyword tables are its fts5 module's",
    ("indexing/database.py", "CREATE VIRTUAL TABLE chunks_cjk USING fts5("): "SQL, as above",
    ("search/spelling.py", "USING fts5vocab("): "SQL: the keyword tables' vocabulary",
    ("search/spelling.py", "USING fts5(w, tokenize="): "SQL: stems as the keyword tables stem",
}


def leaks(package: Path = PACKAGE) -> list[str]:
    """`module:line: text` for each line naming a backend outside the seam and not in ALLOWED."""
    found = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        if rel.startswith(INSIDE):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if BACKEND.search(line) and not any(rel == m and piece in line for m, piece in ALLOWED):
                found.append(f"{rel}:{number}: {line.strip()}")
    return found


def test_no_backend_is_named_outside_the_store_seam():
    assert leaks() == [], "move these behind searchlm/stores (or, for help text, add them to ALLOWED)"


def test_every_allowed_place_is_still_there():
    """An allow-list entry whose line is gone is removed, so the list stays as short as what needs it."""
    for module, piece in ALLOWED:
        assert piece in (PACKAGE / module).read_text(encoding="utf-8"), (module, piece)


def test_the_check_finds_a_leak(tmp_path):
    (tmp_path / "stores").mkdir()
    (tmp_path / "stores" / "faiss.py").write_text("import faiss\n")  # inside the seam: fine
    (tmp_path / "search.py").write_text("x = 1\nif store == 'Milvus':\n    pass\n")
    assert leaks(tmp_path) == ["search.py:2: if store == 'Milvus':"]
