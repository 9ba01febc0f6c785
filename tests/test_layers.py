"""Import layers: every module's imports point one way and form no cycle (CONVENTIONS "Layers").

Each first-party module is parsed (never imported), so imports inside functions and
``TYPE_CHECKING`` blocks count as much as those at the top. Generated ``*_pb2*`` modules are
contracts and are not walked.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Import root -> its directory in the tree.
PACKAGE_DIRS = {
    "leis_api": ROOT / "leis-api" / "leis_api",
    "leis": ROOT / "leis",
    "leis_sim": ROOT / "leis_sim",
}

_EVERYTHING = frozenset(
    {
        "leis_api",
        "leis",
        "leis.common",
        "leis.rules",
        "leis.registry",
        "leis.pki",
        "leis.audit",
        "leis.ops",
        "leis.shared",
        "leis.broker",
        "leis.cli",
        "leis_sim",
    }
)
_BELOW = frozenset({"leis_api", "leis.common"})

# Layer -> the layers its modules may import. A module belongs to the longest layer name that
# prefixes its dotted name; ``leis`` alone is the package ``__init__`` (the error re-exports).
ALLOWED: dict[str, frozenset[str]] = {
    "leis_api": frozenset({"leis_api"}),
    "leis.common": _BELOW,
    "leis": _BELOW,
    "leis.rules": _BELOW | {"leis.rules"},
    "leis.pki": _BELOW | {"leis.pki"},
    "leis.registry": _BELOW | {"leis.registry"},
    "leis.audit": _BELOW | {"leis.audit"},
    "leis.ops": _BELOW | {"leis.ops"},
    "leis.shared": _BELOW | {"leis.shared", "leis.rules", "leis.registry"},
    "leis.broker": _EVERYTHING - {"leis.cli", "leis_sim"},
    "leis_sim": _BELOW | {"leis_sim"},
    "leis.cli": _EVERYTHING,
}

# Layers that import no gRPC (``grpc``, ``grpc_*``, generated ``*_pb2_grpc``): the rules are pure.
GRPC_FREE = frozenset({"leis.rules"})

# (importer, imported) module edges that break a rule today, in code being reshaped on other
# branches. Every check ignores them; a test fails once one no longer breaks any rule.
KNOWN_VIOLATIONS: frozenset[tuple[str, str]] = frozenset()


Graph = dict[str, set[str]]


@dataclass(frozen=True)
class Import:
    """One import statement's target, resolved to a first-party module or a third-party root."""

    importer: str
    target: str
    first_party: bool
    line: int


def _is_generated(path: Path) -> bool:
    return path.stem.endswith(("_pb2", "_pb2_grpc"))


def _module_name(root: str, base: Path, path: Path) -> str:
    parts = [root, *path.relative_to(base).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _discover() -> tuple[dict[str, Path], frozenset[str]]:
    """Walked modules (name -> file) and every first-party module name, generated ones included."""
    walked: dict[str, Path] = {}
    known: set[str] = set()
    for root, base in PACKAGE_DIRS.items():
        for path in sorted(base.rglob("*.py")):
            name = _module_name(root, base, path)
            known.add(name)
            if not _is_generated(path):
                walked[name] = path
    return walked, frozenset(known)


def _resolve(dotted: str, known: frozenset[str]) -> str | None:
    """The longest known module that prefixes ``dotted`` (``a.b.name`` -> ``a.b``)."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def _absolute(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name a relative ``from`` import refers to."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - level + 1]
    return ".".join([*base, target] if target else base)


def _imported_names(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The absolute dotted names one import statement asks for."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = _absolute(module, is_package, node.level, node.module) if node.level else node.module or ""
    # ``from pkg import sub`` imports the submodule when there is one.
    return [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"] or [base]


def _imports(module: str, path: Path, known: frozenset[str]) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        for name in _imported_names(module, is_package, node):
            root = name.split(".")[0]
            if root in PACKAGE_DIRS:
                resolved = _resolve(name, known)
                assert resolved is not None, f"{path}:{node.lineno}: cannot resolve import {name!r}"
                yield Import(module, resolved, first_party=True, line=node.lineno)
            else:
                yield Import(module, root, first_party=False, line=node.lineno)


def _layer(module: str) -> str:
    matches = [layer for layer in ALLOWED if module == layer or module.startswith(f"{layer}.")]
    assert matches, f"module {module} belongs to no layer in ALLOWED"
    return max(matches, key=len)


def _package(module: str, walked: dict[str, Path]) -> str:
    return module if walked[module].name == "__init__.py" else module.rpartition(".")[0]


@pytest.fixture(scope="module")
def modules() -> dict[str, Path]:
    return _discover()[0]


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    walked, known = _discover()
    return [imp for module, path in walked.items() for imp in _imports(module, path, known)]


def _graph(modules: dict[str, Path], imports: list[Import], exempt: frozenset[tuple[str, str]]) -> Graph:
    """Module -> the walked modules it imports, without the ``exempt`` edges."""
    edges: Graph = {module: set() for module in modules}
    for imp in imports:
        edge = (imp.importer, imp.target)
        if imp.first_party and imp.target in modules and imp.target != imp.importer and edge not in exempt:
            edges[imp.importer].add(imp.target)
    return edges


@pytest.fixture(scope="module")
def graph(modules: dict[str, Path], imports: list[Import]) -> Graph:
    return _graph(modules, imports, KNOWN_VIOLATIONS)


def _strongly_connected(graph: Graph) -> list[list[str]]:
    """Tarjan's components of more than one module, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _cycle_in(component: list[str], graph: Graph) -> list[str]:
    """One concrete cycle through the component's first module, as a path that returns to it."""
    members = set(component)
    start = component[0]
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for succ in sorted(graph[node] & members):
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if succ not in parents:
                    parents[succ] = node
                    following.append(succ)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {component}")


def _is_grpc(imp: Import) -> bool:
    if imp.first_party:
        return imp.target.endswith("_pb2_grpc")
    return imp.target == "grpc" or imp.target.startswith("grpc_")


def _layer_offences(imports: list[Import]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for imp in imports:
        layer = _layer(imp.importer)
        upward = imp.first_party and _layer(imp.target) not in ALLOWED[layer]
        if upward or (layer in GRPC_FREE and _is_grpc(imp)):
            found.add((imp.importer, imp.target))
    return found


def _cycle_edges(graph: Graph) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for component in _strongly_connected(graph):
        members = set(component)
        found |= {(module, target) for module in component for target in graph[module] & members}
    return found


def _package_pairs(modules: dict[str, Path], graph: Graph) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """(importing package, imported package) -> the module edges behind it."""
    pairs: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for importer, targets in graph.items():
        for target in targets:
            pair = (_package(importer, modules), _package(target, modules))
            # A package and its own subpackage are one concept (the broker's assembly wires its
            # ``chain/``, whose stages read the broker's per-call context): only peers count.
            if pair[0] != pair[1] and not _nested(*pair):
                pairs.setdefault(pair, set()).add((importer, target))
    return pairs


def _nested(a: str, b: str) -> bool:
    return a.startswith(b + ".") or b.startswith(a + ".")


def _mutual_package_edges(modules: dict[str, Path], graph: Graph) -> set[tuple[str, str]]:
    pairs = _package_pairs(modules, graph)
    return {edge for (a, b), edges in pairs.items() if (b, a) in pairs for edge in edges}


def test_walker_sees_every_layer(modules: dict[str, Path], imports: list[Import]) -> None:
    layers = {_layer(module) for module in modules}
    assert layers == set(ALLOWED)
    assert any(imp.importer == "leis.cli" and imp.target.startswith("leis.cli.") for imp in imports)


def test_resolves_function_level_and_type_checking_imports(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from leis.broker import server\n"
        "def f() -> None:\n"
        "    import leis_sim.sources.store\n"
        "    from leis_api.v1 import query_service_pb2\n"
        "    from . import sibling\n",
        encoding="utf-8",
    )
    known = frozenset(
        {
            "leis.broker",
            "leis.broker.server",
            "leis_sim.sources",
            "leis.common",
            "leis.common.sibling",
            "leis_api.v1",
        }
    )
    targets = {imp.target for imp in _imports("leis.common.mod", source, known)}
    assert targets >= {"leis.broker.server", "leis_sim.sources", "leis_api.v1", "leis.common.sibling"}


def test_rules_may_not_import_grpc() -> None:
    imports = [
        Import("leis.rules.policy", "grpc", first_party=False, line=1),
        Import("leis.rules.policy", "leis_api.v1.query_service_pb2_grpc", first_party=True, line=2),
        Import("leis.rules.policy", "leis_api.v1.query_service_pb2", first_party=True, line=3),
        Import("leis.broker.query", "grpc", first_party=False, line=1),
    ]
    assert _layer_offences(imports) == {
        ("leis.rules.policy", "grpc"),
        ("leis.rules.policy", "leis_api.v1.query_service_pb2_grpc"),
    }


def test_checks_find_cycles_and_mutual_packages() -> None:
    graph: Graph = {"a.x": {"b.y"}, "b.y": {"a.z"}, "a.z": {"a.x"}}
    modules = {name: Path(f"{name.replace('.', '/')}.py") for name in graph}
    assert _cycle_in(_strongly_connected(graph)[0], graph) == ["a.x", "b.y", "a.z", "a.x"]
    assert _mutual_package_edges(modules, graph) == {("a.x", "b.y"), ("b.y", "a.z")}


def test_no_import_cycle_between_modules(graph: Graph) -> None:
    cycles = [" -> ".join(_cycle_in(component, graph)) for component in _strongly_connected(graph)]
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_imports_point_down_the_layers(imports: list[Import]) -> None:
    offending = _layer_offences(imports) - KNOWN_VIOLATIONS
    new = sorted(
        f"{imp.importer}:{imp.line} imports {imp.target} ({_layer(imp.importer)} may not)"
        for imp in imports
        if (imp.importer, imp.target) in offending
    )
    assert not new, "imports pointing up the layers:\n" + "\n".join(new)


def test_no_two_packages_import_each_other(modules: dict[str, Path], graph: Graph) -> None:
    pairs = _package_pairs(modules, graph)
    mutual = sorted(
        f"{a} <-> {b}: {sorted(pairs[a, b])} / {sorted(pairs[b, a])}"
        for a, b in pairs
        if a < b and (b, a) in pairs
    )
    assert not mutual, "packages importing each other:\n" + "\n".join(mutual)


def test_known_violations_still_break_a_rule(modules: dict[str, Path], imports: list[Import]) -> None:
    unexempted = _graph(modules, imports, frozenset())
    offending = (
        _layer_offences(imports) | _cycle_edges(unexempted) | _mutual_package_edges(modules, unexempted)
    )
    stale = KNOWN_VIOLATIONS - offending
    assert not stale, f"no longer a violation; remove from KNOWN_VIOLATIONS: {sorted(stale)}"
