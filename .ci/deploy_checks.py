"""Helpers of .ci/validate-deploy that need a YAML/JSON parser (run with .venv-deploy's Python).

dashboard-rules DASHBOARD OUT   every PromQL query of a Grafana dashboard (panel targets and
                                `label_values(...)` variables), variables substituted, written
                                as a Prometheus recording-rule file for `promtool check rules`.
split-rendered RENDERED OUTDIR DASHBOARD
                                from `helm template` output: each CRD document to its own JSON
                                file (for check-jsonschema), the PrometheusRule spec as a rule
                                file (for promtool), and a check that the dashboard ConfigMap
                                carries the DASHBOARD file unchanged.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

# Grafana's built-in interval variables and a value that keeps the query valid PromQL.
BUILTIN_VARIABLES = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
LABEL_VALUES = re.compile(r"^\s*label_values\((?:(.*),)?\s*(\w+)\s*\)\s*$", re.DOTALL)


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _substitute(expr: str, known: set[str], where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name in BUILTIN_VARIABLES:
            return BUILTIN_VARIABLES[name]
        if name not in known:
            raise SystemExit(f"{where}: undefined dashboard variable ${name} in: {expr}")
        # Variables are used inside regex label matchers: ".*" keeps the query valid.
        return ".*"

    return VARIABLE.sub(replace, expr)


def dashboard_rules(dashboard_path: str, out_path: str) -> None:
    dashboard = json.loads(Path(dashboard_path).read_text())
    variables = dashboard.get("templating", {}).get("list", [])
    known = {variable["name"] for variable in variables}
    rules: list[dict[str, str]] = []

    def add(expr: str, where: str) -> None:
        slug = re.sub(r"[^a-zA-Z0-9_]+", "_", where).strip("_").lower()
        record = f"dashboard:{slug}"
        rules.append({"record": record, "expr": _substitute(expr, known, where)})

    for variable in variables:
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        query = query.get("query", "") if isinstance(query, dict) else query
        match = LABEL_VALUES.match(query or "")
        if match is None:
            raise SystemExit(f"variable {variable['name']}: unsupported query {query!r}")
        if match.group(1):
            add(match.group(1), f"variable {variable['name']}")
    for panel in _panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            expr = target.get("expr", "")
            if not expr.strip():
                raise SystemExit(
                    f"panel {panel.get('title')!r} target {target.get('refId')}: empty expr"
                )
            add(expr, f"panel {panel['id']} {target.get('refId', '')}")
    if not rules:
        raise SystemExit(f"{dashboard_path}: no queries found")
    doc = {"groups": [{"name": "dashboard-queries", "rules": rules}]}
    Path(out_path).write_text(yaml.safe_dump(doc, sort_keys=False))
    print(f"{len(rules)} dashboard queries written to {out_path}")


def split_rendered(rendered_path: str, out_dir: str, dashboard_path: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    docs = [doc for doc in yaml.safe_load_all(Path(rendered_path).read_text()) if doc]
    dashboard = Path(dashboard_path).read_text().strip()
    written = 0
    for doc in docs:
        kind = doc.get("kind", "")
        name = doc.get("metadata", {}).get("name", "unnamed")
        if kind in {"ServiceMonitor", "PrometheusRule"}:
            (out / f"{kind.lower()}-{name}.json").write_text(json.dumps(doc, indent=2))
            written += 1
        if kind == "PrometheusRule":
            (out / f"rules-{name}.yml").write_text(yaml.safe_dump(doc["spec"], sort_keys=False))
        if kind == "ConfigMap" and "grafana_dashboard" in doc["metadata"].get("labels", {}):
            for key, text in doc.get("data", {}).items():
                json.loads(text)  # a broken embedding would not even parse
                if text.strip() != dashboard:
                    raise SystemExit(f"ConfigMap {name} key {key} differs from {dashboard_path}")
    print(f"{written} custom resources written to {out}")


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[0] == "dashboard-rules":
        dashboard_rules(argv[1], argv[2])
    elif len(argv) == 4 and argv[0] == "split-rendered":
        split_rendered(argv[1], argv[2], argv[3])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
