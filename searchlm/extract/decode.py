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
    """Decode file bytes. A UTF-32 or UTF-16 BOM decides; then UTF-8 (with or without BOM); otherwise
    charset-normalizer's guess; else cp1252."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        # UTF-32's BOM (tested first: the little-endian one begins with UTF-16's). A truncated tail loses a
        # character, not the file.
        return data.decode("utf-32", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        # A BOM says UTF-16; a truncated or damaged tail loses a character, not the file.
        return data.decode("utf-16", errors="replace")
    if looks_binary(data):
        raise ExtractionError("binary content")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    guess = (best.encoding if best is not None else "") or ""
    # Detectors cannot tell Western single-byte code pages apart on short texts (latin-1 French comes back
    # as cp1250 with "ń" for "ñ"). Western text is by far the common case, so any Latin-script guess is read
    # as cp1252 (latin-1's printable superset); other scripts (cp1251 Cyrillic, Greek, ...) keep the guess.
    if not guess or guess.replace("-", "_").lower() in _WESTERN:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")
    return str(best)


_WESTERN = {
    "cp1250", "cp1252", "cp1254", "cp1257", "latin_1", "iso8859_1", "iso8859_2", "iso8859_3", "iso8859_4",
    "iso8859_9", "iso8859_10", "iso8859_13", "iso8859_14", "iso8859_15", "iso8859_16", "mac_roman", "mac_latin2",
    "mac_iceland", "mac_turkish", "cp850", "cp437", "cp858", "cp1140", "ascii",
}


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")
