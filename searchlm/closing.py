"""`Closing`: the context-manager half of an object that has a `close()` (what `contextlib.closing` does for one
object, as a base class): `with Index(...) as index:` closes it at the end of the block."""

from __future__ import annotations


class Closing:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release what the object holds (connections, models, a live display); nothing by default."""
