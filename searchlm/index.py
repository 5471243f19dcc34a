"""`Index`: one named index as a Python object, the handle the CLI, the server and the MCP server work through.

    import searchlm

    with searchlm.Index("notes", home="~/indexes") as index:
        index.update("~/notes")                       # first run: extract, chunk, embed; later runs: what changed
        for hit in index.search("how do bees keep warm", k=3):
            print(hit.location(), hit.score, hit.heading)
        answer = index.ask("How do bees keep warm in winter?")

An `Index` is cheap to create: nothing is opened until a method needs it. The searcher it opens (SQLite, the
ONNX query encoder, vector index) stays open until `close()` or the end of the `with` block, so a long-lived caller
pays each load once. Options can be given as an options object (`SearchOptions`, `AskOptions`, ...) or as
keyword arguments of the same names.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from searchlm.closing import Closing
from searchlm.settings import Settings

if TYPE_CHECKING:
    from searchlm.search.answer import Answer, AskOptions
    from searchlm.records import IndexReport, SearchResult
    from searchlm.search.searcher import Searcher, SearchOptions
    from searchlm.search.summarize import Summary, SummaryOptions


class Index(Closing):
    """The index `name` in the index home `home` (default: settings from `SEARCHLM_*`, then `./indexes`)."""

    def __init__(
        self,
        name: str | None = None,
        home: str | Path | None = None,
        *,
        model: str | None = None,
        generator: str | None = None,
        device: str | None = None,
        store: str | None = None,
        settings: Settings | None = None,
    ):
        base = settings or Settings.load()
        self.settings = base.with_(
            name=name, home=Path(home).expanduser() if home is not None else None, model=model,
            generator=generator, device=device, store=store,
        )
        self._searcher: Searcher | None = None

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def path(self) -> Path:
        """The index folder (manifest, SQLite file, vectors, query encoder)."""
        return self.settings.index_dir

    @property
    def exists(self) -> bool:
        return (self.path / "manifest.json").is_file()

    def __repr__(self) -> str:
        return f"Index({self.name!r}, home={str(self.settings.home)!r})"

    # -- lifetime -----------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the searcher (SQLite connection, loaded models); the next call opens it again."""
        if self._searcher is not None:
            self._searcher.close()
            self._searcher = None

    @property
    def searcher(self) -> "Searcher":
        """The open `Searcher` (opened on first use): the lower-level object for warm loops and servers."""
        if self._searcher is None:
            from searchlm.search.searcher import Searcher

            self._searcher = Searcher(self.settings)
        return self._searcher

    # -- writing ------------------------------------------------------------------------------------------
    def update(
        self,
        folder: str | Path,
        *,
        progress: Callable[[str, int, int], None] | None = None,
        embedder=None,
        chunker=None,
        follow_symlinks: bool = False,
        on_model_load: Callable[[str], None] | None = None,
        on_file: Callable[[str | None], None] | None = None,
    ) -> "IndexReport":
        """Index `folder` into this index: only what changed since the last run (created on the first run).
        `progress(phase, done, total)` is called as files are read and chunks embedded; `embedder` replaces
        the default encoder (any object with `embed(texts) -> array`, `dimension`, `model_id`);
        `on_model_load(message)` is called before a model loads (a command line shows it); `on_file(path)` when
        a file starts being read, `on_file(None)` when it is read. Symlinks that lead out of `folder` are
        skipped (with a reason in the report) unless `follow_symlinks`."""
        from searchlm.indexing.indexer import index_folder

        report = index_folder(Path(folder), self.settings, progress=progress, chunker=chunker, embedder=embedder,
                              follow_symlinks=follow_symlinks, on_model_load=on_model_load, on_file=on_file)
        self.close()  # a searcher opened before the update re-reads the manifest on next use
        return report

    def adapt(
        self,
        *,
        minutes: float = 30.0,
        sample: int | None = None,
        undo: bool = False,
        margin: float | None = None,
        steps: int | None = None,
        progress: Callable[[str, int, int], None] | None = None,
        on_message: Callable[[str], None] | None = None,
    ):
        """Fine-tune this index's encoder on its own documents (no judgments: pseudo-queries, hard negatives
        and the current search as teacher) within about `minutes`, re-encode the index with it, and keep it
        only if it ranks held-out pseudo-queries better (`AdaptReport.kept` and `.reason` say). `sample` caps
        the passages the language model writes queries for; `margin` is the gain the gate asks for (default
        `adapt.MARGIN`), `steps` caps the training steps. `undo=True` restores the packaged encoder. A kill
        at any moment leaves the index answering as before; calling again resumes."""
        from searchlm.adapt import MARGIN, adapt_index, undo_adapt

        self.close()
        if undo:
            report = undo_adapt(self.settings, progress=progress, on_message=on_message)
        else:
            report = adapt_index(self.settings, minutes=minutes, sample=sample, progress=progress,
                                 on_message=on_message, margin=MARGIN if margin is None else margin, steps=steps)
        self.close()
        return report

    def drop(self) -> None:
        """Delete this index's folder (the indexed documents are not touched)."""
        from searchlm.indexing.admin import drop_index

        self.close()
        drop_index(self.settings)

    # -- reading ------------------------------------------------------------------------------------------
    def status(self) -> dict:
        """The manifest plus live counts, size on disk and whether the vectors are current."""
        from searchlm.indexing.admin import index_status

        return index_status(self.settings)

    def search(self, query: str, options: "SearchOptions | None" = None, **kwargs) -> "SearchResult":
        """Ranked passages for `query`, as a `SearchResult` (its `hits`, the correction searched, why filters
        left nothing, this index, timings; it iterates over its hits): `k`, `mode` (hybrid, dense, keyword),
        `path`, `types`, `since`, `rerank`, ... as in `SearchOptions`."""
        return self.searcher.search(query, options, **kwargs)

    def search_many(self, queries: list[str], options: "SearchOptions | None" = None,
                    **kwargs) -> "list[SearchResult]":
        """`search` for each query, with the same options, their query vectors encoded together: the result each
        would get alone, for about half the encoder's CPU (an evaluation, a batch job)."""
        return self.searcher.search_many(queries, options, **kwargs)

    def ask(
        self,
        question: str,
        options: "AskOptions | None" = None,
        *,
        on_token: Callable[[str], None] | None = None,
        on_load: Callable[[str], None] | None = None,
        **kwargs,
    ) -> "Answer":
        """An answer with numbered citations, or a refusal when the documents do not cover the question.
        `on_token` receives the answer a checked sentence at a time, as each passes (the pieces add up to the
        answer); `on_load` the model's name when it must load."""
        from searchlm.search.answer import AskOptions, ask

        options = options or AskOptions(**kwargs)
        from searchlm.search.answer import needs_model

        if on_load is not None and not needs_model(question):
            on_load = None  # answered from the passages' own sentences: no model to load
        if on_load is not None and self._searcher is None and self.exists:
            # Say it before opening the index (SQLite, the query encoder, the vector index): it is the first thing to wait for.
            from searchlm.generate.registry import DEFAULT_GENERATOR, is_loaded

            name = options.generator or self.settings.generator
            if not is_loaded(name, self.settings.device):
                on_load(name or DEFAULT_GENERATOR)
                on_load = _said  # still given, so that `ask` loads the model beside retrieval
        return ask(self.searcher, question, options, on_token=on_token, on_load=on_load)

    def summarize(
        self,
        path: str | None = None,
        query: str | None = None,
        options: "SummaryOptions | None" = None,
        *,
        on_token: Callable[[str], None] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        **kwargs,
    ) -> "Summary":
        """A cited summary of one indexed document (`path`, as hits show it) or of a query's top results."""
        from searchlm.search.summarize import SummaryOptions, summarize

        options = options or SummaryOptions(**kwargs)
        return summarize(self.searcher, path, query, options, on_token=on_token, on_progress=on_progress)

    def document(self, doc_id: int, chunk_id: int | None = None):
        """One stored document (`DocumentView`: its text rebuilt from its passages), a passage marked."""
        return self.searcher.document(doc_id, chunk_id)


def list_indexes(home: str | Path | None = None):
    """The manifests of the indexes in `home` (default: the configured index home), by name."""
    from searchlm.indexing.manifest import list_indexes as _list

    settings = Settings.load(home=Path(home).expanduser() if home is not None else None)
    return _list(settings.home)


def _said(model: str) -> None:
    """An `on_load` for a load that was already announced."""
