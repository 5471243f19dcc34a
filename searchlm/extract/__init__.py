"""Turn a file into an `ExtractedDocument`: a title and structural blocks with line or page numbers.

One module per format; `extract(path)` picks the extractor by file extension.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import threading
from pathlib import Path

from searchlm.errors import ExtractionError
from searchlm.extract.limits import EXTRACT_SECONDS, MAX_EXPANDED_BYTES, MAX_FILE_BYTES, MAX_TEXT_CHARS  # noqa: F401
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
# once skipped, needs no bump: skipped files are not in the index, so every run reads them again.
READER_VERSIONS = {"txt": 2, "md": 2, "rst": 2}


def kind_of(path: Path) -> str | None:
    """The document kind for a path (md, pdf, py, ...), or None when searchlm does not read it."""
    return file_kind(path.suffix)


def file_kind(name: str) -> str | None:
    """The document kind for a type a user typed (`md`, `.MD`, `htm`, `markdown`) or a file suffix, or None."""
    name = name.strip().lower().lstrip(".")
    return SUPPORTED.get("." + name) if name else None


def read_regular(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file, at most `limit` of them. A FIFO, device or socket is refused before a read
    could block or never end (the file may have been swapped since the folder was walked)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ExtractionError(f"unreadable ({exc.strerror or exc})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ExtractionError("not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise ExtractionError(f"unreadable ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ExtractionError(f"larger than {limit // 2**20} MB (the per-file size limit)")
    return data


def extract(path: Path, data: bytes | None = None) -> ExtractedDocument:
    """Read one file (or its bytes, already read). Raises ExtractionError with a short reason for anything that
    keeps it from being read as text: any parser failure, an encoding error, a per-file limit."""
    kind = kind_of(path)
    if kind is None:
        raise ExtractionError(f"unsupported file type '{path.suffix}'")
    if data is None:
        data = read_regular(path)
    try:
        with time_limit(EXTRACT_SECONDS):
            doc = _extract(kind, data, path)
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


def _extract(kind: str, data: bytes, path: Path) -> ExtractedDocument:
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

    return extract_text(data, path, kind)


class _TimeUp(BaseException):
    """A BaseException, so parsers that catch Exception on bad input do not swallow it."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise ExtractionError naming the limit when the body runs longer than `seconds`. In the main thread a
    SIGALRM timer interrupts it (when no one else owns that signal); in any other thread (the indexer's reader)
    a timer thread raises the same exception in it asynchronously. Either way parsers stop at their next Python
    step, never inside a C call."""
    if threading.current_thread() is not threading.main_thread():
        with _thread_deadline(seconds):
            yield
        return
    usable = hasattr(signal, "setitimer") and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None)
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise _TimeUp()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _TimeUp:
        raise ExtractionError(f"took over {seconds:g} s to extract (the per-file time limit)") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _thread_deadline(seconds: float):
    """`time_limit` off the main thread: the watchdog raises _TimeUp in this thread (`PyThreadState_SetAsyncExc`)
    if the body still runs at its deadline. An exception the watchdog set just as the body ended is taken back
    under the same lock, so nothing fires after the block."""
    entry = _WATCHDOG.watch(seconds)
    try:
        try:
            yield
        finally:
            _WATCHDOG.release(entry)
    except _TimeUp:
        _WATCHDOG.release(entry)  # when it arrived inside release(), before its lock
    if entry.fired:
        raise ExtractionError(f"took over {seconds:g} s to extract (the per-file time limit)")


class _Deadline:
    __slots__ = ("ident", "at", "running", "fired")

    def __init__(self, ident: int, at: float):
        self.ident, self.at, self.running, self.fired = ident, at, True, False


class _Watchdog:
    """One daemon thread for every `_thread_deadline` in the process (a thread per file would cost more than
    reading a small text file). It wakes at the earliest deadline, and at least once a second."""

    def __init__(self):
        self._cond = threading.Condition()
        self._entries: set[_Deadline] = set()
        self._thread: threading.Thread | None = None

    def watch(self, seconds: float) -> _Deadline:
        import time

        entry = _Deadline(threading.get_ident(), time.monotonic() + seconds)
        with self._cond:
            self._entries.add(entry)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="searchlm-extract-watchdog", daemon=True)
                self._thread.start()
            elif seconds < 1:
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
                now = time.monotonic()
                for entry in [e for e in self._entries if e.running and not e.fired and e.at <= now]:
                    entry.fired = True
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(entry.ident), ctypes.py_object(_TimeUp))
                soonest = min((e.at for e in self._entries if not e.fired), default=now + 1)
                self._cond.wait(min(1.0, max(0.0, soonest - now)))


_WATCHDOG = _Watchdog()
