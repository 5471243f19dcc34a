"""MyST (Sphinx's Markdown) and Markdown chrome: what a reader of the built page sees, never the markup."""

from __future__ import annotations

from searchlm.extract import extract
from searchlm.extract.targets import scan_targets

# One construct a paragraph, each on known lines.
MYST = """\
---
myst:
  heading_anchors: 2
---
(testing)=

# Testing Click Applications

```{eval-rst}
.. currentmodule:: click.testing
```

Use {meth}`~click.testing.CliRunner.invoke`, {class}`_core.Command`, {func}`.echo`, {py:class}`!Result`
and {ref}`the options <options>`; see {ref}`options` and {doc}`guide`.

```{contents}
:depth: 2
:local: true
```

% a comment the page never shows

## Basics

```{code-block} python
:caption: hello.py
:emphasize-lines: 2

import click
print(f"{name}")
```

:::{note}
The runner is **not** thread-safe.
:::

```{admonition} Isolation
:class: tip

Use {meth}`CliRunner.isolated_filesystem`.
```

:::{versionadded} 8.0
:::

```{eval-rst}
The :class:`_testing.Result` object.

.. code-block:: python

    result.output
```

```{toctree}
:maxdepth: 1

options
guide
```

+++

```{r}
summary(cars)
```
"""


def _blocks(path, targets=None):
    return [(b.text, b.start_line, b.headings) for b in extract(path, targets=targets).blocks]


def test_myst_shows_what_sphinx_shows(tmp_path):
    (tmp_path / "options.md").write_text("(options)=\n\n# Options\n\nText.\n", encoding="utf-8")
    (tmp_path / "guide.rst").write_text("User Guide\n==========\n\nText.\n", encoding="utf-8")
    page = tmp_path / "testing.md"
    page.write_text(MYST, encoding="utf-8")
    targets = scan_targets(sorted(tmp_path.iterdir()))
    doc = extract(page, targets=targets)
    assert doc.title == "Testing Click Applications"
    top, basics = ("Testing Click Applications",), ("Testing Click Applications", "Basics")
    assert _blocks(page, targets) == [
        ("Use invoke, Command, echo, Result\nand the options; see Options and User Guide.", 13, top),
        ('import click\nprint(f"{name}")', 25, basics),  # code keeps its text, less the options
        ("The runner is not thread-safe.", 34, basics),  # a colon fence: its body is Markdown
        ("Isolation", 37, basics),  # an admonition's title, then its body
        ("Use CliRunner.isolated_filesystem.", 40, basics),
        ("Added in version 8.0.", 43, basics),
        ("The Result object.", 47, basics),  # {eval-rst} through the reST reader, on the file's lines
        ("result.output", 51, basics),
        ("summary(cars)", 63, basics),  # an unknown directive (R Markdown's code cell) is code
    ]
    # Without the folder's targets a {ref} or {doc} shows the label's words.
    assert _blocks(page)[0][0].endswith("see options and guide.")


def test_rst_ref_names_a_myst_section_and_document(tmp_path):
    (tmp_path / "options.md").write_text(
        "# Options\n\n(option-decorator)=\n(decorator)=\n\n## The {func}`option` Decorator\n\nText.\n",
        encoding="utf-8",
    )
    guide = tmp_path / "guide.rst"
    guide.write_text(
        "Guide\n=====\n\nSee :ref:`option-decorator`, :ref:`decorator` and :doc:`options`.\n", encoding="utf-8"
    )
    targets = scan_targets(sorted(tmp_path.iterdir()))
    assert extract(guide, targets=targets).blocks[0].text == (
        "See The option Decorator, The option Decorator and Options."
    )


def test_myst_empty_links_show_what_they_name(tmp_path):
    (tmp_path / "options.md").write_text("(options)=\n# Options\n\nText.\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\nSee [](#options), [](options.md), <project:#options>, [its text](#options) and "
        "[](https://x.org/a).\n",
        encoding="utf-8",
    )
    targets = scan_targets(sorted(tmp_path.iterdir()))
    assert extract(page, targets=targets).blocks[0].text == (
        "See Options, Options, Options, its text and https://x.org/a."
    )


def test_directive_fences_nest_and_keep_line_numbers(tmp_path):
    page = tmp_path / "nest.md"
    page.write_text(
        "# Nest\n\n"  # 1-2
        "::::{warning}\n"  # 3
        "Outer text.\n\n"  # 4-5
        ":::{tip}\nInner tip.\n:::\n\n"  # 6-9
        "```python\nx = 1\n```\n"  # 10-12
        "::::\n\n"  # 13-14
        "- a list item\n\n  ```{note}\n  Noted in the list.\n  ```\n\n"  # 15-20
        ":::tip[Mind the gap]\nDocusaurus admonition.\n:::\n\n"  # 21-24
        "::: no closing fence: text\n",  # 25
        encoding="utf-8",
    )
    assert [(t, line) for t, line, _ in _blocks(page)] == [
        ("Outer text.", 4), ("Inner tip.", 7), ("x = 1", 10), ("- a list item\n  Noted in the list.", 15),
        ("Mind the gap", 21), ("Docusaurus admonition.", 22), ("::: no closing fence: text", 25),
    ]


def test_plain_markdown_is_read_as_before(tmp_path):
    """MyST's comments apply only to a page that uses MyST: a "%" line of plain Markdown is text; code is code."""
    page = tmp_path / "plain.md"
    page.write_text(
        "# Plain\n\n% of users liked it.\n\n```python\n(label)=\n```\n\n"
        "```eval_rst\nSee :class:`_orm.Session`.\n```\n",  # recommonmark's reST fence
        encoding="utf-8",
    )
    assert [t for t, _, _ in _blocks(page)] == ["% of users liked it.", "(label)=", "See Session."]


def test_markdown_navigation_and_footers_are_not_text(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "[![Build](b.svg)](https://ci) [![PyPI](p.svg)](https://pypi)\n\n"
        "# Page\n\n"
        "[← Previous](a.md) | [Next →](b.md)\n\n"
        "The page's own text, with [a link](c.md).\n\n"
        "<nav>\n<a href=\"/\">Home</a> · <a href=\"/docs\">Docs</a>\n</nav>\n\n"
        "<script>\nvar tracker = 1;\n</script>\n\n"
        "<div>Kept words.</div>\n\n"
        "[Only link](d.md)\n\n"
        "<footer>\n© 2024 Example Inc.\n</footer>\n",
        encoding="utf-8",
    )
    assert [t for t, _, _ in _blocks(page)] == ["The page's own text, with a link.", "Kept words.", "Only link"]


def test_indexing_gives_a_myst_ref_the_title_of_a_section_in_another_file(make_index):
    import sqlite3

    settings, _, _ = make_index({
        "docs/options.md": "# Options\n\n(option-names)=\n\n## Naming Your Options\n\nTwo dashes name an option.\n",
        "docs/testing.md": "# Testing\n\nThe runner passes arguments as {ref}`option-names` explains.\n",
        "docs/api.rst": "API\n===\n\nSee :ref:`option-names`.\n",
    })
    conn = sqlite3.connect(settings.index_dir / "index.db")
    try:
        texts = {t for (t,) in conn.execute("SELECT text FROM chunks")}
    finally:
        conn.close()
    assert "The runner passes arguments as Naming Your Options explains." in texts
    assert "See Naming Your Options." in texts


def test_glossary_definitions_and_footnotes(tmp_path):
    """A glossary's indented definitions are Markdown (a note nested in one is a note, not code), and a footnote's
    mark is no text; a closing fence indented 4 columns past its opening belongs to the body."""
    page = tmp_path / "glossary.md"
    page.write_text(
        "# Glossary\n\n"  # 1-2
        ":::{glossary}\n"  # 3
        "slotted classes\n"  # 4
        "  Classes without a {attr}`object.__dict__`, using less memory[^pypy].\n\n"  # 5-6
        "  - They cannot be pickled with protocol 0.\n\n"  # 7-8
        "    :::{note}\n    Use {func}`~attrs.define`.\n    :::\n"  # 9-11
        ":::\n\n"  # 12-13
        "[^pypy]: On PyPy there is no advantage.\n",  # 14
        encoding="utf-8",
    )
    assert [(t, line) for t, line, _ in _blocks(page)] == [
        ("slotted classes\nClasses without a object.__dict__, using less memory.", 4),
        ("- They cannot be pickled with protocol 0.\n  Use define.", 7),
        ("On PyPy there is no advantage.", 14),
    ]
