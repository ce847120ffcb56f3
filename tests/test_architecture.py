"""The shape of the code: the layer order, no import cycles, and an ARCHITECTURE.md that is true.

The layer order is written once, in :data:`LAYERS`; every import in ``retrysim/`` (inside
functions and ``TYPE_CHECKING`` blocks too) must point at the same layer or one below it.
(Module sizes are checked in tests/test_layering.py.)
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "retrysim"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Which retrysim module imports which, counting every import statement anywhere in a
    module (inside functions and ``TYPE_CHECKING`` blocks too: a lazy import is still a
    dependency, it only moves when the cost is paid)."""
    modules = _modules()

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for target in targets:
                if not target.startswith("retrysim"):
                    continue
                found = owner(target)
                # a package's own modules importing the package (or it them) is not a cycle
                if found and found != name and not name.startswith(found + "."):
                    graph[name].add(found)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in list(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


#: The layers, lowest first: each may import only from the ones before it (and from itself).
#: Layers on one row are siblings: neither imports the other. The package root holds the base
#: modules (dependency-free definitions and writers every layer uses); ``retrysim/__init__.py``
#: (the library API, lazy) and ``__main__`` sit above everything. ARCHITECTURE.md draws this.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("base",),
    ("retry",),
    ("model",),
    ("sim",),
    ("results", "testing"),
    ("runs",),
    ("fit",),
    ("render", "plots", "chaos"),
    ("share",),
    ("lab",),
    ("cli",),
    ("api",),
)
BASE_MODULES = (
    "_lazy",
    "names",
    "errors",
    "suggest",
    "safe",
    "output",
    "dotted",
    "env_write",
    "stop_signals",
)
#: The most modules the package root may hold (``__init__`` and ``__main__`` included).
MAX_ROOT_MODULES = 12


def layer_of(module: str) -> str:
    """The layer a retrysim module belongs to (``retrysim.sim.engine`` -> ``sim``)."""
    parts = module.split(".")
    if module in {"retrysim", "retrysim.__main__"}:
        return "api"
    if len(parts) == 2 and parts[1] in BASE_MODULES:
        return "base"
    return parts[1]


def rank_of(layer: str) -> int:
    for rank, row in enumerate(LAYERS):
        if layer in row:
            return rank
    raise KeyError(
        f"layer {layer!r} is not in LAYERS: give it a rank in tests/test_architecture.py"
    )


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import that points up the layer order or across to a sibling layer."""
    found = []
    for module, targets in graph.items():
        source = layer_of(module)
        for target in sorted(targets):
            dest = layer_of(target)
            if dest != source and rank_of(dest) >= rank_of(source):
                found.append(f"{module} ({source}) imports {target} ({dest})")
    return found


def test_every_module_has_a_layer() -> None:
    unranked = sorted(
        {layer_of(m) for m in _modules()} - {layer for row in LAYERS for layer in row}
    )
    assert unranked == [], "new package: add it to LAYERS"


def test_imports_follow_the_layer_order() -> None:
    assert layer_violations(import_graph()) == []


def test_the_layer_check_catches_an_upward_and_a_sideways_import() -> None:
    graph = {
        "retrysim.retry.policy": {"retrysim.sim.engine"},  # up
        "retrysim.plots.cdf": {"retrysim.chaos.run"},  # sideways: siblings
        "retrysim.cli.app": {"retrysim.names", "retrysim.runs.runner"},  # down: fine
    }
    assert layer_violations(graph) == [
        "retrysim.retry.policy (retry) imports retrysim.sim.engine (sim)",
        "retrysim.plots.cdf (plots) imports retrysim.chaos.run (chaos)",
    ]


def test_the_package_root_holds_only_base_modules() -> None:
    root = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert len(root) <= MAX_ROOT_MODULES
    assert set(root) == {*BASE_MODULES, "__init__", "__main__"}


def test_architecture_draws_the_same_layer_order() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    block = text.split("## Layers", 1)[1].split("```")[1]
    drawn = [tuple(re.findall(r"retrysim/([a-z]+)/", line)) for line in block.splitlines()]
    drawn_rows = [row for row in drawn if row]
    expected = [
        tuple(layer for layer in row if layer not in {"base", "api"}) for row in reversed(LAYERS)
    ]
    assert drawn_rows == [row for row in expected if row]


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_anywhere_in_retrysim() -> None:
    assert cycles(import_graph()) == []


def test_servers_know_the_engine_only_through_its_interface() -> None:
    assert "retrysim.sim.engine" not in import_graph()["retrysim.sim.service"]


ARCHITECTURE = ROOT / "ARCHITECTURE.md"


def test_architecture_names_only_files_that_exist() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:retrysim|tests|scripts|benchmarks|scenarios)/[\w/.-]+)`", text))
    assert len(named) > 20, "ARCHITECTURE.md should point at the files of each layer"
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert missing == []


@pytest.mark.parametrize(
    "extension",
    [
        "a fault",
        "a server model",
        "a policy option",
        "an attempt guard",
        "a CLI command",
        "a metric",
        "a resilience mechanism",
    ],
)
def test_architecture_says_where_each_extension_goes(extension: str) -> None:
    """Each recipe exists and names the files to touch, each of which exists."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    assert f"### Adding {extension}" in text
    recipe = text.split(f"### Adding {extension}", 1)[1].split("\n#", 1)[0]
    files = re.findall(r"`((?:retrysim|tests)/[\w/.-]+\.py)`", recipe)
    assert files, f"the recipe for adding {extension} names no file"
    assert [f for f in files if not (ROOT / f).exists()] == []
