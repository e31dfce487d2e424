"""Imports flow one way (shared/style.md). An AST walk over `backend/`, so lazy imports inside
functions count as much as the ones at the top of a module."""

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


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            if node.module == "backend":  # `from backend import projections`
                names += [f"backend.{alias.name}" for alias in node.names]
    return names


def modules() -> dict[str, list[str]]:
    """`backend/<package>/...py` -> imports (migrations excluded: generated, frozen history)."""
    found: dict[str, list[str]] = {}
    for path in sorted(BACKEND.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        found[str(path.relative_to(BACKEND.parent))] = imports_of(path)
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


def package_graph(found: dict[str, list[str]]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path, names in found.items():
        package = Path(path).parts[1].removesuffix(".py")
        for name in names:
            target = package_of(name)
            if target and target != package and (BACKEND / target).is_dir():
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


def test_no_cycle_between_packages():
    assert cycles(package_graph(modules())) == []


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        ("backend/commands/x.py", "def f():\n    from backend.jobs import sms\n", "backend.jobs"),
        ("backend/commands/x.py", "import dramatiq\n", "dramatiq"),
        ("backend/queries/x.py", "from backend.commands.models import Order\n", "commands"),
        ("backend/integrations/x.py", "from backend.errors import NotFound\n", "settings"),
    ],
)
def test_the_rules_catch_what_they_forbid(tmp_path, path, source, expected):
    module = tmp_path / "m.py"
    module.write_text(source)
    [problem] = violations({path: imports_of(module)})
    assert expected in problem


def test_the_cycle_check_finds_a_cycle():
    graph = {"api": {"commands"}, "commands": {"jobs"}, "jobs": {"commands"}}
    assert cycles(graph) == [["commands", "jobs", "commands"]]
