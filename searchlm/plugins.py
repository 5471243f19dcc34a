"""Plugins: how backends join searchlm, the built-in ones and those of other packages, the way simonw/llm does it.

A plugin is a module (or any object) with pluggy hook implementations, one hook per seam:

    from searchlm import hookimpl

    @hookimpl
    def register_rerankers(register):
        register("bm42", "searchlm_bm42:Bm42Reranker")   # the class, or 'module:attr' imported on first use

and a package makes it known through an entry point in the `searchlm` group of its pyproject.toml:

    [project.entry-points.searchlm]
    bm42 = "searchlm_bm42"

after which `--rerank bm42` uses it and `searchlm plugins` lists it. What each hook registers:

    register_embedders   indexing encoders: class(model, device=..., **options) -> Embedder   (`Settings.embedder`)
    register_stores      vector indexes: class(index_dir, manifest, store, spec=, warm=) -> VectorIndex (`--store`)
    register_keyword_indexes  keyword indexes: class(index_dir, manifest, store, vectors=) -> KeywordIndex
                         (`--store VECTORS+KEYWORDS`)
    register_rerankers   Reranker subclasses, built as cls(model, device=...)      (`--rerank NAME[:MODEL]`)
    register_generators  factory(model, device) -> Generator                    (`--generator NAME:MODEL`)

`register(name, target, extra=None)`: `extra` is the searchlm extra whose libraries the target needs, named in the
error when they are missing. The hooks are declared in searchlm/hookspecs.py; the built-ins register through them
(searchlm/default_plugins.py). A name is kept by the plugin that registered it first, and the built-ins come
first: a plugin adds names, never replaces one.

Installed plugins are discovered only when a name is not among those already registered (or for `searchlm
plugins`): reading every installed package's entry points costs 10-30 ms of CPU that a search with the built-in
store should not pay (benchmarks/plugins_cost.py). Tests and notebooks register a plugin object in-process with
`pm.register(obj, name=...)` and remove it with `pm.unregister(name=...)`.
"""

from __future__ import annotations

import importlib
import threading

import pluggy

from searchlm import default_plugins, hookspecs
from searchlm.errors import InputError, ModelError, PluginError
from searchlm.hookspecs import GROUP, hookimpl  # noqa: F401  (hookimpl: for plugins, as searchlm.hookimpl too)

pm = pluggy.PluginManager(GROUP)
pm.add_hookspecs(hookspecs)
pm.register(default_plugins, name=default_plugins.__name__)

_lock = threading.Lock()
_discovered = False


def load_plugins() -> None:
    """Register every installed package's `searchlm` entry points (once per process). A plugin that fails to
    import is a PluginError naming it and its package."""
    global _discovered
    with _lock:
        if _discovered:
            return
        from importlib.metadata import entry_points

        for ep in entry_points(group=GROUP):
            if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
                continue
            try:
                pm.register(ep.load(), name=ep.name)  # pluggy checks its hooks against hookspecs.py
            except Exception as exc:
                package = ep.dist.name if ep.dist is not None else ep.value
                version = f" {ep.dist.version}" if ep.dist is not None else ""
                raise PluginError(f"plugin '{ep.name}' ({package}{version}) failed to load: {type(exc).__name__}: "
                                  f"{exc}", f"fix or uninstall {package}") from exc
            _dists[ep.name] = ep.dist
        _discovered = True


_dists: dict = {}  # plugin name -> its package (an importlib.metadata Distribution)


# Plain classes, not dataclasses: every search imports this module, and a dataclass costs ~0.4 ms to define.
class Backend:
    """One registered name: what it builds (a class or function, or 'module:attr' imported by `load`), which
    plugin registered it, the extra its libraries come with."""

    __slots__ = ("kind", "name", "target", "plugin", "extra")

    def __init__(self, kind: str, name: str, target, plugin: str, extra: str | None = None):
        self.kind, self.name, self.target, self.plugin, self.extra = kind, name, target, plugin, extra

    def __repr__(self) -> str:
        return f"Backend({self.kind!r}, {self.name!r}, {self.target!r}, plugin={self.plugin!r})"

    def load(self):
        """The class or factory itself; a missing library is a ModelError naming the extra to install."""
        if not isinstance(self.target, str):
            return self.target
        module, _, attr = self.target.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            install = f"pip install 'searchlm[{self.extra}]'" if self.extra else f"install {exc.name}"
            raise ModelError(f"{self.kind} '{self.name}' needs the {exc.name} package", install) from None


class Registry:
    """The names one hook registers, collected from every registered plugin on each look-up (a handful of calls:
    a plugin registered or removed since is seen at once). `kind` is how messages name a backend ("reranker"),
    `fix` the usual values for the unknown-name message."""

    def __init__(self, kind: str, hook: str, fix: str):
        self.kind, self.hook, self.fix = kind, hook, fix

    def backends(self) -> dict[str, Backend]:
        found: dict[str, Backend] = {}
        for impl in getattr(pm.hook, self.hook).get_hookimpls():  # in registration order: built-ins first

            def register(name: str, target, extra: str | None = None, _plugin=impl.plugin_name) -> None:
                key = name.strip().lower()
                if key and key not in found:
                    found[key] = Backend(self.kind, key, target, _plugin, extra)

            impl.function(*[register for _ in impl.argnames])  # as pluggy calls it: `register`, if it takes it
        return found

    def find(self, name: str) -> Backend | None:
        """The backend of that name, or None (installed plugins are looked for before saying None)."""
        key = (name or "").strip().lower()
        backend = self.backends().get(key)
        if backend is None and not _discovered:
            load_plugins()
            backend = self.backends().get(key)
        return backend

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self.backends())

    def get(self, name: str) -> Backend:
        """The backend of that name; an unknown name is an InputError naming it and the known ones."""
        backend = self.find(name)
        if backend is None:
            raise InputError(f"{self.kind} '{name}' is not one of {', '.join(self.names())}",
                             f"{self.fix}, or one an installed plugin adds: see `searchlm plugins`")
        return backend


embedders = Registry("embedder", "register_embedders", "use sentence-transformers or ray")
stores = Registry("store", "register_stores", "use one of those or a Milvus server URI such as http://localhost:19530")
keyword_indexes = Registry("keyword index", "register_keyword_indexes", "use one of those after the '+' of --store")
rerankers = Registry("reranker", "register_rerankers", "use lm, lm:MODEL or cross-encoder:MODEL")
generators = Registry("generator kind", "register_generators", "use llm:MODEL_ID")

REGISTRIES = {"embedders": embedders, "stores": stores, "keyword_indexes": keyword_indexes, "rerankers": rerankers, "generators": generators}


class PluginInfo:
    """One registered plugin: its package (or module) name and version, and the names it registers per seam."""

    def __init__(self, name: str, version: str | None, builtin: bool, registers: dict[str, list[str]]):
        self.name, self.version, self.builtin, self.registers = name, version, builtin, registers

    def to_json(self) -> dict:
        return {"name": self.name, "version": self.version, "builtin": self.builtin, "registers": self.registers}


def get_plugins(all: bool = False) -> list[PluginInfo]:
    """The installed plugins (and, with `all`, the built-in ones), each with what it registers."""
    load_plugins()
    by_plugin: dict[str, dict[str, list[str]]] = {}
    for seam, registry in REGISTRIES.items():
        for backend in registry.backends().values():
            by_plugin.setdefault(backend.plugin, {}).setdefault(seam, []).append(backend.name)
    out = []
    for name, plugin in pm.list_name_plugin():
        builtin = plugin is default_plugins
        if plugin is None or (builtin and not all):
            continue
        dist = _dists.get(name)
        if builtin:
            from searchlm import __version__ as version
        else:
            version = dist.version if dist is not None else None
        out.append(PluginInfo(dist.name if dist is not None else name, version, builtin, by_plugin.get(name, {})))
    return out
