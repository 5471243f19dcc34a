"""Pseudo-queries from an index's own passages, and the training examples mined for them.

Three kinds of queries, none from a person:

- structure: a document's title asks for its first passage, a section heading for its section's first passage;
- sentences (the inverse cloze task, Lee et al. 2019): one sentence of a passage asks for the rest of it (the
  sentence is taken out of the passage it trains on, so matching it word for word teaches nothing);
- generated (doc2query, GPL's source of queries): the packaged SmolLM2 writes a question a passage answers, for
  as many passages as the time budget allows (a few seconds each on a laptop CPU).

A query trains the encoder only if the current hybrid search finds its source document in the top `ROUND_TRIP_K`
(GPL's filter against questions the passage does not answer); its hard negatives are the other documents that
search ranks highest, and its teacher scores are that search's fused scores.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import asdict, dataclass, field

ROUND_TRIP_K = 10
NEGATIVES = 3  # hard negatives kept per query (ranks 2 to ~10 of the current hybrid search)
MIN_WORDS, MAX_WORDS = 3, 30
GENERATE_TOKENS = 32
PROMPT_PASSAGE_TOKENS = 160
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")


@dataclass
class PseudoQuery:
    text: str
    chunk_id: int
    doc_id: int
    source: str  # title, heading, sentence, generated
    held_out: bool = False
    passage: str = ""  # the positive as trained on ("" : the chunk's own embedded text)
    found: bool = False  # the round trip: the current search ranks its document in the top ROUND_TRIP_K
    negatives: list = field(default_factory=list)  # [[chunk_id, teacher score], ...]
    score: float = 0.0  # the teacher's score of the positive

    def to_json(self) -> dict:
        return asdict(self)


def structure_queries(outline, limit: int, seed: int = 0) -> list[PseudoQuery]:
    """Titles and headings as queries for their passages, and one sentence of each sampled passage (at most
    `limit` in all, sampled evenly)."""
    from searchlm.adapt.stage import embed_text

    rng = random.Random(seed)
    found: list[PseudoQuery] = []
    seen_titles: set[str] = set()
    seen_headings: set[tuple[int, str]] = set()
    for cid, doc_id, ordinal, title, heading, text, _ in outline:
        if ordinal == 0 and _usable(title) and title not in seen_titles:
            seen_titles.add(title)
            found.append(PseudoQuery(title, cid, doc_id, "title"))
        last = heading.split(" > ")[-1].strip() if heading else ""
        if last and last != title and _usable(last) and (doc_id, last) not in seen_headings:
            seen_headings.add((doc_id, last))
            found.append(PseudoQuery(last, cid, doc_id, "heading"))
    sentences: list[PseudoQuery] = []
    for cid, doc_id, _, title, heading, text, _ in outline:
        parts = [s for s in _SENTENCE.split(text) if MIN_WORDS * 2 <= len(s.split()) <= MAX_WORDS]
        if len(parts) >= 2:  # a passage of one sentence has nothing left to be found by
            s = rng.choice(parts)
            rest = text.replace(s, " ").strip()
            sentences.append(PseudoQuery(s, cid, doc_id, "sentence", passage=embed_text(title, heading, rest)))
    rng.shuffle(found)
    rng.shuffle(sentences)
    half = limit // 2
    found = found[: max(half, limit - len(sentences))]
    return found + sentences[: limit - len(found)]


def _usable(text: str) -> bool:
    words = text.split()
    return MIN_WORDS <= len(words) <= MAX_WORDS and not re.search(r"\.\w{1,5}$", text)  # not a file name


# One example, then the passage: the packaged SmolLM2-135M writes a question after it; asked by instruction (with or
# without its chat template) it described the passage or repeated the instruction instead (RESULTS.md).
EXAMPLE = ("Passage: Honey bees survive the winter by forming a tight cluster inside the hive. The bees in the middle "
           "shiver their flight muscles to produce heat, and they rotate so that no bee stays on the cold outside.\n"
           "Question: How do honey bees keep warm in winter?\n\n")


def generation_prompt(generator, passage: str) -> str:
    return f"{EXAMPLE}Passage: {generator.truncate(passage, PROMPT_PASSAGE_TOKENS)}\nQuestion:"


def generate_queries(generator, chunks, deadline: float, progress=None, done: list | None = None,
                     on_batch=None) -> list[PseudoQuery]:
    """A generated query for each of `chunks` ((id, doc_id, passage) tuples) until `deadline`; `done` holds those
    generated before (resumed), `on_batch(queries)` is called after every few to save them."""
    progress = progress or (lambda phase, n, total: None)
    out = list(done or [])
    have = {q.chunk_id for q in out}
    todo = [c for c in chunks if c[0] not in have]
    total = len(out) + len(todo)
    for n, (cid, doc_id, passage) in enumerate(todo, start=1):
        if time.monotonic() > deadline:
            break
        text = generator.generate(generation_prompt(generator, passage), GENERATE_TOKENS, stop=("\n",))
        query = clean_query(text)
        out.append(PseudoQuery(query, cid, doc_id, "generated"))  # "" : tried, nothing usable (not retried)
        progress("generate", len(out), total)
        if on_batch is not None and n % 8 == 0:
            on_batch(out)
    if on_batch is not None:
        on_batch(out)
    return out


def clean_query(text: str) -> str:
    text = text.strip().strip('"').strip()
    text = re.sub(r"^(query|question|search query)\s*:\s*", "", text, flags=re.I).strip().strip('"')
    words = text.lower().split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS or len(set(words)) < 0.6 * len(words):  # too short, long, or looping
        return ""
    return text


def mine(searcher, queries: list[PseudoQuery], progress=None, batch: int = 16) -> None:
    """Run every query through the current hybrid search: mark whether it finds its document in the top
    ROUND_TRIP_K, and keep the top other documents' passages as hard negatives with their fused scores."""
    from searchlm.search.searcher import SearchOptions

    progress = progress or (lambda phase, n, total: None)
    options = SearchOptions(k=ROUND_TRIP_K, group_by_document=True, correct=False)
    for start in range(0, len(queries), batch):
        part = queries[start : start + batch]
        for q, hits in zip(part, searcher.search_many([q.text for q in part], options)):
            own = [h for h in hits if h.doc_id == q.doc_id]
            q.found = bool(own)
            q.score = own[0].score if own else 0.0
            q.negatives = [[h.chunk_id, h.score] for h in hits if h.doc_id != q.doc_id][:NEGATIVES]
        progress("mine", min(start + batch, len(queries)), len(queries))


def held_out(doc_id: int, share: float) -> bool:
    """Whether a document's queries are held out (whole documents: no held-out query's passage is trained on);
    a fixed choice per document, so a resumed run holds out the same ones."""
    return (int(doc_id) * 2654435761) % 1000 < share * 1000


def from_json(rows: list[dict]) -> list[PseudoQuery]:
    return [PseudoQuery(**r) for r in rows]
