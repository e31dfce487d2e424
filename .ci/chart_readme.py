"""The values table of helm/duka/README.md, generated from helm/duka/values.yaml.

helm-docs (a Go binary from GitHub releases) cannot be installed from the registries this project
uses, so this generator takes its place with the same convention: the comment lines right above a
key are its description, the default comes from the parsed file, one row per leaf (a scalar, a
list, or an empty map). The table sits between the README's `values:start` and `values:end`
markers.

    python .ci/chart_readme.py          rewrite the table in place
    python .ci/chart_readme.py --check  exit 1 (with a diff) when the README is stale
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parent.parent / "helm/duka"
START, END = "<!-- values:start -->", "<!-- values:end -->"
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.\-]+):(?:\s+(?P<rest>.*))?$")


def _lookup(values: Any, path: list[str]) -> Any:
    for key in path:
        values = values[key]
    return values


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if value is None:
        return "null"
    return {dict: "object", list: "list", str: "string"}[type(value)]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").strip()


def rows(values_path: Path) -> list[tuple[str, str, str, str]]:
    text = values_path.read_text()
    values = yaml.safe_load(text)
    lines = text.splitlines()
    stack: list[tuple[int, str]] = []
    comments: list[str] = []
    table = []
    for line in lines:
        stripped = line.strip()
        if not stripped:
            comments = []
            continue
        if stripped.startswith("#"):
            comments.append(stripped.lstrip("#").strip())
            continue
        match = KEY.match(line)
        if match is None or stripped.startswith("- "):
            comments = []
            continue
        indent = len(match.group("indent"))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = [key for _, key in stack] + [match.group("key")]
        try:
            value = _lookup(values, path)
        except (KeyError, TypeError):
            comments = []
            continue  # a key inside a list item or an example
        if isinstance(value, dict) and value:
            stack.append((indent, match.group("key")))
            # A comment above a section describes the section: keep it for a row of its own.
            if comments:
                table.append((".".join(path), "object", "", _cell(" ".join(comments))))
        else:
            default = json.dumps(value, separators=(", ", ": "))
            table.append(
                (".".join(path), _type(value), _cell(f"`{default}`"), _cell(" ".join(comments)))
            )
        comments = []
    return table


def render(values_path: Path) -> str:
    out = ["| Key | Type | Default | Description |", "|-----|------|---------|-------------|"]
    out += [
        f"| `{key}` | {kind} | {default} | {description} |"
        for key, kind, default, description in rows(values_path)
    ]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    readme_path = CHART / "README.md"
    if argv and argv[0] not in {"--check"}:
        readme_path = Path(argv[0]) / "README.md"
        argv = argv[1:]
    chart = readme_path.parent
    readme = readme_path.read_text()
    if START not in readme or END not in readme:
        print(f"{readme_path}: no {START} ... {END} markers", file=sys.stderr)
        return 1
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    fresh = f"{head}{START}\n{render(chart / 'values.yaml')}\n{END}{tail}"
    if argv == ["--check"]:
        if fresh != readme:
            sys.stdout.writelines(
                difflib.unified_diff(
                    readme.splitlines(True), fresh.splitlines(True), str(readme_path), "generated"
                )
            )
            print(
                f"\n{readme_path} is stale: run python .ci/chart_readme.py after editing values.yaml",
                file=sys.stderr,
            )
            return 1
        print(
            f"{readme_path}: values table matches values.yaml ({len(rows(chart / 'values.yaml'))} keys)"
        )
        return 0
    readme_path.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
