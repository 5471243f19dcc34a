"""What the CLI prints of documents, file names and index names, made harmless for a terminal.

A document, a file name or an index name is data from anywhere: an `ESC ] 0 ;` in it would set the window
title, `ESC ] 52 ;` write the clipboard, `\\r` overwrite what was printed, a bidi override reverse the line.
`safe_text` shows every such character as a visible escape (`\\x1b`, `\\u202e`) instead. The CLI's readable
output goes through it (the text output may be read on a terminal later, so it is escaped also when piped);
`--json` output is JSON, where `json.dumps` escapes control characters itself. Rich markup is not a concern
here: the CLI prints with `typer.echo`, which interprets no markup, and the progress display prints with
`markup=False`.
"""

from __future__ import annotations

import re

# C0 controls, DEL and C1 controls (ESC and CSI among them), and the bidirectional overrides and isolates that
# reorder how a line is shown (U+202A-U+202E, U+2066-U+2069), and the line and paragraph separators.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_UNSAFE_KEEP_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(text, lines: bool = False) -> str:
    """`text` (anything: it is str()-ed) with every control character shown as `\\xNN` or `\\uNNNN`. With
    `lines`, newlines and tabs are kept (document text, an answer); without, they are escaped too, so a name or a
    path stays on its one line and cannot forge another."""
    text = text if isinstance(text, str) else str(text)
    return (_UNSAFE_KEEP_LINES if lines else _UNSAFE).sub(_escape, text)
