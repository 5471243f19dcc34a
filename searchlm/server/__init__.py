"""The HTTP side of searchlm: `create_app(settings)` builds the FastAPI app that `searchlm serve` runs."""

from searchlm.server.net import LOOPBACK, listen

__all__ = ["LOOPBACK", "create_app", "listen"]


def create_app(settings, **kwargs):
    """Build the web app (imports FastAPI only when called, so `import searchlm.server` stays light)."""
    from searchlm.server.app import create_app as build

    return build(settings, **kwargs)
