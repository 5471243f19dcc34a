"""Progress: rates over a window of real completions, time left that grows in a stall, embed's total projected
while files are read, the whole run's time left, and labels that say which time is which. A fake clock, no sleeps."""

from __future__ import annotations

import io
import re

from conftest import write_files

from searchlm.indexing.indexer import index_folder
from searchlm.progress import Estimate, ProgressDisplay, Rate, format_clock, format_rate, format_seconds
from searchlm.settings import Settings


class Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def tick(self, seconds: float) -> None:
        self.t += seconds


def read_steadily(estimate: Estimate, clock: Clock, upto: int, total: int, every: float = 1.0, start: int = 1):
    for i in range(start, upto + 1):
        clock.tick(every)
        estimate("read", i, total)


def test_rate_is_over_a_window_of_recent_completions():
    clock = Clock()
    estimate = Estimate(clock, window=60)
    estimate("read", 0, 1000)
    read_steadily(estimate, clock, 100, 1000, every=1.0)  # 1 file/s for 100 s
    read_steadily(estimate, clock, 400, 1000, every=0.2, start=101)  # then 5 files/s for 60 s
    assert abs(estimate.rate("read") - 5.0) < 0.2  # the window forgot the slow start; an average would say ~2.5
    assert abs(estimate.left("read") - 600 / 5.0) < 5


def test_a_burst_of_instant_completions_is_no_rate():
    """Unchanged files checked in microseconds once read as 48,312 files/s with 1 s left."""
    clock = Clock()
    estimate = Estimate(clock)
    estimate("read", 0, 10)
    for i in range(1, 4):
        clock.tick(0.00002)
        estimate("read", i, 10)
    assert estimate.rate("read") is None and estimate.left("read") is None  # too little time to measure
    clock.tick(2.0)
    assert estimate.rate("read") < 2.0  # measured up to now: 3 files in 2 s, not 3 in 60 microseconds


def test_a_bigger_batch_is_not_a_stall():
    """Embedding reports every 64 chunks after a first window of 32: the longer wait for the second is no stall."""
    rate = Rate(0.0, 0)
    rate.add(10.0, 32)  # 3.2 chunks/s
    assert rate.per_second(30.0) == 3.2  # 20 s into a batch of 64 (due at 30 s): the rate holds
    assert rate.per_second(60.0) < 1.0  # 50 s: that is a stall, and the rate says so


def test_time_left_grows_while_a_file_holds_the_reader_up():
    clock = Clock()
    display = ProgressDisplay(stream=io.StringIO(), live=False, interval=30, clock=clock)
    estimate = display.estimate
    display("read", 0, 20)
    read_steadily(display, clock, 10, 20)  # 1 file/s
    before = estimate.left("read")
    display.reading("manual.pdf")
    lefts = []
    for _ in range(6):
        clock.tick(10)
        lefts.append(estimate.left("read"))
    assert abs(before - 10) < 1
    assert lefts == sorted(lefts) and lefts[-1] > 5 * before  # it grows; it never sits at "1 s left"
    line = display.line("read")
    assert "on manual.pdf for 1:00" in line and "left ~" in line
    assert display.stall_line() == line  # a log gets a line while the file is stuck ...
    assert display.stall_line() is None  # ... once per interval
    display.reading(None)
    clock.tick(1)
    display("read", 11, 20)
    assert "on manual.pdf" not in display.line("read")


def test_embed_total_is_projected_while_files_are_read():
    clock = Clock()
    estimate = Estimate(clock)
    estimate("bytes", 0, 4000)
    estimate("read", 0, 8)
    estimate("embed", 0, 0)
    assert estimate.total("embed") == (None, True)  # nothing to project from yet: shown as N/?
    estimate("bytes", 1000, 4000)
    estimate("embed", 0, 30)  # the first window: 30 chunks to embed from the first 1000 bytes
    assert estimate.total("embed") == (120, True)
    clock.tick(10)
    estimate("embed", 30, 30)
    assert not estimate.finished("embed")  # 30/30, but three quarters of the bytes are still to come
    assert abs(estimate.left("embed") - 90 / 3.0) < 1e-6  # 3 chunks/s, 90 projected chunks to go
    estimate("bytes", 4000, 4000)
    estimate("embed", 30, 100)
    assert estimate.total("embed") == (100, False)  # every file read: the total is known
    display = ProgressDisplay(stream=io.StringIO(), live=False)
    display.estimate = estimate
    assert display.line("embed").startswith("Embedding chunks: 30/100 (")


def test_whole_run_left_is_the_longer_of_reading_and_embedding():
    clock = Clock()
    estimate = Estimate(clock)
    estimate("bytes", 0, 1000)
    estimate("read", 0, 100)
    assert estimate.run_left() is None
    finished_reading = Estimate(clock)
    finished_reading("bytes", 0, 1000)
    finished_reading("read", 100, 100)
    assert not finished_reading.all_finished()  # every file read, but none of their chunks embedded yet
    for i in range(1, 51):  # 1 file/s; after 50 files, 500 bytes gave 100 chunks to embed
        clock.tick(1)
        estimate("read", i, 100)
        if i == 10:
            estimate("embed", 0, 20)
            estimate("bytes", 100, 1000)
        if i > 10:
            estimate("embed", min((i - 10) * 2, 100), min(i * 2, 100))  # 2 chunks/s
    estimate("bytes", 500, 1000)
    assert not estimate.all_finished()
    read_left, embed_left = estimate.left("read"), estimate.left("embed")
    assert abs(read_left - 50) < 1
    assert estimate.total("embed") == (200, True)
    assert abs(embed_left - (200 - 80) / 2) < 1
    assert estimate.run_left() == max(read_left, embed_left)


def test_plain_lines_say_which_time_is_which():
    clock = Clock()
    out = io.StringIO()
    with ProgressDisplay(stream=out, live=False, interval=0.0, clock=clock) as progress:
        progress("scan", 0, 0)
        progress("scan", 4, 4)
        progress("bytes", 0, 400)
        progress.message("Loading embedding model 'm' (a few seconds)")
        progress("read", 0, 4)
        clock.tick(2)
        progress("read", 1, 4)
        progress("bytes", 100, 400)  # as the indexer does: the bytes behind a window, then embed's new total
        progress("embed", 0, 10)
        clock.tick(2)
        progress("embed", 10, 10)
        progress("read", 2, 4)
        progress("read", 4, 4)
        progress("bytes", 400, 400)
        progress("embed", 10, 40)
        clock.tick(3)
        progress("embed", 40, 40)
        progress("embed", 40, 40)  # a repeated final call prints nothing more
        progress("unknown-phase", 1, 2)  # phases it does not know are ignored
    lines = out.getvalue().splitlines()
    assert lines[:4] == ["Scanning folder...", "Found 4 files.", "Loading embedding model 'm' (a few seconds)",
                         "Reading files: 0/4 (elapsed 0:00, left ?)"]
    assert lines[4] == "Reading files: 1/4 (0.50 files/s, elapsed 0:02, left ~0:06)"
    assert lines[5] == "Embedding chunks: 0/~40 (elapsed 0:00, left ?)"  # projected from a quarter of the bytes
    assert lines[6] == "Embedding chunks: 10/~40 (5.0 chunks/s, elapsed 0:02, left ~0:06; whole run left ~0:06)"
    assert lines[-1] == "Embedding chunks: 40/40 (8.0 chunks/s, elapsed 0:05)"
    assert sum(line.startswith("Embedding chunks: 40/40") for line in lines) == 1


def test_plain_lines_are_periodic():
    out = io.StringIO()
    clock = Clock()
    progress = ProgressDisplay(stream=out, live=False, interval=3600, clock=clock)
    for i in range(1, 1000):
        clock.tick(0.1)
        progress("read", i, 1000)
    progress("read", 1000, 1000)
    assert out.getvalue().count("\n") == 2  # the first call and the end, nothing in between


def test_live_rows_label_elapsed_and_left():
    """A column labelled "left" once showed the elapsed time: each time now sits after its own label."""
    clock = Clock()
    with ProgressDisplay(stream=io.StringIO(), live=True, clock=clock) as progress:
        progress("scan", 0, 0)
        progress("scan", 100, 100)
        progress("bytes", 0, 10_000)
        progress("read", 0, 100)
        read_steadily(progress, clock, 25, 100)  # 25 s at 1 file/s: 75 s of reading left
        progress("embed", 0, 50)
        progress("bytes", 2500, 10_000)
        clock.tick(10)
        progress("embed", 50, 50)  # 5 chunks/s, 200 chunks projected: 30 s of embedding left
        text = progress.render(width=200)
    spinner = " ⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
    rows = {line.split("━")[0].strip(spinner): line for line in text.splitlines() if line.strip()}
    reading, embedding, run = rows["Reading files"], rows["Embedding chunks"], rows["Indexing"]
    assert "25/100 files" in reading and "elapsed 0:00:35" in reading and re.search(r"left ~1:\d\d", reading)
    assert "50/~200 chunks" in embedding and "5.0 chunks/s" in embedding and "elapsed 0:00:10" in embedding
    assert "left ~0:30" in embedding
    assert "elapsed 0:00:35" in run and re.search(r"left ~1:\d\d", run)  # the longer of the two
    assert "Found 100 files" in rows and "left" not in rows["Found 100 files"]


def test_live_display_renders_without_a_terminal_error():
    out = io.StringIO()
    with ProgressDisplay(stream=out, live=True) as progress:
        progress("scan", 0, 0)
        progress("scan", 3, 3)
        progress.message("Loading embedding model 'm'")
        for i in range(1, 4):
            progress("read", i, 3)
            progress("embed", i, 3)
    text = out.getvalue()
    assert "Loading embedding model 'm'" in text and "Embedding chunks" in text and "3/3" in text


def test_an_index_run_reports_bytes_files_and_the_final_totals(embedder, tmp_path):
    files = {f"doc{i}.md": f"# Doc {i}\n\n" + f"Paragraph {i} about bees and honey. " * (10 * (i + 1))
             for i in range(5)}
    files["empty.md"] = ""
    corpus = write_files(tmp_path / "corpus", files)
    calls, reading = [], []
    estimate = Estimate()

    def progress(phase, done, total):
        calls.append((phase, done, total))
        estimate(phase, done, total)

    report = index_folder(corpus, Settings(home=tmp_path / "indexes", name="p"), progress=progress,
                          embedder=embedder, on_file=reading.append)
    size = sum(f.stat().st_size for f in corpus.iterdir())
    bytes_calls = [c for c in calls if c[0] == "bytes"]
    assert bytes_calls[0] == ("bytes", 0, size) and bytes_calls[-1] == ("bytes", size, size)
    assert calls.index(bytes_calls[0]) < calls.index(("read", 0, len(files)))  # the total is known from the start
    assert [b[1] for b in bytes_calls] == sorted(b[1] for b in bytes_calls)
    embeds = [c for c in calls if c[0] == "embed"]
    assert embeds[0][1] == 0 and embeds[-1] == ("embed", report.chunks_embedded, report.chunks_embedded)
    assert [r for r in reading if r is not None] == sorted(files) and reading[-1] is None
    assert estimate.all_finished() and estimate.run_left() == 0.0 and estimate.total("embed")[1] is False


def test_rates_and_durations_read_well():
    assert format_rate(0.04, "chunks") == "0.04 chunks/s"  # never "0 chunks/s"
    assert format_rate(2.5, "files") == "2.5 files/s"
    assert format_rate(640.4, "chunks") == "640 chunks/s"
    assert format_clock(7) == "0:07" and format_clock(250) == "4:10" and format_clock(3723) == "1:02:03"
    assert format_seconds(42) == "42 s" and format_seconds(125) == "2 min 05 s" and format_seconds(7300) == "2 h 01 min"
    rate = Rate(0.0, 0)
    assert rate.per_second(5.0) == 0.0  # nothing done in 5 s: a rate of 0, so no time left is claimed


def test_a_window_is_embedded_in_even_calls_with_the_encoders_own_batches():
    """Progress comes after each call; calls of one longer and one shorter batch cost about the same, so a rate
    measured over the first calls of a window holds for the rest (longest-first calls overestimated by 46 %)."""
    from searchlm.indexing.indexer import _even_calls

    texts = [f"t{'x' * n}" for n in range(200)]
    calls = _even_calls(texts, 32)

    def encoder_batches(call):  # what sentence-transformers makes of one call: longest first, 32 at a time
        ordered = sorted(call, key=len, reverse=True)
        return [ordered[i : i + 32] for i in range(0, len(ordered), 32)]

    assert sorted(b for call in calls for b in map(tuple, encoder_batches(call))) == sorted(
        map(tuple, encoder_batches(texts)))  # the same padding as one call of the whole window
    assert sorted(t for call in calls for t in call) == sorted(texts) and len(calls) == 4
    cost = [sum(map(len, call)) for call in calls[:-1]]  # the last holds the middle batch alone
    assert max(cost) - min(cost) <= 0.05 * max(cost)
