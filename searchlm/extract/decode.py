"""Bytes to text: UTF-8 first, then a detected encoding, refusing binary data."""

from __future__ import annotations

from searchlm.errors import ExtractionError


def looks_binary(data: bytes) -> bool:
    head = data[:8192]
    if b"\x00" in head:
        return True
    if not head:
        return False
    # Control characters other than tab/newline/carriage return/form feed/escape.
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 27))
    return controls / len(head) > 0.05


def decode(data: bytes) -> str:
    """Decode file bytes. UTF-8 (with or without BOM) wins; otherwise charset-normalizer's guess; else cp1252."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if looks_binary(data):
        raise ExtractionError("binary content")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is not None and best.encoding:
        return str(best)
    # cp1252 is a superset of latin-1's printable range and decodes any byte sequence we still hold.
    return data.decode("cp1252", errors="replace")


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")
