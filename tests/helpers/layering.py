"""The import rules of docs/architecture.md, checked over a source tree.

:func:`check_tree(root)` parses every ``.py`` under ``root/app`` and
``root/scheduler`` (all imports: module level, function level and
``TYPE_CHECKING`` blocks) and returns one message per broken rule:

- no import cycle between modules (a package importing its own submodules is
  an edge like any other; the implicit import of a parent package is not);
- imports only go down the layers of :data:`LAYERS`; two different packages of
  the same layer (admin, peer, cli) never import each other;
- only ``app/core/base/crypto.py`` imports ``nacl``; nothing in ``app/core`` or
  ``app/schemas`` imports Flask, Werkzeug or flask-smorest.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

# (package prefix, rank): the longest matching prefix decides; higher ranks may import lower.
LAYERS: tuple[tuple[str, int], ...] = (
    ("app.core", 0), ("app.core.base", 0), ("app.core.identity", 1), ("app.core.posts", 2),
    ("app.core.network", 3), ("app.core.upkeep", 4), ("app.schemas", 5), ("scheduler", 5),
    ("app.run", 5),
    ("app.web", 6), ("app.admin", 7), ("app.peer", 7), ("app.cli", 7),
    ("app.pages", 7), ("app", 8),
)
CRYPTO_MODULE = "app.core.base.crypto"
WEB_LIBRARIES = ("flask", "werkzeug", "flask_smorest", "flask_wtf", "markupsafe", "jinja2")
NO_WEB = ("app.core", "app.schemas")


def _modules(root: Path) -> dict[str, Path]:
    found = {}
    for top in ("app", "scheduler"):
        for path in sorted((root / top).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, known: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import in the file; relative ones resolved."""
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub if sub in known else target), node.lineno


def _rank(module: str) -> tuple[str, int] | None:
    best = None
    for prefix, rank in LAYERS:
        if (module == prefix or module.startswith(prefix + ".")) and (
                best is None or len(prefix) > len(best[0])):
            best = (prefix, rank)
    return best


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module, or a self-import (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph[v]:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def check_tree(root: Path) -> list[str]:
    """Every broken import rule under ``root`` as a readable message (empty: all kept)."""
    known = _modules(root)
    graph: dict[str, set[str]] = {m: set() for m in known}
    problems = []
    for name, path in known.items():
        here = _rank(name)
        for target, line in _imports(name, path, known):
            where = f"{path.relative_to(root)}:{line}"
            top = target.split(".")[0]
            if top == "nacl" and name != CRYPTO_MODULE:
                problems.append(f"{where}: imports {target}; only {CRYPTO_MODULE} may use nacl")
            if top in WEB_LIBRARIES and any(name == p or name.startswith(p + ".")
                                            for p in NO_WEB):
                problems.append(f"{where}: imports {target}; the core and schemas have no web")
            if target not in known:
                continue
            if target != name:
                graph[name].add(target)
            there = _rank(target)
            if here is None or there is None or here[0] == there[0]:
                continue
            if there[1] > here[1]:
                problems.append(f"{where}: {name} imports {target}, a higher layer")
            elif there[1] == here[1] and not name.startswith(there[0] + "."):
                problems.append(f"{where}: {name} imports {target}, a sibling of its layer")
    for comp in _cycles(graph):
        problems.append("import cycle: " + " <-> ".join(comp))
    return problems
