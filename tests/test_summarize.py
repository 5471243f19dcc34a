"""`summarize`: one document (in pieces when it does not fit the model) or a query's results, with citations."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from searchlm.generate import get_generator
from searchlm.cli import app
from searchlm.errors import InputError
from searchlm.search.searcher import Searcher
from searchlm.search.summarize import SummaryOptions, _render, key_sentences, pack, summarize
from helpers import ScriptedGenerator, build_tiny_gpt2, hit

SECTIONS = [
    ("Planting", "Plant garlic cloves in autumn, pointed end up, five centimetres deep in loose soil."),
    ("Watering", "Water garlic weekly in spring; stop two weeks before harvest so the bulbs cure well."),
    ("Harvest", "Lift the bulbs when the lower leaves turn brown, usually in early summer."),
    ("Storage", "Cure the bulbs in a dry, airy place for three weeks, then store them cool and dark."),
]
LONG = "# Growing garlic\n\n" + "\n\n".join(
    f"## {title}\n\n" + " ".join([text] * 12) for title, text in SECTIONS
)
GENERATE = SummaryOptions(method="generate")
FILES = {
    "garlic.md": LONG,
    "notes/tea.md": "# Tea\n\nGreen tea leaves are steamed or pan-fired soon after picking to stop oxidation.\n",
}


@pytest.fixture(scope="module")
def small_gpt2(tmp_path_factory):
    """A tiny GPT-2 with a 256-position window, so a long document has to be summarized in pieces."""
    folder = build_tiny_gpt2(tmp_path_factory.mktemp("sum") / "tiny-gpt2-256", n_positions=256)
    return get_generator(str(folder), "cpu")


@pytest.fixture
def indexed(make_index):
    settings, _, corpus = make_index(FILES)
    return settings, corpus


def test_long_document_is_summarized_in_pieces_with_valid_citations(indexed, small_gpt2):
    settings, corpus = indexed
    searcher = Searcher(settings)
    progress: list[tuple[int, int]] = []
    streamed: list[str] = []
    result = summarize(searcher, path=str(corpus / "garlic.md"), options=SummaryOptions(max_tokens=24, method="generate"),
                       generator=small_gpt2, on_token=streamed.append, on_progress=lambda d, t: progress.append((d, t)))
    assert result.target.endswith("garlic.md")
    assert len(result.passages) >= 4  # every chunk of the document, in reading order
    lines = [p.start_line for p in result.passages]
    assert lines == sorted(lines)
    assert result.pieces > 1 and progress[-1] == (result.pieces, result.pieces)
    assert "".join(streamed) == result.summary  # the checked final summary streams (random weights: no words)
    assert all(1 <= c.n <= len(result.passages) for c in result.citations)
    assert all(result.passages[c.n - 1].chunk_id == c.chunk_id for c in result.citations)


def test_document_path_may_be_given_three_ways(indexed, small_gpt2, monkeypatch):
    settings, corpus = indexed
    searcher = Searcher(settings)
    options = SummaryOptions(max_tokens=8)
    monkeypatch.chdir(corpus / "notes")
    for path in ("tea.md", str(corpus / "notes" / "tea.md"), "notes/tea.md"):
        result = summarize(searcher, path=path, options=options, generator=small_gpt2)
        assert [p.path.endswith("tea.md") for p in result.passages] == [True]
        assert result.pieces == 1


def test_query_summary_reads_the_top_results(indexed, small_gpt2):
    settings, _ = indexed
    result = summarize(Searcher(settings), query="when to harvest garlic", options=SummaryOptions(k=2, max_tokens=8),
                       generator=small_gpt2)
    assert result.target == "when to harvest garlic"
    assert len(result.passages) == 2 and result.passages[0].path.endswith("garlic.md")


def test_pieces_fit_the_window_with_the_answer(small_gpt2):
    blocks = [f"[{n}] " + "garlic bulbs cure in a dry place. " * 40 for n in range(1, 6)]
    for max_tokens in (8, 64):
        contexts = pack(small_gpt2, blocks, max_tokens, "Summarize.")
        assert len(contexts) >= 5
        for context in contexts:
            prompt = _render(small_gpt2, context, "Summarize.")
            assert small_gpt2.count_tokens(prompt) + max_tokens <= 256
    with pytest.raises(InputError, match="too few for a summary"):
        pack(small_gpt2, blocks, 250, "Summarize.")


def test_bad_targets_are_input_errors(indexed, small_gpt2):
    settings, corpus = indexed
    searcher = Searcher(settings)
    with pytest.raises(InputError, match="not a document of index"):
        summarize(searcher, path="nowhere.md", generator=small_gpt2)
    with pytest.raises(InputError, match="not both or neither"):
        summarize(searcher, generator=small_gpt2)
    with pytest.raises(InputError, match="not both or neither"):
        summarize(searcher, path="garlic.md", query="garlic", generator=small_gpt2)


def test_cli_summarize(indexed, small_gpt2):
    settings, corpus = indexed
    folder = small_gpt2.name
    base = ["--home", str(settings.home), "--name", settings.name, "--generator", folder, "--max-tokens", "8"]
    result = CliRunner().invoke(app, ["summarize", str(corpus / "notes" / "tea.md"), *base])
    assert result.exit_code == 0, result.output
    assert "Sources:" in result.output or "(no passage cited)" in result.output
    result = CliRunner().invoke(app, ["summarize", "--query", "garlic storage", "-k", "2", "--json", *base])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"target", "summary", "citations", "passages", "model", "seconds", "pieces", "extractive",
                         "method", "sentences"}
    assert data["method"] == "extractive" and data["sentences"][0]["kind"] == "quoted"
    assert data["target"] == "garlic storage" and len(data["passages"]) == 2
    result = CliRunner().invoke(app, ["summarize", "missing.md", *base])
    assert result.exit_code == 1 and "not a document of index" in result.output


@pytest.mark.slow
def test_smollm2_summarizes_a_document(indexed):
    settings, corpus = indexed
    result = summarize(Searcher(settings), path=str(corpus / "garlic.md"), options=SummaryOptions(max_tokens=80, method="generate"))
    assert result.model == "smollm2" and result.pieces >= 1
    assert "garlic" in result.summary.lower()
    assert all(1 <= c.n <= len(result.passages) for c in result.citations)


def test_repeated_sentences_are_dropped_before_they_are_shown():
    from searchlm.search.summarize import checked_summary

    shown: list[str] = []
    stream = checked_summary([hit(1, "Bees make honey."), hit(2, "Hives hold many bees.")], shown.append)
    for word in re.findall(r"\s*\S+", "Bees make honey [1]. Bees make honey. Hives hold bees. Bees  make honey!"):
        stream.feed(word)
    assert stream.finish() == "".join(shown) == "Bees make honey [1]. Hives hold bees [2]."


def test_streamed_summary_is_the_checked_summary(indexed, small_gpt2):
    """What the terminal shows is the summary --json prints: markers checked, repeats dropped."""
    settings, corpus = indexed
    text = ("Green tea leaves are steamed soon after picking [2]. Green tea leaves are steamed soon after picking. "
            "This stops oxidation.")
    shown: list[str] = []
    result = summarize(Searcher(settings), path=str(corpus / "notes/tea.md"), on_token=shown.append,
                       options=GENERATE, generator=ScriptedGenerator(small_gpt2, re.findall(r"\s*\S+", text)))
    assert "".join(shown) == result.summary
    assert result.summary == "Green tea leaves are steamed soon after picking [1]. This stops oxidation [1]."
    assert [c.n for c in result.citations] == [1]
    assert shown == ["Green tea leaves are steamed soon after picking [1].", " This stops oxidation [1]."]  # by sentence


def test_untraceable_sentences_are_dropped_and_an_empty_summary_quotes_the_passages(indexed, small_gpt2):
    """The small model's generic filler ("a powerful tool for extracting high-quality data") names nothing the
    passages hold: it is dropped, not shown uncited; when nothing is left, the passages are quoted, cited."""
    settings, corpus = indexed
    mixed = "Green tea leaves are steamed soon after picking. It is a powerful tool for extracting high-quality data."
    shown: list[str] = []
    result = summarize(Searcher(settings), path=str(corpus / "notes/tea.md"), on_token=shown.append,
                       options=GENERATE, generator=ScriptedGenerator(small_gpt2, re.findall(r"\s*\S+", mixed)))
    assert result.summary == "".join(shown) == "Green tea leaves are steamed soon after picking [1]."
    assert not result.extractive

    filler = "The pipeline is a powerful tool for extracting high-quality data from a large dataset."
    shown = []
    result = summarize(Searcher(settings), path=str(corpus / "notes/tea.md"), on_token=shown.append,
                       options=GENERATE, generator=ScriptedGenerator(small_gpt2, re.findall(r"\s*\S+", filler)))
    assert result.extractive and "".join(shown) == result.summary
    assert result.summary == "Green tea leaves are steamed or pan-fired soon after picking to stop oxidation [1]."
    assert [c.n for c in result.citations] == [1]


# -- key sentences (the default: quoted, no model) ------------------------------------------------------------
REPEATS = "# Hives\n\n" + "\n\n".join(
    ["## Wax\n\nWorker bees secrete wax from glands under their abdomen to build the comb. Worker bees secrete wax "
     "from glands under their abdomen to build the comb.",
     "## Honey\n\nForagers bring nectar home, and house bees evaporate it into honey that keeps for years.",
     "## Code\n\nThe hive log is kept like this:\n\n    log = open('hive.txt')\n    log.write('inspected')",
     "## Winter\n\nIn winter the colony forms a cluster and eats its stores; it does not hibernate. The cluster",
     ]
)


def test_a_document_summary_is_its_key_sentences_in_reading_order_each_once(make_index):
    settings, _, corpus = make_index({"garlic.md": LONG, "hives.md": REPEATS})
    searcher = Searcher(settings)
    shown: list[str] = []
    result = summarize(searcher, path=str(corpus / "garlic.md"), on_token=shown.append)
    assert result.method == "extractive" and result.extractive and result.model == "extractive"
    assert "".join(shown) == result.summary
    said = [p.text for p in result.parts]
    assert len(said) == len({re.sub(r"\W+", " ", t.lower()) for t in said}) >= 3  # never the same sentence twice
    # Every sentence is a complete sentence of the cited chunk, and they come in reading order.
    for part in result.parts:
        source = result.citations[part.passage - 1]
        assert re.sub(r" \[\d+\]", "", part.text).rstrip(".") in " ".join(source.text.split())
        assert part.text.endswith((".", "!", "?"))
    lines = [result.citations[p.passage - 1].start_line for p in result.parts]
    assert lines == sorted(lines)
    # The four sections are four different facts: a short summary covers more than one of them.
    assert len({c.heading for c in result.citations}) >= 3


def test_key_sentences_skip_code_repeats_and_an_unfinished_last_sentence(make_index):
    settings, _, corpus = make_index({"hives.md": REPEATS})
    searcher = Searcher(settings)
    passages = searcher.store.chunks_of_document(searcher.store.document_by_path("hives.md").id)
    from searchlm.records import Hit

    hits = [Hit.of(p, rank=i) for i, p in enumerate(passages, start=1)]
    chosen = key_sentences(searcher, hits, count=6)
    texts = [t for _, t in chosen]
    assert texts and len(texts) == len(set(texts))
    assert not any("open(" in t or "log.write" in t for t in texts)  # code is not a sentence
    assert all(t.endswith(".") for t in texts) and not any(t.endswith("The cluster") for t in texts)


def test_summary_options_are_checked(indexed):
    settings, corpus = indexed
    with pytest.raises(InputError, match="summary method 'poem'"):
        summarize(Searcher(settings), path=str(corpus / "garlic.md"), options=SummaryOptions(method="poem"))
    with pytest.raises(InputError, match="0 sentences"):
        summarize(Searcher(settings), path=str(corpus / "garlic.md"), options=SummaryOptions(sentences=0))
