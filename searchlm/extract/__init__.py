"""Turn a file into an `ExtractedDocument`: a title and structural blocks with line or page numbers.

One module per format; `extract(path)` picks the extractor by file extension.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
from pathlib import Path

from searchlm.errors import ExtractionError
from searchlm.extract.limits import (  # noqa: F401
    EXTRACT_SECONDS, EXTRACT_WALL_SECONDS, MAX_EXPANDED_BYTES, MAX_FILE_BYTES, MAX_TEXT_CHARS,
)
from searchlm.records import Block, ExtractedDocument

TEXT_KINDS = {".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md", ".rst": "rst"}
MARKUP_KINDS = {".html": "html", ".htm": "html", ".pdf": "pdf", ".docx": "docx"}
CODE_KINDS = {
    ext: ext[1:]
    for ext in (
        ".py", ".js", ".ts", ".tsx", ".jsx", ".go", ".rs", ".java", ".c", ".h", ".cpp", ".hpp", ".cc",
        ".cs", ".rb", ".php", ".swift", ".kt", ".scala", ".sh", ".sql", ".r", ".lua", ".pl",
        ".toml", ".yaml", ".yml", ".ini", ".cfg",
    )
}
SUPPORTED = {**TEXT_KINDS, **MARKUP_KINDS, **CODE_KINDS}

# Per-file limits: a file over any of them is skipped with the limit named, and the run goes on.
# Bumped when a reader starts to extract a kind differently; an index made with an older reader re-reads those
# files once (vectors of unchanged chunk texts are reused). txt 2: underlined headings. md 2, rst 2: plain text
# instead of markup (markdown-it-py; the reST reader renders roles, links and literals). A title-only document,
# once skipped, needs no bump: skipped files are not in the index, so every run reads them again. rst 3: roles
# less private module aliases, :ref:/:doc: as their titles, no build markers, container or autodoc names. html 2:
# no Sphinx chrome (sidebar, related bar, footer div, search box, "¶" heading anchors). md 3: TOML front matter
# and YAML's "..." end are no text. md 4: MyST (roles, targets, directive fences, {eval-rst} read as reST) and
# navigation bars, <nav>/<footer>/<script> blocks are no text.
READER_VERSIONS = {"txt": 2, "md": 4, "rst": 3, "html": 2}


def kind_of(path: Path) -> str | None:
    """The document kind for a path (md, pdf, py, ...), or None when searchlm does not read it."""
    return file_kind(path.suffix)


def file_kind(name: str) -> str | None:
    """The document kind for a type a user typed (`md`, `.MD`, `htm`, `markdown`) or a file suffix, or None."""
    name = name.strip().lower().lstrip(".")
    return SUPPORTED.get("." + name) if name else None


def read_regular(path: Path, limit: int = MAX_FILE_BYTES, expect: tuple[int, int] | None = None,
                 follow_symlinks: bool = True) -> bytes:
    """The bytes of a regular file, at most `limit` of them. A FIFO, device or socket is refused before a read
    could block or never end (the file may have been swapped since the folder was walked).

    `expect`: the (device, inode) the folder walk saw; the file opened must be that one, or it is refused (a file
    swapped for a symlink out of the folder, or for another file, between the walk and the read).
    `follow_symlinks=False` opens with O_NOFOLLOW: a path the walk found to be a regular file is not read
    through a symlink put in its place."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            raise ExtractionError(_CHANGED.format("a symlink")) from None
        raise ExtractionError(f"unreadable ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ExtractionError("not a regular file")
        if expect is not None and (st.st_dev, st.st_ino) != tuple(expect):
            raise ExtractionError(_CHANGED.format("another file"))
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise ExtractionError(f"unreadable ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ExtractionError(f"larger than {limit // 2**20} MB (the per-file size limit)")
    return data


_CHANGED = "became {} after the folder was walked (not read; the next run looks again)"


def extract(path: Path, data: bytes | None = None, targets=None) -> ExtractedDocument:
    """Read one file (or its bytes, already read). Raises ExtractionError with a short reason for anything that
    keeps it from being read as text: any parser failure, an encoding error, a per-file limit.

    `targets`: the folder's `SphinxTargets` (`targets.scan_targets` of its .rst and .md files), so that a reST
    file's :ref: and :doc: (and a MyST page's {ref} and {doc}) show the titles they name; without it they show the
    label's words."""
    kind = kind_of(path)
    if kind is None:
        raise ExtractionError(f"unsupported file type '{path.suffix}'")
    if data is None:
        data = read_regular(path)
    try:
        with time_limit(EXTRACT_SECONDS):
            doc = _extract(kind, data, path, targets)
    except ExtractionError:
        raise
    except (MemoryError, RecursionError) as exc:
        raise ExtractionError(f"too large or too deeply nested to extract ({type(exc).__name__})") from None
    except Exception as exc:  # a parser's own error on malformed input: this one file is skipped, named
        raise ExtractionError(f"could not be read ({type(exc).__name__}: {str(exc)[:120]})") from None
    if sum(len(b.text) for b in doc.blocks) > MAX_TEXT_CHARS:
        raise ExtractionError(f"more than {MAX_TEXT_CHARS // 2**20} M characters of text (the per-file limit)")
    if not any(b.text.strip() for b in doc.blocks):
        if not doc.title.strip() or doc.title == path.stem:  # the stem is the fallback title, not text
            raise ExtractionError("no text")
        # A title with no body (front matter, or a lone heading) is the document's text: half of some test
        # collections are titles only, and a user searching for a page's title expects to find it.
        doc.blocks = [Block(doc.title.strip(), (), 1, 1)]
    return doc


def _extract(kind: str, data: bytes, path: Path, targets=None) -> ExtractedDocument:
    if kind == "pdf":
        from searchlm.extract.pdf import extract_pdf

        return extract_pdf(data, path)
    if kind == "docx":
        from searchlm.extract.docx import extract_docx

        return extract_docx(data, path)
    if kind == "html":
        from searchlm.extract.html import extract_html

        return extract_html(data, path)
    from searchlm.extract.text import extract_text

    return extract_text(data, path, kind, targets)


class _TimeUp(BaseException):
    """A BaseException, so parsers that catch Exception on bad input do not swallow it."""


@contextlib.contextmanager
def time_limit(cpu_seconds: float, wall_seconds: float | None = None):
    """Raise ExtractionError naming the limit when the body uses more than `cpu_seconds` of this thread's CPU
    time, or runs longer than `wall_seconds` on the clock (default: EXTRACT_WALL_SECONDS, at least 10x the CPU
    limit), a backstop for a body that blocks. CPU time, because on a starved machine a good file can take
    minutes on the clock for seconds of work. A watchdog thread raises the exception in this thread
    (`PyThreadState_SetAsyncExc`), in the main thread as in any other (the indexer's reader thread, the
    extraction worker's main thread); parsers stop at their next Python step, never inside a C call. An
    exception the watchdog set just as the body ended is taken back under the same lock, so nothing fires after
    the block."""
    if wall_seconds is None:
        wall_seconds = max(EXTRACT_WALL_SECONDS, 10 * cpu_seconds)
    entry = _WATCHDOG.watch(cpu_seconds, wall_seconds)
    try:
        try:
            yield
        finally:
            _WATCHDOG.release(entry)
    except _TimeUp:
        _WATCHDOG.release(entry)  # when it arrived inside release(), before its lock
    if entry.fired == "cpu":
        raise ExtractionError(f"used over {cpu_seconds:g} s of CPU time to extract (the per-file time limit)")
    if entry.fired == "wall":
        raise wall_clock_exceeded(wall_seconds)
    if entry.fired:  # no per-thread CPU clock here: the clock stood in for it
        raise ExtractionError(f"took over {cpu_seconds:g} s to extract (the per-file time limit)")


def wall_clock_exceeded(seconds: float) -> ExtractionError:
    """The skip reason of a file that ran past the wall-clock backstop, in the extracting thread or its worker."""
    return ExtractionError(f"took over {seconds:g} s on the clock to extract (the per-file wall-clock limit)")


def _cpu_clock(ident: int):
    """A function giving the CPU time of thread `ident` (its pthread id) so far, or None where the platform has
    no per-thread CPU clock (the wall-clock limit then stands in)."""
    import time

    try:
        clock = time.pthread_getcpuclockid(ident)
        time.clock_gettime(clock)
    except (AttributeError, OSError):
        return None
    return lambda: time.clock_gettime(clock)


class _Deadline:
    __slots__ = ("at", "cpu", "cpu_limit", "cpu_start", "fired", "ident", "running")

    def __init__(self, ident: int, cpu_seconds: float, wall_seconds: float):
        import time

        self.ident, self.running, self.fired = ident, True, None
        self.cpu = _cpu_clock(ident)
        self.cpu_start = self.cpu() if self.cpu else 0.0
        self.cpu_limit = cpu_seconds
        self.at = time.monotonic() + (wall_seconds if self.cpu else min(cpu_seconds, wall_seconds))

    def due(self, now: float) -> tuple[str | None, float]:
        """Which limit is past ("cpu", "wall" or None), and the longest the watchdog may sleep before the next
        look: CPU time cannot run faster than the clock, so the CPU time left is a safe wait."""
        if self.cpu:
            left = self.cpu_limit - (self.cpu() - self.cpu_start)
            if left <= 0:
                return "cpu", 0.0
        else:
            left = float("inf")
        if self.at <= now:
            return ("wall" if self.cpu else "clock"), 0.0
        return None, min(left, self.at - now)


class _Watchdog:
    """One daemon thread for every `time_limit` in the process (a thread per file would cost more than reading
    a small text file). It looks again when the first limit could be reached, and at least once a second."""

    def __init__(self):
        self._cond = threading.Condition()
        self._entries: set[_Deadline] = set()
        self._thread: threading.Thread | None = None

    def watch(self, cpu_seconds: float, wall_seconds: float) -> _Deadline:
        entry = _Deadline(threading.get_ident(), cpu_seconds, wall_seconds)
        with self._cond:
            self._entries.add(entry)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="searchlm-extract-watchdog", daemon=True)
                self._thread.start()
            elif cpu_seconds < 1:
                self._cond.notify()
        return entry

    def release(self, entry: _Deadline) -> None:
        import ctypes

        with self._cond:
            entry.running = False
            self._entries.discard(entry)
            if entry.fired:  # delivered already, or pending: take a pending one back
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(entry.ident), None)

    def _run(self) -> None:
        import ctypes
        import time

        with self._cond:
            while True:
                now, wait = time.monotonic(), 1.0
                for entry in [e for e in self._entries if e.running and not e.fired]:
                    limit, left = entry.due(now)
                    if limit:
                        entry.fired = limit
                        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(entry.ident), ctypes.py_object(_TimeUp))
                    wait = min(wait, left)
                self._cond.wait(max(0.001, wait))


_WATCHDOG = _Watchdog()
