"""The package's import graph keeps its layers: no cycle, no private import across modules,
no import going up the layer table, no surface reaching into another surface.

The graph is built with :mod:`ast` from the sources, with every import statement in a file:
module level, inside functions and classes, and under ``if TYPE_CHECKING:`` (a type-only
import that goes up a floor is still a dependency going the wrong way). ``from a import b``
is an edge to the module ``a.b`` when ``b`` is a submodule, else to ``a``.

The layer table below is the README's "Layout" section as data: a module may import its own
layer and the layers below it. A new module must be placed in the table (the test says so).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "trackplan"

#: Floors, lowest first: ``(name, modules or packages on it)``. A module belongs to the entry
#: that names it or its closest enclosing package (so ``trackplan.plan.cli`` is a surface
#: though ``trackplan.plan`` is the plan floor). Entries of the top floor name single modules.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # cliopts: the commands' shared --format/--output conventions (click only)
    ("ground", ("trackplan.errors", "trackplan.pointer", "trackplan.atomic", "trackplan.cliopts")),
    ("plan", ("trackplan.plan",)),
    ("schema", ("trackplan.schema",)),
    ("pii", ("trackplan.pii",)),
    ("engine", ("trackplan.engine",)),
    # privacy operations wrap the enforcer (consent routing, suppression, erasure, DPIA);
    # the gateway routes every event through them, so they sit below the surfaces
    ("privacy", ("trackplan.privacy",)),
    (
        "surfaces",
        (
            "trackplan.batch",
            "trackplan.codegen",
            "trackplan.ci",
            "trackplan.privacy.cli",
            "trackplan.serve",
            "trackplan.collector",
            "trackplan.plan.cli",
            "trackplan.engine.cli",
        ),
    ),
    (
        "entry",
        ("trackplan", "trackplan.__init__", "trackplan.cli", "trackplan.__main__",
         "trackplan.testing"),
    ),
)
#: Floors whose entries name whole packages (everything below them); the top floor's
#: entries name single modules only, so a new top-level module is not placed by accident.
_EXACT_ONLY = frozenset({"entry"})


@dataclass(frozen=True)
class Edge:
    """One import: ``source`` imports ``target`` (``name`` from it) at ``file:line``."""

    source: str
    target: str
    file: str
    line: int
    name: str = ""
    in_function: bool = False

    def __str__(self) -> str:
        what = f"{self.target}.{self.name}" if self.name else self.target
        where = " (function-level)" if self.in_function else ""
        return f"{self.file}:{self.line}: {self.source} -> {what}{where}"


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` under ``root``: dotted name -> file."""
    out: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, *([name] if name else [])])


def _function_imports(tree: ast.AST) -> set[int]:
    """ids of import nodes inside a function body."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Import | ast.ImportFrom):
                    inside.add(id(sub))
    return inside


def build_graph(root: Path, package: str) -> tuple[list[Edge], list[Edge]]:
    """The package's imports of its own modules, and its uses of other modules' private
    attributes (``mod._name`` on a module bound by an import). Returns ``(edges, private)``:
    ``private`` holds imports and attribute uses of ``_names`` across modules."""
    modules = module_files(root, package)
    edges: list[Edge] = []
    private: list[Edge] = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        rel = str(path.relative_to(root))
        in_function = _function_imports(tree)
        bound: dict[str, str] = {}  # local name -> module it names
        for node in ast.walk(tree):
            nested = id(node) in in_function
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == package or alias.name.startswith(package + "."):
                        edges.append(Edge(module, alias.name, rel, node.lineno, "", nested))
                        if alias.asname:
                            bound[alias.asname] = alias.name
            elif isinstance(node, ast.ImportFrom):
                target = (
                    _resolve_relative(module, path.name == "__init__.py", node.level, node.module)
                    if node.level
                    else node.module or ""
                )
                if not (target == package or target.startswith(package + ".")):
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in modules:
                        edge = Edge(module, sub, rel, node.lineno, "", nested)
                        bound[alias.asname or alias.name] = sub
                    else:
                        edge = Edge(module, target, rel, node.lineno, alias.name, nested)
                    edges.append(edge)
                    if _is_private(alias.name) and edge.target != module:
                        private.append(edge)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in bound
                and _is_private(node.attr)
                and bound[node.value.id] != module
            ):
                target = bound[node.value.id]
                private.append(Edge(module, target, rel, node.lineno, node.attr))
    return edges, private


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def layer_of(module: str) -> int | None:
    """The floor of ``module`` in :data:`LAYERS` (its closest listed package), or None."""
    best: tuple[int, int] | None = None  # (length of the matching entry, floor)
    for floor, (name, entries) in enumerate(LAYERS):
        for entry in entries:
            exact = module == entry
            inside = name not in _EXACT_ONLY and module.startswith(entry + ".")
            if (exact or inside) and (best is None or len(entry) > best[0]):
                best = (len(entry), floor)
    return None if best is None else best[1]


def surface_of(module: str) -> str | None:
    """The surface a module belongs to (its surfaces entry), None below the surfaces."""
    floor = layer_of(module)
    if floor is None or LAYERS[floor][0] != "surfaces":
        return None
    entries = [e for e in LAYERS[floor][1] if module == e or module.startswith(e + ".")]
    return max(entries, key=len)


def cycles(edges: Iterable[Edge]) -> list[list[str]]:
    """Strongly connected components of more than one module (or a module importing itself),
    each sorted; Tarjan's algorithm, iterative."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
        graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterable[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    found.append(sorted(component))
    return found


def problems(root: Path, package: str) -> dict[str, list[str]]:
    """Every layering problem of ``package``, by kind, each line naming the offending edge."""
    edges, private = build_graph(root, package)
    out: dict[str, list[str]] = {
        "unplaced": [],
        "cycle": [],
        "private": [],
        "upward": [],
        "cross-surface": [],
    }
    for module in module_files(root, package):
        if layer_of(module) is None:
            out["unplaced"].append(f"{module}: not in the layer table of tests/test_layers.py")
    for component in cycles(edges):
        members = set(component)
        inner = [str(e) for e in edges if e.source in members and e.target in members]
        out["cycle"].append(
            "cycle of " + ", ".join(component) + ":\n    " + "\n    ".join(sorted(set(inner)))
        )
    out["private"] = sorted({str(e) for e in private})
    for e in edges:
        src, dst = layer_of(e.source), layer_of(e.target)
        if src is not None and dst is not None and dst > src:
            out["upward"].append(f"{e}  [{LAYERS[src][0]} imports {LAYERS[dst][0]}]")
        a, b = surface_of(e.source), surface_of(e.target)
        if a is not None and b is not None and a != b:
            out["cross-surface"].append(f"{e}  [surface {a} imports surface {b}]")
    return {kind: sorted(set(lines)) for kind, lines in out.items()}


def _report(found: list[str]) -> str:
    return "\n" + "\n".join(found)


# -- the package -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def found() -> dict[str, list[str]]:
    return problems(ROOT, PACKAGE)


def test_every_module_is_placed_in_a_layer(found: dict[str, list[str]]) -> None:
    assert not found["unplaced"], _report(found["unplaced"])


def test_no_import_cycle(found: dict[str, list[str]]) -> None:
    assert not found["cycle"], _report(found["cycle"])


def test_no_private_name_imported_across_modules(found: dict[str, list[str]]) -> None:
    assert not found["private"], _report(found["private"])


def test_no_import_goes_up_a_layer(found: dict[str, list[str]]) -> None:
    assert not found["upward"], _report(found["upward"])


def test_no_surface_imports_another_surface(found: dict[str, list[str]]) -> None:
    assert not found["cross-surface"], _report(found["cross-surface"])


def test_graph_sees_the_package() -> None:
    """The checker reads the real package: its known edges are there (not an empty graph)."""
    edges, _ = build_graph(ROOT, PACKAGE)
    pairs = {(e.source, e.target) for e in edges}
    assert ("trackplan.engine.enforcer", "trackplan.engine.compiled") in pairs
    assert ("trackplan.pii.engine", "trackplan.pii.nodes") in pairs
    assert len(module_files(ROOT, PACKAGE)) > 50


# -- the checker itself, on a small package with every kind of problem ------------------------
def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_checker_reports_each_kind_of_problem(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "trackplan/__init__.py": "",
            "trackplan/errors.py": "",
            "trackplan/plan/__init__.py": "",
            # a cycle held together by a function-level import, and a private import
            "trackplan/plan/model.py": (
                "from trackplan.plan.load import _helper\n"
                "def compile():\n"
                "    from trackplan.engine import enforcer\n"
            ),
            "trackplan/plan/load.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from trackplan.plan.model import Plan\n"
                "def _helper():\n"
                "    pass\n"
            ),
            "trackplan/engine/__init__.py": "",
            "trackplan/engine/enforcer.py": (
                "from . import compiled\nimport trackplan.pii.detect as detect\n"
                "X = detect._CLEAN\n"
            ),
            "trackplan/engine/compiled.py": "from ..plan import model\n",
            "trackplan/pii/__init__.py": "",
            "trackplan/pii/detect.py": "_CLEAN = set()\n",
            "trackplan/batch/__init__.py": "from trackplan.codegen import python\n",
            "trackplan/codegen/__init__.py": "",
            "trackplan/codegen/python.py": "",
            "trackplan/mystery.py": "",
        },
    )
    found = problems(tmp_path, "trackplan")
    assert found["unplaced"] == [
        "trackplan.mystery: not in the layer table of tests/test_layers.py"
    ]
    (cycle,) = found["cycle"]
    assert cycle.startswith("cycle of trackplan.engine.compiled, trackplan.engine.enforcer")
    assert (
        "trackplan/plan/model.py:3: trackplan.plan.model -> trackplan.engine.enforcer "
        "(function-level)" in cycle
    )
    assert "trackplan/plan/load.py:3: trackplan.plan.load -> trackplan.plan.model.Plan" in cycle
    assert found["private"] == [
        "trackplan/engine/enforcer.py:3: trackplan.engine.enforcer -> trackplan.pii.detect._CLEAN",
        "trackplan/plan/model.py:1: trackplan.plan.model -> trackplan.plan.load._helper",
    ]
    assert found["upward"] == [
        "trackplan/plan/model.py:3: trackplan.plan.model -> trackplan.engine.enforcer "
        "(function-level)  [plan imports engine]"
    ]
    assert found["cross-surface"] == [
        "trackplan/batch/__init__.py:1: trackplan.batch -> trackplan.codegen.python  "
        "[surface trackplan.batch imports surface trackplan.codegen]"
    ]


def test_layer_table_places_clis_on_the_surface() -> None:
    names = [name for name, _ in LAYERS]
    assert layer_of("trackplan.plan.model") == names.index("plan")
    assert layer_of("trackplan.plan.cli") == names.index("surfaces")
    assert layer_of("trackplan.privacy.consent") == names.index("privacy")
    assert layer_of("trackplan.privacy.cli") == names.index("surfaces")
    assert layer_of("trackplan.engine.typed") == names.index("engine")
    assert layer_of("trackplan.cli") == names.index("entry")
    assert layer_of("trackplan.newthing") is None  # the top floor names modules, not a package
