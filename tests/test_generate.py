"""Generators: the Hugging Face backend on a tiny random GPT-2 (weights for the real one cannot be downloaded
here), streaming and stop strings, prompt budgets, and the registry's names. The packaged SmolLM2 is the
real-model check (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import TEXTS, build_tiny_gpt2, hit
from searchlm.errors import ModelError

@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    from searchlm.generate import load_generator

    folder = build_tiny_gpt2(tmp_path_factory.mktemp("gen") / "tiny-gpt2")
    return load_generator(str(folder), "cpu")


def test_tiny_gpt2_is_a_plain_generator_with_1024_positions(gpt2):
    assert gpt2.chat is False
    assert gpt2.context_length == 1024
    assert gpt2.prompt_budget(256) == 768
    with pytest.raises(NotImplementedError):
        gpt2.render_chat([{"role": "user", "content": "hi"}])


def test_generation_streams_what_it_returns(gpt2):
    pieces: list[str] = []
    text = gpt2.generate("The Eiffel Tower was completed in", 12, 0.0, on_token=pieces.append)
    assert text.strip()
    assert "".join(pieces) == text
    assert gpt2.count_tokens(text) <= 12 + 2  # re-encoding decoded text may merge or split a token at the edges
    again = gpt2.generate("The Eiffel Tower was completed in", 12, 0.0)
    assert again == text  # greedy is deterministic


def test_sampling_runs(gpt2):
    assert gpt2.generate("Bees make honey", 8, temperature=0.9)


def test_answer_length_is_cut_to_the_window(gpt2):
    prompt = " ".join(["honey bees"] * 2000)
    assert gpt2.count_tokens(prompt) > 1024
    text = gpt2.generate(prompt, 50, 0.0)  # over-long prompt: its end is kept, no position error
    assert isinstance(text, str)
    near_full = gpt2.truncate(prompt, 1020)
    assert gpt2.count_tokens(near_full) <= 1020
    text = gpt2.generate(near_full, 50, 0.0)
    assert gpt2.count_tokens(text) <= 6


def test_truncate_keeps_a_prefix_within_the_budget(gpt2):
    text = " ".join(TEXTS)
    cut = gpt2.truncate(text, 10)
    assert text.startswith(cut)
    assert 0 < gpt2.count_tokens(cut) <= 10
    assert gpt2.truncate(text, 10_000) == text
    assert gpt2.truncate(text, 0) == ""


def test_stream_holds_back_a_stop_string_and_ends_before_it(gpt2):
    from searchlm.generate.hf import TokenStream

    tok = gpt2.tokenizer
    ids = tok("Paris is big\nQuestion: next", add_special_tokens=False)["input_ids"]
    seen: list[str] = []
    stream = TokenStream(tok, seen.append, ("\nQuestion:",))
    stream.put(_tensor([0]))  # the prompt comes first and is skipped
    for i in ids:
        stream.put(_tensor([i]))
        assert "\n" not in "".join(seen)
    stream.finish()
    assert stream.stopped
    assert "".join(seen) == stream.text == "Paris is big"


def test_stream_passes_on_a_held_back_ending_that_was_no_stop(gpt2):
    from searchlm.generate.hf import TokenStream

    tok = gpt2.tokenizer
    seen: list[str] = []
    stream = TokenStream(tok, seen.append, ("\n\n",))
    stream.put(_tensor([0]))
    for i in tok("the end\n", add_special_tokens=False)["input_ids"]:
        stream.put(_tensor([i]))
    assert "".join(seen) == "the end"  # the newline waits: it might be the start of "\n\n"
    stream.finish()
    assert "".join(seen) == "the end\n"


def test_a_stop_string_before_the_answer_begins_does_not_end_it(gpt2):
    """A base model may open its answer on a new line ("Answer:\\n Paris"): a "\\n" stop ends the answer's first
    line, not the empty text before it."""
    from searchlm.generate.hf import TokenStream

    tok = gpt2.tokenizer
    stream = TokenStream(tok, None, ("\n",))
    stream.push(tok("\n Paris is big\nQuestion: next", add_special_tokens=False)["input_ids"])
    stream.finish()
    assert stream.stopped and stream.text.strip() == "Paris is big"


def test_an_exception_in_on_token_stops_generation(gpt2):
    class Gone(Exception):
        pass

    def leave(_text: str) -> None:
        raise Gone()

    with pytest.raises(Gone):
        gpt2.generate("Bees make honey", 20, on_token=leave)


def _tensor(ids):
    import torch

    return torch.tensor([ids])


# -- prompt budgets ---------------------------------------------------------------------------------------
def test_whole_passage_prompt_fits_gpt2_window_answer_included(gpt2):
    from searchlm.search.answer import COMPLETION_EXAMPLE, build_prompt

    long_text = " ".join(TEXTS * 60)  # several thousand tokens each
    hits = [hit(n, f"{n} {long_text}") for n in range(1, 6)]
    for max_tokens in (16, 256, 900):
        prompt, shown = build_prompt(gpt2, "When was the Eiffel Tower completed?", hits, max_tokens)
        assert gpt2.count_tokens(prompt) + max_tokens <= 1024
        assert shown and shown == list(range(1, len(shown) + 1))
        example = COMPLETION_EXAMPLE if max_tokens < 900 else ""  # left out where it would crowd the passages
        assert prompt.startswith(example + "Text:\n[1] 1 The Eiffel")
        assert prompt.rstrip().endswith("Question: When was the Eiffel Tower completed?\nAnswer:")


def test_short_passages_all_go_in_and_long_question_is_cut(gpt2):
    from searchlm.search.answer import build_prompt

    hits = [hit(n, TEXTS[n - 1]) for n in range(1, 4)]
    prompt, shown = build_prompt(gpt2, "Who harvests the honey?", hits, 64)
    assert shown == [1, 2, 3]
    assert all(f"[{n}] {TEXTS[n - 1]}" in prompt for n in shown)
    question = "why " * 3000
    prompt, shown = build_prompt(gpt2, question, hits, 64)
    assert gpt2.count_tokens(prompt) + 64 <= 1024
    assert shown  # the question was cut, not the passages dropped


def test_focused_prompt_uses_best_sentences_in_reading_order(gpt2):
    from searchlm.search.answer import FOCUS_TOKENS, Sentence, _render, build_prompt

    hits = [hit(1, "A. B."), hit(2, "C.")]
    focus = [Sentence(2, 0, "Bees make honey in hives.", 0.9), Sentence(1, 1, "Honey is sweet.", 0.8),
             Sentence(1, 0, "Hives hold bees.", 0.7)]
    prompt, shown = build_prompt(gpt2, "What do bees make?", hits, 64, focus=focus)
    assert shown == [1, 2]
    assert "[1] Hives hold bees. Honey is sweet.\n[2] Bees make honey in hives." in prompt
    monster = [Sentence(1, 0, "word " * 5000, 1.0)]
    prompt, shown = build_prompt(gpt2, "What?", hits, 64, focus=monster)
    assert shown == [1]
    bare = gpt2.count_tokens(_render(gpt2, "What?", ""))
    assert bare < gpt2.count_tokens(prompt) <= bare + FOCUS_TOKENS


# -- registry ---------------------------------------------------------------------------------------------
def test_registry_maps_default_to_packaged_gguf_and_paths_to_folders(tmp_path):
    from searchlm.generate.registry import resolve_generator

    folder, gguf, name = resolve_generator(None)
    assert gguf == "SmolLM2-135M-Instruct.Q4_1.gguf" and (Path(folder) / gguf).is_file() and name == "smollm2"
    assert resolve_generator("SmolLM2")[1] == gguf
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    assert resolve_generator(str(model)) == (str(tmp_path.resolve()), "m.gguf", str(model))
    assert resolve_generator(str(tmp_path)) == (str(tmp_path.resolve()), None, str(tmp_path))
    assert resolve_generator("distilgpt2") == ("distilgpt2", None, "distilgpt2")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ModelError, match="not a .gguf"):
        resolve_generator(str(tmp_path / "notes.txt"))


def test_unknown_model_is_a_model_error_that_names_it(monkeypatch):
    from searchlm.generate import load_generator

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="cannot load generator 'no-such-org/no-such-model'.*generator"):
        load_generator("no-such-org/no-such-model", "cpu")


@pytest.mark.slow
def test_packaged_smollm2_has_a_chat_template_and_answers():
    from searchlm.generate import get_generator

    gen = get_generator("smollm2", "cpu")
    assert gen.chat and gen.name == "smollm2" and gen.context_length >= 2048
    assert get_generator(None, "cpu") is gen  # cached per process
    prompt = gen.render_chat([{"role": "user", "content": "What is the capital of France? One word."}])
    assert "<|im_start|>assistant" in prompt
    assert "Paris" in gen.generate(prompt, 12)


@pytest.mark.slow
def test_gguf_is_converted_once_and_then_loads_from_the_cache(tmp_path, monkeypatch):
    from searchlm.generate import load_generator

    from searchlm.generate import ort

    monkeypatch.setenv("SEARCHLM_CACHE", str(tmp_path))
    first = load_generator("smollm2", "cpu")
    folders = list((tmp_path / "generators").glob("SmolLM2-135M-Instruct.Q4_1-*"))
    converted = [f for f in folders if (f / "model.safetensors").is_file()]
    exported = [f for f in folders if (f / "genai_config.json").is_file()]
    assert len(converted) == 1 and len(exported) == int(ort.available()) and len(folders) == 1 + len(exported)
    assert not list((tmp_path / "generators").glob(".converting-*")) + list((tmp_path / "generators").glob(".exporting-*"))
    assert isinstance(first, ort.OrtGenerator) == ort.available()
    again = load_generator("smollm2", "cpu")
    assert again.chat and again.name == "smollm2"
    prompt = first.render_chat([{"role": "user", "content": "Name a colour."}])
    assert again.render_chat([{"role": "user", "content": "Name a colour."}]) == prompt
    assert again.generate(prompt, 8) == first.generate(prompt, 8)


def test_a_quote_cited_to_the_wrong_passage_is_repointed_to_its_source():
    """Seen on the sample corpus: a sentence copied from passage 1 came out marked [2]."""
    from searchlm.generate.citations import check_citations

    winter = ("Honey bees do not hibernate. Bees on the inside generate heat by uncoupling their flight muscles "
              "from their wings and shivering, keeping the core at 20 to 35 C.")
    autumn = "After the harvest the beekeeper checks that each colony has enough stores, and feeds sugar syrup."
    quote = ("Bees on the inside generate heat by uncoupling their flight muscles from their wings and shivering, "
             "keeping the core at 20 to 35 C [2].")
    text, cited = check_citations(quote, [winter, autumn])
    assert cited == [1] and text.endswith("35 C [1].")
    # A sentence its cited passage does support keeps its marker.
    text, cited = check_citations("The beekeeper feeds sugar syrup after the harvest [2].", [winter, autumn])
    assert cited == [2]
    # Re-pointing keeps the space before a dot that starts a word (Gemma 3's answer lost it: "ending in.html").
    text, cited = check_citations("Templates ending in .html, .htm are autoescaped [2].",
                                  ["Autoescaping is on for templates ending in .html, .htm and .xml.", autumn])
    assert cited == [1] and text == "Templates ending in .html, .htm are autoescaped [1]."


def test_a_greedy_loop_is_cut_short():
    from searchlm.generate.hf import LOOP_NGRAM, _looping

    phrase = list(range(100, 100 + LOOP_NGRAM))
    assert not _looping(list(range(60)))
    assert not _looping([1, 2] + phrase * 2)
    assert _looping([1, 2] + phrase * 4)


def test_sentences_end_at_rules_blank_lines_and_list_items():
    from searchlm.text import sentences

    text = ("A TASTING JOURNAL\nNotes from a cheese shop\n==========\n\nPrices are per 100 g. We stock:\n"
            "  - curado, 6 months: nutty. £3.10\n  - viejo, 12 months: crumbly. £3.90\nSmith liked it.")
    assert sentences(text) == [
        "A TASTING JOURNAL Notes from a cheese shop", "Prices are per 100 g.", "We stock:",
        "- curado, 6 months: nutty. £3.10", "- viejo, 12 months: crumbly. £3.90 Smith liked it.",
    ]


@pytest.mark.slow
def test_onnx_runtime_and_transformers_give_the_default_model_the_same_answers(monkeypatch):
    """The ONNX export (fp32) computes what the transformers path computes on a CPU without bf16: the same
    prompts, token counts, cuts and greedy answers."""
    from searchlm.generate import get_generator, ort
    from searchlm.generate.hf import load_transformers
    from searchlm.generate.registry import resolve_generator

    if not ort.available():
        pytest.skip("onnxruntime-genai is not installed (pip install 'searchlm[generate]')")
    monkeypatch.setenv("SEARCHLM_BF16", "0")
    fast = get_generator(None, "cpu")
    assert isinstance(fast, ort.OrtGenerator)
    slow = load_transformers(*resolve_generator(None), "cpu")
    assert (fast.chat, fast.context_length) == (slow.chat, slow.context_length)
    for question, text in [
        ("How do honey bees keep warm during the winter?", "[1] In winter the bees form a tight cluster. Bees on "
         "the inside generate heat by shivering, keeping the core at 20 to 35 °C."),
        ("What is the capital of France?", "[1] Paris is the capital and largest city of France."),
    ]:
        messages = [{"role": "user", "content": f"Question: {question}\n\nText:\n{text}\n\nAnswer briefly."}]
        prompt = fast.render_chat(messages)
        assert prompt == slow.render_chat(messages)
        assert fast.count_tokens(prompt) == slow.count_tokens(prompt)
        assert fast.truncate(text, 7) == slow.truncate(text, 7)
        streamed: list[str] = []
        answer = fast.generate(prompt, 24, on_token=streamed.append, stop=("\n",))
        assert answer == slow.generate(prompt, 24, stop=("\n",)) and "".join(streamed) == answer


def test_a_model_the_exporter_failed_on_loads_through_transformers(tmp_path, monkeypatch):
    from searchlm.generate import ort
    from searchlm.generate.hf import converted_folder

    monkeypatch.setenv("SEARCHLM_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    converted = converted_folder(str(tmp_path), "m.gguf")
    converted.mkdir(parents=True)
    (converted / ".export-failed").write_text("unknown architecture\n")
    assert ort.load_ort(str(tmp_path), "m.gguf", "m", "cpu") is None  # at once: nothing loaded or exported
    assert ort.load_ort(str(tmp_path), "m.gguf", "m", "cuda") is None
    assert list(converted.parent.iterdir()) == [converted]
