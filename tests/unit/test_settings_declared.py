"""Every setting the code reads is declared in `backend/settings/base.py` (or is one of
Django's own), with its default there: no knob hides behind `getattr(settings, name, default)`."""

from __future__ import annotations

import ast
from pathlib import Path

from django.conf import global_settings

from backend.settings import base

BACKEND = Path(__file__).resolve().parents[2] / "backend"


def settings_read(path: Path) -> list[tuple[str, bool]]:
    """(name, read through getattr with a default) for each setting `path` reads."""
    found: list[tuple[str, bool]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "settings"
            and node.attr.isupper()
        ):
            found.append((node.attr, False))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id == "settings"
            and isinstance(node.args[1], ast.Constant)
        ):
            found.append((str(node.args[1].value), len(node.args) > 2))
    return found


def test_every_setting_read_is_declared_without_a_hidden_default():
    undeclared, hidden = [], []
    for path in sorted(BACKEND.rglob("*.py")):
        if "settings" in path.parts or "migrations" in path.parts:
            continue
        for name, with_default in settings_read(path):
            where = f"{path.relative_to(BACKEND.parent)}: {name}"
            if not hasattr(base, name) and not hasattr(global_settings, name):
                undeclared.append(where)
            if with_default:
                hidden.append(where)
    assert undeclared == []
    assert hidden == []


def test_the_scan_sees_both_kinds_of_read(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("x = settings.NOT_DECLARED\ny = getattr(settings, 'KNOB', 3)\n")
    assert settings_read(module) == [("NOT_DECLARED", False), ("KNOB", True)]
