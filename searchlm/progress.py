"""Progress: `Estimate` (rates and time left from the library's `progress(phase, done, total)` callbacks) and
`ProgressDisplay`, the CLI's one progress display, which draws an `Estimate`.

Rates are measured over a sliding window of real completions up to now, so a burst of instant completions (files
that did not change) does not read as 48,000 files/s, and a stall lowers the rate and lengthens the time left
instead of leaving "1 s left" on screen. While an index run is still reading files, the number of chunks it will
embed is projected from the chunks found per byte so far and shown with a "~".

On a terminal the display is a rich live display: a row for the whole run and one per phase with counts, rate,
elapsed and time left. Elsewhere (a log file, CI, a pipe) a live bar would print once and then nothing, so it writes
a plain line per phase when the phase starts, every `interval` seconds, and when it ends, and a line every
`interval` seconds while one file holds the reader up.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from searchlm.closing import Closing

LABELS = {
    "scan": ("Scanning folder", "files"),
    "read": ("Reading files", "files"),
    "embed": ("Embedding chunks", "chunks"),
    "query": ("Running queries", "queries"),
    "train": ("Training", "steps"),
    "weigh": ("Scoring held-out queries", "queries"),
}
INDEX_PHASES = ("scan", "read", "embed")
WINDOW = 60.0  # seconds of completions a rate is measured over
MIN_SPAN = 1.0  # no rate from less time than this: one file done in 20 microseconds is not 50,000 files/s
STALL_NOTE = 3.0  # a file read for longer than this is named on the display


class Rate:
    """Items per second over the last `window` seconds of completions, measured up to `now`.

    The window starts at the last sample older than `window` (or the phase's start), so it always spans real
    time. Between completions the rate holds while the wait is no longer than twice the longest gap between
    completions in the window (a batch twice the size of the last is not a stall); beyond that the wait counts,
    so a stall lowers the rate (and a time left computed from it grows)."""

    def __init__(self, start: float, done: int, window: float = WINDOW):
        self.window = window
        self.samples: deque[tuple[float, int]] = deque([(start, done)])

    def add(self, t: float, done: int) -> None:
        if done == self.samples[-1][1]:
            return  # not a completion
        self.samples.append((t, done))
        while len(self.samples) > 2 and self.samples[1][0] <= t - self.window:
            self.samples.popleft()

    def per_second(self, now: float) -> float | None:
        (t0, d0), (t1, d1) = self.samples[0], self.samples[-1]
        if len(self.samples) == 1:
            return None if now - t0 < MIN_SPAN else 0.0
        times = [t for t, _ in self.samples]
        grace = 2 * max(b - a for a, b in zip(times, times[1:]))
        span = max(t1 - t0, now - t0 - grace)
        return (d1 - d0) / span if span >= MIN_SPAN else None


@dataclass
class _Phase:
    started: float
    rate: Rate
    first_done: int = 0
    done: int = 0
    total: int = 0
    last: float = 0.0  # when `done` last grew


@dataclass
class _Reading:
    path: str
    since: float


class Estimate:
    """Rates, totals and time left from `progress(phase, done, total)` calls; call it as that callback.

    An index run also reports `("bytes", done, total)` (bytes of the walked files whose chunks are counted in
    embed's total, of all of them) and, through `reading(path)`, the file the reader is on. `clock` is injectable
    so tests need no sleeps."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, window: float = WINDOW):
        self.clock = clock
        self.window = window
        self.started = clock()
        self.phases: dict[str, _Phase] = {}
        self.bytes_done = self.bytes_total = 0
        self.current: _Reading | None = None
        self._lock = threading.Lock()

    # -- input ------------------------------------------------------------------------------------------------
    def __call__(self, phase: str, done: int, total: int) -> None:
        now = self.clock()
        with self._lock:
            if phase == "bytes":
                self.bytes_done, self.bytes_total = done, total
                return
            state = self.phases.get(phase)
            if state is None:
                state = self.phases[phase] = _Phase(now, Rate(now, done, self.window), done, done, total, now)
            if done != state.done:
                state.last = now
            state.rate.add(now, done)
            state.done, state.total = done, total
            if phase == "read" and self.finished("read"):
                self.current = None

    def reading(self, path: str | None) -> None:
        """The reader started on `path` (None: it finished that file)."""
        self.current = _Reading(path, self.clock()) if path is not None else None

    def _growing(self, phase: str) -> bool:
        """Embed's total still grows while files are being read."""
        return phase == "embed" and not self._read_all()

    def _read_all(self) -> bool:
        if self.bytes_total:
            return self.bytes_done >= self.bytes_total
        read = self.phases.get("read")
        return read is None or (read.total and read.done >= read.total)

    # -- output -----------------------------------------------------------------------------------------------
    def finished(self, phase: str) -> bool:
        state = self.phases.get(phase)
        return state is not None and bool(state.total) and state.done >= state.total and not self._growing(phase)

    def all_finished(self) -> bool:
        """Every phase seen so far is done and, in an index run, every file's bytes are counted (files all
        read is not the end: their chunks may still be on their way to the encoder)."""
        phases_done = all(self.finished(p) or p == "scan" for p in self.phases)
        return bool(self.phases) and phases_done and self._read_all()

    def rate(self, phase: str) -> float | None:
        """Items per second: over the window while the phase runs, its average once it is done."""
        state = self.phases.get(phase)
        if state is None:
            return None
        with self._lock:
            if self.finished(phase):
                spent = state.last - state.started
                return (state.done - state.first_done) / spent if spent >= MIN_SPAN else None
            return state.rate.per_second(self.clock())

    def total(self, phase: str) -> tuple[int | None, bool]:
        """(total, is_estimate). Embed's total, while files are still being read, is projected from the chunks
        to embed per byte so far; None when there is nothing to project from yet."""
        state = self.phases.get(phase)
        if phase == "embed" and self._growing("embed"):
            found = state.total if state else 0
            if not self.bytes_done or not self.bytes_total:
                return None, True
            return round(found * self.bytes_total / self.bytes_done), True
        if state is None:
            return None, False
        return (state.total or None), False

    def left(self, phase: str) -> float | None:
        """Seconds left in `phase` (0 once done), None when it cannot be estimated yet."""
        state = self.phases.get(phase)
        if self.finished(phase):
            return 0.0
        total, _ = self.total(phase)
        done = state.done if state else 0
        if total is not None and total <= done:
            return 0.0
        rate = self.rate(phase)
        if total is None or not rate:
            return None
        return (total - done) / rate

    def run_left(self) -> float | None:
        """Seconds left in a whole index run: reading and embedding overlap, so the longer of the two (the
        embedding rate is measured on the wall clock, so it already includes waiting for the reader and writing
        each window). None until both can be estimated."""
        if not any(p in self.phases for p in ("read", "embed")):
            return None
        read = 0.0 if self._read_all() else self.left("read")
        if "embed" in self.phases:
            embed = self.left("embed")
        else:  # nothing embedded yet: nothing to embed, if what has been read needed none
            embed = 0.0 if self.bytes_done and self._read_all() else None
        if read is None or embed is None:
            return None
        return max(read, embed)

    def elapsed(self, phase: str | None = None) -> float:
        """Seconds since the phase (or the whole run) started, up to its end."""
        if phase is None:
            return self.clock() - self.started
        state = self.phases[phase]
        return (state.last if self.finished(phase) else self.clock()) - state.started

    def stalled(self) -> tuple[str, float] | None:
        """(path, seconds) of a file the reader has been on for more than a few seconds."""
        current = self.current
        if current is None:
            return None
        spent = self.clock() - current.since
        return (current.path, spent) if spent >= STALL_NOTE else None


class ProgressDisplay(Closing):
    """Call it as `progress(phase, done, total)`; `message(text)` prints a line (a model loading) above the bars;
    `reading(path)` names the file being read. Use it as a context manager so the live display is closed however
    the work ends."""

    def __init__(self, stream=None, interval: float = 10.0, live: bool | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.stream = stream or sys.stderr
        self.interval = interval
        self.live = self.stream.isatty() if live is None else live
        self.clock = clock
        self.estimate = Estimate(clock)
        self._tasks: dict[str, object] = {}  # phase (or "run") -> rich task id
        self._shown: dict[str, float] = {}  # phase -> when its last plain line was written
        self._finished: set[str] = set()
        self._rich = None
        self._lock = threading.RLock()
        self._ticker: threading.Thread | None = None
        self._closing = threading.Event()

    def close(self) -> None:
        self._closing.set()
        if self._ticker is not None:
            self._ticker.join(timeout=1)
            self._ticker = None
        if self._rich is not None:
            self._rich.stop()
            self._rich = None

    def message(self, text: str) -> None:
        from searchlm.terminal import safe_text

        text = safe_text(text)
        if self._rich is not None:
            self._rich.console.print(text, markup=False, highlight=False)
        else:
            with self._lock:
                print(text, file=self.stream, flush=True)

    def reading(self, path: str | None) -> None:
        self.estimate.reading(path)
        if path is not None and not self.live and self._ticker is None and self.interval > 0:
            self._ticker = threading.Thread(target=self._tick, name="searchlm-progress", daemon=True)
            self._ticker.start()

    def __call__(self, phase: str, done: int, total: int) -> None:
        if phase not in LABELS and phase != "bytes":
            return
        self.estimate(phase, done, total)
        if phase == "bytes":
            return
        with self._lock:  # the indexer reports from two threads
            if self.live:
                self._update_live(phase)
            else:
                self._update_plain(phase)

    # -- a terminal ---------------------------------------------------------------------------------------
    def _update_live(self, phase: str) -> None:
        if self._rich is None:
            self._rich = self._make_live()
            self._rich.start()
        rich, estimate = self._rich, self.estimate
        if phase in INDEX_PHASES and "run" not in self._tasks:
            self._tasks["run"] = rich.add_task("Indexing", total=None, phase=None)
        state, finished = estimate.phases[phase], estimate.finished(phase)
        label, unit = LABELS[phase]
        total, _ = estimate.total(phase)
        if phase not in self._tasks:
            self._tasks[phase] = rich.add_task(label, total=total, completed=state.done, phase=phase, unit=unit)
        task = self._tasks[phase]
        if phase == "scan" and finished:
            rich.update(task, description=f"Found {state.total} files", total=state.total, completed=state.done)
        else:
            rich.update(task, total=total, completed=state.done)
        if finished and phase not in self._finished:
            self._finished.add(phase)
            rich.stop_task(task)
        run = self._tasks.get("run")
        if run is not None and "run" not in self._finished:
            spent = estimate.elapsed()
            if phase != "scan" and estimate.all_finished():
                self._finished.add("run")
                rich.update(run, total=spent, completed=spent)
                rich.stop_task(run)
            elif (run_left := estimate.run_left()) is not None and run_left > 0:  # at total, rich ends the task
                rich.update(run, total=spent + run_left, completed=spent)

    def render(self, width: int = 160) -> str:
        """The live display's rows as plain text: what a terminal shows now."""
        from io import StringIO

        from rich.console import Console

        if self._rich is None:
            return ""
        console = Console(file=StringIO(), width=width, color_system=None)
        console.print(self._rich.get_renderable())
        return console.file.getvalue()

    def _make_live(self):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        columns = _columns(self.estimate)
        return Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), columns.Count(), columns.Rate(),
            TextColumn("elapsed", style="progress.elapsed"), TimeElapsedColumn(), columns.Left(), columns.Note(),
            console=Console(file=self.stream), refresh_per_second=4, get_time=self.clock,
        )

    # -- a log --------------------------------------------------------------------------------------------
    def _update_plain(self, phase: str) -> None:
        now = self.clock()
        finished = self.estimate.finished(phase)
        if phase in self._finished:
            return
        shown = self._shown.get(phase)
        if not (shown is None or now - shown >= self.interval or finished):
            return
        self._shown[phase] = now
        if finished:
            self._finished.add(phase)
        self._print(self.line(phase))

    def line(self, phase: str) -> str:
        """The plain line for `phase`: `Embedding chunks: 20/~40 (3.1 chunks/s, elapsed 0:06, left ~0:07;
        whole run left ~0:09)`."""
        estimate = self.estimate
        state, finished = estimate.phases[phase], estimate.finished(phase)
        label, unit = LABELS[phase]
        if phase == "scan":
            return f"Found {state.total} files." if finished else "Scanning folder..."
        parts = [f"{format_rate(rate, unit)}"] if (rate := estimate.rate(phase)) else []
        parts.append(f"elapsed {format_clock(estimate.elapsed(phase))}")
        if not finished:
            parts.append(_left_text(estimate.left(phase)))
        notes = []
        if phase == "read" and (stall := estimate.stalled()):
            notes.append(f"on {stall[0]} for {format_clock(stall[1])}")
        if phase in INDEX_PHASES and not finished and (run_left := estimate.run_left()) is not None:
            notes.append(f"whole run {_left_text(run_left)}")
        return f"{label}: {_count_text(estimate, phase)} ({', '.join(parts)}{'; ' + '; '.join(notes) if notes else ''})"

    def stall_line(self) -> str | None:
        """A line for the log while one file holds the reader up: due once every `interval` seconds."""
        stall = self.estimate.stalled()
        reading = "read" in self.estimate.phases and not self.estimate.finished("read")
        if not reading or stall is None or stall[1] < self.interval:
            return None
        if self.clock() - self._shown.get("read", 0.0) < self.interval:
            return None
        self._shown["read"] = self.clock()
        return self.line("read")

    def _tick(self) -> None:
        while not self._closing.wait(max(self.interval / 2, 0.5)):
            with self._lock:
                line = self.stall_line()
                if line:
                    self._print(line)

    def _print(self, line: str) -> None:
        with self._lock:
            print(line, file=self.stream, flush=True)


def _count_text(estimate: Estimate, phase: str) -> str:
    """`3/10`, `20/~40` (a projected total), `20/?` (none yet), or `7` (a phase with no total)."""
    state = estimate.phases[phase]
    total, projected = estimate.total(phase)
    if total is None:
        return f"{state.done}/?" if projected else str(state.done)
    return f"{state.done}/{'~' if projected else ''}{max(total, state.done)}"


def _left_text(seconds: float | None) -> str:
    return "left ?" if seconds is None else f"left ~{format_clock(seconds)}"


def format_rate(rate: float, unit: str) -> str:
    """`64 chunks/s`, `2.5 files/s`, `0.04 chunks/s`: enough digits that a slow rate never reads as 0."""
    digits = 0 if rate >= 10 else 1 if rate >= 1 else 2
    return f"{rate:.{digits}f} {unit}/s"


def format_clock(seconds: float) -> str:
    """`0:07`, `4:10`, `1:02:03`: minutes and seconds, hours when there are some."""
    seconds = int(round(seconds))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class _Columns:
    def __init__(self, Count, Rate, Left, Note):  # noqa: N803 - column classes
        self.Count, self.Rate, self.Left, self.Note = Count, Rate, Left, Note


def _columns(estimate: Estimate) -> _Columns:
    """rich columns that read `estimate` at every refresh (so a stall shows as it happens); built lazily, so
    importing this module does not import rich. A row's `phase` field names its phase; the run row has None."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Count(ProgressColumn):
        def render(self, task):
            phase = task.fields.get("phase")
            if phase is None or phase == "scan":
                return Text("")
            return Text(f"{_count_text(estimate, phase)} {task.fields.get('unit', '')}", style="progress.download")

    class RateColumn(ProgressColumn):
        def render(self, task):
            phase = task.fields.get("phase")
            rate = estimate.rate(phase) if phase not in (None, "scan") else None
            text = format_rate(rate, task.fields.get("unit", "items")) if rate else ""
            return Text(text, style="progress.data.speed")

    class Left(ProgressColumn):
        def render(self, task):
            phase = task.fields.get("phase")
            done = estimate.all_finished() if phase is None else estimate.finished(phase)
            if phase == "scan" or done:
                return Text("")
            left = estimate.run_left() if phase is None else estimate.left(phase)
            return Text(_left_text(left), style="progress.remaining")

    class Note(ProgressColumn):
        def render(self, task):
            stall = estimate.stalled() if task.fields.get("phase") == "read" else None
            return Text(f"on {stall[0]} for {format_clock(stall[1])}" if stall else "", style="yellow")

    return _Columns(Count, RateColumn, Left, Note)
