"""Where indexes live, so an index made from one folder is found from any other.

The default index home is `./indexes` when that folder exists (a project that keeps its indexes beside it),
otherwise a per-user folder (platformdirs: `~/.local/share/searchlm/indexes` on Linux,
`~/Library/Application Support/searchlm/indexes` on macOS). Every home an index is written to is remembered in
a per-user registry (`homes.json` in the same per-user folder; `SEARCHLM_DATA_DIR` moves it), so `searchlm
indexes` lists every index the user has, and an index asked for by name from the default home is found in
whichever remembered home holds it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

LOCAL_HOME = Path("indexes")
REGISTRY = "homes.json"


def data_dir() -> Path:
    """The per-user searchlm folder (env SEARCHLM_DATA_DIR)."""
    given = os.environ.get("SEARCHLM_DATA_DIR")
    if given:
        return Path(given).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("searchlm", appauthor=False))


def default_home() -> Path:
    """`./indexes` when it exists, else the per-user index home."""
    return LOCAL_HOME if LOCAL_HOME.is_dir() else data_dir() / "indexes"


def remembered_homes() -> list[Path]:
    """Homes written to before, that still exist (most recent first)."""
    try:
        data = json.loads((data_dir() / REGISTRY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [Path(p) for p in data.get("homes", []) if isinstance(p, str) and Path(p).is_dir()]


def remember_home(home: Path) -> None:
    """Record `home` in the per-user registry (atomically; a failure to write it never fails an index run)."""
    from searchlm.fileio import write_json_atomic

    home = Path(home).expanduser().resolve()
    homes = [home] + [h for h in remembered_homes() if h.resolve() != home]
    try:
        data_dir().mkdir(parents=True, exist_ok=True)
        write_json_atomic(data_dir() / REGISTRY, {"homes": [str(h) for h in homes]})
    except OSError:
        pass


def known_homes(current: Path | None = None) -> list[Path]:
    """The current home, the default one and every remembered home, each once."""
    out: list[Path] = []
    seen: set[Path] = set()
    for home in ([current] if current else []) + [default_home(), data_dir() / "indexes"] + remembered_homes():
        key = Path(home).expanduser().resolve()
        if key not in seen:
            seen.add(key)
            out.append(Path(home))
    return out


def all_indexes(current: Path | None = None) -> list[tuple[Path, object]]:
    """(home, Manifest) of every index in the known homes."""
    from searchlm.indexing.manifest import list_indexes

    return [(home, m) for home in known_homes(current) for m in list_indexes(home)]


def locate(name: str, home: Path) -> Path | None:
    """The home holding index `name`: `home` itself when it does, else (only when `home` is the default one, so
    an explicit --home is never second-guessed) the one remembered home that holds it, the most recent first."""
    home = Path(home).expanduser()
    if (home / name / "manifest.json").is_file():
        return home
    if Path(home).expanduser().resolve() != default_home().resolve():
        return None
    for other in known_homes(home):
        if (other / name / "manifest.json").is_file():
            return other
    return None


def describe_indexes(current: Path | None = None, limit: int = 8) -> str:
    """"docs (over /src/docs, in /home/u/.local/share/searchlm/indexes), ..." for messages; "" when none."""
    found = all_indexes(current)
    shown = [f"{m.name} (over {m.root}, in {home})" for home, m in found[:limit]]
    if len(found) > limit:
        shown.append(f"and {len(found) - limit} more (`searchlm indexes`)")
    return ", ".join(shown)
