"""The one exception tree of searchlm.

    SearchlmError                 every error a user can cause or fix; the CLI prints it on one line, exit 1
    ├── InputError                a path, value or option that cannot be used (missing folder, bad date, ...)
    │   └── NothingToIndexError   a folder with no readable documents
    ├── IndexNotFoundError        no index of that name in the index home
    ├── DocumentNotFoundError     no document (or chunk) of that id in the index
    ├── IndexMismatchError        the index was built with another model or schema than the one asked for
    ├── IndexBusyError            another process holds the index's write lock
    ├── IndexDamagedError         a damaged index file (manifest, SQLite, the store, encoder); names `check --repair`
    ├── DiskFullError             no space left writing a file; names the path and the space needed
    ├── ServerBusyError           the server's queue for that work is full (HTTP 503 with Retry-After)
    ├── ModelError                a model that cannot be found or loaded (names the extra or path to fix it)
    ├── ExtractionError           one file could not be read; the indexer skips it and lists it
    ├── StoreError                the index's store (a store server or collection) cannot be used
    ├── PluginError               an installed plugin (a `searchlm` entry point) that fails to load
    └── ServerError               a searchlm server that cannot be reached or answered with an error

Messages say what failed, the value, and one fix. The fix is worded for the library (`mode='hybrid'`); where a
command-line user would type something else (`--mode hybrid`), the error carries that wording too, and the CLI
shows it instead (`cli_message`). `str(error)` is always the library's one-line message.
"""

from __future__ import annotations


class SearchlmError(Exception):
    """Base of all searchlm errors; `str(error)` is the one-line message with the library's fix."""

    def __init__(self, message: str, fix: str | None = None, cli_fix: str | None = None):
        super().__init__(f"{message} ({fix})" if fix else message)
        self.message = message
        self.fix = fix
        self.cli_fix = cli_fix

    def cli_message(self) -> str:
        """The message as the command line shows it: with the fix a shell user would type."""
        fix = self.cli_fix or self.fix
        return f"{self.message} ({fix})" if fix else self.message


class InputError(SearchlmError):
    """A path, value or option that cannot be used."""


class NothingToIndexError(InputError):
    """The folder holds no file searchlm can read."""


class IndexNotFoundError(SearchlmError):
    """No index of that name exists in the index home."""


class DocumentNotFoundError(SearchlmError):
    """No document (or chunk of it) with that id in the index."""


class IndexMismatchError(SearchlmError):
    """The index was built with a different model or schema."""


class IndexBusyError(SearchlmError):
    """Another process is writing to this index."""


class IndexDamagedError(SearchlmError):
    """An index file is damaged or missing; `searchlm check --repair` rebuilds what survives."""


class DiskFullError(SearchlmError):
    """The disk (or quota) ran out while writing; the index keeps what was committed before."""


class ServerBusyError(SearchlmError):
    """The server has as much of this work queued as it takes; try again shortly."""


class ModelError(SearchlmError):
    """A model could not be found or loaded."""


class ExtractionError(SearchlmError):
    """One file could not be read as text."""


class StoreError(SearchlmError):
    """The vector store cannot be reached, or holds vectors of another model, dimension or searchlm version."""


class PluginError(SearchlmError):
    """An installed plugin could not be loaded; the message names it and its package."""


class ServerError(SearchlmError):
    """A searchlm server could not be reached or returned an error."""
