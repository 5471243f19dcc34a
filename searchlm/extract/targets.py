"""What Sphinx's cross-references show, for one folder of .rst and MyST .md pages: each label's section title and
each document's title, so that a :ref: or :doc: role (reST ":ref:`label`", MyST "{ref}`label`") shows the title it
names, as the built manual does, instead of the label's words. Each reader scans its own format (`rst.scan_labels`,
`markdown.scan_labels`); this module gathers them across the folder."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from searchlm.extract import markdown, rst
from searchlm.extract.rst import Resolve


@dataclass
class SphinxTargets:
    """What :ref: and :doc: show, for the .rst and MyST .md files of one folder: the title of the section each
    label stands before, and each document's title. Built once per indexing run by `scan_targets`; plain dicts,
    so it pickles."""

    labels: dict[str, str] = field(default_factory=dict)  # label, lowercased as Sphinx does -> section title
    documents: dict[str, str] = field(default_factory=dict)  # absolute path less its suffix -> document title

    def resolver(self, path: Path | None) -> Resolve:
        """`resolve(role, target)` for the document at `path` (a :doc: path is relative to its folder)."""
        here = os.path.dirname(os.path.abspath(path)) if path is not None else None

        def resolve(role: str, target: str) -> str | None:
            if role == "ref":
                return self.labels.get(target.lower())
            if here is None:
                return None
            target = re.sub(r"\.(rst|md)$", "", target)
            if not target.startswith("/"):
                return self.documents.get(os.path.normpath(os.path.join(here, target)))
            folder = here  # "/a/b" is from the Sphinx source folder: the nearest folder above that has it
            while True:
                found = self.documents.get(os.path.normpath(folder + target))
                if found or os.path.dirname(folder) == folder:
                    return found
                folder = os.path.dirname(folder)

        return resolve


def scan_targets(paths: Iterable[Path], read=None) -> SphinxTargets:
    """The labels and titles of these .rst and .md files, found by regular expressions over each file's text (no
    parse): a few milliseconds a page. The first file to define a label wins, as in one Sphinx project; unreadable
    files are passed over (extraction names them). `read(path)` gives a file's bytes (the indexer's checks that it
    is the file the walk found, as the indexer passes it); a plain read by default, for files the caller trusts."""
    from searchlm.errors import ExtractionError
    from searchlm.extract.decode import decode, normalize_newlines

    targets = SphinxTargets()
    for path in paths:
        try:
            text = normalize_newlines(decode((read or Path.read_bytes)(path)))
        except (ExtractionError, UnicodeError):
            continue
        reader = markdown if path.suffix.lower() in (".md", ".markdown") else rst
        title, labels = reader.scan_labels(text)
        if title:
            targets.documents.setdefault(_document_key(path), title)
        for label, heading in labels.items():
            targets.labels.setdefault(label, heading)
    return targets


def _document_key(path: Path) -> str:
    """A document as a :doc: role names it: its absolute path less the suffix."""
    return os.path.normpath(os.path.abspath(path))[: -len(path.suffix) or None]
