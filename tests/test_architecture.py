"""The package seams, checked on the source: no import cycle between packages, no import from an inner layer to an
outer one, no reach into another module's private members, no `isinstance` dispatch on venue classes.

Why a test: these rules were written down before and still drifted (cycles through function-level and
TYPE_CHECKING imports, upward imports that "only" typed a parameter). Every import counts here, wherever it
sits, because each one is a dependency a reader and a refactoring must follow. The layer order is defined
once, in LAYERS below, and docs/ARCHITECTURE.md shows the same table.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "coinwire"

# Inner to outer. A package may import packages of lower rows only; packages of one row never import each other.
# A top-level module (config.py, app.py, ...) counts as a package of its own; `coinwire` is the root __init__.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("coinwire", "core"),
    ("messages", "aio", "private_files", "logs", "metrics", "roles"),
    ("config",),
    ("bus", "cache", "store"),
    ("venues",),
    ("history",),
    ("feeds",),
    ("auth", "refdata"),
    ("engine",),
    ("strategies",),
    ("services",),
    ("api",),
    ("app",),
    ("cli",),
)

# Violations accepted for now, each with its reason. Empty since the venue contract: keep it so.
KNOWN: frozenset[tuple[str, str, str]] = frozenset()

# Names that start with an underscore and are public API all the same (namedtuple's methods, os._exit).
PUBLIC_UNDERSCORE = frozenset({
    "_replace", "_asdict", "_fields", "_make", "_field_defaults",  # collections.namedtuple
    "_value_", "_name_",  # enum members' own values (the Enum documentation's "sunder" names)
    "_mapping",  # SQLAlchemy's Row as a mapping
    "_exit",  # os._exit
})
VENUE_CLASSES_OUTSIDE = frozenset({"LiveExchange", "PaperExchange"})


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def read_sources(root: Path = SRC) -> dict[str, tuple[str, bool]]:
    """Every module under `root`: its dotted name -> (source, whether it is a package's __init__)."""
    return {module_name(p, root): (p.read_text(encoding="utf-8"), p.name == "__init__.py")
            for p in sorted(root.rglob("*.py")) if "web" not in p.relative_to(root).parts[:1]}


def package_of(module: str) -> str:
    """`coinwire.api.rest` -> `api`; `coinwire.config` -> `config`; `coinwire` -> `coinwire`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def imported(module: str, is_package: bool, tree: ast.AST) -> Iterator[tuple[str, str, ast.AST]]:
    """(module, name or "") for every import in `module`, anywhere in it (function bodies, TYPE_CHECKING blocks)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, "", node
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                yield target, alias.name, node


def import_edges(sources: Mapping[str, tuple[str, bool]]) -> set[tuple[str, str]]:
    """(importing module, imported coinwire module) for every import; `from a import b` imports `a.b` when that is a module."""
    edges = set()
    packages = {m.rsplit(".", i)[0] for m in sources for i in range(1, m.count(".") + 1)}
    for module, (text, is_package) in sources.items():
        for target, name, _ in imported(module, is_package, ast.parse(text)):
            if name and (f"{target}.{name}" in sources or f"{target}.{name}" in packages):
                target = f"{target}.{name}"
            if target == "coinwire" or target.startswith("coinwire."):
                edges.add((module, target))
    return edges


def package_cycles(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected groups of more than one package (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        pa, pb = package_of(a), package_of(b)
        graph.setdefault(pa, set())
        graph.setdefault(pb, set())
        if pa != pb and not (pb == "coinwire" and b != "coinwire"):
            graph[pa].add(pb)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def layer_violations(edges: Iterable[tuple[str, str]], layers: tuple[tuple[str, ...], ...] = LAYERS) -> set[tuple[str, str, str]]:
    """("upward", importer, imported) for every import that is not to a strictly lower row; ("unlayered", module, "")."""
    row = {package: i for i, names in enumerate(layers) for package in names}
    found: set[tuple[str, str, str]] = set()
    for a, b in edges:
        pa, pb = package_of(a), package_of(b)
        for module, package in ((a, pa), (b, pb)):
            if package not in row:
                found.add(("unlayered", module.split(".")[0] + "." + package if "." in module else module, ""))
        if pa == pb or pa not in row or pb not in row:
            continue
        if row[pb] >= row[pa]:
            found.add(("upward", a, b))
    return found


def _defined_private(tree: ast.AST) -> set[str]:
    """Private names a module defines: its functions, classes, assignments and `self._x` attributes, slots."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)  # __slots__ entries, getattr-free field names of structs
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return {n for n in names if _private(n)}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__")) and name not in PUBLIC_UNDERSCORE


def private_access(sources: Mapping[str, tuple[str, bool]]) -> set[tuple[str, str, str]]:
    """("private", module, "expr._name") for reaches into private members this module does not define itself.

    `self._x`, `cls._x` and `super()._x` are a class's own; `other._x` where this module defines `_x` is the
    same class's other instance (a comparison, a copy). Everything else reaches into another module.
    """
    found: set[tuple[str, str, str]] = set()
    for module, (text, is_package) in sources.items():
        tree = ast.parse(text)
        own = _defined_private(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                base = node.value
                if isinstance(base, ast.Name) and base.id in ("self", "cls"):
                    continue
                if isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "super":
                    continue
                if node.attr in own:
                    continue
                found.add(("private", module, f"{ast.unparse(base)}.{node.attr}"))
        for target, name, _ in imported(module, is_package, tree):
            if _private(name) and target != module:
                found.add(("private", module, f"from {target} import {name}"))
    return found


def venue_classes(sources: Mapping[str, tuple[str, bool]]) -> set[str]:
    """Every class defined under coinwire.venues but its errors (an `except` picks those by type) and its reports
    (messages, told apart by type like any message), and the two exchange classes services had."""
    names = set(VENUE_CLASSES_OUTSIDE)
    for module, (text, _) in sources.items():
        if package_of(module) == "venues" and module != "coinwire.venues.reports":
            names |= {n.name for n in ast.walk(ast.parse(text)) if isinstance(n, ast.ClassDef) and not _is_error(n)}
    return names


def _is_error(cls: ast.ClassDef) -> bool:
    bases = [b.attr if isinstance(b, ast.Attribute) else b.id if isinstance(b, ast.Name) else "" for b in cls.bases]
    return any(b.endswith(("Error", "Exception")) for b in bases) or cls.name.endswith("Error")


def venue_isinstance(sources: Mapping[str, tuple[str, bool]]) -> set[tuple[str, str, str]]:
    """("isinstance", module, class) for isinstance/issubclass checks against a venue class."""
    classes = venue_classes(sources)
    found: set[tuple[str, str, str]] = set()
    for module, (text, _) in sources.items():
        for node in ast.walk(ast.parse(text)):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("isinstance", "issubclass")
                    and len(node.args) == 2):
                kinds = node.args[1].elts if isinstance(node.args[1], ast.Tuple) else [node.args[1]]
                for kind in kinds:
                    name = kind.attr if isinstance(kind, ast.Attribute) else kind.id if isinstance(kind, ast.Name) else ""
                    if name in classes:
                        found.add(("isinstance", module, name))
    return found


def violations(sources: Mapping[str, tuple[str, bool]]) -> set[tuple[str, str, str]]:
    edges = import_edges(sources)
    found = layer_violations(edges) | private_access(sources) | venue_isinstance(sources)
    found |= {("cycle", " <-> ".join(group), "") for group in package_cycles(edges)}
    return found


# --- the project itself ---------------------------------------------------------------------------------------------


def test_no_package_cycles() -> None:
    found = {("cycle", " <-> ".join(group), "") for group in package_cycles(import_edges(read_sources()))}
    assert sorted(found - KNOWN) == []


def test_every_package_has_a_layer_and_imports_only_inward() -> None:
    found = layer_violations(import_edges(read_sources()))
    assert sorted(found - KNOWN) == []


def test_no_private_access_across_modules() -> None:
    assert sorted(private_access(read_sources()) - KNOWN) == []


def test_no_isinstance_on_venue_classes() -> None:
    assert sorted(venue_isinstance(read_sources()) - KNOWN) == []


def test_known_violations_still_exist() -> None:
    """A KNOWN entry that was fixed must leave the table, so that it cannot come back unnoticed."""
    assert sorted(KNOWN - violations(read_sources())) == []


def test_layers_table_is_the_one_in_the_docs() -> None:
    """docs/ARCHITECTURE.md shows LAYERS row by row, inner first."""
    doc = (SRC.parents[1] / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    rows = [line for line in doc.splitlines() if line.startswith("| ") and line.split("|")[1].strip().isdigit()]
    shown = tuple(tuple(name.strip(" `") for name in row.split("|")[2].split(",")) for row in rows)
    assert shown == LAYERS


# --- the checker, on small sources ---------------------------------------------------------------------------------


def _src(**modules: str) -> dict[str, tuple[str, bool]]:
    """Modules by name: `coinwire__api__rest` is coinwire.api.rest, `coinwire__store__init` the package coinwire.store."""
    return {name.removesuffix("__init").replace("__", "."): (text, name.endswith("__init")) for name, text in modules.items()}


def test_checker_finds_a_cycle_through_a_function_level_import() -> None:
    sources = _src(coinwire__config="from coinwire.auth.abilities import ROLES\n",
                   coinwire__auth__abilities="def f():\n    from coinwire.config import Settings\n")
    assert package_cycles(import_edges(sources)) == [["auth", "config"]]


def test_checker_finds_a_cycle_through_type_checking_and_relative_imports() -> None:
    sources = _src(coinwire__bus__base="from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from coinwire.store import Store\n",
                   coinwire__store__init="from .. import bus\n")
    assert package_cycles(import_edges(sources)) == [["bus", "store"]]


def test_checker_finds_an_upward_import_and_an_unlayered_package() -> None:
    sources = _src(coinwire__config="import coinwire.refdata.sources\n", coinwire__gadgets__x="from coinwire.core import ids\n")
    found = layer_violations(import_edges(sources))
    assert ("upward", "coinwire.config", "coinwire.refdata.sources") in found
    assert ("unlayered", "coinwire.gadgets", "") in found
    assert not any(kind == "upward" and a.startswith("coinwire.gadgets") for kind, a, _ in found)


def test_checker_finds_same_row_imports() -> None:
    found = layer_violations(import_edges(_src(coinwire__auth__x="from coinwire.refdata import service\n")))
    assert found == {("upward", "coinwire.auth.x", "coinwire.refdata")}


def test_checker_allows_inward_imports() -> None:
    sources = _src(coinwire__api__rest="from coinwire.services.gateway import Gateway\nimport coinwire.core.errors\n",
                   coinwire__services__gateway="class Gateway: ...\n")
    assert layer_violations(import_edges(sources)) == set()
    assert package_cycles(import_edges(sources)) == []


def test_checker_finds_private_access() -> None:
    sources = _src(
        coinwire__app="def f(gateway):\n    return gateway._set_status\n",
        coinwire__api__x="from coinwire.api.params import _Params\nfrom coinwire.api import params as P\nclass A(P._Base): ...\n",
        coinwire__api__params="class _Params: ...\nclass _Base: ...\n",
        coinwire__core__y=("class Y:\n    def __init__(self):\n        self._n = 1\n    def same(self, other):\n"
                           "        return other._n == self._n and super()._m()\n    def t(self, t):\n        return t._replace()\n"),
    )
    found = private_access(sources)
    assert found == {("private", "coinwire.app", "gateway._set_status"),
                     ("private", "coinwire.api.x", "from coinwire.api.params import _Params"),
                     ("private", "coinwire.api.x", "P._Base")}


def test_checker_finds_isinstance_on_venue_classes() -> None:
    sources = _src(
        coinwire__venues__base="class Venue: ...\nclass VenueError(Exception): ...\nclass Refused(VenueError): ...\n",
        coinwire__services__gateway=("def f(x, LiveExchange, base):\n"
                                     "    return isinstance(x, (int, LiveExchange)) or isinstance(x, base.Venue)\n"),
        coinwire__api__y="def g(x, e):\n    return isinstance(x, dict) or isinstance(e, (VenueError, Refused))\n",
    )
    assert venue_isinstance(sources) == {("isinstance", "coinwire.services.gateway", "LiveExchange"),
                                         ("isinstance", "coinwire.services.gateway", "Venue")}


def test_checker_reports_everything_together() -> None:
    sources = _src(coinwire__core__a="import coinwire.api.app\n", coinwire__api__app="import coinwire.core.a\n")
    kinds = {kind for kind, _, _ in violations(sources)}
    assert kinds == {"upward", "cycle"}
