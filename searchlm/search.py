"""Hybrid retrieval over one index: BM25 and dense candidates from the index's stores, fused; optional rerank.

BM25 comes from SQLite FTS5, or from Milvus when the index keeps its vectors there (`stores/`); dense candidates
from the vector store (FAISS or Milvus). Either way every candidate then gets both scores exactly and the lists
are fused the same way, and the fused score of a changelog, migration note or API stub is lowered by its kind's
prior (`doc_kinds.PRIOR`) so a guide of equal relevance ranks first. The query path imports no torch: queries are encoded by the index's ONNX export
(`embed.onnx`). A `Searcher` holds the loaded store, encoder and vector store, so a server keeps them warm.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from searchlm.cjk import strip_cjk
from searchlm.closing import Closing
from searchlm.doc_kinds import PRIOR, parse_kinds, split_kinds
from searchlm.errors import (
    IndexMismatchError,
    IndexNotFoundError,
    InputError,
    SearchlmError,
)
from searchlm.extract import SUPPORTED, file_kind
from searchlm.fusion import fuse_minmax, fuse_rrf
from searchlm.manifest import DB_FILE, ENCODER_DIR, FAISS_FILE, Manifest, list_indexes  # noqa: F401 (re-exported)
from searchlm.query import cjk_query, fts_query, keyword_text
from searchlm.records import Hit
from searchlm.settings import Settings
from searchlm.store import Store
from searchlm.stores.base import ChunkFilter

MODES = ("hybrid", "dense", "keyword")
FUSIONS = ("minmax", "rrf")
# Tuned with `benchmarks/eval_tune.py` and `searchlm eval` (see benchmarks/RESULTS.md): with exact scores for every
# candidate, 0.5 and 0.6 tie on SciFact train (0.7426 / 0.7416 nDCG@10) and 0.6 is better on CISI and Cranfield.
DEFAULT_DENSE_WEIGHT = 0.6
MAX_K = 1000
# A hit is weak when 0.7 x cosine + 0.3 x (share of the query's content words in the passage) is below the floor:
# the evidence `ask` weighs before it answers (answer.SENTENCE_WEIGHT), per passage instead of per sentence.
# Calibrated in benchmarks/RESULTS.md ("Weak hits").
EVIDENCE_WEIGHT = 0.7
WEAK_FLOOR = 0.45
MAX_RERANK_DEPTH = 100  # a reranker scores each candidate with a model: past this a query takes minutes


@dataclass
class SearchOptions:
    k: int = 10
    mode: str = "hybrid"
    fusion: str = "minmax"
    dense_weight: float | None = None  # weight of dense scores in fusion; None: the index's (adapt) or DEFAULT_DENSE_WEIGHT
    depth: int = 100  # candidates taken from each retriever before fusion
    path: str | None = None  # a file, folder or glob: absolute, from the current folder or the indexed one
    exclude: tuple[str, ...] = ()  # the same forms; documents matching any are left out
    types: tuple[str, ...] = ()
    since: str | None = None  # YYYY-MM-DD: documents modified on or after
    doc_kinds: tuple[str, ...] = ()  # only documents of these kinds (guide, changelog, migration, api)
    exclude_doc_kinds: tuple[str, ...] = ()  # documents of these kinds are left out
    prior: bool = True  # rank guides above changelogs, migration notes and API stubs of equal relevance
    rerank: str | None = None
    rerank_depth: int = 20
    rerank_weight: float | None = None  # the reranker's share of the blend; None: its own tuned default
    group_by_document: bool = False
    explain: bool = False
    correct: bool = True  # search a word the index has never seen as its nearest indexed word (see spelling.py)

    def __post_init__(self) -> None:
        if isinstance(self.exclude, str):
            self.exclude = (self.exclude,)
        self.exclude = tuple(self.exclude or ())
        if isinstance(self.types, str):  # "md,pdf" as a user types it
            self.types = tuple(self.types.split(","))
        self.types = tuple(t.strip() for t in self.types if t.strip())
        self.doc_kinds = split_kinds(self.doc_kinds)
        self.exclude_doc_kinds = split_kinds(self.exclude_doc_kinds)

    def validate(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"mode '{self.mode}' is not one of {', '.join(MODES)}", "use mode='hybrid'", "use --mode hybrid")
        if self.fusion not in FUSIONS:
            raise InputError(f"fusion '{self.fusion}' is not one of {', '.join(FUSIONS)}", "use fusion='minmax'",
                             "use --fusion minmax")
        if not 1 <= self.k <= MAX_K:
            raise InputError(f"k {self.k} is out of range (use a value from 1 to {MAX_K})")
        if self.rerank and not 1 <= self.rerank_depth <= MAX_RERANK_DEPTH:
            raise InputError(f"rerank depth {self.rerank_depth} is out of range (use a value from 1 to {MAX_RERANK_DEPTH})")
        for kind in self.types:
            if kind.strip() and file_kind(kind) is None:
                raise InputError(
                    f"file type '{kind.strip()}' is not one searchlm indexes "
                    f"(use file types such as {', '.join(sorted(set(SUPPORTED.values()))[:12])}, ...)"
                )
        parse_kinds(self.doc_kinds + self.exclude_doc_kinds)
        if self.dense_weight is not None and not 0.0 <= self.dense_weight <= 1.0:
            raise InputError(f"dense weight {self.dense_weight} is out of range (use a value from 0 to 1)")
        if self.rerank_weight is not None and not 0.0 <= self.rerank_weight <= 1.0:
            raise InputError(f"rerank weight {self.rerank_weight} is out of range (use a value from 0 to 1)")
        if self.rerank_weight is not None and not self.rerank:
            raise InputError(f"rerank weight {self.rerank_weight} given without a reranker",
                             "add rerank='lm', or leave rerank_weight unset", "add --rerank lm, or drop --rerank-weight")


class Searcher(Closing):
    """Search one index. Heavy parts (encoder, FAISS) load on first use and stay loaded until `close()` (or the
    end of a `with` block). `RemoteSearcher` (searchlm.client) has the same `search` for a `searchlm serve`."""

    def __init__(self, settings: Settings):
        from searchlm.homes import describe_indexes, locate

        found = locate(settings.name, settings.home)
        if found is None:
            have = describe_indexes(settings.home)
            hint = f"; your indexes: {have}" if have else ""
            raise IndexNotFoundError(
                f"index '{settings.name}' not found in {settings.home}{hint}",
                f"pick one with name= and home=, or create it with Index('{settings.name}').update(FOLDER)",
                f"use --name and --home to pick one, or run `searchlm index DIR --name {settings.name}`",
            )
        settings = settings.with_(home=found)
        self.settings = settings
        self.index_dir = settings.index_dir
        self.manifest = Manifest.load(self.index_dir)
        if settings.model and settings.model != self.manifest.model:
            raise IndexMismatchError(
                f"index '{settings.name}' was built with model '{self.manifest.model}', not '{settings.model}'",
                f"search without a model, or drop the index and index '{self.manifest.root}' again with this model",
                f"search without --model, or rebuild: `searchlm drop {settings.name}` then "
                f"`searchlm index {self.manifest.root} --name {settings.name} --model {settings.model}`",
            )
        self.store = Store(self.index_dir / DB_FILE, existing=True)
        self._encoder = None
        self._warm = False  # set by warm(): a long-lived process loads the encoder for speed per query
        self._vectors = None
        self._vectors_generation = None
        self._rerankers: dict = {}
        self._corrections: dict = {}
        self._lexicon: list = [None, None]  # [store generation, spelling.Lexicon]
        self._shown: dict[tuple, str] = {}  # display_path's answers
        self._spelling_lock = threading.Lock()
        self.on_model_load = None  # called with a reranker's name before its model loads (a CLI says so)

    def close(self) -> None:
        if self._vectors is not None:
            self._vectors.close()
        self.store.close()

    # -- loading ------------------------------------------------------------------------------------------
    @property
    def encoder(self):
        if self._encoder is None:
            self._encoder = self.load_encoder()
        return self._encoder

    def load_encoder(self):
        """The index's ONNX query encoder, loaded now (a server shares one among its searchers)."""
        from searchlm.embed.cache import encoder_problem
        from searchlm.embed.onnx import OnnxEmbedder

        why = encoder_problem(self.index_dir)
        if why is not None:
            from searchlm.errors import IndexDamagedError

            raise IndexDamagedError(
                f"index '{self.settings.name}': the query encoder is damaged ({why}); "
                f"run `searchlm check --name {self.settings.name} --repair`"
            )
        return OnnxEmbedder(self.index_dir / ENCODER_DIR, warm=self._warm)

    @property
    def vectors(self):
        """The vector store (FAISS or Milvus), reopened when the index changed since it was opened; a FAISS
        file that lags SQLite (an interrupted or running `index`) is brought up to date in memory."""
        from searchlm.stores.base import open_store

        generation = self.store.generation
        if self._vectors is not None and self._vectors_generation == generation:
            return self._vectors
        if self._vectors is not None:  # the index changed since we loaded it: its manifest may be newer too
            try:
                self.manifest = Manifest.load(self.index_dir)
            except SearchlmError:  # mid-write by another process: the one we have still describes the index
                pass
            self._vectors.close()
        self._vectors = open_store(self.index_dir, self.manifest, self.store, warm=self._warm)
        self._vectors_generation = generation
        return self._vectors

    def warm(self) -> None:
        """Load encoder and FAISS now (a server calls this at start-up), tuned for many queries."""
        if not self._warm:
            self._warm = True
            self._encoder = None  # a cold-tuned encoder loaded before warm() is reloaded warm
        self.encoder.embed_query("warm up")
        self.vectors.warm_up()

    # -- search -------------------------------------------------------------------------------------------
    def search(self, query: str, options: SearchOptions | None = None, **kwargs) -> list[Hit]:
        options = options or SearchOptions(**kwargs)
        return self._search(self._prepare(query, options), options)

    def search_many(self, queries: list[str], options: SearchOptions | None = None, **kwargs) -> list[list[Hit]]:
        """`search` for each query, in order, with the same options: the hits each would get alone, sooner, as
        their query vectors are encoded together (a batch of 16 short queries costs about half as much CPU as 16
        one at a time). The first bad query raises its error."""
        options = options or SearchOptions(**kwargs)
        results = self.search_each([(q, options) for q in queries])
        for found in results:
            if isinstance(found, SearchlmError):
                raise found
        return results

    def search_each(self, requests: list[tuple[str, SearchOptions]]) -> list[list[Hit] | SearchlmError]:
        """`search(query, options)` for each pair, their query vectors encoded in one call: the hits, or the
        library error that query alone would raise (one bad request does not fail the others). What a server
        runs for the searches that arrive together."""
        prepared: list[str | SearchlmError] = []
        for query, options in requests:
            try:
                prepared.append(self._prepare(query, options))
            except SearchlmError as exc:
                prepared.append(exc)
        texts = list(dict.fromkeys(
            q for q, (_, o) in zip(prepared, requests) if isinstance(q, str) and o.mode != "keyword"
        ))
        vectors: dict[str, np.ndarray] = {}
        if texts and len(self.vectors):
            vectors = dict(zip(texts, self.encoder.embed(texts)))
        out: list[list[Hit] | SearchlmError] = []
        for query, (_, options) in zip(prepared, requests):
            if isinstance(query, SearchlmError):
                out.append(query)
                continue
            try:
                out.append(self._search(query, options, vectors.get(query)))
            except SearchlmError as exc:
                out.append(exc)
        return out

    def _prepare(self, query: str, options: SearchOptions) -> str:
        """The query as it is searched: options checked, spaces stripped, misspellings corrected."""
        options.validate()
        query = query.strip()
        if not query:
            raise InputError("the query is empty (type some words to search for)")
        if options.correct:
            fix = self.correct(query)
            query = fix.corrected if fix else query
        return query

    def _search(self, query: str, options: SearchOptions, vector: np.ndarray | None = None) -> list[Hit]:
        flt = self._filter(options)
        where, params = flt.sql()
        depth = max(options.depth, options.k, options.rerank_depth if options.rerank else 0)
        if options.group_by_document:
            depth = max(depth, options.k * 5)

        keyword: dict[int, float] = {}
        dense: dict[int, float] = {}
        in_store = self.vectors.keyword  # BM25 inside the vector store (Milvus, tantivy) rather than SQLite FTS5
        sqlite_cjk = not in_store or self.vectors.cjk_in_sqlite
        fts = keyword_text(strip_cjk(query) if sqlite_cjk else query) if in_store else fts_query(query)
        cjk = cjk_query(query) if sqlite_cjk else ""  # CJK bigrams live in SQLite's second FTS5 table
        if options.mode in ("hybrid", "keyword") and (fts or cjk):
            if in_store:
                found = self.vectors.keyword_search(fts, depth, flt) if fts else {}
                if cjk:  # the sum of both scores, as SQLite's keyword_search gives it
                    for i, s in self.store.keyword_search("", depth, where, params, cjk_query=cjk):
                        found[i] = found.get(i, 0.0) + s
            else:
                found = dict(self.store.keyword_search(fts, depth, where, params, cjk_query=cjk))
            keyword = {i: s for i, s in found.items() if math.isfinite(s)}  # a damaged page must not rank first
        if options.mode in ("hybrid", "dense"):
            q, dense = self._dense(query, depth, flt, vector)
            if options.mode == "hybrid":
                self._complete(fts, q, keyword, dense, cjk, in_store)

        weight = options.dense_weight
        if weight is None:  # the weight tuned with an adapted encoder, else the default
            weight = self.manifest.dense_weight
            weight = DEFAULT_DENSE_WEIGHT if weight is None else weight

        def fuse(kw: dict[int, float], dn: dict[int, float]) -> dict[int, float]:
            if options.mode == "keyword":
                return kw
            if options.mode == "dense":
                return dn
            if options.fusion == "rrf":
                return fuse_rrf(kw, dn, weight)
            return fuse_minmax(kw, dn, weight)

        fused = fuse(keyword, dense)
        weights: dict[int, float] = {}
        if options.prior:
            weights = {i: PRIOR[k] for i, k in self.store.doc_kinds_of_chunks(fused).items() if PRIOR.get(k, 1.0) != 1.0}
            fused = apply_prior(fused, weights)
        ranked = sorted(fused, key=fused.get, reverse=True)
        if options.group_by_document:
            ranked, fused = self._rank_documents(ranked, fused, keyword, dense, fuse, weights)
        keep = ranked[: max(options.k, options.rerank_depth if options.rerank else 0)]
        rows = self.store.chunks_by_id(keep)
        hits = [self._hit(rows[i], fused[i]) for i in keep if i in rows and math.isfinite(fused[i])]  # never NaN
        _absolute_scores(query, hits, keyword, dense, options.mode)
        if options.explain:
            _explain(hits, keyword, dense, fused, weights)
        if options.rerank:
            hits = self.rerank(query, hits, options.rerank, options.rerank_depth, options.rerank_weight)
        hits = hits[: options.k]
        for rank, hit in enumerate(hits, start=1):
            hit.rank = rank
        return hits

    def correct(self, query: str):
        """The `spelling.Correction` `search` applies to `query` (None when every word is in the index)."""
        from searchlm.spelling import Lexicon, correct_query

        generation = self.store.generation
        key = (query.strip(), generation)
        with self._spelling_lock:
            if key not in self._corrections:
                if len(self._corrections) > 256:
                    self._corrections.clear()
                if self._lexicon[0] != generation:  # what it read of an older index no longer holds
                    self._lexicon[:] = [generation, Lexicon()]
                self._corrections[key] = correct_query(self.store.conn, query.strip(), self._lexicon[1])
            return self._corrections[key]

    def _dense(self, query: str, depth: int, flt: ChunkFilter,
               vector: np.ndarray | None = None) -> tuple[np.ndarray | None, dict[int, float]]:
        vectors = self.vectors
        if len(vectors) == 0:
            return None, {}
        q = self.encoder.embed_query(query) if vector is None else vector
        return q, {i: s for i, s in vectors.search(q, depth, flt).items() if math.isfinite(s)}

    def _complete(
        self, fts: str, q: np.ndarray | None, keyword: dict[int, float], dense: dict[int, float], cjk: str = "",
        in_store: bool = False,
    ) -> None:
        """Give every candidate both scores, exactly: BM25 of the dense-only candidates (0 when they share no
        term with the query) and the cosine of the keyword-only ones. Fusion then compares like with like instead
        of treating "below the other list's cut" as "scored 0", and the ranking no longer depends much on the
        candidate depth (SciFact train: 0.7375 -> 0.7416 nDCG@10 at depth 500; depth 100 now loses nothing).
        Filters hold: both lists were filtered before."""
        only_dense = [i for i in dense if i not in keyword]
        if only_dense and (fts or cjk):
            if in_store:  # the engine that scored the keyword list, even if another thread found tantivy since
                found = self.vectors.keyword_scores(fts, only_dense) if fts else {}
                if cjk:
                    for i, s in self.store.keyword_scores("", only_dense, cjk_query=cjk).items():
                        found[i] = found.get(i, 0.0) + s
            else:
                found = self.store.keyword_scores(fts, only_dense, cjk_query=cjk)
            found = {i: s for i, s in found.items() if math.isfinite(s)}  # a damaged page scores as unmatched
            keyword.update({i: found.get(i, 0.0) for i in only_dense})
        only_keyword = [i for i in keyword if i not in dense]
        if only_keyword and q is not None:
            stored = self.store.vectors_by_id(only_keyword)
            q = np.asarray(q, dtype=np.float32).ravel()
            found_dense = {i: float(v @ q) for i, v in stored.items() if v.shape == q.shape}
            dense.update({i: s for i, s in found_dense.items() if math.isfinite(s)})  # a damaged vector is no score

    def _rank_documents(self, ranked: list[int], fused: dict, keyword: dict, dense: dict, fuse, weights: dict):
        """One hit per document: each document scored by fusing its best keyword and best dense chunk scores
        (slightly better than its best fused chunk on SciFact, Cranfield and CISI), shown by its best fused chunk;
        its kind's prior (`weights`, by chunk) applies to that score as it did to the chunks'."""
        rows = self.store.chunks_by_id(ranked)
        doc_of = {i: rows[i].doc_id for i in ranked if i in rows}
        best_chunk: dict[int, int] = {}
        for i in ranked:  # best fused chunk first
            if i in doc_of:
                best_chunk.setdefault(doc_of[i], i)
        doc_scores = fuse(_document_max(keyword, doc_of), _document_max(dense, doc_of))
        doc_scores = apply_prior(doc_scores, {doc_of[i]: w for i, w in weights.items() if i in doc_of})
        position = {i: n for n, i in enumerate(ranked)}
        docs = sorted(best_chunk, key=lambda d: (-doc_scores.get(d, 0.0), position[best_chunk[d]]))
        out = [best_chunk[d] for d in docs]
        return out, {best_chunk[d]: doc_scores.get(d, 0.0) for d in docs}

    def rerank(self, query: str, hits: list[Hit], name: str, depth: int, weight: float | None = None) -> list[Hit]:
        from searchlm.rerank import lazy_reranker, rerank_hits

        if name not in self._rerankers:  # the model loads on the first candidate that is not in the score cache
            self._rerankers[name] = lazy_reranker(name, self.settings, on_load=self.on_model_load)
        return rerank_hits(self._rerankers[name], query, hits, depth, self.store, weight)

    # -- helpers ------------------------------------------------------------------------------------------
    def _filter(self, options: SearchOptions) -> ChunkFilter:
        """The filters as each store applies them: paths as users type them (`searchlm.filters`), kinds, a date."""
        from searchlm.filters import build_filters, since_ns

        paths = build_filters(options.path, options.exclude, (), None, self.manifest.root,
                              options.doc_kinds, options.exclude_doc_kinds)
        kinds = tuple(file_kind(t) for t in options.types if t.strip())
        return ChunkFilter(paths=tuple(paths), kinds=kinds, since_ns=since_ns(options.since) if options.since else None)

    def why_empty(self, query: str, options: SearchOptions) -> str:
        """Why a filtered search found nothing: each filter and how many of the unfiltered hits it removed."""
        from dataclasses import replace

        from searchlm.filters import build_filters, why_empty

        filters = build_filters(options.path, options.exclude, options.types, options.since, self.manifest.root,
                                options.doc_kinds, options.exclude_doc_kinds)
        if not filters:
            return ""
        plain = replace(options, path=None, exclude=(), types=(), since=None, doc_kinds=(), exclude_doc_kinds=(),
                        rerank=None, explain=False)
        return why_empty(self.store, filters, [h.doc_id for h in self.search(query, plain)])

    def display_path(self, rel: str) -> str:
        key = (os.getcwd(), self.manifest.root, rel)
        shown = self._shown.get(key)
        if shown is None:  # remembered: a server shows the same paths in search after search
            full = Path(self.manifest.root) / rel
            try:
                shown = os.path.relpath(full) if full.is_relative_to(Path(key[0])) else str(full)
            except ValueError:
                shown = str(full)
            if len(self._shown) > 10_000:
                self._shown.clear()
            self._shown[key] = shown
        return shown

    def _hit(self, row, score: float) -> Hit:
        return Hit.of(row, path=self.display_path(row.path), score=round(float(score), 6))


def apply_prior(scores: dict[int, float], weights: dict[int, float]) -> dict[int, float]:
    """Scores lowered by their weight in `weights` (a kind's `doc_kinds.PRIOR`; absent: 1): a positive score is
    multiplied by it, a negative one (a cosine in dense mode) moved down by the same share of its size."""
    if not weights:
        return scores
    out = dict(scores)
    for i, w in weights.items():
        if i in out:
            out[i] = out[i] - (1.0 - w) * abs(out[i])
    return out


def _document_max(scores: dict[int, float], doc_of: dict[int, int]) -> dict[int, float]:
    out: dict[int, float] = {}
    for i, s in scores.items():
        d = doc_of.get(i)
        if d is not None and (d not in out or s > out[d]):
            out[d] = s
    return out


def _absolute_scores(query: str, hits: list[Hit], keyword: dict, dense: dict, mode: str) -> None:
    """Give each hit its cosine and BM25 (the same scale in every query) and mark the weak ones: a hit whose
    evidence, as `ask` weighs it before answering (cosine and the share of the query's content words the passage
    holds), falls below WEAK_FLOOR. Without a cosine (keyword mode) no hit is marked."""
    from searchlm.text import content_words, word_set

    wanted = set(content_words(query))
    for hit in hits:
        if hit.chunk_id in dense:
            hit.cosine = round(dense[hit.chunk_id], 4)
        if mode != "dense":
            hit.bm25 = round(keyword.get(hit.chunk_id, 0.0), 4)
        if hit.cosine is not None:
            have = word_set(f"{hit.title} {hit.heading} {hit.text}")
            coverage = sum(w in have for w in wanted) / len(wanted) if wanted else 0.0
            hit.weak = EVIDENCE_WEIGHT * hit.cosine + (1 - EVIDENCE_WEIGHT) * coverage < WEAK_FLOOR


def _explain(hits: list[Hit], keyword: dict, dense: dict, fused: dict, weights: dict) -> None:
    # A chunk the keyword side never matched has BM25 0 (scored only so fusion compares like with like): its score
    # is that honest 0, but it has no keyword rank ("not matched").
    matched = {i: s for i, s in keyword.items() if s > 0}
    k_rank = {i: r for r, i in enumerate(sorted(matched, key=matched.get, reverse=True), start=1)}
    d_rank = {i: r for r, i in enumerate(sorted(dense, key=dense.get, reverse=True), start=1)}
    for hit in hits:
        i = hit.chunk_id
        hit.explain = {
            "keyword_rank": k_rank.get(i), "keyword_score": round(keyword[i], 4) if i in keyword else None,
            "dense_rank": d_rank.get(i), "dense_score": round(dense[i], 4) if i in dense else None,
            "fused_score": round(fused.get(i, 0.0), 6),
        }
        if i in weights:  # the kind's prior, already in fused_score
            hit.explain["prior"] = weights[i]

