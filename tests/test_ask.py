"""`ask`: citation checking, refusal on weak evidence, the answer pipeline and the CLI, on real indexes.

The fast tests answer with a tiny random GPT-2 (its text is noise, so they also exercise the extractive
fallback); the slow ones with the packaged SmolLM2.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from searchlm.answer import EVIDENCE_THRESHOLD, REFUSAL, AskOptions, Answer, ask, get_generator
from searchlm.cli import app
from searchlm.errors import InputError
from searchlm.generate.citations import MarkerFilter, check_citations, cited_numbers
from searchlm.search import Searcher
from test_generate import build_tiny_gpt2

FILES = {
    "eiffel.md": "# Eiffel Tower\n\nThe Eiffel Tower was completed in 1889 for the World's Fair in Paris. It is 330 "
                 "metres tall and was designed by the engineering company of Gustave Eiffel.\n",
    "bees.md": "# Beekeeping\n\nBees make honey in hives. The beekeeper harvests the honey in late summer, leaving "
               "enough for the colony to survive the winter.\n",
    "chess.md": "# Chess openings\n\nThe Sicilian Defence is a sharp chess opening for Black that begins 1.e4 c5. "
                "It is the most popular reply to 1.e4 at master level.\n",
    "coral.md": "# Coral reefs\n\nCoral reefs bleach when the water gets too warm and the corals expel the algae "
                "living in their tissues.\n",
}
IN_CORPUS = "When was the Eiffel Tower completed?"
OUT_OF_CORPUS = "Who painted the ceiling of the Sistine Chapel?"


@pytest.fixture(scope="module")
def tiny_gpt2_dir(tmp_path_factory) -> Path:
    return build_tiny_gpt2(tmp_path_factory.mktemp("ask") / "tiny-gpt2")


@pytest.fixture
def index(make_index):
    settings, _, corpus = make_index(FILES)
    return settings


# -- citation checking ------------------------------------------------------------------------------------
PASSAGES = ["The Eiffel Tower was completed in 1889.", "Bees make honey in hives."]


def test_marker_that_points_at_no_passage_is_removed():
    text, numbers = check_citations("It was completed in 1889 [1]. Bees make honey [9].", PASSAGES)
    assert "[9]" not in text
    assert numbers == [1, 2]  # the second sentence is traced to passage 2 instead of [9]
    assert text == "It was completed in 1889 [1]. Bees make honey [2]."


def test_mixed_and_spelled_markers_keep_only_valid_numbers():
    text, numbers = check_citations("Completed in 1889 [1, 7] [Passage 2] [page 3].", PASSAGES)
    assert text == "Completed in 1889 [1][2]."
    assert numbers == [1, 2]


def test_sentence_that_no_passage_holds_stays_uncited():
    text, numbers = check_citations("The tower is painted every seven years by volunteers.", PASSAGES)
    assert numbers == []
    assert "[" not in text


def test_short_answer_is_traced_to_the_best_ranked_passage_that_holds_it():
    assert check_citations("1889", PASSAGES) == ("1889 [1]", [1])
    assert check_citations("honey", ["Honey bees.", "Bees make honey in hives."]) == ("honey [1]", [1])
    assert cited_numbers("a [2] b [1][2]") == [2, 1]


def test_marker_filter_drops_bad_markers_while_streaming():
    out: list[str] = []
    filt = MarkerFilter(2, out.append)
    for piece in ["Paris [", "1", "] and Rome [", "9]", " and [2", "]", " [draft"]:
        filt.feed(piece)
    filt.flush()
    assert "".join(out) == "Paris [1] and Rome  and [2] [draft"


# -- ask, tiny GPT-2 --------------------------------------------------------------------------------------
def test_in_corpus_question_gets_a_cited_answer(index, tiny_gpt2_dir):
    searcher = Searcher(index)
    pieces: list[str] = []
    answer = ask(searcher, IN_CORPUS, AskOptions(k=3, generator=str(tiny_gpt2_dir), max_tokens=16),
                 on_token=pieces.append)
    assert not answer.refused
    assert answer.evidence is not None and answer.evidence >= EVIDENCE_THRESHOLD
    assert answer.citations, answer.answer
    first = answer.citations[0]
    assert first.path.endswith("eiffel.md") and first.heading == "Eiffel Tower" and first.start_line
    assert answer.passages[first.n - 1].chunk_id == first.chunk_id
    # Random weights write noise that no passage holds, so the answer quotes the best sentence instead.
    assert answer.extractive and "1889" in answer.answer and "[1]" in answer.answer
    assert "generate" in answer.timings and pieces  # the model did run and stream
    assert answer.model == str(tiny_gpt2_dir)


def test_out_of_corpus_question_is_refused_without_generating(index, tiny_gpt2_dir):
    searcher = Searcher(index)
    pieces: list[str] = []
    generator = get_generator(str(tiny_gpt2_dir), "cpu")
    answer = ask(searcher, OUT_OF_CORPUS, AskOptions(k=3), on_token=pieces.append, generator=generator)
    assert answer.refused and answer.answer == REFUSAL
    assert answer.evidence < EVIDENCE_THRESHOLD
    assert answer.citations == [] and answer.passages  # the nearest passages are shown
    assert pieces == [] and "generate" not in answer.timings


def test_answer_json_has_the_documented_keys(index, tiny_gpt2_dir):
    answer = ask(Searcher(index), IN_CORPUS, AskOptions(k=2, max_tokens=8),
                 generator=get_generator(str(tiny_gpt2_dir), "cpu"))
    data = json.loads(json.dumps(answer.to_json()))
    assert set(data) == {"question", "answer", "citations", "passages", "refused", "model", "seconds"}
    assert set(data["citations"][0]) >= {"n", "path", "chunk_id", "start_line", "end_line", "page"}
    assert len(data["passages"]) == 2 and data["passages"][0]["text"]


def test_bad_input_is_an_input_error(index, tiny_gpt2_dir):
    searcher = Searcher(index)
    with pytest.raises(InputError, match="empty"):
        ask(searcher, "   ", AskOptions())
    with pytest.raises(InputError, match="k 0"):
        ask(searcher, IN_CORPUS, AskOptions(k=0))
    with pytest.raises(InputError, match="mode 'fuzzy'"):
        ask(searcher, IN_CORPUS, AskOptions(mode="fuzzy"), generator=get_generator(str(tiny_gpt2_dir), "cpu"))


# -- CLI --------------------------------------------------------------------------------------------------
def _run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_cli_ask_json(index, tiny_gpt2_dir):
    result = _run("ask", IN_CORPUS, "--home", str(index.home), "--name", index.name,
                  "--generator", str(tiny_gpt2_dir), "--max-tokens", "8", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["question"] == IN_CORPUS and data["refused"] is False
    assert data["citations"][0]["path"].endswith("eiffel.md")
    assert data["model"] == str(tiny_gpt2_dir)


def test_cli_ask_streams_then_lists_sources(index, tiny_gpt2_dir):
    result = _run("ask", IN_CORPUS, "--home", str(index.home), "--name", index.name,
                  "--generator", str(tiny_gpt2_dir), "--max-tokens", "8")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "Sources:" in lines
    source = lines[lines.index("Sources:") + 1]
    assert source.startswith("[1] ") and "eiffel.md:" in source and source.endswith("(Eiffel Tower)")


def test_cli_ask_refusal_shows_nearest_passages(index, tiny_gpt2_dir):
    result = _run("ask", OUT_OF_CORPUS, "--home", str(index.home), "--name", index.name,
                  "--generator", str(tiny_gpt2_dir))
    assert result.exit_code == 0, result.output
    assert REFUSAL in result.output and "Nearest passages:" in result.output


def test_cli_ask_errors_are_one_line(index, tmp_path):
    result = _run("ask", IN_CORPUS, "--home", str(index.home), "--name", "nope")
    assert result.exit_code == 1 and "index 'nope' not found" in result.output
    result = _run("ask", IN_CORPUS, "--home", str(index.home), "--name", index.name, "-k", "99")
    assert result.exit_code == 1 and "k 99 is out of range" in result.output


# -- the default model ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_smollm2_answers_in_corpus_and_refuses_out_of_corpus(index):
    searcher = Searcher(index)
    answer: Answer = ask(searcher, IN_CORPUS, AskOptions(max_tokens=32))
    assert answer.model == "smollm2" and not answer.refused
    assert answer.citations and answer.citations[0].path.endswith("eiffel.md")
    assert "1889" in answer.answer
    refused = ask(searcher, OUT_OF_CORPUS, AskOptions(max_tokens=32))
    assert refused.refused and refused.answer == REFUSAL and refused.citations == []


def test_paraphrase_is_cited_to_the_passage_holding_most_of_its_words_at_a_lower_share():
    passages = ["Garlic is planted in autumn.", "Harvest garlic bulbs when the lower leaves turn brown in summer."]
    sentence = "Bulbs are lifted in summer once their leaves go brown."
    assert check_citations(sentence, passages) == (sentence, [])  # answers: 80 % of the words, not met
    text, numbers = check_citations(sentence, passages, share=0.5)
    assert numbers == [2] and text.endswith("brown [2].")
