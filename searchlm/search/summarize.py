"""`summarize`: a short summary of one indexed document, or of the top results of a query, citing its chunks.

By default (`method="extractive"`) a summary is the passages' key sentences, chosen and never rewritten
(`key_sentences`): chunks are picked by maximal marginal relevance (MMR) over the vectors the index already holds
(central to the document, or close to the query, and unlike the chunks already picked, so a long document is
covered section by section), then within them the sentences that best stand for their chunk and the whole, each
unlike those already taken. Only complete prose sentences are candidates, so a summary never repeats a sentence,
never ends mid-sentence and never joins two facts that the source keeps apart; it is shown in reading order with
each sentence cited. No model is loaded: a page's summary takes about as long as a search.

`method="generate"` has the local LM write the summary instead, as follows.

The passages are the document's chunks in reading order, or the query's hits in rank order; they are the
[1], [2], … the citations refer to. Whatever fits one prompt (PIECE_TOKENS) is summarized in one go; a longer
document is cut into pieces, each piece is summarized, and the piece summaries are summarized again (in rounds,
until one prompt holds them). The final summary streams as it is checked (`CheckedStream`): a sentence that
repeats an earlier one is dropped, and so is one that no chunk holds at least half the content words of (the small
model, out of its depth, writes fluent generic text); each sentence kept is cited to the chunk that holds most of
its content words (the model paraphrases and does not write markers itself). Sentences stream once complete and
checked: what streams is the checked summary. If no sentence holds up, the summary quotes the passages instead
(`Summary.extractive`).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from searchlm.search.answer import MAX_K, AnswerPart
from searchlm.generate.registry import DEFAULT_GENERATOR, get_generator
from searchlm.errors import InputError
from searchlm.generate.citations import CheckedStream, cited_numbers, trace
from searchlm.text import CITATION, content_words, is_code, paragraphs, sentences, words
from searchlm.records import Citation, Hit, cited_json

if TYPE_CHECKING:
    from searchlm.generate.base import Generator
    from searchlm.search.searcher import Searcher

# Prompt tokens per piece, at most. The 135M default model writes a coherent summary of ~700 tokens; given the
# top 5 results of a query at once (~1,400 tokens) it fell into repeating itself. More pieces cost more passes.
PIECE_TOKENS = 768
# A summary sentence paraphrases: it is cited to the chunk that holds most of its content words, if that is at
# least this share of them (answers need 80 %).
SUMMARY_TRACE_SHARE = 0.5
_LIST_MARK = re.compile(r"^\s*(?:[-*+]\s+|\d+[.)]\s+|#+\s+|>\s*)")
MIN_CHUNK_TOKENS = 32
MAX_ROUNDS = 4  # pieces of pieces: a 100-page document still ends after a few rounds

INSTRUCTION = "Summarize the text in three sentences."
COMBINE = "Combine these partial summaries into one summary of three sentences."


METHODS = ("extractive", "generate")


@dataclass
class SummaryOptions:
    k: int = 3  # passages for a query summary: three fit one piece
    generator: str | None = None
    max_tokens: int = 160
    temperature: float = 0.0
    mode: str = "hybrid"
    method: str = "extractive"  # key sentences quoted (no model), or "generate": the LM writes it
    sentences: int | None = None  # how many key sentences (extractive); None: by the document's length


@dataclass
class Summary:
    target: str  # the document's path, or the query
    summary: str
    citations: list[Citation]
    passages: list[Hit]
    model: str
    seconds: float
    pieces: int = 1
    extractive: bool = False  # quoted from the passages (the method, or no sentence of the model's held up)
    method: str = "extractive"
    parts: list[AnswerPart] = field(default_factory=list)  # each sentence, quoted or generated, with its passage

    def to_json(self) -> dict:
        return {
            "target": self.target,
            "summary": self.summary,
            **cited_json(self),
            "pieces": self.pieces,
            "extractive": self.extractive,
            "method": self.method,
            "sentences": [p.to_json() for p in self.parts],
        }


def summarize(
    searcher: "Searcher",
    path: str | None = None,
    query: str | None = None,
    options: SummaryOptions | None = None,
    on_token: Callable[[str], None] | None = None,
    generator: "Generator | None" = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Summary:
    """Summarize the indexed document at `path` (as given on the command line: relative to the current folder,
    absolute, or relative to the indexed folder), or the top `options.k` results for `query`. `on_token`
    streams the final summary; `on_progress(done, total)` reports the pieces of a long document."""
    from searchlm.search.searcher import SearchOptions

    options = options or SummaryOptions()
    if (path is None) == (query is None):
        raise InputError("give a document path or a query, not both or neither", "e.g. summarize(path='notes.md')",
                         "e.g. `searchlm summarize notes.md` or `searchlm summarize --query ...`")
    if not 1 <= options.k <= MAX_K:
        raise InputError(f"k {options.k} is out of range for summaries (use a value from 1 to {MAX_K})")
    if options.method not in METHODS:
        raise InputError(f"summary method '{options.method}' is not known (use {' or '.join(METHODS)})")
    if options.sentences is not None and not 1 <= options.sentences <= MAX_SENTENCES:
        raise InputError(f"{options.sentences} sentences is out of range for a summary (use 1 to {MAX_SENTENCES})")
    started = time.perf_counter()
    if path is not None:
        passages = document_passages(searcher, path)
        target = passages[0].path
    else:
        if not query.strip():
            raise InputError("the query is empty (type what the summary should be about)")
        passages = searcher.search(query, SearchOptions(k=options.k, mode=options.mode)).hits
        target = query
        if not passages:
            raise InputError(f"no passages match '{query}'", "try other words", "try other words, or `searchlm search` to explore")
    if options.method == "extractive":
        chosen = key_sentences(searcher, passages, query, options.sentences, on_progress)
        if not chosen:  # no complete prose sentence anywhere (a code file): each chunk's opening words
            chosen = _opening_sentences(passages, query)
        order = list(dict.fromkeys(n for n, _ in chosen))
        cited = [_cite(sentence, order.index(n) + 1) for n, sentence in chosen]
        text = " ".join(cited)
        if on_token is not None and text:
            on_token(text)
        citations = [Citation.of(i, passages[n - 1]) for i, n in enumerate(order, start=1)]
        parts = [AnswerPart(c, "quoted", order.index(n) + 1) for (n, _), c in zip(chosen, cited)]
        return Summary(target, text, citations, passages, "extractive", time.perf_counter() - started, 1, True,
                       "extractive", parts)
    if generator is None:
        generator = get_generator(options.generator or getattr(searcher.settings, "generator", None),
                                  getattr(searcher.settings, "device", "auto"))
    text, pieces = _reduce(generator, passages, options, on_token, on_progress)
    extractive = not text.strip()
    if extractive:
        text = quoted_summary(passages, query)
        if on_token is not None:
            on_token(text)
    citations = [Citation.of(n, passages[n - 1]) for n in cited_numbers(text)]
    parts = [AnswerPart(s, "quoted" if extractive else "generated", (cited_numbers(s) or [None])[0])
             for s in sentences(text)]
    return Summary(target, text, citations, passages, generator.name or options.generator or DEFAULT_GENERATOR,
                   time.perf_counter() - started, pieces, extractive, "generate", parts)


# -- key sentences ------------------------------------------------------------------------------------------
MAX_SENTENCES = 12
MMR_LAMBDA = 0.7  # relevance against novelty when picking chunks and sentences (Carbonell & Goldstein 1998)
NEAR_DUPLICATE = 0.9  # a sentence this close (cosine) to one already picked says the same thing: left out
MIN_WORDS, MAX_WORDS = 6, 60  # a key sentence's length in words: a fragment or a run-on is no summary
CANDIDATE_CHUNKS = 2  # chunks read per sentence wanted: the rest are not encoded at all
PROGRESS_FROM = 4  # candidate chunks past which progress is reported, a chunk at a time


def sentence_count(chunks: int) -> int:
    """How many key sentences a document of `chunks` chunks gets: 3 for a short note, up to 8 for a long one."""
    return 3 if chunks <= 3 else 4 if chunks <= 8 else 5 if chunks <= 20 else 6 if chunks <= 50 else 8


def key_sentences(searcher: "Searcher", passages: list[Hit], query: str | None = None, count: int | None = None,
                  on_progress: Callable[[int, int], None] | None = None) -> list[tuple[int, str]]:
    """(passage number, sentence) of the passages' key sentences, in reading order (rank order for a query): see
    the module docstring. Chunk vectors come from the index; only the candidate chunks' sentences are encoded."""
    import numpy as np

    count = count or (sentence_count(len(passages)) if query is None else 3)
    encoder = searcher.encoder
    stored = searcher.store.vectors_by_id([p.chunk_id for p in passages])
    missing = [p for p in passages if p.chunk_id not in stored]
    if missing:  # a passage whose vector the store does not hold is encoded here
        stored.update(zip((p.chunk_id for p in missing), encoder.embed([p.text for p in missing])))
    vectors = np.stack([stored[p.chunk_id] for p in passages]).astype("float32")
    if query is not None:
        target = encoder.embed_query(query)
    else:
        centroid = vectors.mean(axis=0)
        target = centroid / (np.linalg.norm(centroid) or 1.0)
    chunks = _mmr(vectors @ target, vectors @ vectors.T, min(len(passages), count * CANDIDATE_CHUNKS))
    candidates: list[tuple[int, int, str]] = []  # (passage index, position, sentence)
    encoded = []
    for done, i in enumerate(sorted(chunks), start=1):  # a chunk at a time, so progress follows the encoding
        found = [(i, position, text) for position, text in enumerate(_prose_sentences(passages[i].text))]
        if found:
            candidates.extend(found)
            encoded.append(encoder.embed([text for _, _, text in found]))
        if on_progress is not None and len(chunks) > PROGRESS_FROM:
            on_progress(done, len(chunks))
    if not candidates:
        return []
    sv = np.concatenate(encoded)
    relevance = 0.5 * (sv @ target) + 0.5 * np.einsum("ij,ij->i", sv, vectors[[c[0] for c in candidates]])
    picked = _mmr(relevance, sv @ sv.T, count, NEAR_DUPLICATE)
    seen: set[str] = set()
    out = []
    for j in sorted(picked, key=lambda j: (candidates[j][0], candidates[j][1])):
        key = " ".join(re.findall(r"\w+", candidates[j][2].lower()))
        if key not in seen:
            seen.add(key)
            out.append((candidates[j][0] + 1, candidates[j][2]))
    return out


def _mmr(relevance, similarity, count: int, duplicate: float | None = None) -> list[int]:
    """Indices picked by maximal marginal relevance: each next one the most relevant less MMR_LAMBDA's share
    of its likeness to those already picked; with `duplicate`, anything that close to a pick is never picked."""
    picked: list[int] = []
    left = list(range(len(relevance)))
    while left and len(picked) < count:
        def gain(i: int) -> float:
            like = max((float(similarity[i, j]) for j in picked), default=0.0)
            return MMR_LAMBDA * float(relevance[i]) - (1 - MMR_LAMBDA) * like
        best = max(left, key=gain)
        left.remove(best)
        if duplicate is not None and any(similarity[best, j] >= duplicate for j in picked):
            continue
        picked.append(best)
    return picked


def _prose_sentences(text: str) -> list[str]:
    """A passage's complete prose sentences of a summary's length: no code, no list fragments, no headings."""
    out = []
    for paragraph in paragraphs(text):
        if is_code(paragraph):
            continue
        for line_block in [_LIST_MARK.sub("", ln) for ln in paragraph.split("\n")] if _LIST_MARK.match(paragraph) \
                else [paragraph]:
            for sentence in sentences(line_block):
                sentence = _LIST_MARK.sub("", sentence)
                n = len(sentence.split())
                if MIN_WORDS <= n <= MAX_WORDS and sentence.endswith((".", "!", "?", '."', ".)")) \
                        and not sentence[0].islower():
                    out.append(sentence)
    return out


def _cite(sentence: str, n: int) -> str:
    end = len(sentence.rstrip(".!?"))
    return f"{sentence[:end]} [{n}]{sentence[end:]}"


def checked_summary(passages: list[Hit], on_token: Callable[[str], None] | None = None) -> CheckedStream:
    """The stream a final summary goes through: repeats and untraceable sentences dropped, each other sentence
    cited to its chunk at SUMMARY_TRACE_SHARE."""
    stream = CheckedStream([h.text for h in passages], on_token, share=SUMMARY_TRACE_SHARE)
    stream.prepare = _Faithful(stream.passage_words)  # the stream's own word sets: built once
    return stream


class _Faithful:
    """Keeps a summary sentence only when it is new and traceable: a sentence that repeats an earlier one word for
    word (a small model's greedy loop) is dropped, and so is one whose content words no passage holds (at
    SUMMARY_TRACE_SHARE): the small model, given passages it cannot summarize, writes fluent generic text. A
    sentence is held back until it is complete, since either test may still drop it."""

    def __init__(self, passage_words: list[set[str]]):
        self.passage_words = passage_words
        self.seen: set[str] = set()

    def __call__(self, sentence: str, first: bool, complete: bool) -> str | None:
        if not complete:
            return None
        bare = CITATION.sub(" ", sentence)
        if not bare.rstrip(" \"')").endswith((".", "!", "?")):
            return ""  # cut off by the token limit: a summary never ends mid-sentence
        key = " ".join(re.findall(r"\w+", bare.lower()))
        if not key or key in self.seen:
            return ""
        self.seen.add(key)
        if trace(bare, self.passage_words, SUMMARY_TRACE_SHARE) is None:
            return ""
        return sentence


def quoted_summary(passages: list[Hit], query: str | None, count: int = 3) -> str:
    """The fallback when no sentence of the model's summary holds up: one sentence from each of the first `count`
    passages, cited; for a query the sentence sharing most of its words, for a document each chunk's first."""
    return " ".join(_cite(sentence, n) for n, sentence in _opening_sentences(passages, query, count))


def _opening_sentences(passages: list[Hit], query: str | None, count: int = 3) -> list[tuple[int, str]]:
    """(passage number, sentence) for `quoted_summary`: each sentence ends in . ! or ?, at most 400 characters."""
    wanted = set(content_words(query)) if query else set()
    picked = []
    for n, hit in enumerate(passages[:count], start=1):
        lines = [_LIST_MARK.sub("", line) for line in hit.text.splitlines()]  # a list item ends at its line too
        candidates = [s.strip() for line in lines for s in sentences(line) if len(words(s)) >= 4] or [hit.text.strip()]
        best = max(candidates, key=lambda s: len(wanted & set(content_words(s)))) if wanted else candidates[0]
        best = best if len(best) <= 400 else best[:400].rsplit(" ", 1)[0] + " …"
        picked.append((n, best if best.endswith((".", "!", "?")) else best + "."))
    return picked


def document_passages(searcher: "Searcher", path: str) -> list[Hit]:
    """The chunks of one indexed document, in reading order, as passages."""
    root = Path(searcher.manifest.root)
    given = Path(path).expanduser()
    candidates = [given.as_posix()]
    for full in (given if given.is_absolute() else Path.cwd() / given, root / given):
        try:
            candidates.append(Path(os.path.normpath(full)).relative_to(root).as_posix())
        except ValueError:
            pass
    doc = next((d for d in map(searcher.store.document_by_path, dict.fromkeys(candidates)) if d is not None), None)
    if doc is None:
        raise InputError(
            f"'{path}' is not a document of index '{searcher.settings.name}' (indexed folder: {root})",
            "give its path as a search hit shows it", "give its path as `searchlm search` shows it",
        )
    rows = searcher.store.chunks_of_document(doc.id)
    if not rows:
        raise InputError(f"'{path}' has no text in index '{searcher.settings.name}' (nothing to summarize)")
    return [Hit.of(r, folder=searcher.manifest.root, rank=i) for i, r in enumerate(rows, start=1)]


# -- map and reduce ---------------------------------------------------------------------------------------
def _render(generator: "Generator", context: str, instruction: str) -> str:
    if generator.chat:
        return generator.render_chat([{"role": "user", "content": f"{context}\n\n{instruction}"}])
    return f"{context}\n\nTL;DR:"  # GPT-2's own summary cue (Radford et al. 2019)


def pack(generator: "Generator", blocks: list[str], max_tokens: int, instruction: str) -> list[str]:
    """Group texts into contexts that each fit one prompt; a text too long for one is cut to fit."""
    room = min(generator.prompt_budget(max_tokens) - generator.count_tokens(_render(generator, "", instruction)) - 4,
               PIECE_TOKENS)
    if room < MIN_CHUNK_TOKENS:
        raise InputError(
            f"generator '{generator.name}' has {generator.context_length} positions, too few for a summary of "
            f"{max_tokens} tokens", f"use max_tokens={max(16, generator.context_length // 4)}",
            f"use --max-tokens {max(16, generator.context_length // 4)}",
        )
    pieces: list[list[str]] = [[]]
    used = 0
    for block in blocks:
        cost = generator.count_tokens(block) + 2
        if cost > room:
            block, cost = generator.truncate(block, room - 2), room
        if pieces[-1] and used + cost > room:
            pieces.append([])
            used = 0
        pieces[-1].append(block)
        used += cost
    return ["\n\n".join(p) for p in pieces]


def _reduce(generator, passages: list[Hit], options, on_token, on_progress) -> tuple[str, int]:
    """Summarize the numbered passages, in pieces and rounds when they do not fit one prompt.
    Returns the checked summary and how many pieces the first round had."""
    # No [n] labels in the prompt: given them, the small model writes "[1] …[2] …[3] …", one made-up sentence a
    # label. Citations come from tracing each summary sentence to the chunk that holds most of its words.
    blocks = [f"{hit.heading or hit.title}: {hit.text}" if hit.heading or hit.title else hit.text for hit in passages]
    instruction = INSTRUCTION
    first_round = 0
    for _ in range(MAX_ROUNDS):
        contexts = pack(generator, blocks, options.max_tokens, instruction)
        first_round = first_round or len(contexts)
        if len(contexts) == 1:
            break
        partial = []
        for i, context in enumerate(contexts, start=1):
            partial.append(_generate(generator, _render(generator, context, instruction), options))
            if on_progress:
                on_progress(i, len(contexts))
        # The partial summaries keep the chunk markers they cite, so they go in unnumbered.
        blocks = [text.strip() for text in partial if text.strip()] or blocks[:1]
        instruction = COMBINE
    context = "\n\n".join(pack(generator, blocks, options.max_tokens, instruction)[:1])
    checked = checked_summary(passages, on_token)
    _generate(generator, _render(generator, context, instruction), options, checked.feed)
    return checked.finish(), first_round


def _generate(generator, prompt: str, options: SummaryOptions, on_token=None) -> str:
    stop = () if generator.chat else ("\n\n",)
    return generator.generate(prompt, options.max_tokens, options.temperature, on_token=on_token, stop=stop)
