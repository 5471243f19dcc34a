"""`searchlm eval`: measure ranking quality on a BEIR-format collection with the same search path users get.

The corpus is written out as one Markdown file per document (title in front matter, so it is the document's
title and nothing else) and indexed by the ordinary indexer into an index of its own, `eval-<dataset>` under the
index home. A fingerprint of corpus, model and chunker in that folder lets later runs reuse it untouched; when it
differs, only changed files are rewritten and the incremental indexer re-embeds only what changed.

Search results are chunks, but relevance is judged per document, so eval ranks documents (each scored by its
best chunk, as `--group-by-document` does). Metrics come from `ir-measures` (trec_eval semantics, linear gains);
a judged query that returns nothing scores 0 rather than being dropped, as `trec_eval -c` would count it.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote, unquote

from searchlm.errors import InputError
from searchlm.fileio import write_json_atomic
from searchlm.search.searcher import SearchOptions
from searchlm.settings import DEFAULT_MODEL, Settings
from searchlm.stores import DEFAULT_STORE

EVAL_DEPTH = 100  # documents ranked per query: enough for Recall@100
FINGERPRINT_FILE = "eval.json"
CORPUS_DIR = "corpus"
DOC_SUFFIX = ".md"
FORMAT_VERSION = 2  # bump when the way documents are written out or read changes (2: title-only documents indexed)

Progress = Callable[[str, int, int], None]


@dataclass
class BeirDataset:
    name: str
    corpus: dict[str, tuple[str, str]]  # doc id -> (title, text)
    queries: dict[str, str]  # only the queries judged in the split
    qrels: dict[str, dict[str, int]]  # query id -> doc id -> graded relevance
    corpus_hash: str


@dataclass
class EvalReport:
    dataset: str
    split: str
    queries: int
    ndcg_at_10: float
    recall_at_100: float
    mrr_at_10: float
    latency_ms_p50: float
    latency_ms_p95: float
    index: str = ""
    options: dict = field(default_factory=dict)
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    documents: int = 0  # corpus documents in the dataset
    indexed: int = 0  # of them, how many the index holds (a document with no text at all cannot be found)

    def to_json(self) -> dict:
        return {
            "documents": self.documents,
            "indexed": self.indexed,
            "ndcg@10": round(self.ndcg_at_10, 4),
            "recall@100": round(self.recall_at_100, 4),
            "mrr@10": round(self.mrr_at_10, 4),
            "queries": self.queries,
            "latency_ms_p50": round(self.latency_ms_p50, 1),
            "latency_ms_p95": round(self.latency_ms_p95, 1),
            "dataset": self.dataset,
            "split": self.split,
            "index": self.index,
            "options": self.options,
        }


# -- reading BEIR ---------------------------------------------------------------------------------------------
def load_beir(path: Path, split: str = "test") -> BeirDataset:
    """Read `corpus.jsonl`, `queries.jsonl` and `qrels/<split>.tsv`; keep only queries that have judgments."""
    path = Path(path).expanduser()
    corpus_file, queries_file, qrels_file = path / "corpus.jsonl", path / "queries.jsonl", path / "qrels" / f"{split}.tsv"
    if not path.is_dir():
        raise InputError(f"dataset folder '{path}' does not exist (pass a BEIR folder with corpus.jsonl, queries.jsonl, qrels/)")
    for needed in (corpus_file, queries_file):
        if not needed.is_file():
            raise InputError(f"'{needed}' is missing (a BEIR dataset folder holds corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv)")
    if not qrels_file.is_file():
        splits = sorted(p.stem for p in (path / "qrels").glob("*.tsv")) if (path / "qrels").is_dir() else []
        raise InputError(
            f"split '{split}' has no judgments: '{qrels_file}' is missing",
            f"use split='{splits[0]}'" if splits else "add qrels/<split>.tsv",
            f"use --split {splits[0]}" if splits else "add qrels/<split>.tsv",
        )

    data = corpus_file.read_bytes()
    corpus: dict[str, tuple[str, str]] = {}
    for n, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if line.strip():
            row = _json_line(line, corpus_file, n)
            corpus[str(row["_id"])] = (str(row.get("title") or ""), str(row.get("text") or ""))
    qrels: dict[str, dict[str, int]] = {}
    with open(qrels_file, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or (n == 1 and not _is_int(parts[-1])):
                continue  # header or blank
            qid, did, score = parts[0], parts[-2], parts[-1]
            if not _is_int(score):
                raise InputError(f"{qrels_file}:{n}: relevance '{score}' is not an integer (BEIR qrels are query-id, corpus-id, score)")
            qrels.setdefault(qid, {})[did] = int(score)
    queries: dict[str, str] = {}
    with open(queries_file, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if line.strip():
                row = _json_line(line, queries_file, n)
                if str(row["_id"]) in qrels:
                    queries[str(row["_id"])] = str(row.get("text") or "")
    missing = [q for q in qrels if q not in queries]
    if missing:
        raise InputError(f"{len(missing)} judged queries (e.g. '{missing[0]}') are not in {queries_file} (check the dataset)")
    return BeirDataset(path.name, corpus, queries, qrels, "sha256:" + hashlib.sha256(data).hexdigest())


def _json_line(line: str, path: Path, n: int) -> dict:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{n}: not JSON ({exc.msg}); BEIR files hold one JSON object per line") from None
    if "_id" not in row:
        raise InputError(f"{path}:{n}: no '_id' field (BEIR rows carry _id, title, text)")
    return row


def _is_int(s: str) -> bool:
    return bool(re.fullmatch(r"-?\d+", s.strip()))


# -- the eval index -------------------------------------------------------------------------------------------
def doc_filename(doc_id: str) -> str:
    """A file name that maps back to the id exactly (percent-encoded; never hidden)."""
    name = quote(doc_id, safe="")
    if name.startswith("."):
        name = "%2E" + name[1:]
    return name + DOC_SUFFIX


def doc_id_of(path: str) -> str:
    return unquote(Path(path).name[: -len(DOC_SUFFIX)])


def document_markdown(title: str, text: str) -> str:
    """A BEIR document as Markdown: the title in front matter (one line), the text as paragraphs. Lines that
    Markdown would read as headings, rules or fences stay text: a backslash escapes their first character (which
    the Markdown reader drops again), and fences lose their backquotes."""
    title = " ".join(title.split())
    lines = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if re.match(r"\s*(#|```|~~~|=+\s*$|-+\s*$)", line):
            line = line.lstrip()
            if re.match(r"(```|~~~)", line):
                line = line.replace("`", "'").replace("~", "-")
            line = "\\" + line
        lines.append(line)
    front = f"---\ntitle: {title}\n---\n" if title else ""
    return front + "\n".join(lines).strip("\n") + "\n"


def eval_index_name(dataset: str, model: str | None, store: str | None = None) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", dataset.lower()).strip("-") or "dataset"
    if model and model != DEFAULT_MODEL:
        slug += "-" + re.sub(r"[^a-z0-9]+", "-", Path(model).name.lower()).strip("-")
    if store and store != DEFAULT_STORE:
        slug += "-" + re.sub(r"[^a-z0-9]+", "-", store.lower()).strip("-")
    return f"eval-{slug}"


def ensure_eval_index(
    dataset: BeirDataset, settings: Settings, chunker=None, progress: Progress | None = None, embedder=None
) -> Settings:
    """Build (or reuse) the index of a dataset's corpus. Returns settings pointing at it. `embedder`: an
    already loaded embedder of the same model (tests share one)."""
    from searchlm.indexing.chunking import ChunkerSettings

    model = settings.model or DEFAULT_MODEL
    chunker = chunker or ChunkerSettings()
    name = settings.name if settings.name.startswith("eval-") else eval_index_name(dataset.name, model, settings.store)
    target = settings.with_(name=name, model=model)
    index_dir = target.index_dir
    fingerprint = {"format": FORMAT_VERSION, "corpus": dataset.corpus_hash, "model": model, "chunker": chunker.to_json()}
    if settings.store and settings.store != DEFAULT_STORE:
        fingerprint["store"] = settings.store
    stamp = index_dir / FINGERPRINT_FILE
    if stamp.is_file() and (index_dir / "manifest.json").is_file():
        try:
            if json.loads(stamp.read_text(encoding="utf-8")) == fingerprint:
                return target
        except json.JSONDecodeError:
            pass
    from searchlm.indexing.admin import drop_index
    from searchlm.indexing.indexer import index_folder
    from searchlm.indexing.manifest import Manifest

    if (index_dir / "manifest.json").is_file():
        manifest = Manifest.load(index_dir)
        if manifest.model != model or manifest.chunker != chunker.to_json():
            drop_index(target)  # another model or chunker: nothing can be reused
    _write_corpus(dataset, index_dir / CORPUS_DIR)
    index_folder(index_dir / CORPUS_DIR, target, progress=progress, chunker=chunker, embedder=embedder)
    write_json_atomic(stamp, fingerprint)
    return target


def _write_corpus(dataset: BeirDataset, folder: Path) -> None:
    """One file per document; unchanged files are left alone so the incremental indexer skips them."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {doc_filename(i): document_markdown(t, x) for i, (t, x) in dataset.corpus.items()}
    for existing in folder.iterdir():
        if existing.name not in wanted:
            existing.unlink()
    for name, content in wanted.items():
        path = folder / name
        data = content.encode("utf-8")
        if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
            continue
        path.write_bytes(data)


# -- running --------------------------------------------------------------------------------------------------
def evaluate(
    dataset_dir: Path,
    settings: Settings | None = None,
    split: str = "test",
    options: SearchOptions | None = None,
    limit: int | None = None,
    chunker=None,
    progress: Progress | None = None,
    embedder=None,
) -> EvalReport:
    """Index (or reuse) a BEIR dataset, run its judged queries through `Searcher.search`, and score the
    document rankings with nDCG@10, Recall@100 and MRR@10. `limit` takes the first N judged queries.
    `settings` (default: from `SEARCHLM_*`) gives the index home and model of the eval index."""
    settings = settings or Settings.load()
    from searchlm.search.searcher import Searcher

    dataset = load_beir(Path(dataset_dir), split)
    target = ensure_eval_index(dataset, settings, chunker=chunker, progress=progress, embedder=embedder)
    options = replace(options or SearchOptions(), k=EVAL_DEPTH, group_by_document=True, explain=False)
    query_ids = sorted(dataset.queries, key=natural_order)[: limit or None]
    searcher = Searcher(target)
    indexed = searcher.store.counts()[0]
    try:
        searcher.warm()
        run: dict[str, dict[str, float]] = {}
        latencies: list[float] = []
        for n, qid in enumerate(query_ids, start=1):
            text = dataset.queries[qid]
            t0 = time.perf_counter()
            hits = searcher.search(text, options).hits if text.strip() else []
            latencies.append((time.perf_counter() - t0) * 1000)
            ranked = list(dict.fromkeys(doc_id_of(h.path) for h in hits))  # h.path: the stored file name
            # Scores from rank, so the metric sees exactly our order (trec_eval would re-sort score ties by id).
            run[qid] = {d: float(len(ranked) - r) for r, d in enumerate(ranked)}
            if progress:
                progress("query", n, len(query_ids))
    finally:
        searcher.close()
    per_query = score_run({q: dataset.qrels[q] for q in query_ids}, run)
    return EvalReport(
        dataset=dataset.name,
        split=split,
        queries=len(query_ids),
        ndcg_at_10=_mean(per_query, "ndcg@10"),
        recall_at_100=_mean(per_query, "recall@100"),
        mrr_at_10=_mean(per_query, "mrr@10"),
        latency_ms_p50=_percentile(latencies, 50),
        latency_ms_p95=_percentile(latencies, 95),
        index=target.name,
        options=_options_json(options),
        per_query=per_query,
        documents=len(dataset.corpus),
        indexed=indexed,
    )


MEASURE_NAMES = {"nDCG@10": "ndcg@10", "R@100": "recall@100", "RR@10": "mrr@10"}


def score_run(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per-query nDCG@10, Recall@100 and RR@10 from ir-measures; a judged query missing from the run scores 0."""
    import ir_measures
    from ir_measures import RR, R, nDCG

    per_query = {q: {name: 0.0 for name in MEASURE_NAMES.values()} for q in qrels}
    run = {q: docs for q, docs in run.items() if docs and q in qrels}
    if run:
        for m in ir_measures.iter_calc([nDCG @ 10, R @ 100, RR @ 10], qrels, run):
            per_query[m.query_id][MEASURE_NAMES[str(m.measure)]] = float(m.value)
    return per_query


def _mean(per_query: dict[str, dict[str, float]], key: str) -> float:
    return sum(v[key] for v in per_query.values()) / len(per_query) if per_query else 0.0


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * pct / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def natural_order(qid: str):
    """Sort key for query ids: numbers in numeric order ("2" before "10"), then other ids alphabetically."""
    return (0, int(qid), "") if qid.isdigit() else (1, 0, qid)


def _options_json(options: SearchOptions) -> dict:
    keep = ("mode", "fusion", "dense_weight", "depth", "rerank", "rerank_depth", "rerank_weight")
    return {k: getattr(options, k) for k in keep if not (k.startswith("rerank_") and not options.rerank)}
