"""Extraction: structure, line and page numbers, encodings, and files that must be refused."""

from __future__ import annotations

import pytest

from pdfgen import make_pdf
from searchlm.errors import ExtractionError
from searchlm.extract import extract


def test_markdown_headings_and_lines(tmp_path):
    p = tmp_path / "guide.md"
    p.write_text(
        "---\ntitle: Front Title\n---\n# Guide\n\nIntro line.\n\n## Install\n\nRun pip.\nTwo lines.\n\n"
        "```\n# not a heading\n```\n\n### Deep\n\nDeep text.\n",
        encoding="utf-8",
    )
    doc = extract(p)
    assert doc.title == "Front Title"
    by_text = {b.text: b for b in doc.blocks}
    assert by_text["Intro line."].headings == ("Guide",)
    assert by_text["Intro line."].start_line == 6
    install = by_text["Run pip.\nTwo lines."]
    assert install.headings == ("Guide", "Install")
    assert (install.start_line, install.end_line) == (10, 11)
    assert by_text["# not a heading"].headings == ("Guide", "Install")  # code keeps its text, not its fences
    assert by_text["Deep text."].headings == ("Guide", "Install", "Deep")


def test_rst_sections_follow_adornment_order(tmp_path):
    p = tmp_path / "a.rst"
    p.write_text("=====\nTitle\n=====\n\nPara one.\n\nSection\n-------\n\nPara two.\n\n.. note:: skip\n", encoding="utf-8")
    doc = extract(p)
    assert doc.title == "Title"
    texts = {b.text: b.headings for b in doc.blocks}
    assert texts["Para one."] == ("Title",)
    assert texts["Para two."] == ("Title", "Section")


def test_html_nested_past_the_depth_limit_is_skipped_before_parsing(tmp_path):
    """100,000 unclosed <div> took BeautifulSoup ~6 s of CPU for one word of text; they are refused from a count
    of the tags, named, in a fraction of that. Deep but sane nesting, and the unclosed <p> and <li> pages are
    full of, are read as before."""
    import time

    from searchlm.extract.limits import MAX_HTML_DEPTH

    deep = tmp_path / "deep.html"
    deep.write_bytes(b"<html><body>" + b"<div>" * 100_000 + b"deep" + b"</div>" * 50_000)
    started = time.process_time()
    with pytest.raises(ExtractionError, match=f"HTML nested over {MAX_HTML_DEPTH} elements deep"):
        extract(deep)
    assert time.process_time() - started < 2
    sane = tmp_path / "sane.html"
    sane.write_text("<html><body>" + "<section><div>" * 200 + "<h1>Nested</h1><p>Still read, 400 levels down."
                    + "</div></section>" * 200 + "<ul>" + "<li>an item<p>a paragraph" * 5000 + "</ul></body></html>")
    doc = extract(sane)
    assert any("400 levels down" in b.text for b in doc.blocks)


def test_html_drops_scripts_and_navigation(tmp_path):
    p = tmp_path / "page.html"
    p.write_text(
        "<html><head><title>Bees</title><script>var tracking = 'SECRET';</script></head><body>"
        "<nav><a href='/'>Home</a> <a href='/x'>Menu link</a></nav><header>Site banner</header>\n"
        "<main><h1>Bees</h1>\n<p>Honey bees dance to share where flowers are.</p>\n"
        "<h2>Hives</h2>\n<ul><li>A hive holds one queen.</li></ul></main><footer>Copyright</footer></body></html>",
        encoding="utf-8",
    )
    doc = extract(p)
    text = " ".join(b.text for b in doc.blocks)
    assert doc.title == "Bees"
    assert "dance" in text and "one queen" in text
    for chrome in ("SECRET", "Menu link", "Site banner", "Copyright"):
        assert chrome not in text
    hive = next(b for b in doc.blocks if "queen" in b.text)
    assert hive.headings == ("Bees", "Hives")
    assert hive.start_line == 5


def test_pdf_keeps_page_numbers(tmp_path):
    p = tmp_path / "doc.pdf"
    p.write_bytes(make_pdf([["Volcanoes erupt magma."], ["Glaciers carve valleys."]]))
    doc = extract(p)
    pages = {b.page: b.text for b in doc.blocks}
    assert "Volcanoes" in pages[1] and "Glaciers" in pages[2]


def test_docx_headings(tmp_path):
    import docx

    d = docx.Document()
    d.add_heading("Report", level=1)
    d.add_paragraph("Opening words.")
    d.add_heading("Findings", level=2)
    d.add_paragraph("The finding is café crème.")
    p = tmp_path / "r.docx"
    d.save(p)
    doc = extract(p)
    assert doc.title == "Report"
    finding = next(b for b in doc.blocks if "café" in b.text)
    assert finding.headings == ("Report", "Findings")


def test_plain_text_underlined_headings_become_the_heading_path(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text(
        "Field notes\n===========\n\nIntro line.\n\nBirds\n-----\n\nA heron stood in the reeds.\n"
        "Closing line of the paragraph\n----------\n\nFish\n-----\nTrout rise at dusk.\n"
    )
    doc = extract(p)
    assert doc.title == "Field notes"
    by_text = {b.text.splitlines()[0]: b for b in doc.blocks}
    assert by_text["Intro line."].headings == ("Field notes",)
    heron = by_text["A heron stood in the reeds."]
    assert heron.headings == ("Field notes", "Birds") and heron.start_line == 9
    # a paragraph's last line over a rule is text, not a heading
    assert "Closing line of the paragraph" in heron.text
    assert by_text["Trout rise at dusk."].headings == ("Field notes", "Fish")
    assert not any(b.text.strip() in ("Birds", "Fish", "-----") for b in doc.blocks)


def test_plain_text_overlines_title_blocks_and_stray_rules(tmp_path):
    p = tmp_path / "journal.txt"
    p.write_text(
        "A TASTING JOURNAL\nNotes from a cheese shop\n=========================\n\nPrices per 100 g.\n\n"
        "=======\nMonday\n=======\nManchego, aged. 3.90\nSecond line.\n-------------\nAfter a rule.\n"
    )
    doc = extract(p)
    assert doc.title == "A TASTING JOURNAL"
    blocks = [(b.headings, b.text) for b in doc.blocks]
    assert blocks == [
        (("A TASTING JOURNAL Notes from a cheese shop",), "Prices per 100 g."),
        (("A TASTING JOURNAL Notes from a cheese shop", "Monday"), "Manchego, aged. 3.90\nSecond line."),
        (("A TASTING JOURNAL Notes from a cheese shop", "Monday"), "After a rule."),
    ]  # a two-line paragraph over a rule below the top is text; the rule itself is never indexed


def test_latin1_and_utf8_bom(tmp_path):
    p = tmp_path / "old.txt"
    text = "Crème brûlée for señor Müller costs £5 at the café.\n\nSecond paragraph über alles."
    p.write_bytes(text.encode("latin-1"))
    doc = extract(p)
    joined = " ".join(b.text for b in doc.blocks)
    assert "Crème brûlée" in joined and "señor Müller" in joined and "£5" in joined
    q = tmp_path / "bom.md"
    q.write_bytes("\ufeff# Tête\n\nNaïve text 日本語.".encode("utf-8"))
    doc = extract(q)
    assert doc.title == "Tête"
    assert "日本語" in doc.blocks[0].text


@pytest.mark.parametrize("codec", ["utf-32-le", "utf-32-be", "utf-16-le", "utf-16-be"])
def test_a_bom_decides_utf32_and_utf16(tmp_path, codec):
    """UTF-32 LE begins with UTF-16 LE's BOM: it was read as UTF-16, garbage and no reason."""
    text = "Grüße aus 東京 😀\n\nZweiter Absatz über Kirschblüten."
    p = tmp_path / f"{codec}.txt"
    p.write_bytes(("\ufeff" + text).encode(codec))
    assert "\n\n".join(b.text for b in extract(p).blocks) == text


def test_non_western_single_byte_encoding_keeps_its_script(tmp_path):
    p = tmp_path / "ru.txt"
    text = "Привет, мир! Это проверка кодировки для русского текста, который сохранён в cp1251."
    p.write_bytes(text.encode("cp1251"))
    assert extract(p).blocks[0].text == text


@pytest.mark.parametrize(
    "name, data, reason",
    [
        ("empty.txt", b"", "no text"),
        ("blank.md", b"\n\n   \n", "no text"),
        ("image.txt", bytes(range(256)) * 20, "binary"),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj garbage", "PDF"),
        ("broken.docx", b"PK\x03\x04 not a zip", "DOCX"),
    ],
)
def test_unreadable_files_raise_extraction_error(tmp_path, name, data, reason):
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(ExtractionError, match=reason):
        extract(p)


MARKUP = (":class:", "``", "](", "&amp;", ":ref:", "**")


def test_rst_is_plain_text_with_source_lines(tmp_path):
    p = tmp_path / "orm.rst"
    p.write_text(
        "Sessions\n========\n\n.. _session-basics:\n\n"  # 1-5
        "Use their :class:`.Session` with an :class:`~sqlalchemy.engine.Engine`, see :ref:`the pool <pooling>`\n"  # 6
        "and `the site <https://example.org>`_ for ``create_engine()`` and **bold** *emphasis* [#f1]_.\n\n"  # 7-8
        ".. note:: Sessions are not thread-safe.\n\n"  # 9-10
        ".. code-block:: python\n   :caption: demo.py\n\n   s = Session(engine)  # ``not markup``\n\n"  # 11-15
        ".. toctree::\n   :maxdepth: 2\n\n   hidden/page\n\n"  # 16-20
        "An example::\n\n    x = 1\n",  # 21-23
        encoding="utf-8",
    )
    doc = extract(p)
    texts = [b.text for b in doc.blocks]
    prose = texts[0]
    assert prose.startswith("Use their Session with an Engine, see the pool\nand the site for create_engine() and bold emphasis")
    assert (doc.blocks[0].start_line, doc.blocks[0].end_line) == (6, 7)
    assert "Sessions are not thread-safe." in texts
    code = next(b for b in doc.blocks if b.text.startswith("s = Session"))
    assert code.text == "s = Session(engine)  # ``not markup``" and code.start_line == 14  # code is verbatim
    assert not any("hidden/page" in t or "maxdepth" in t or "caption" in t for t in texts)
    assert "An example:" in texts and "x = 1" in texts
    assert not any(m in t for t in texts if t != code.text for m in MARKUP)


def test_markdown_is_plain_text(tmp_path):
    p = tmp_path / "notes.md"
    p.write_text(
        "# Notes\n\nSee [the docs](https://x.org) &amp; the `--path` flag, **bold**.\n\n"
        "- first item\n- second [link](a.md)\n  1. nested\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
        encoding="utf-8",
    )
    doc = extract(p)
    texts = [b.text for b in doc.blocks]
    assert texts[0] == "See the docs & the --path flag, bold."
    assert texts[1] == "- first item\n- second link\n  1. nested" and doc.blocks[1].start_line == 5
    assert texts[2] == "a | b\n1 | 2"
    assert not any(m in t for t in texts for m in MARKUP)


def test_title_only_documents_are_text(tmp_path):
    front = tmp_path / "front.md"
    front.write_text("---\ntitle: Flow past a flat plate\n---\n", encoding="utf-8")
    heading = tmp_path / "heading.rst"
    heading.write_text("Boundary layers\n===============\n", encoding="utf-8")
    assert [b.text for b in extract(front).blocks] == ["Flow past a flat plate"]
    assert [b.text for b in extract(heading).blocks] == ["Boundary layers"]
    for name, text in (("toml.md", '+++\ntitle = "Flow past a cylinder"\ndate = 2024-01-01\n+++\n\nVortices shed.\n'),
                       ("yaml.md", "---\ntitle: Flow past a cylinder\ntags: [fluids]\n...\n\nVortices shed.\n")):
        (tmp_path / name).write_text(text, encoding="utf-8")  # front matter is no text; its title is the title
        doc = extract(tmp_path / name)
        assert (doc.title, [(b.text, b.start_line) for b in doc.blocks]) == ("Flow past a cylinder", [("Vortices shed.", 6)])
    empty = tmp_path / "empty.md"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ExtractionError):
        extract(empty)


def test_rst_roles_show_what_sphinx_shows(tmp_path):
    p = tmp_path / "api.rst"
    p.write_text(
        "Call :func:`_sa.create_engine`, then :class:`_orm.Session` and :meth:`_engine.Connection.execute`;\n"
        ":class:`~_orm.Session`, :attr:`.Column.key`, :func:`!no_link` and :py:class:`_orm.relationship`.\n"
        "Files keep their underscore: :file:`_static/custom.css`. A plain :class:`sqlalchemy.orm.Session`.\n",
        encoding="utf-8",
    )
    text = extract(p).blocks[0].text
    assert text == (
        "Call create_engine, then Session and Connection.execute;\n"
        "Session, Column.key, no_link and relationship.\n"
        "Files keep their underscore: _static/custom.css. A plain sqlalchemy.orm.Session."
    )


def test_rst_ref_and_doc_show_the_titles_of_other_files(tmp_path):
    from searchlm.extract.targets import scan_targets

    (tmp_path / "dialects").mkdir()
    pg = tmp_path / "dialects" / "postgresql.rst"
    pg.write_text(
        ":orphan:\n\n.. _dialect_toplevel:\n\nDialects\n########\n\n.. _postgresql_toplevel:\n\n.. _pg:\n\n"
        ".. rst-class:: core-header\n\n.. index::\n   single: postgres\n\n"  # no element: the labels name the section
        "PostgreSQL Support\n------------------\n\nText.\n",
        encoding="utf-8",
    )
    guide = tmp_path / "guide.rst"
    guide.write_text(
        "Guide\n=====\n\nSee :ref:`postgresql_toplevel`, :ref:`PG`, :doc:`dialects/postgresql`, "
        ":doc:`/dialects/postgresql` and :ref:`no_such_label`.\n\n"
        "Titled: :ref:`the pool <postgresql_toplevel>`.\n",
        encoding="utf-8",
    )
    targets = scan_targets([pg, guide])
    texts = [b.text for b in extract(guide, targets=targets).blocks]
    assert texts == [
        "See PostgreSQL Support, PostgreSQL Support, Dialects, Dialects and no such label.",
        "Titled: the pool.",
    ]
    # Without the folder's targets a label shows its words, as before.
    assert extract(guide).blocks[0].text.startswith("See postgresql toplevel, PG, postgresql, postgresql")
    # The :orphan: metadata of the other file is no text of it.
    assert [b.text for b in extract(pg, targets=targets).blocks] == ["Text."]


def test_rst_build_markers_containers_and_autodoc_names_are_not_text(tmp_path):
    p = tmp_path / "session.rst"
    p.write_text(
        "Session Basics\n==============\n\n"  # 1-3
        ".. container:: orm-header\n\n    The ORM header text.\n\n"  # 4-7
        ".. rst-class:: core-header, orm-addin\n\n"  # 8-9
        ".. autoclass:: Session\n   :members:\n   :class: faq\n\n   The session docstring body.\n\n"  # 10-15
        ".. autofunction:: create_engine\n\n"  # 16-17
        ".. sourcecode:: pycon+sql\n\n"  # 18-19
        "    >>> conn.execute(text(\"select 1\"))\n    {execsql}BEGIN (implicit)\n    select 1\n"  # 20-22
        "    ROLLBACK{stop}\n    {stop}\n    >>> print(f\"{row} {stop}.\")\n",  # 23-25
        encoding="utf-8",
    )
    blocks = extract(p).blocks
    texts = [b.text for b in blocks]
    assert texts[:2] == ["The ORM header text.", "The session docstring body."]
    assert (blocks[1].start_line, blocks[1].end_line) == (14, 14)
    assert texts[2] == '>>> conn.execute(text("select 1"))\nBEGIN (implicit)\nselect 1\nROLLBACK\n>>> print(f"{row} {stop}.")'
    assert (blocks[2].start_line, blocks[2].end_line) == (20, 25)
    assert len(texts) == 3
    for name in ("orm-header", "core-header", "orm-addin", "create_engine", "faq", "members", "{execsql}"):
        assert not any(name in t for t in texts), name


def test_rst_literal_block_of_a_list_item_ends_at_the_item_text(tmp_path):
    p = tmp_path / "operators.rst"
    p.write_text(
        "* :meth:`_sql.ColumnOperators.__add__` (Python ``+``)::\n\n"  # 1-2
        "    >>> print(column(\"x\") + 5)\n    {printsql}x + :x_1{stop}\n\n"  # 3-5
        "  ..\n\n"  # 6-7
        "  Note that a :class:`_types.String` concatenates.\n\n"  # 8-9
        "    *\n      - ::\n\n          session.get(User, 42)\n\n      - :ref:`migration_20`\n",  # 10-15
        encoding="utf-8",
    )
    texts = [b.text for b in extract(p).blocks]
    assert texts == [
        "* ColumnOperators.__add__ (Python +):",
        '>>> print(column("x") + 5)\nx + :x_1',
        "Note that a String concatenates.",
        "session.get(User, 42)",
        "- migration 20",
    ]


def test_indexing_a_folder_gives_ref_the_title_of_a_section_in_another_file(make_index):
    import sqlite3

    settings, report, _ = make_index({
        "docs/orm/session.rst": (
            "Using the Session\n=================\n\n.. _session_faq:\n\nSession Frequently Asked Questions\n"
            "----------------------------------\n\nWhen do I make a session? Early, once per request.\n"
        ),
        "docs/tutorial.rst": (
            "Tutorial\n========\n\nA session tracks objects; :ref:`session_faq` answers the common questions, "
            "and :doc:`orm/session` explains the rest.\n"
        ),
    })
    conn = sqlite3.connect(settings.index_dir / "index.db")
    try:
        texts = [t for (t,) in conn.execute("SELECT text FROM chunks")]
    finally:
        conn.close()
    assert ("A session tracks objects; Session Frequently Asked Questions answers the common questions, "
            "and Using the Session explains the rest.") in texts


SPHINX_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8" /><title>Sessions &#8212; Demo 1.0 documentation</title></head>
<body>
<div class="related" aria-label="related navigation"><h3>Navigation</h3>
  <ul><li class="right"><a href="genindex.html">index</a></li><li><a href="index.html">Demo 1.0 documentation</a></li></ul>
</div>
<div class="document"><div class="documentwrapper"><div class="bodywrapper"><div class="body" role="main">
<section id="sessions">
<h1>Sessions<a class="headerlink" href="#sessions" title="Link to this heading">¶</a></h1>
<p>A session keeps objects and their transaction together.</p>
<section id="closing">
<h2>Closing<a class="headerlink" href="#closing" title="Link to this heading">¶</a></h2>
<p>Close a session when the request ends.</p>
</section></section>
</div></div></div>
<div class="sphinxsidebar" aria-label="main navigation"><div class="sphinxsidebarwrapper">
<h3><a href="index.html">Table of Contents</a></h3><ul><li><a href="#">Sidebar entry</a></li></ul>
<div id="searchbox" style="display: none" role="search"><h3 id="searchlabel">Quick search</h3>
<form class="search" action="search.html" method="get"><input type="text" name="q" /></form></div>
</div></div>
</div>
<div class="footer">&#169;2024, Demo authors. Powered by <a href="https://www.sphinx-doc.org/">Sphinx</a></div>
</body></html>
"""


def test_sphinx_html_chrome_and_heading_anchors_are_not_text(tmp_path):
    p = tmp_path / "sessions.html"
    p.write_text(SPHINX_PAGE, encoding="utf-8")
    doc = extract(p)
    assert doc.title == "Sessions"  # not "Sessions — Demo 1.0 documentation": the site's name is chrome too
    assert [(b.text, b.headings, b.start_line) for b in doc.blocks] == [
        ("A session keeps objects and their transaction together.", ("Sessions",), 10),
        ("Close a session when the request ends.", ("Sessions", "Closing"), 13),
    ]


def test_a_file_role_keeps_its_leading_dot():
    from searchlm.extract.rst import clean_inline

    assert clean_inline("Put it in :file:`.flaskenv` or :envvar:`_X`; see :meth:`.Session.add`.") == \
        "Put it in .flaskenv or _X; see Session.add."
