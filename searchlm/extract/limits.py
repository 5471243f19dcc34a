"""Per-file limits of extraction; a file past one is skipped with the limit named in the reason."""

MAX_FILE_BYTES = 50 * 1024 * 1024  # bytes read from disk
MAX_EXPANDED_BYTES = 16 * 1024 * 1024  # XML parts of a DOCX once unzipped (a zip bomb expands 1000x)
MAX_EXPANDED_PARTS_BYTES = 128 * 1024 * 1024  # all its parts, media included (loaded whole, not parsed)
MAX_TEXT_CHARS = 20 * 1024 * 1024  # text extracted from one file
# Elements open inside one another in an HTML file. Browsers lay out 512 levels at most and real pages stay far
# below; 100,000 unclosed <div> cost BeautifulSoup ~6 s of CPU (a fuzzed corpus: 95 of its 174 CPU-seconds).
MAX_HTML_DEPTH = 2000
# CPU time to extract one file: the CPU the parser used, not the time on the clock, so a starved machine (another
# job, a nice-19 run) does not skip good files (a re-run after a kill once came back 7 files short).
EXTRACT_SECONDS = 60
# Time on the clock, a backstop for a parser that blocks without using CPU; generous, for a busy machine.
EXTRACT_WALL_SECONDS = 600
