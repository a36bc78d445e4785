"""The package layout is the architecture: each layer imports only the layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

import modelfetch

PACKAGE = Path(modelfetch.__file__).parent
RANK = {
    "_version": 0,
    "_core": 0,
    "_hubapi": 1,
    "_store": 2,
    "_hub": 3,
    "_http": 3,
    "_mirror": 3,
    "_local": 3,
    "_cached": 4,
    "_api": 5,
    "_weights": 5,
    "_info": 5,
    "_localdir_out": 4,
    "_sync": 5,
    "_default": 5,
    "__init__": 6,
    "_cli": 6,
    "testing": 6,
}
SOURCES = {"_hub", "_http", "_mirror", "_local"}


def _layer(module: Path) -> str:
    return module.relative_to(PACKAGE).with_suffix("").parts[0]


def _imported_layers(module: Path) -> set[str]:
    """Layers `module` imports anywhere: at module level, in `if` blocks, and inside functions.

    A function-level import of a higher layer is still an upward dependency (and was how
    lower layers reached up for a default before `_core.defaults`): it counts.
    """
    tree = ast.parse(module.read_text())
    depth = len(module.relative_to(PACKAGE).parts) - 1
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            parts = Path(module.relative_to(PACKAGE)).parent.parts[: depth - (node.level - 1)]
            target = [*parts, *(node.module or "").split(".")] if node.module else [*parts]
            if not target or target == [""]:
                found.update(alias.name for alias in node.names)
            else:
                found.add(target[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "modelfetch" and len(parts) > 1:
                    found.add(parts[1])
    return found


def test_every_module_is_in_a_known_layer() -> None:
    """A new top-level module or subpackage must be given a place in the layering."""
    layers = {_layer(m) for m in PACKAGE.rglob("*.py")}
    assert layers <= set(RANK), sorted(layers - set(RANK))


def test_layers_import_only_downwards() -> None:
    """No module imports a layer above its own, and no family of sources imports another."""
    wrong = []
    for module in sorted(PACKAGE.rglob("*.py")):
        mine = _layer(module)
        for other in _imported_layers(module) - {mine}:
            if other not in RANK:
                continue
            if RANK[other] > RANK[mine] or (mine in SOURCES and other in SOURCES):
                wrong.append(f"{module.relative_to(PACKAGE)} imports {other}")
    assert wrong == []


def _imported_modules(module: Path) -> set[str]:
    """The modelfetch modules `module` imports anywhere (type-only imports included), dotted."""
    tree = ast.parse(module.read_text())
    package = module.relative_to(PACKAGE).parent.parts
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            if node.module:
                found.add(".".join([*base, *node.module.split(".")]))
            else:
                found.update(".".join([*base, alias.name]) for alias in node.names)
    modules = {".".join(m.relative_to(PACKAGE).with_suffix("").parts) for m in PACKAGE.rglob("*.py")}
    return {name for name in found if name in modules}


def test_no_module_imports_one_that_imports_it_back() -> None:
    """No import cycle between two modules, not even through type-only imports (writeback and
    source of the mirror did)."""
    graph = {
        ".".join(m.relative_to(PACKAGE).with_suffix("").parts): _imported_modules(m)
        for m in PACKAGE.rglob("*.py")
    }
    cycles = sorted(
        f"{a} <-> {b}" for a, targets in graph.items() for b in targets if a < b and a in graph.get(b, set())
    )
    assert cycles == []
