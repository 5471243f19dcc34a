"""The import graph of the searchlm package, read with `ast` (imports inside functions included)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "searchlm"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def exports() -> dict[str, str]:
    """The public API: name -> the module that defines it (`searchlm._EXPORTS`, read without importing it)."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            if any(isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in targets):
                return ast.literal_eval(node.value)
    raise AssertionError("searchlm/__init__.py has no _EXPORTS")


def import_graph() -> dict[str, set[str]]:
    """module -> the searchlm modules it imports, at module level or inside a function. Importing `a.b.c`
    runs the `__init__` of `a.b` too, so that counts as an edge; the top package's `__init__` imports its API
    lazily (PEP 562), so `from searchlm import X` is an edge to the module X lives in (`exports()`), or to X
    when X is a submodule, and `searchlm.X` in an `import searchlm` module is not followed (an attribute)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    public = exports()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative import
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [
                    f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules
                    else public[a.name] if mod == "searchlm" and a.name in public else mod
                    for a in node.names
                ]
            for target in targets:
                if not target.startswith("searchlm"):
                    continue
                parts = target.split(".")
                for i in range(2, len(parts) + 1):  # parent packages' __init__ run first (not the lazy root)
                    prefix = ".".join(parts[:i])
                    implicit = i < len(parts)
                    # A package's own __init__ has run before any of its modules: not a dependency of theirs.
                    if implicit and name.startswith(prefix + "."):
                        continue
                    if prefix in modules and prefix != name:
                        edges.add(prefix)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def surface_imports(graph: dict[str, set[str]], surfaces: tuple[str, ...], allowed: set[str]) -> dict[str, list[str]]:
    """For each module of the `surfaces` (a module, or a package and its modules), the searchlm modules it
    imports that are neither in `allowed` nor part of a surface: those that reach past the public API."""
    def is_surface(name: str) -> bool:
        return any(name == s or name.startswith(s + ".") for s in surfaces)

    return {m: sorted(e for e in edges if e not in allowed and not is_surface(e))
            for m, edges in graph.items() if is_surface(m)}
