"""Imports flow one way (shared/style.md). An AST walk over `backend/`, so lazy imports inside
functions and relative imports count as much as the ones at the top of a module.

The units are backend's top-level packages and modules (`api`, `commands`, `health`, `errors`,
...): no circle may run between any of them."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

BACKEND = Path(__file__).resolve().parents[2] / "backend"

# package -> prefixes it must never import
FORBIDDEN = {
    "commands": ("backend.jobs", "backend.api", "dramatiq", "ninja", "redis"),
    "queries": ("backend.commands", "backend.projections", "backend.jobs", "backend.api"),
    "projections": ("backend.commands", "backend.jobs", "backend.api"),
    "notifications": ("backend.", "django"),
}
# `integrations` may import nothing of ours but settings.
INTEGRATIONS_ALLOWED = ("backend.settings",)


# Circles only the lead's rewrite of backend/database, backend/queries and commands/orders.py
# can break, as (unit, unit) edges to leave out. The lead removes each with that rewrite.
KNOWN_CIRCLE_EDGES: frozenset[tuple[str, str]] = frozenset()


def imports_of(path: Path, module: str | None = None) -> list[str]:
    """Absolute names imported by the file at `path`; `module` (its dotted name, e.g.
    `backend.api.app`) resolves relative imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = (module or "").split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], node.module or ""])
            else:
                base = node.module or ""
            base = base.strip(".")
            names.append(base)
            # `from backend import projections`, `from . import sms`: the names may be modules.
            names += [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
    return names


def modules() -> dict[str, list[str]]:
    """`backend/<package>/...py` -> imports (migrations excluded: generated, frozen history)."""
    found: dict[str, list[str]] = {}
    for path in sorted(BACKEND.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        relative = path.relative_to(BACKEND.parent)
        found[str(relative)] = imports_of(path, ".".join(relative.with_suffix("").parts))
    return found


def package_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "backend" else None


def violations(found: dict[str, list[str]]) -> list[str]:
    problems = []
    for path, names in found.items():
        package = Path(path).parts[1].removesuffix(".py")
        for name in names:
            for prefix in FORBIDDEN.get(package, ()):
                if name == prefix.rstrip(".") or name.startswith(prefix.rstrip(".") + "."):
                    problems.append(f"{path} imports {name}")
            if (
                package == "integrations"
                and name.startswith("backend.")
                and not name.startswith(INTEGRATIONS_ALLOWED)
                and package_of(name) != "integrations"
            ):
                problems.append(f"{path} imports {name} (integrations import only settings)")
    return problems


def is_unit(name: str) -> bool:
    """A top-level package or module of backend."""
    return (BACKEND / name).is_dir() or (BACKEND / f"{name}.py").is_file()


def package_graph(found: dict[str, list[str]]) -> dict[str, set[str]]:
    """unit -> the other units it imports, less KNOWN_CIRCLE_EDGES."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path, names in found.items():
        package = Path(path).parts[1].removesuffix(".py")
        for name in names:
            target = package_of(name)
            if (
                target
                and target != package
                and is_unit(target)
                and (package, target) not in KNOWN_CIRCLE_EDGES
            ):
                graph[package].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []

    def walk(node: str, trail: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == trail[0]:
                found.append([*trail, nxt])
            elif nxt not in trail and nxt > trail[0]:  # report each cycle once
                walk(nxt, [*trail, nxt])

    for start in sorted(graph):
        walk(start, [start])
    return found


def test_imports_flow_one_way():
    assert violations(modules()) == []


def test_no_cycle_between_packages_and_modules():
    assert cycles(package_graph(modules())) == []


def test_known_circle_edges_are_still_imports():
    """An exception the lead's rewrite made unnecessary must leave the list."""
    found = modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for path, names in found.items():
        graph[Path(path).parts[1].removesuffix(".py")].update(filter(None, map(package_of, names)))
    assert [edge for edge in KNOWN_CIRCLE_EDGES if edge[1] not in graph[edge[0]]] == []


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        ("backend/commands/x.py", "def f():\n    from backend.jobs import sms\n", "backend.jobs"),
        ("backend/commands/x.py", "import dramatiq\n", "dramatiq"),
        ("backend/queries/x.py", "from backend.commands.models import Order\n", "commands"),
        ("backend/integrations/x.py", "from backend.errors import NotFound\n", "settings"),
        ("backend/commands/x.py", "from ..jobs import sms\n", "backend.jobs"),
        ("backend/commands/x.py", "from backend import api\n", "backend.api"),
        ("backend/queries/x.py", "from .. import commands\n", "commands"),
    ],
)
def test_the_rules_catch_what_they_forbid(tmp_path, path, source, expected):
    module = tmp_path / "m.py"
    module.write_text(source)
    problems = violations({path: imports_of(module, path.removesuffix(".py").replace("/", "."))})
    assert problems
    assert all(expected in problem for problem in problems)


def test_the_cycle_check_counts_top_level_modules(tmp_path):
    """The circle this test once missed: a package and a top-level module (`health.py`)."""
    health, metrics = tmp_path / "health.py", tmp_path / "metrics.py"
    health.write_text("from backend.api.problems import problem_response\n")
    metrics.write_text("def f():\n    from backend.health import BrokerUpCollector\n")
    found = {
        "backend/health.py": imports_of(health, "backend.health"),
        "backend/api/x.py": ["backend.commands.orders"],
        "backend/commands/x.py": ["backend.observability.metrics"],
        "backend/observability/metrics.py": imports_of(metrics, "backend.observability.metrics"),
    }
    assert cycles(package_graph(found)) == [["api", "commands", "observability", "health", "api"]]


def test_the_cycle_check_finds_a_cycle():
    graph = {"api": {"commands"}, "commands": {"jobs"}, "jobs": {"commands"}}
    assert cycles(graph) == [["commands", "jobs", "commands"]]
