"""The import graph of pipeline/ and flows/ is acyclic and points down the layers, and every dvc.yaml
stage depends on exactly the code packages its module runs (AST only: nothing is imported)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# Lower layers never import higher ones; packages on one layer may import each other (no cycles).
LAYERS = (
    ("core",),
    ("config",),
    ("sources", "formats", "validation", "splitting", "balancing", "drift"),
    ("arrays", "models"),
    ("training", "tracking"),
    ("evaluation",),
    ("serving",),
    ("registry",),
    ("changes",),
    ("stages",),
    ("cli", "flows"),
)
RANK = {pkg: rank for rank, pkgs in enumerate(LAYERS) for pkg in pkgs}
MAX_ROOT_MODULES = 3


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted([*ROOT.joinpath("pipeline").rglob("*.py"), *ROOT.joinpath("flows").rglob("*.py")]):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> set[str]:
    """Project modules `module` imports anywhere in its body (function-local imports count: they run)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        out |= {target for n in names if (target := _resolve(n)) and target != module}
    return out


GRAPH = {module: _imports(module) for module in MODULES}


def _package(module: str) -> str:
    """'pipeline.evaluation.metrics' -> 'evaluation'; 'flows.tasks' -> 'flows'; 'pipeline' -> 'core'."""
    parts = module.split(".")
    if parts[0] == "flows":
        return "flows"
    return parts[1] if len(parts) > 1 else "core"


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    assert _cycles() == []


def test_every_package_has_a_layer() -> None:
    assert {_package(m) for m in MODULES} <= set(RANK) | {"core"}


def test_no_module_imports_a_higher_layer() -> None:
    upward = [
        f"{src} ({_package(src)}) -> {dst} ({_package(dst)})"
        for src, targets in GRAPH.items()
        for dst in targets
        if RANK[_package(dst)] > RANK[_package(src)]
    ]
    assert upward == []


def test_pipeline_root_holds_at_most_three_modules() -> None:
    assert len(list(ROOT.joinpath("pipeline").glob("*.py"))) <= MAX_ROOT_MODULES


def _closure(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in MODULES]
        todo += GRAPH[module]
    return seen


def _code_dep(module: str) -> str:
    """The dvc.yaml dep that covers a module: its package folder, or the file at the pipeline root."""
    path, parts = MODULES[module], module.split(".")
    root_file = len(parts) == 1 or (len(parts) == 2 and path.name != "__init__.py")
    if root_file or parts[1] == "stages":  # pipeline/*.py, and a stage's own file (not its siblings)
        return path.relative_to(ROOT).as_posix()
    return "/".join(parts[:2])


STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_deps_are_the_code_it_runs(stage: str) -> None:
    """A change to any code a stage runs reruns it, and no other code change does."""
    wanted = {_code_dep(m) for m in _closure(f"pipeline.stages.{stage}")}
    declared = {d for d in STAGES[stage]["deps"] if d.startswith("pipeline")}
    assert sorted(declared) == sorted(wanted)
