"""The alert rules and panel queries docs/webhooks.md offers beyond the chart ("Alerts and dashboard"):
valid for promtool, and the alerts fire on a backlog, on failures and on given-up events, and
stay quiet when deliveries are healthy (promtool's rule unit tests)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DOC = Path(__file__).resolve().parents[3] / "docs" / "webhooks.md"


def chart_section() -> str:
    return DOC.read_text().split("## Alerts and dashboard", 1)[1]


def promtool(*args: str, cwd: Path) -> None:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("promtool not installed (Debian package `prometheus`; .ci/run installs it)")
    result = subprocess.run([binary, *args], cwd=cwd, capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()


def write_rules(tmp_path: Path) -> Path:
    rules = re.search(r"```yaml\n(.*?)```", chart_section(), re.DOTALL).group(1)
    path = tmp_path / "webhook-alerts.yml"
    path.write_text(rules)
    return path


def test_proposed_alert_rules_are_valid(tmp_path):
    promtool("check", "rules", str(write_rules(tmp_path)), cwd=tmp_path)


def test_proposed_panel_queries_are_valid_promql(tmp_path):
    rows = [line for line in chart_section().splitlines() if line.startswith("| ") and "`" in line]
    queries = [
        re.search(r"`(.*)`", row.split(" | ", 1)[1]).group(1).replace("\\|", "|") for row in rows
    ]
    assert len(queries) >= 5
    group = {
        "groups": [
            {
                "name": "panels",
                "rules": [{"record": f"panel:{n}", "expr": q} for n, q in enumerate(queries)],
            }
        ]
    }
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump(group))
    promtool("check", "rules", str(path), cwd=tmp_path)


def expected(path: Path, name: str) -> list[dict]:
    [rule] = [
        rule
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if rule["alert"] == name
    ]
    return [{"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]}]


def test_alerts_fire_on_backlog_failures_and_given_up_events_only(tmp_path):
    rules = write_rules(tmp_path)
    tests = {
        "rule_files": ["webhook-alerts.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                # A receiver down for 40 minutes: the backlog grows, every attempt fails, and
                # (later) events are given up.
                "interval": "1m",
                "input_series": [
                    {"series": "duka_webhook_pending", "values": "150+5x40"},
                    {
                        "series": 'duka_webhook_deliveries_total{result="delivered"}',
                        "values": "1000x40",
                    },
                    {
                        "series": 'duka_webhook_deliveries_total{result="retry"}',
                        "values": "0+30x40",
                    },
                    {
                        "series": 'duka_webhook_deliveries_total{result="failed"}',
                        "values": "0x30 1+1x9",
                    },
                    {"series": 'duka_queue_depth{queue="webhooks"}', "values": "0x40"},
                ],
                "alert_rule_test": [
                    {"eval_time": "10m", "alertname": "DukaWebhookBacklog", "exp_alerts": []},
                    {
                        "eval_time": "30m",
                        "alertname": "DukaWebhookBacklog",
                        "exp_alerts": expected(rules, "DukaWebhookBacklog"),
                    },
                    {
                        "eval_time": "35m",
                        "alertname": "DukaWebhookFailureRatio",
                        "exp_alerts": expected(rules, "DukaWebhookFailureRatio"),
                    },
                    {
                        "eval_time": "38m",
                        "alertname": "DukaWebhookGivenUp",
                        "exp_alerts": expected(rules, "DukaWebhookGivenUp"),
                    },
                    {"eval_time": "38m", "alertname": "DukaWebhookQueueStuck", "exp_alerts": []},
                ],
            },
            {
                # Healthy: deliveries flow, a small pending count that drains.
                "interval": "1m",
                "input_series": [
                    {"series": "duka_webhook_pending", "values": "3 1 0 2 0 1 0x34"},
                    {
                        "series": 'duka_webhook_deliveries_total{result="delivered"}',
                        "values": "0+60x40",
                    },
                    {"series": 'duka_webhook_deliveries_total{result="retry"}', "values": "0x40"},
                    {"series": 'duka_webhook_deliveries_total{result="failed"}', "values": "0x40"},
                    {"series": 'duka_queue_depth{queue="webhooks"}', "values": "2x40"},
                ],
                "alert_rule_test": [
                    {"eval_time": "40m", "alertname": name, "exp_alerts": []}
                    for name in (
                        "DukaWebhookBacklog",
                        "DukaWebhookFailureRatio",
                        "DukaWebhookGivenUp",
                        "DukaWebhookQueueStuck",
                    )
                ],
            },
        ],
    }
    path = tmp_path / "webhook-alerts.test.yml"
    path.write_text(yaml.safe_dump(tests))
    promtool("test", "rules", str(path), cwd=tmp_path)
