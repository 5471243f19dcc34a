"""Per-file limits of extraction; a file past one is skipped with the limit named in the reason."""

MAX_FILE_BYTES = 50 * 1024 * 1024  # bytes read from disk
MAX_EXPANDED_BYTES = 16 * 1024 * 1024  # XML inside a DOCX once unzipped (a zip bomb expands 1000x)
MAX_TEXT_CHARS = 20 * 1024 * 1024  # text extracted from one file
EXTRACT_SECONDS = 60  # time to extract one file
