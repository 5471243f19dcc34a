"""The progress display: plain lines with counts, rate and time left when stderr is not a terminal."""

from __future__ import annotations

import io
import time

from searchlm.progress import ProgressDisplay, format_rate, format_seconds


def test_plain_lines_say_counts_rate_and_time_left():
    out = io.StringIO()
    with ProgressDisplay(stream=out, live=False, interval=0.0) as progress:
        progress("scan", 0, 0)
        progress("scan", 4, 4)
        progress.message("Loading embedding model 'm' (a few seconds)")
        progress("read", 1, 4)
        time.sleep(0.6)
        progress("embed", 10, 12)  # reading not finished: the total is a lower bound, no time left yet
        progress("read", 2, 4)
        progress("read", 4, 4)
        time.sleep(0.6)
        progress("embed", 20, 40)
        progress("embed", 40, 40)
        progress("embed", 40, 40)  # a repeated final call prints nothing more
        progress("unknown-phase", 1, 2)  # phases it does not know are ignored
    lines = out.getvalue().splitlines()
    assert lines[:4] == ["Scanning folder...", "Found 4 files.", "Loading embedding model 'm' (a few seconds)",
                         "Reading files: 1/4"]
    assert lines[4] == "Embedding chunks: 10/12+"
    assert lines[5].startswith("Reading files: 2/4 (") and "files/s, about" in lines[5] and lines[5].endswith("left)")
    assert lines[-2].startswith("Embedding chunks: 20/40 (") and "left)" in lines[-2]
    assert lines[-1].startswith("Embedding chunks: 40/40 (") and "chunks/s)" in lines[-1]
    assert sum(line.startswith("Embedding chunks: 40/40") for line in lines) == 1


def test_plain_lines_are_periodic():
    out = io.StringIO()
    progress = ProgressDisplay(stream=out, live=False, interval=3600)
    for i in range(1, 1000):
        progress("read", i, 1000)
    progress("read", 1000, 1000)
    assert out.getvalue().count("\n") == 2  # the first call and the end, nothing in between


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


def test_rates_and_durations_read_well():
    assert format_rate(0.04, "chunks") == "0.04 chunks/s"  # never "0 chunks/s"
    assert format_rate(2.5, "files") == "2.5 files/s"
    assert format_rate(640.4, "chunks") == "640 chunks/s"
    assert format_seconds(42) == "42 s" and format_seconds(125) == "2 min 05 s" and format_seconds(7300) == "2 h 01 min"
