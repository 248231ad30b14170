"""The package's floors: a module may import its own floor or a lower one, never a higher one.

Every module's imports are read with `ast` (nothing is run), so a new module that reaches
upward, or a new subpackage that nobody placed on a floor, fails here before it lands.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "simulator"

#: floor of each subpackage (and of the top-level modules), lowest first
FLOORS = {
    "model": 0,
    "engine": 1,
    "analysis": 2,
    "outputs": 3,
    "serve": 3,
    "cli": 4,
    "arguments": 4,
    "__init__": 4,
}


def _floor_of(module: str) -> int:
    """`simulator.engine.runner` -> the engine's floor; unknown places fail loudly."""
    parts = module.split(".")
    assert parts[0] == "simulator", module
    place = parts[1] if len(parts) > 1 else "__init__"
    assert place in FLOORS, f"{module}: {place!r} is on no floor; add it to FLOORS"
    return FLOORS[place]


def _module_name(path: Path) -> str:
    """`.../simulator/engine/runner.py` -> `simulator.engine.runner` (a package: its name)."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module) for every `simulator` module that `source` imports."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
            found += [(node.lineno, t) for t in names if t.startswith("simulator")]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("simulator")]
    return found


def _module_imports(path: Path) -> list[tuple[int, str]]:
    return _imports(path.read_text(), _module_name(path), path.name == "__init__.py")


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_higher_floor(path: Path) -> None:
    own = _floor_of(_module_name(path))
    upward = [f"line {line}: {target}" for line, target in _module_imports(path)
              if target != "simulator" and _floor_of(target) > own]
    assert not upward, f"{path.relative_to(PACKAGE)} (floor {own}) imports upward: {upward}"


def test_every_subpackage_is_on_a_floor() -> None:
    places = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert places <= set(FLOORS), places - set(FLOORS)


def test_the_check_sees_an_upward_import() -> None:
    """The walk itself works: an engine module importing the outputs is caught, relative
    imports of every depth resolve, and `from . import x` names the module x."""
    source = ("from ..outputs.report import write_report\nfrom ..model import policy\n"
              "from . import metrics\nfrom .records import Sample\n")
    targets = [t for _, t in _imports(source, "simulator.engine.runner")]
    assert targets == ["simulator.outputs.report", "simulator.model", "simulator.engine.metrics",
                       "simulator.engine.records"]
    assert [_floor_of(t) > _floor_of("simulator.engine.runner") for t in targets] == \
        [True, False, False, False]


def test_no_module_is_much_over_400_lines() -> None:
    long = {str(p.relative_to(PACKAGE)): n for p in MODULES
            if (n := len(p.read_text().splitlines())) > 450}
    assert not long, f"one job per file: split {long}"


def _graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports (at the top or inside a function)."""
    names = {_module_name(p) for p in MODULES}
    graph: dict[str, set[str]] = {}
    for path in MODULES:
        targets = set()
        for _, target in _module_imports(path):
            while target and target not in names:  # `from .x import name` names a module's name
                target = target.rpartition(".")[0]
            if target and target != "simulator":
                targets.add(target)
        graph[_module_name(path)] = targets - {_module_name(path)}
    return graph


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports, or None: a house a newcomer can read from the ground up."""
    import graphlib
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as err:
        return list(err.args[1])
    return None


def test_no_modules_import_each_other() -> None:
    circle = _circle(_graph())
    assert circle is None, f"an import circle: {' -> '.join(circle)}"


def test_the_circle_check_finds_a_circle() -> None:
    assert _circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) is not None
    assert _circle({"a": {"b"}, "b": set()}) is None
