"""`summarize`: a short summary of one indexed document, or of the top results of a query, citing its chunks.

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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from searchlm.answer import MAX_K
from searchlm.generate.registry import DEFAULT_GENERATOR, get_generator
from searchlm.errors import InputError
from searchlm.generate.citations import CheckedStream, cited_numbers, trace
from searchlm.text import CITATION, content_words, sentences, words
from searchlm.records import Citation, Hit, cited_json

if TYPE_CHECKING:
    from searchlm.generate.base import Generator
    from searchlm.search import Searcher

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


@dataclass
class SummaryOptions:
    k: int = 3  # passages for a query summary: three fit one piece
    generator: str | None = None
    max_tokens: int = 160
    temperature: float = 0.0
    mode: str = "hybrid"


@dataclass
class Summary:
    target: str  # the document's path, or the query
    summary: str
    citations: list[Citation]
    passages: list[Hit]
    model: str
    seconds: float
    pieces: int = 1
    extractive: bool = False  # no sentence of the model's summary held up: quoted from the passages instead

    def to_json(self) -> dict:
        return {
            "target": self.target,
            "summary": self.summary,
            **cited_json(self),
            "pieces": self.pieces,
            "extractive": self.extractive,
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
    from searchlm.search import SearchOptions

    options = options or SummaryOptions()
    if (path is None) == (query is None):
        raise InputError("give a document path or a query, not both or neither", "e.g. summarize(path='notes.md')",
                         "e.g. `searchlm summarize notes.md` or `searchlm summarize --query ...`")
    if not 1 <= options.k <= MAX_K:
        raise InputError(f"k {options.k} is out of range for summaries (use a value from 1 to {MAX_K})")
    started = time.perf_counter()
    if path is not None:
        passages = document_passages(searcher, path)
        target = passages[0].path
    else:
        if not query.strip():
            raise InputError("the query is empty (type what the summary should be about)")
        passages = searcher.search(query, SearchOptions(k=options.k, mode=options.mode))
        target = query
        if not passages:
            raise InputError(f"no passages match '{query}'", "try other words", "try other words, or `searchlm search` to explore")
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
    return Summary(target, text, citations, passages, generator.name or options.generator or DEFAULT_GENERATOR,
                   time.perf_counter() - started, pieces, extractive)


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
    wanted = set(content_words(query)) if query else set()
    picked = []
    for n, hit in enumerate(passages[:count], start=1):
        lines = [_LIST_MARK.sub("", line) for line in hit.text.splitlines()]  # a list item ends at its line too
        candidates = [s.strip() for line in lines for s in sentences(line) if len(words(s)) >= 4] or [hit.text.strip()]
        best = max(candidates, key=lambda s: len(wanted & set(content_words(s)))) if wanted else candidates[0]
        best = best if len(best) <= 400 else best[:400].rsplit(" ", 1)[0] + " …"
        end = len(best.rstrip(".!?"))
        picked.append(f"{best[:end]} [{n}]{best[end:] or '.'}")
    return " ".join(picked)


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
    return [Hit.of(r, path=searcher.display_path(r.path), rank=i) for i, r in enumerate(rows, start=1)]


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
