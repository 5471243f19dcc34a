"""Hybrid retrieval over one index: BM25 and dense candidates from the index's stores, fused; optional rerank.

BM25 candidates come from the store's keyword index and dense candidates from its vector index (`stores/`, whatever
their backends). Every candidate then gets both scores exactly and the lists are fused the same way, and the fused score of a changelog, migration note or API stub is lowered by its kind's
prior (`doc_kinds.PRIOR`) so a guide of equal relevance ranks first. The query path imports no torch: queries are encoded by the index's ONNX export
(`embed.onnx`). A `Searcher` holds the loaded database, encoder and store, so a server keeps them warm; the
searchers of a server's pool share one `SearchResources`. A search returns a `SearchResult` (records.py), and
`SearchOptions.from_params` is how every surface turns its parameters into options.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from searchlm.closing import Closing
from searchlm.indexing.doc_kinds import PRIOR, parse_kinds, split_kinds
from searchlm.errors import (
    IndexMismatchError,
    IndexNotFoundError,
    InputError,
    SearchlmError,
)
from searchlm.extract import SUPPORTED, file_kind
from searchlm.search.fusion import fuse_minmax, fuse_rrf
from searchlm.indexing.manifest import DB_FILE, ENCODER_DIR, Manifest, list_indexes  # noqa: F401 (re-exported)
from searchlm.records import Hit, IndexRef, SearchResult
from searchlm.settings import Settings
from searchlm.indexing.database import Database
from searchlm.stores.base import ChunkFilter

log = logging.getLogger(__name__)

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


    # -- loose parameters -----------------------------------------------------------------------------------
    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "SearchOptions":
        """Options from loose parameters, as every surface receives them: a query string's values (strings, a
        list for a repeated name), a JSON body or MCP arguments (numbers, booleans, lists), CLI options. Names
        are the fields' or the short forms the surfaces use (`type`/`types`, `kind`/`kinds`,
        `exclude_kind`/`exclude_kinds`); None or "" means "not given". Lists of types and kinds may also be
        comma-separated. The one mapping from parameters to options: the CLI, the HTTP API, `RemoteSearcher` and
        MCP all use it. An unknown name or a value of the wrong type is an InputError."""
        values: dict[str, Any] = {}
        for name, value in params.items():
            target = PARAM_NAMES.get(name)
            if target is None:
                raise InputError(f"unknown search parameter '{str(name)[:40]}' (use {', '.join(sorted(PARAM_NAMES))})")
            if value is None or value == "" or (isinstance(value, (list, tuple)) and not value):
                continue
            values[target] = _param_value(name, target, value)
        return cls(**values)

    def to_params(self) -> dict[str, Any]:
        """The parameters `from_params` reads back into these options: the query string `RemoteSearcher` sends.
        Only what differs from the defaults."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value == f.default:
                continue
            name = _SENT_NAMES.get(f.name, f.name)
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif f.name == "types":
                value = ",".join(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[name] = value
        return out


# Parameter names as the surfaces give them -> SearchOptions field.
PARAM_NAMES = {f: f for f in SearchOptions.__dataclass_fields__} | {
    "type": "types", "kind": "doc_kinds", "kinds": "doc_kinds", "exclude_kind": "exclude_doc_kinds",
    "exclude_kinds": "exclude_doc_kinds",
}
_SENT_NAMES = {"types": "type", "doc_kinds": "kind", "exclude_doc_kinds": "exclude_kind"}  # as the HTTP API names them
_LIST_FIELDS = ("exclude", "types", "doc_kinds", "exclude_doc_kinds")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _param_value(name: str, target: str, value: Any) -> Any:
    """One loose parameter as its field's type: lists for the list fields (a query string repeats a name), else
    one value (the last, when a name was repeated)."""
    if target in _LIST_FIELDS:
        items = [value] if isinstance(value, str) else list(value)
        if not all(isinstance(v, str) for v in items):
            raise InputError(f"{name} {value!r} is not a list of words (use e.g. {name}=md)")
        if target == "exclude":
            return tuple(items)
        return tuple(part for v in items for part in v.split(","))  # kinds are split again, and normalised, by split_kinds
    if isinstance(value, (list, tuple)):
        value = value[-1]
    kind = SearchOptions.__dataclass_fields__[target].type
    if "bool" in kind:
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in _TRUE:
            return True
        if str(value).strip().lower() in _FALSE:
            return False
        raise InputError(f"{name} '{str(value)[:40]}' is not true or false (use {name}=true or {name}=false)")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().lstrip("-").isdigit():
            raise InputError(f"{name} '{str(value)[:40]}' is not a whole number (use e.g. {name}=10)")
        return int(value)
    if "float" in kind:
        try:
            number = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or not math.isfinite(number):
            raise InputError(f"{name} '{str(value)[:40]}' is not a number (use e.g. {name}=0.5)")
        return number
    if not isinstance(value, str):
        raise InputError(f"{name} {str(value)[:40]!r} is not text (give it as a string)")
    return value


@dataclass
class SearchResources:
    """The loaded parts that searchers of one index can share: the ONNX query encoder, the store, the
    rerankers and the spelling corrections (each thread-safe, or guarded here). A `Searcher` makes its own; a
    server hands one to each searcher of its pool (`Searcher(settings, resources=...)`), so each has its own
    SQLite connection and all use one copy of each model. `warm`: tuned for many queries (a server)."""

    warm: bool = False
    encoder: Any = None
    indexes: Any = None  # the store's vector and keyword indexes, and the index generation they were opened at
    indexes_generation: Any = None
    rerankers: dict = field(default_factory=dict)
    corrections: dict = field(default_factory=dict)  # (query, generation) -> spelling.Correction
    lexicon: list = field(default_factory=lambda: [None, None])  # [store generation, spelling.Lexicon]
    spelling_lock: Any = field(default_factory=threading.Lock)
    load_lock: Any = field(default_factory=threading.RLock)  # one thread loads a model while the others wait

    def close(self) -> None:
        if self.indexes is not None:
            self.indexes.close()
            self.indexes = None


class Searcher(Closing):
    """Search one index. Heavy parts (encoder, vector index) load on first use and stay loaded until `close()` (or the
    end of a `with` block). `RemoteSearcher` (searchlm.client) has the same `search` for a `searchlm serve`."""

    def __init__(self, settings: Settings, resources: SearchResources | None = None):
        from searchlm.indexing.homes import describe_indexes, locate

        found = locate(settings.name, settings.home)
        # No index folder here, and a store server named: a search replica, reading the index from the server
        self.replica = found is None and "://" in (settings.store or "")
        if found is None and not self.replica:
            have = describe_indexes(settings.home)
            hint = f"; your indexes: {have}" if have else ""
            raise IndexNotFoundError(
                f"index '{settings.name}' not found in {settings.home}{hint}",
                f"pick one with name= and home=, or create it with Index('{settings.name}').update(FOLDER)",
                f"use --name and --home to pick one, or run `searchlm index DIR --name {settings.name}`",
            )
        settings = settings.with_(home=found or settings.home)
        self.settings = settings
        self.index_dir = settings.index_dir
        if self.replica:
            from searchlm.stores.replica import open_replica

            self.manifest, self.store = open_replica(settings.name, settings.store)
        else:
            self.manifest = Manifest.load(self.index_dir)
        if settings.model and settings.model != self.manifest.model:
            raise IndexMismatchError(
                f"index '{settings.name}' was built with model '{self.manifest.model}', not '{settings.model}'",
                f"search without a model, or drop the index and index '{self.manifest.root}' again with this model",
                f"search without --model, or rebuild: `searchlm drop {settings.name}` then "
                f"`searchlm index {self.manifest.root} --name {settings.name} --model {settings.model}`",
            )
        if not self.replica:
            self.store = Database(self.index_dir / DB_FILE, existing=True)
        # Given: shared with other searchers of the index, which close them (a server's pool); else our own.
        self._owns_resources = resources is None
        self.resources = resources if resources is not None else SearchResources()
        self._encoder_warned = False  # a damaged encoder is said once, then searches are keyword-only
        self.on_model_load = None  # called with a reranker's name before its model loads (a CLI says so)

    def close(self) -> None:
        if self._owns_resources:
            self.resources.close()
        self.store.close()

    @property
    def answered_by(self) -> IndexRef:
        """This index: its name, home (a replica's: the store server it reads the index from) and indexed folder
        (a result says which index answered)."""
        home = self.settings.store if self.replica else str(self.settings.home.resolve())
        return IndexRef(self.settings.name, home, self.manifest.root)

    # -- loading ------------------------------------------------------------------------------------------
    @property
    def encoder(self):
        shared = self.resources
        if shared.encoder is None:
            with shared.load_lock:
                if shared.encoder is None:
                    shared.encoder = self.load_encoder()
        return shared.encoder

    def load_encoder(self):
        """The index's ONNX query encoder, loaded now (a server shares one among its searchers)."""
        from searchlm.embed.cache import encoder_problem
        from searchlm.embed.onnx import OnnxEmbedder

        if self.replica:  # no index folder: the shared export of the index's model
            from searchlm.embed.cache import model_encoder

            return OnnxEmbedder(model_encoder(self.manifest.model), warm=self.resources.warm)
        why = encoder_problem(self.index_dir, recorded=self.manifest.files)
        if why is not None:
            from searchlm.errors import IndexDamagedError

            raise IndexDamagedError(
                f"index '{self.settings.name}': the query encoder is damaged ({why}); "
                f"run `searchlm check --name {self.settings.name} --repair`"
            )
        return OnnxEmbedder(self.index_dir / ENCODER_DIR, warm=self.resources.warm)

    @property
    def vectors(self):
        """The store's vector index (`stores.base.VectorIndex`)."""
        return self.indexes.vectors

    @property
    def keywords(self):
        """The store's keyword index (`stores.base.KeywordIndex`)."""
        return self.indexes.keywords

    @property
    def indexes(self):
        """The store's vector and keyword indexes, reopened when the index changed since they were opened; a
        vector file that lags SQLite (an interrupted or running `index`) is brought up to date in memory."""
        generation = self.store.generation
        shared = self.resources
        found = shared.indexes
        if found is not None and shared.indexes_generation == generation:
            return found
        with shared.load_lock:
            if shared.indexes is not None and shared.indexes_generation == generation:
                return shared.indexes  # another searcher of the index opened them meanwhile
            if shared.indexes is not None:  # the index changed since we loaded it: its manifest may be newer too
                try:
                    self.manifest = Manifest.load(self.index_dir)
                except SearchlmError:  # mid-write by another process: the one we have still describes the index
                    pass
                shared.indexes.close()
                shared.indexes = None
            shared.indexes = self._open_indexes()
            shared.indexes_generation = generation
            return shared.indexes

    def _open_indexes(self):
        """The index's store; when it cannot be opened or a file of it is not the one recorded, one line says so
        and SQLite's own copies are searched instead (its stored vectors, exactly, and its keyword index)."""
        from searchlm.stores.base import open_store
        from searchlm.stores.fallback import sqlite_store

        from searchlm.errors import IndexBusyError, IndexDamagedError

        fix = f"run `searchlm check --name {self.settings.name} --repair`"
        try:
            vectors = open_store(self.index_dir, self.manifest, self.store, warm=self.resources.warm)
        except IndexBusyError as exc:  # a store folder another process has open: nothing to repair
            why, fix = str(exc).split("; ")[0], str(exc).split("; ")[-1]
        except IndexDamagedError as exc:
            why = str(exc).split("; run ")[0]
        except SearchlmError:  # a refusal (another model's collection, a server down): its own one line
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged store fails in its own library, in any way
            why = str(exc) or type(exc).__name__
        else:
            try:
                why = vectors.quick_problem()
            except Exception as exc:  # noqa: BLE001 - a store that fails its own check is as damaged
                why = f"{type(exc).__name__}: {exc}"
            if not why:
                return vectors
            vectors.close()
        name = self.settings.name
        why = " ".join(why.split())[:200]
        if why.startswith(f"index '{name}': "):
            why = why[len(f"index '{name}': "):]
        log.warning("index '%s': %s; searching the copy in SQLite (%s)", name, why, fix)
        return sqlite_store(self.index_dir, self.manifest, self.store)

    def warm(self) -> None:
        """Load the encoder and the vector index now (a server calls this at start-up), tuned for many queries."""
        shared = self.resources
        if not shared.warm:
            with shared.load_lock:
                shared.warm = True
                shared.encoder = None  # a cold-tuned encoder loaded before warm() is reloaded warm
        self.encoder.embed_query("warm up")
        self.vectors.warm_up()

    # -- search -------------------------------------------------------------------------------------------
    def search(self, query: str, options: SearchOptions | None = None, **kwargs) -> SearchResult:
        """The `SearchResult` of `query`: its hits, the correction searched instead of a misspelled query, why
        the filters left nothing when they did, this index, and timings. Options as a `SearchOptions` or as
        keyword arguments of the same names."""
        options = options or SearchOptions(**kwargs)
        started = time.perf_counter()
        searched, corrected = self._prepare(query, options)
        prepared = time.perf_counter()
        return self._result(query, searched, corrected, options, self._search(searched, options), started, prepared)

    def search_many(self, queries: list[str], options: SearchOptions | None = None, **kwargs) -> list[SearchResult]:
        """`search` for each query, in order, with the same options: the results each would get alone, sooner,
        as their query vectors are encoded together (a batch of 16 short queries costs about half as much CPU as
        16 one at a time). The first bad query raises its error."""
        options = options or SearchOptions(**kwargs)
        results = self.search_each([(q, options) for q in queries])
        for found in results:
            if isinstance(found, SearchlmError):
                raise found
        return results

    def search_each(self, requests: list[tuple[str, SearchOptions]]) -> list[SearchResult | SearchlmError]:
        """`search(query, options)` for each pair, their query vectors encoded in one call: the result, or the
        library error that query alone would raise (one bad request does not fail the others). What a server
        runs for the searches that arrive together."""
        started = time.perf_counter()
        prepared: list[tuple[str, str | None] | SearchlmError] = []
        for query, options in requests:
            try:
                prepared.append(self._prepare(query, options))
            except SearchlmError as exc:
                prepared.append(exc)
        texts = list(dict.fromkeys(
            q[0] for q, (_, o) in zip(prepared, requests) if isinstance(q, tuple) and o.mode != "keyword"
        ))
        vectors: dict[str, np.ndarray] = {}
        if texts and len(self.vectors) and self._encoder_usable():
            vectors = dict(zip(texts, self.encoder.embed(texts)))
        encoded = time.perf_counter()  # the batch's shared part: each result's "prepare"
        out: list[SearchResult | SearchlmError] = []
        for ready, (query, options) in zip(prepared, requests):
            if isinstance(ready, SearchlmError):
                out.append(ready)
                continue
            searched, corrected = ready
            try:
                hits = self._search(searched, options, vectors.get(searched))
                out.append(self._result(query, searched, corrected, options, hits, started, encoded))
            except SearchlmError as exc:
                out.append(exc)
            started = encoded = time.perf_counter()
        return out

    def _prepare(self, query: str, options: SearchOptions) -> tuple[str, str | None]:
        """The query as it is searched (options checked, spaces stripped, misspellings corrected), and the
        correction when there was one."""
        options.validate()
        query = query.strip()
        if not query:
            raise InputError("the query is empty (type some words to search for)")
        if options.correct:
            fix = self.correct(query)
            if fix:
                return fix.corrected, fix.corrected
        return query, None

    def _result(self, query: str, searched: str, corrected: str | None, options: SearchOptions, hits: list[Hit],
                started: float, prepared: float) -> SearchResult:
        """The result of a search that found `hits`: when filters left none, why (each filter and how many of the
        unfiltered hits it removed), from the same search of the same words without them."""
        searched_at = time.perf_counter()
        timings = {"prepare": prepared - started, "search": searched_at - prepared}
        filtered = None
        if not hits:
            filtered = self._why_empty(searched, options) or None
            timings["filters"] = time.perf_counter() - searched_at
        return SearchResult(query=query, hits=hits, corrected=corrected, filtered=filtered,
                            answered_by=self.answered_by, timings=timings)

    def _search(self, query: str, options: SearchOptions, vector: np.ndarray | None = None) -> list[Hit]:
        flt = self._filter(options)
        depth = max(options.depth, options.k, options.rerank_depth if options.rerank else 0)
        if options.group_by_document:
            depth = max(depth, options.k * 5)

        keyword: dict[int, float] = {}
        dense: dict[int, float] = {}
        # The engine that answers now scores both the keyword list and the dense-only candidates, even if
        # another thread finds a better one meanwhile.
        keywords = self.keywords.current()
        searchable = keywords.searchable(query)
        if options.mode in ("hybrid", "keyword") and searchable:
            found = keywords.search(query, depth, flt)
            keyword = {i: s for i, s in found.items() if math.isfinite(s)}  # a damaged page must not rank first
        if options.mode in ("hybrid", "dense"):
            q, dense = self._dense(query, depth, flt, vector, hybrid=options.mode == "hybrid")
            if options.mode == "hybrid":
                self._complete(query if searchable else "", q, keyword, dense, keywords)

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
        from searchlm.search.spelling import Lexicon, correct_query

        shared = self.resources
        with shared.spelling_lock:
            # A replica has no index file: it corrects from a copy of the texts on the store server, kept current.
            conn, generation = self.store.search_copy() if self.replica else (self.store.conn, self.store.generation)
            if conn is None:
                return None
            key = (query.strip(), generation)
            if key not in shared.corrections:
                if len(shared.corrections) > 256:
                    shared.corrections.clear()
                if shared.lexicon[0] != generation:  # what it read of an older index no longer holds
                    shared.lexicon[:] = [generation, Lexicon()]
                shared.corrections[key] = correct_query(conn, query.strip(), shared.lexicon[1])
            return shared.corrections[key]

    def _encoder_usable(self, hybrid: bool = True) -> bool:
        """Whether the query encoder loads. A damaged one is an IndexDamagedError in dense mode; in hybrid mode
        one line says so and the search is keyword-only (never silently)."""
        from searchlm.errors import IndexDamagedError

        if self.resources.encoder is not None:
            return True
        try:
            self.encoder  # noqa: B018 - loads it into the shared resources
            return True
        except IndexDamagedError as exc:
            if not hybrid:
                raise
            if not self._encoder_warned:
                self._encoder_warned = True
                log.warning("%s; searching keywords only meanwhile", exc)
            return False

    def _dense(self, query: str, depth: int, flt: ChunkFilter,
               vector: np.ndarray | None = None, hybrid: bool = True) -> tuple[np.ndarray | None, dict[int, float]]:
        vectors = self.vectors
        if len(vectors) == 0:
            return None, {}
        if vector is None and not self._encoder_usable(hybrid):
            return None, {}
        q = self.encoder.embed_query(query) if vector is None else vector
        return q, {i: s for i, s in vectors.search(q, depth, flt).items() if math.isfinite(s)}

    def _complete(
        self, query: str, q: np.ndarray | None, keyword: dict[int, float], dense: dict[int, float], keywords,
    ) -> None:
        """Give every candidate both scores, exactly: BM25 of the dense-only candidates (0 when they share no
        term with the query) and the cosine of the keyword-only ones. Fusion then compares like with like instead
        of treating "below the other list's cut" as "scored 0", and the ranking no longer depends much on the
        candidate depth (SciFact train: 0.7375 -> 0.7416 nDCG@10 at depth 500; depth 100 now loses nothing).
        Filters hold: both lists were filtered before."""
        only_dense = [i for i in dense if i not in keyword]
        if only_dense and query:  # a query with words the keyword index searches
            found = keywords.scores(query, only_dense)
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

    def document(self, doc_id: int, chunk_id: int | None = None):
        """One stored document (`DocumentView`: its text rebuilt from its passages), passage `chunk_id` marked."""
        from searchlm.search.documents import document_view

        return document_view(self, doc_id, chunk_id)

    def rerank(self, query: str, hits: list[Hit], name: str, depth: int, weight: float | None = None) -> list[Hit]:
        from searchlm.rerank import lazy_reranker, rerank_hits

        rerankers = self.resources.rerankers
        if name not in rerankers:  # the model loads on the first candidate that is not in the score cache
            with self.resources.load_lock:
                if name not in rerankers:
                    rerankers[name] = lazy_reranker(name, self.settings, on_load=self.on_model_load)
        return rerank_hits(rerankers[name], query, hits, depth, self.store, weight)

    # -- helpers ------------------------------------------------------------------------------------------
    def _filter(self, options: SearchOptions) -> ChunkFilter:
        """The filters as each store applies them: paths as users type them (`searchlm.search.filters`), kinds, a date."""
        from searchlm.search.filters import build_filters, since_ns

        paths = build_filters(options.path, options.exclude, (), None, self.manifest.root,
                              options.doc_kinds, options.exclude_doc_kinds)
        kinds = tuple(file_kind(t) for t in options.types if t.strip())
        return ChunkFilter(paths=tuple(paths), kinds=kinds, since_ns=since_ns(options.since) if options.since else None)

    def _why_empty(self, searched: str, options: SearchOptions) -> str:
        """Why a filtered search of `searched` (the query as searched) found nothing: each filter and how many
        of the unfiltered hits it removed; "" without filters."""
        from searchlm.search.filters import build_filters, why_empty

        filters = build_filters(options.path, options.exclude, options.types, options.since, self.manifest.root,
                                options.doc_kinds, options.exclude_doc_kinds)
        if not filters:
            return ""
        plain = replace(options, path=None, exclude=(), types=(), since=None, doc_kinds=(), exclude_doc_kinds=(),
                        rerank=None, explain=False)
        return why_empty(self.store, filters, [h.doc_id for h in self._search(searched, plain)])

    def _hit(self, row, score: float) -> Hit:
        return Hit.of(row, folder=self.manifest.root, score=round(float(score), 6))


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

