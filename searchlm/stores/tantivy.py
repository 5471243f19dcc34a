"""A tantivy keyword index (`--store faiss+tantivy`: FAISS vectors, tantivy BM25) that stays fast past a million chunks.

SQLite FTS5 scores every chunk that shares a word with the query before it sorts them; a SciFact question matches
about a third of the chunks, so at 1M chunks the keyword half of a hybrid search takes over a second. tantivy
(Lucene's design, in Rust) skips the chunks that cannot reach the top k (block-max WAND) and answers in
milliseconds. It is the keyword side of the store only: the vectors stay in the store's vector index (FAISS).

The tantivy index (`keywords.tantivy/` in the index folder) is derived data, like the FAISS file: SQLite stays the
source of truth, and the store's `sync` applies the same change log to both before the log is cleared, so a run killed at any
point is repaired by the next one. SQLite's FTS5 tables are still kept by their triggers: CJK bigrams and spelling
read them, and so does a search that finds the tantivy index behind SQLite (a run writing now, or a damaged or
missing index): it answers from FTS5, slower but complete, until `index` or `check --repair` rebuilds tantivy.

Scoring: tantivy's BM25 (k1 1.2, b 0.75, FTS5's too) over one field, the chunk's title twice, its heading and its
text: FTS5 scores its three columns as one document with the title's words counted twice, and BM25 summed over
separate fields ranked worse (SciFact test keyword nDCG@10 0.617 against FTS5's 0.692: a short title field's length
normalization overweights it). Words are split, lower-cased, accent-folded and Snowball-stemmed by tantivy's own
analyzer. `benchmarks/RESULTS.md` compares the two engines on SciFact, Cranfield and CISI.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from searchlm.indexing import integrity
from searchlm.errors import InputError, SearchlmError
from searchlm.indexing.manifest import Manifest
from searchlm.stores.query import cjk_query, keyword_text
from searchlm.cjk import strip_cjk
from searchlm.stores.base import ChunkFilter, KeywordIndex, weighted_fields
from searchlm.stores.fts5 import Fts5Keywords

log = logging.getLogger(__name__)

KEYWORD_DIR = "keywords.tantivy"
SCHEMA = 1  # recorded in manifest.ann["keyword"]: an index of another layout is rebuilt, never searched
ANALYZER = "searchlm_en"
WRITER_HEAP = 128_000_000
RECHECK_S = 1.0


def _tantivy():
    try:
        import tantivy
    except ImportError as exc:  # pragma: no cover - the [tantivy] extra is in [all]
        raise InputError(
            "the faiss+tantivy store needs the tantivy package (pip install 'searchlm[tantivy]'), or index with "
            "--store faiss"
        ) from exc
    return tantivy


def _schema():
    tantivy = _tantivy()
    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("id", stored=True, indexed=True, fast=True)
    sb.add_text_field("body", tokenizer_name=ANALYZER)
    return sb.build()


def _only_ids(index, ids):
    """A query matching these chunk ids only, adding nothing to the score: ANDed with a text query, it keeps the
    text's BM25 for those chunks."""
    tantivy = _tantivy()
    return tantivy.Query.const_score_query(tantivy.Query.term_set_query(index.schema, "id", [int(i) for i in ids]), 0.0)


def _register(index) -> None:
    """The analyzer is not stored with the index: every opening registers it again."""
    tantivy = _tantivy()
    analyzer = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(100))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )
    index.register_tokenizer(ANALYZER, analyzer)


class TantivyKeywords(KeywordIndex):
    """tantivy for BM25 while it is current; SQLite FTS5 otherwise. CJK bigrams stay in SQLite's chunks_cjk table
    either way."""

    name = "tantivy"

    def __init__(self, index_dir: Path, manifest, store, vectors=None):
        self.index_dir = index_dir
        self.manifest = manifest
        self.store = store
        self.fts5 = Fts5Keywords(store=store)  # what answers while tantivy cannot
        self.keyword_path = index_dir / KEYWORD_DIR
        self._looked = 0.0
        self._kw = None  # (index, searcher) when current, False when not, None before the first look
        self._kw_state: dict | None = None  # what `_record` writes to the manifest after a sync

    # -- reading ------------------------------------------------------------------------------------------
    @property
    def keyword(self) -> bool:
        """True when tantivy holds exactly what SQLite does; otherwise searches read SQLite FTS5. A searcher that
        found it behind (a run was writing) looks again, at most once a second: the run's end changes nothing a
        searcher watches (the generation moved when the chunks did), so a server would otherwise stay on FTS5."""
        if self._kw is False and time.monotonic() - self._looked > RECHECK_S:
            self._kw = None
            try:
                self.manifest = Manifest.load(self.index_dir)  # the run records tantivy's state there
            except SearchlmError:  # mid-write by another process: look again later
                pass
        if self._kw is None:
            self._looked = time.monotonic()
            try:
                self._kw = self._open_current() or False
            except InputError as exc:  # tantivy not installed here: FTS5 still answers; `index` says how to fix
                log.warning("%s; searching SQLite FTS5", exc)
                self._kw = False
                self._looked = float("inf")  # it will not be installed while this process runs: say it once
        return bool(self._kw)

    def _open(self):
        tantivy = _tantivy()
        if not (self.keyword_path / "meta.json").exists():
            return None  # not built yet (or removed): quietly, `sync` builds it
        try:
            index = tantivy.Index.open(str(self.keyword_path))
            _register(index)
            return index
        except BaseException as exc:  # damaged or foreign files (a panic, too): derived data, rebuilt from SQLite
            if not _damage(exc):
                raise
            self._damaged(f"it cannot be opened: {exc}")
            return None

    def keyword_files(self) -> list[str]:
        """tantivy's files as the manifest records them (its lock files aside: they come and go)."""
        return integrity.files_under(self.index_dir, KEYWORD_DIR, skip=lambda name: name.startswith(".tantivy-"))

    def _open_current(self):
        state = self.manifest.ann.get("keyword") or {}
        if (state.get("schema") != SCHEMA or state.get("generation") != self.store.generation
                or self.store.has_pending_vector_changes()):
            return None
        why = integrity.quick_problem(self.index_dir, self.manifest.files,
                                      integrity.under(self.manifest.files, KEYWORD_DIR + "/"))
        if why:
            self._damaged(why)
            return None
        index = self._open()
        if index is None:
            return None
        searcher = index.searcher()
        if searcher.num_docs != state.get("count"):
            return None
        return index, searcher

    def _text_query(self, index, text: str):
        words = text.split()
        if not words:
            return None
        # Each word quoted: the analyzer splits it as it split the documents, and no word is read as syntax.
        return index.parse_query(" OR ".join(f'"{w}"' for w in words), ["body"])

    def _filter_query(self, flt: ChunkFilter | None):
        """The chunks a filter keeps, as a query that adds nothing to the score; None: no filter; False: none kept."""
        if not flt:
            return None
        allowed = self.store.filtered_chunk_ids(*flt.sql())
        if len(allowed) == 0:
            return False
        return _only_ids(self._kw[0], allowed)

    def _damaged(self, why: str) -> None:
        """Say once that tantivy is damaged and search SQLite FTS5 until `check --repair` or `index` rebuilds it."""
        name = self.manifest.name
        log.warning("index '%s': the tantivy keyword index is damaged (%s); searching SQLite FTS5 (run `searchlm "
                    "check --name %s --repair`)", name, " ".join(str(why).split())[:160], name)
        self._kw = False
        self._looked = float("inf")

    def _run(self, query, limit: int) -> dict[int, float]:
        searcher = self._kw[1]
        hits = searcher.search(query, limit, count=False).hits
        if not hits:
            return {}
        ids = searcher.fast_field_values("id", [address for _, address in hits])
        return {int(i): float(score) for (score, _), i in zip(hits, ids)}

    def current(self) -> KeywordIndex:
        return self if self.keyword else self.fts5

    def searchable(self, query: str) -> bool:
        return bool(keyword_text(strip_cjk(query)) or cjk_query(query))

    def search(self, query: str, k: int, flt: ChunkFilter | None = None) -> dict[int, float]:
        """Top-k {chunk_id: BM25}, filtered before the cut; CJK bigrams from SQLite, summed."""
        words = keyword_text(strip_cjk(query))
        found = self.keyword_search(words, k, flt) if words else {}
        cjk = cjk_query(query)
        if cjk:  # the sum of both scores, as FTS5 gives it
            where, params = (flt or ChunkFilter()).sql()
            for i, s in self.store.keyword_search("", k, where, params, cjk_query=cjk):
                found[i] = found.get(i, 0.0) + s
        return found

    def scores(self, query: str, ids: list[int]) -> dict[int, float]:
        words = keyword_text(strip_cjk(query))
        found = self.keyword_scores(words, ids) if words else {}
        cjk = cjk_query(query)
        if cjk:
            for i, s in self.store.keyword_scores("", ids, cjk_query=cjk).items():
                found[i] = found.get(i, 0.0) + s
        return found

    def keyword_search(self, text: str, k: int, flt: ChunkFilter | None = None) -> dict[int, float]:
        """Top-k {chunk_id: BM25} for analysed words, filtered before the cut (from FTS5 while tantivy is not
        current or fails)."""
        if self.keyword:
            try:
                return self._keyword_search(text, k, flt)
            except BaseException as exc:  # tantivy panics (PanicException is a BaseException) on damaged segments
                if not _damage(exc):
                    raise
                self._damaged(f"{type(exc).__name__}: {exc}")
        return self.fts5.search(text, k, flt)

    def _keyword_search(self, text: str, k: int, flt: ChunkFilter | None) -> dict[int, float]:
        index = self._kw[0]
        query = self._text_query(index, text)
        restrict = self._filter_query(flt)
        if query is None or restrict is False:
            return {}
        if restrict is not None:
            query = _tantivy().Query.and_must_match(query, restrict)
        return self._run(query, k)

    def keyword_scores(self, text: str, ids: list[int]) -> dict[int, float]:
        """BM25 of particular chunks, as `keyword_search` scores them; chunks matching no query word are absent."""
        if self.keyword:
            try:
                return self._keyword_scores(text, ids)
            except BaseException as exc:
                if not _damage(exc):
                    raise
                self._damaged(f"{type(exc).__name__}: {exc}")
        return self.fts5.scores(text, ids)

    def _keyword_scores(self, text: str, ids: list[int]) -> dict[int, float]:
        index = self._kw[0]
        query = self._text_query(index, text)
        if query is None or not ids:
            return {}
        return self._run(_tantivy().Query.and_must_match(query, _only_ids(index, ids)), len(ids))

    def close(self) -> None:
        self._kw = None

    # -- writing ------------------------------------------------------------------------------------------
    def sync(self, store, manifest) -> None:
        """Bring tantivy in step with SQLite (the change log, or a full build), before the vector index clears
        the log."""
        self.manifest = manifest
        state = manifest.ann.get("keyword") or {}
        in_step = (state.get("schema") == SCHEMA and state.get("generation") is not None
                   and state.get("generation") == manifest.ann.get("generation"))
        damaged = in_step and integrity.quick_problem(self.index_dir, manifest.files,
                                                      integrity.under(manifest.files, KEYWORD_DIR + "/"))
        index = None if damaged else self._open()
        pending = store.has_pending_vector_changes()
        whole = index is not None and in_step and index.searcher().num_docs == state.get("count")
        if whole and not pending and state.get("generation") == store.generation:
            self._kw_state = state
            return
        if whole and pending:
            self._apply_keywords(index, store)
        else:
            index = self._build_keywords(store)
        index.reload()
        self._kw_state = {"schema": SCHEMA, "generation": store.generation, "count": index.searcher().num_docs}

    def _apply_keywords(self, index, store) -> None:
        """The change log, applied to tantivy and committed (idempotent: a changed chunk is removed, then added)."""
        _, changes = store.pending_vector_changes()
        writer = index.writer(heap_size=WRITER_HEAP, num_threads=1)
        for chunk_id in changes:
            writer.delete_documents_by_term("id", int(chunk_id))
        self._add(writer, store.chunk_texts(c for c, op in changes.items() if op == 1))
        writer.commit()
        writer.wait_merging_threads()

    def _build_keywords(self, store):
        """A new tantivy index of every chunk, built beside the old one and then swapped in."""
        tantivy = _tantivy()
        fresh = self.keyword_path.with_name(KEYWORD_DIR + ".new")
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir(parents=True)
        index = tantivy.Index(_schema(), path=str(fresh))
        _register(index)
        writer = index.writer(heap_size=WRITER_HEAP)
        self._add(writer, store.chunk_texts())
        writer.commit()
        writer.wait_merging_threads()
        del writer, index
        old = self.keyword_path.with_name(KEYWORD_DIR + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.keyword_path.exists():
            self.keyword_path.rename(old)
        fresh.rename(self.keyword_path)
        shutil.rmtree(old, ignore_errors=True)
        index = tantivy.Index.open(str(self.keyword_path))
        _register(index)
        return index

    def _add(self, writer, rows) -> None:
        """Chunks as (id, title, heading, text) rows, each one document: its fields weighted as FTS5 weighs them."""
        tantivy = _tantivy()
        for cid, title, heading, text in rows:
            writer.add_document(tantivy.Document(id=cid, body="\n".join(weighted_fields(title, heading, text))))

    def record(self, manifest) -> None:
        if self._kw_state is not None:
            manifest.ann["keyword"] = {"engine": "tantivy", **self._kw_state}
            integrity.record(self.index_dir, manifest.files, self.keyword_files(), prefix=KEYWORD_DIR + "/")
        self._kw = None  # the next search opens what was just committed

    # -- checking -----------------------------------------------------------------------------------------
    def verify(self) -> list[str]:
        """tantivy's problems: files of another digest, an index that does not open, does not hold what SQLite
        does, or fails a search."""
        problems: list[str] = []
        recorded = integrity.under(self.manifest.files, KEYWORD_DIR + "/")
        damaged = integrity.verify(self.index_dir, self.manifest.files, recorded)
        if damaged:
            return problems + [f"the tantivy keyword index is damaged ({damaged[0]})"]
        self._kw, self._looked = None, 0.0
        try:
            current = self.keyword
            if current:
                self._keyword_search("water", 10, None)
        except BaseException as exc:
            if not _damage(exc):
                raise
            return problems + [f"the tantivy keyword index fails a search ({type(exc).__name__})"]
        if not current:
            problems.append("the tantivy keyword index is missing, damaged, of an older layout or behind the "
                            "database (keyword search reads SQLite FTS5 meanwhile, slower on a big index)")
        return problems

    def repair(self) -> None:
        """Discard the tantivy index: the store's sync rebuilds it from the chunk texts."""
        self._kw = None
        shutil.rmtree(self.keyword_path, ignore_errors=True)
        self.manifest.ann.pop("keyword", None)


def _damage(exc: BaseException) -> bool:
    """An error of tantivy's reading (a Rust panic, an I/O or format error), not an interrupt."""
    return not isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError))
