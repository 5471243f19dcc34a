"""The one progress display of the CLI, fed by the library's `progress(phase, done, total)` callbacks.

On a terminal it is a rich live display: one bar per phase with counts, rate and time left. Elsewhere (a log
file, CI, a pipe) a live bar would print once and then nothing, so it writes a plain line per phase when the
phase starts, every `interval` seconds, and when it ends.
"""

from __future__ import annotations

import sys
import time
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


@dataclass
class _Phase:
    label: str
    unit: str
    started: float = field(default_factory=time.monotonic)
    first_done: int = 0
    shown_at: float = 0.0
    finished: bool = False
    task: object = None  # the rich task id on a terminal


class ProgressDisplay(Closing):
    """Call it as `progress(phase, done, total)`; `message(text)` prints a line (a model loading) above the bars.

    Use it as a context manager so the live display is closed however the work ends."""

    def __init__(self, stream=None, interval: float = 10.0, live: bool | None = None):
        self.stream = stream or sys.stderr
        self.interval = interval
        self.live = self.stream.isatty() if live is None else live
        self.phases: dict[str, _Phase] = {}
        self._rich = None

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None

    def message(self, text: str) -> None:
        from searchlm.terminal import safe_text

        text = safe_text(text)
        if self._rich is not None:
            self._rich.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)

    def __call__(self, phase: str, done: int, total: int) -> None:
        if phase not in LABELS:
            return
        state = self.phases.get(phase)
        if state is None:
            state = self.phases[phase] = _Phase(*LABELS[phase], first_done=done)
        if phase == "embed" and self._still_reading():
            total = -total  # how many chunks need embedding is known only once every file is read
        if self.live:
            self._update_live(phase, state, done, total)
        else:
            self._update_plain(state, done, total)

    def _still_reading(self) -> bool:
        read = self.phases.get("read")
        return read is not None and not read.finished

    # -- a terminal ---------------------------------------------------------------------------------------
    def _update_live(self, phase: str, state: _Phase, done: int, total: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        if self._rich is None:
            from rich.console import Console

            self._rich = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                _RateColumn(), TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                console=Console(file=self.stream), refresh_per_second=4,
            )
            self._rich.start()
        if total < 0:  # a lower bound: shown as N/?
            total = 0
        if state.task is None:
            state.task = self._rich.add_task(state.label, total=total or None, completed=done, unit=state.unit)
        finished = bool(total) and done >= total
        state.finished = finished
        if phase == "scan" and finished:
            self._rich.update(state.task, description=f"Found {total} files", total=total, completed=done)
        else:
            self._rich.update(state.task, total=total or None, completed=done)
        if finished:
            self._rich.stop_task(state.task)

    # -- a log --------------------------------------------------------------------------------------------
    def _update_plain(self, state: _Phase, done: int, total: int) -> None:
        now = time.monotonic()
        at_least = total < 0
        total = abs(total)
        finished = bool(total) and done >= total and not at_least
        if state.finished and finished:
            return
        due = state.shown_at == 0.0 or now - state.shown_at >= self.interval or finished
        if not due:
            return
        state.shown_at, state.finished = now, finished
        if state.label == "Scanning folder":
            line = f"Found {total} files." if finished else "Scanning folder..."
        else:
            line = f"{state.label}: {done}/{total}{'+' if at_least else ''}" if total else f"{state.label}: {done}"
            elapsed = now - state.started
            rate = (done - state.first_done) / elapsed if elapsed > 0.5 else 0.0
            if rate > 0:
                line += f" ({format_rate(rate, state.unit)}"
                if total and not finished and not at_least:
                    line += f", about {format_seconds((total - done) / rate)} left"
                line += ")"
        print(line, file=self.stream, flush=True)


def format_rate(rate: float, unit: str) -> str:
    """`64 chunks/s`, `2.5 files/s`, `0.04 chunks/s`: enough digits that a slow rate never reads as 0."""
    digits = 0 if rate >= 10 else 1 if rate >= 1 else 2
    return f"{rate:.{digits}f} {unit}/s"


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _rate_column():
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task):
            speed = task.finished_speed or task.speed
            return Text(format_rate(speed, task.fields.get("unit", "items")) if speed else "", style="cyan")

    return RateColumn


def _RateColumn():  # noqa: N802 - a column class built lazily, so importing this module does not import rich
    return _rate_column()()
