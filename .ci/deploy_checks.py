"""Helpers of .ci/validate-deploy that need a YAML/JSON parser (run with .venv-deploy's Python).

dashboard-rules DASHBOARD OUT   every PromQL query of a Grafana dashboard (panel targets and
                                `label_values(...)` variables), variables substituted, written
                                as a Prometheus recording-rule file for `promtool check rules`.
split-rendered RENDERED OUTDIR DASHBOARD
                                from `helm template` output: each CRD document to its own JSON
                                file (for check-jsonschema), the PrometheusRule spec as a rule
                                file (for promtool), and a check that the dashboard ConfigMap
                                carries the DASHBOARD file unchanged but for its per-release uid.
cd-run ROOT HELM HELM_SHA256 OUTDIR
                                executes the `run:` blocks of cd.yml's deploy job as a runner
                                would (HELM_VALUES set and unset), with `helm` replaced by a shim
                                that renders the upgrade with `helm template`, and checks the
                                result (see cd_run).
chart-invariants ROOT HELM OUTDIR
                                properties of rendered manifests that schemas cannot express.
live-prometheus ROOT OUTDIR     see live_prometheus.py.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
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
        if kind in {"ServiceMonitor", "PrometheusRule", "ScaledObject"}:
            (out / f"{kind.lower()}-{name}.json").write_text(json.dumps(doc, indent=2))
            written += 1
        if kind == "ScaledObject":
            # Its Prometheus query must parse: promtool checks it as a recording rule.
            queries = [t["metadata"]["query"] for t in doc["spec"]["triggers"]]
            rules = [{"record": f"keda:{i}", "expr": q} for i, q in enumerate(queries)]
            doc_rules = {"groups": [{"name": "keda", "rules": rules}]}
            (out / f"rules-keda-{name}.yml").write_text(yaml.safe_dump(doc_rules, sort_keys=False))
        if kind == "PrometheusRule":
            (out / f"rules-{name}.yml").write_text(yaml.safe_dump(doc["spec"], sort_keys=False))
        if kind == "ConfigMap" and "grafana_dashboard" in doc["metadata"].get("labels", {}):
            for key, text in doc.get("data", {}).items():
                embedded = json.loads(text)  # a broken embedding would not even parse
                original = json.loads(dashboard)
                if embedded.get("uid") == original.get("uid"):
                    raise SystemExit(f"ConfigMap {name}: dashboard uid is not per release")
                embedded["uid"] = original.get("uid")
                if embedded != original:
                    raise SystemExit(f"ConfigMap {name} key {key} differs from {dashboard_path}")
    print(f"{written} custom resources written to {out}")


def _docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _seconds(duration: str) -> int:
    """A Go duration of whole h/m/s units (what helm --timeout takes) in seconds."""
    parts = re.findall(r"(\d+)([hms])", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise SystemExit(f"unsupported duration {duration!r}")
    return sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


# Sample inputs of cd.yml's `${{ }}` expressions (env of steps); anything else is an error, so a
# new expression needs a deliberate sample here.
CD_SAMPLES = {
    "secrets.KUBECONFIG": "apiVersion: v1\nkind: Config\nclusters: []\n",
    "needs.promote.outputs.repository": "ghcr.io/example/duka",
    "needs.promote.outputs.digest": "sha256:" + "ab" * 32,
    "github.event.workflow_run.head_sha": "0123456789abcdef0123456789abcdef01234567",
}
CD_SITE_VALUES = (
    "existingSecret: duka-env\n"
    "ingress:\n  enabled: true\n  hosts: [duka.example.com]\n"
    "config:\n  OIDC_ISSUER: https://login.example.com/realms/duka\n"
)
HELM_SHIM = """#!/usr/bin/env bash
# helm as cd.yml calls it, rendered offline: `upgrade --install R C ...` becomes `template R C ...`.
set -euo pipefail
printf '%s\\n' "$*" >>"$SHIM_LOG"
case "$1" in
  upgrade)
    shift; args=()
    while (($#)); do
      case "$1" in
        --install|--create-namespace|--atomic|--wait) ;;
        --timeout) echo "timeout=$2" >>"$SHIM_LOG"; shift ;;
        *) args+=("$1") ;;
      esac
      shift
    done
    exec "$REAL_HELM" template "${args[@]}" >"$SHIM_OUT" ;;
  test) exit 0 ;;
  *) echo "helm shim: unexpected helm $1" >&2; exit 1 ;;
esac
"""


def _expression_value(value: str, case_values: str, runner_temp: Path) -> str:
    """The value with every `${{ expr }}` replaced by its sample."""

    def sample(match: re.Match[str]) -> str:
        expr = match.group(1)
        if expr == "secrets.HELM_VALUES":
            return case_values
        if expr == "runner.temp":
            return str(runner_temp)
        default = re.fullmatch(r"vars\.\w+\s*\|\|\s*'([^']*)'", expr)
        if default:
            return default.group(1)  # the variable unset: its default
        if expr not in CD_SAMPLES:
            raise SystemExit(f"cd.yml: no sample for ${{{{ {expr} }}}}: add one to CD_SAMPLES")
        return CD_SAMPLES[expr]

    return re.sub(r"\$\{\{\s*(.+?)\s*\}\}", sample, value)


def cd_run(root: Path, real_helm: str, helm_sha256: str, out: Path) -> None:
    """Run the deploy job's `run:` blocks with HELM_VALUES set and unset, as a runner would."""
    workflow = yaml.safe_load((root / ".github/workflows/cd.yml").read_text())
    job = workflow["jobs"]["deploy"]
    out.mkdir(parents=True, exist_ok=True)
    for case, site_values in (("unset", ""), ("set", CD_SITE_VALUES)):
        runner = out / case
        # Where cd.yml's install step puts helm: the shim stands in for it (and for PATH's).
        for bin_dir in (runner / "helm" / "bin", out / "bin"):
            bin_dir.mkdir(parents=True, exist_ok=True)
            (bin_dir / "helm").write_text(HELM_SHIM)
            (bin_dir / "helm").chmod(0o755)
        env = {
            "PATH": f"{out / 'bin'}:/usr/bin:/bin",
            "HOME": str(runner),
            "RUNNER_TEMP": str(runner),
            "GITHUB_ENV": str(runner / "github_env"),
            "GITHUB_PATH": str(runner / "github_path"),
            "GITHUB_OUTPUT": str(runner / "github_output"),
            "SHIM_LOG": str(runner / "helm.log"),
            "SHIM_OUT": str(runner / "rendered.yaml"),
            "REAL_HELM": real_helm,
            "HELM_CACHE_HOME": str(runner / "helm-cache"),
            "HELM_CONFIG_HOME": str(runner / "helm-config"),
            "HELM_DATA_HOME": str(runner / "helm-data"),
        }
        for name in ("GITHUB_ENV", "GITHUB_PATH", "GITHUB_OUTPUT", "SHIM_LOG"):
            Path(env[name]).write_text("")
        env.update(
            {k: _expression_value(str(v), site_values, runner) for k, v in job["env"].items()}
        )
        refused = False
        for step in job["steps"]:
            script = step.get("run")
            if script is None:
                continue
            where = f"cd.yml deploy step {step.get('name', script.splitlines()[0])!r}"
            if "${{" in script:
                raise SystemExit(f"{where}: expression inside run: (pass it through env:)")
            if "npm pack" in script:
                # Installs helm from the registry: not repeated here, but it must pin the very
                # binary that .ci/validate-deploy renders with as Helm 3.
                if helm_sha256 not in script:
                    raise SystemExit(f"{where}: does not pin helm 3 sha256 {helm_sha256}")
                continue
            step_env = dict(env)
            step_env.update(
                {
                    k: _expression_value(str(v), site_values, runner)
                    for k, v in step.get("env", {}).items()
                }
            )
            result = subprocess.run(  # noqa: S603 - the repository's own workflow
                ["bash", "-e", "-c", script],  # noqa: S607 - the runner's bash from PATH
                cwd=root,
                env=step_env,
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                if case == "unset" and "`lookup` found no cluster" in result.stderr:
                    # No site values: only a live cluster can supply generated keys, so offline
                    # the render must stop at the chart's lookup refusal, not on the values file.
                    refused = True
                    break
                raise SystemExit(f"{where} failed ({case}):\n{result.stdout}{result.stderr}")
            for line in Path(env["GITHUB_ENV"]).read_text().splitlines():
                key, _, value = line.partition("=")
                env[key] = value
            if (runner / "values.yaml").exists():  # the last step removes it
                (runner / "values.seen.yaml").write_text((runner / "values.yaml").read_text())
        if not refused and any((runner / name).exists() for name in ("kubeconfig", "values.yaml")):
            raise SystemExit("cd.yml: the kubeconfig or the values file outlives the job")
        values_text = (runner / "values.seen.yaml").read_text()
        values = yaml.safe_load(values_text)
        expected = yaml.safe_load(site_values) if site_values else {}
        if values != expected:
            raise SystemExit(f"HELM_VALUES {case}: values.yaml is {values_text!r}, not the input")
        log = (runner / "helm.log").read_text()
        timeout = re.search(r"^timeout=(\S+)$", log, re.M)
        if timeout is None:
            raise SystemExit("cd.yml: helm upgrade without --timeout")
        rendered = runner / "rendered.yaml"
        if case == "unset":
            if not refused:
                raise SystemExit(
                    "HELM_VALUES unset: the offline render did not stop at the lookup refusal"
                )
            print(
                "cd.yml, HELM_VALUES unset: values.yaml is {}; the render refuses to generate keys"
            )
            continue
        if not rendered.exists() or not rendered.read_text().strip():
            raise SystemExit("cd.yml: the helm upgrade step rendered nothing")
        docs = _docs(rendered)
        image = f"{CD_SAMPLES['needs.promote.outputs.repository']}@{CD_SAMPLES['needs.promote.outputs.digest']}"
        deadline = None
        for doc in docs:
            spec = doc.get("spec", {}).get("template", {}).get("spec", {})
            for container in spec.get("containers", []):
                if doc["kind"] in {"Deployment", "Job"} and container["image"] != image:
                    raise SystemExit(
                        f"{doc['kind']} {doc['metadata']['name']}: image {container['image']}, not {image}"
                    )
            if doc["kind"] == "Secret" and not doc["metadata"]["name"].endswith("-migrate"):
                raise SystemExit(
                    "HELM_VALUES set existingSecret, yet the chart rendered its own Secret"
                )
            if doc["kind"] == "Job":
                deadline = doc["spec"]["activeDeadlineSeconds"]
            if doc["kind"] == "Deployment":
                refs = [
                    e["secretRef"]["name"]
                    for e in spec["containers"][0]["envFrom"]
                    if "secretRef" in e
                ]
                if refs != ["duka-env"]:
                    raise SystemExit(
                        f"Deployment {doc['metadata']['name']}: secretRef {refs}, not duka-env"
                    )
        if deadline is None or deadline >= _seconds(timeout.group(1)):
            raise SystemExit(
                f"migrate Job activeDeadlineSeconds {deadline} is not below helm --timeout {timeout.group(1)}"
            )
        print(
            f"cd.yml, HELM_VALUES set: rendered {len(docs)} objects, image {image}, "
            f"migrate deadline {deadline}s < --timeout {timeout.group(1)}"
        )


# The CRD APIs of a cluster with the Prometheus Operator and KEDA (the chart renders their
# objects only where the cluster serves them).
CRD_APIS = [
    "--api-versions=monitoring.coreos.com/v1/ServiceMonitor",
    "--api-versions=monitoring.coreos.com/v1/PrometheusRule",
    "--api-versions=keda.sh/v1alpha1/ScaledObject",
]


def _render(
    helm: str, root: Path, *args: str, apis: bool = True, namespace: str = "duka"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - helm binary chosen by validate-deploy
        [
            helm,
            "template",
            "duka",
            str(root / "helm/duka"),
            "--namespace",
            namespace,
            *(CRD_APIS if apis else []),
            *args,
        ],
        capture_output=True,
        text=True,
    )


def chart_invariants(root: Path, helm: str, out: Path) -> None:
    """Rendered properties that a schema cannot state, each tied to a defect of issue 12."""
    out.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []

    def expect_refusal(why: str, needle: str, *args: str) -> None:
        result = _render(helm, root, *args)
        if result.returncode == 0 or needle not in result.stderr:
            failures.append(f"{why}: render did not fail with {needle!r}: {result.stderr[-300:]}")

    # Generated keys without lookup (Argo CD): refused, with the reason and the way out.
    expect_refusal("generated secret under helm template", "existingSecret")
    expect_refusal(
        "OIDC key under helm template",
        "OIDC_RSA_PRIVATE_KEY",
        "--set",
        "secrets.DJANGO_SECRET_KEY=x",
        "--set",
        "secrets.DATABASE_URL=postgres://u:p@db:5432/duka",
        "--set",
        "secrets.REDIS_URL=redis://redis:6379/0",
    )
    # A misspelt config key or an impossible Secret name fails instead of being ignored.
    expect_refusal(
        "misspelt config key",
        "OIDC_ISSUR",
        "--set",
        "existingSecret=duka-env",
        "--set",
        "config.OIDC_ISSUR=https://idp.example.com",
    )
    expect_refusal("Secret name not DNS-1123", "existingSecret", "--set", "existingSecret=name}")
    expect_refusal(
        "PrometheusRule without runbook base",
        "runbookBaseUrl",
        "--set",
        "existingSecret=duka-env",
        "--set",
        "metrics.prometheusRule.enabled=true",
    )

    base = ["--set", "existingSecret=duka-env"]
    ok = _render(helm, root, *base)
    if ok.returncode:
        raise SystemExit(f"default render with existingSecret failed: {ok.stderr}")
    (out / "default.yaml").write_text(ok.stdout)
    docs = _docs(out / "default.yaml")
    by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    job = by[("Job", "duka-migrate")]
    if job["spec"]["activeDeadlineSeconds"] >= 300:
        failures.append("migrate Job activeDeadlineSeconds >= helm's default --timeout (5m)")
    worker = by[("Deployment", "duka-worker")]["spec"]["template"]["spec"]
    container = worker["containers"][0]
    command = container["command"]
    if "--worker-shutdown-timeout" not in command:
        failures.append("worker command has no --worker-shutdown-timeout")
    else:
        ms = int(command[command.index("--worker-shutdown-timeout") + 1])
        if ms >= worker["terminationGracePeriodSeconds"] * 1000:
            failures.append(f"worker shutdown timeout {ms} ms is not below the grace period")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = container.get(probe, {}).get("httpGet", {})
        if (get.get("path"), get.get("port")) != ("/healthz", "metrics"):
            failures.append(
                f"worker {probe} is not httpGet /healthz on the metrics port: {container.get(probe)}"
            )
    web = by[("Deployment", "duka-web")]["spec"]["template"]["spec"]
    if not web.get("topologySpreadConstraints"):
        failures.append("web pods have no default topology spread (the PDB is hollow on one node)")
    job_spec = job["spec"]["template"]["spec"]
    if (
        job_spec.get("serviceAccountName") != "duka-migrate"
        or ("ServiceAccount", "duka-migrate") not in by
    ):
        failures.append("migrate Job does not run under the chart's hook ServiceAccount")

    # Everything a platform team sets reaches the migrate Job as well as the app pods.
    extra = [
        "--set",
        "existingSecret=duka-env",
        "--set",
        "existingSecretKeys.DATABASE_URL=uri",
        "--set-string",
        "web.podAnnotations.sidecar\\.istio\\.io/inject=true",
        "--set",
        "web.extraEnv[0].name=PGSSLMODE,web.extraEnv[0].value=verify-full",
    ]
    rendered = _render(helm, root, *extra)
    if rendered.returncode:
        raise SystemExit(rendered.stderr)
    for doc in yaml.safe_load_all(rendered.stdout):
        if doc and doc["kind"] == "Job":
            tpl = doc["spec"]["template"]
            env = {e["name"]: e for e in tpl["spec"]["containers"][0]["env"]}
            if env.get("DATABASE_URL", {}).get("valueFrom", {}).get("secretKeyRef") != {
                "name": "duka-env",
                "key": "uri",
            }:
                failures.append("migrate Job does not map DATABASE_URL from existingSecret key uri")
            if "PGSSLMODE" not in env:
                failures.append("migrate Job misses web.extraEnv")
            if tpl["metadata"].get("annotations", {}).get("sidecar.istio.io/inject") != "true":
                failures.append("migrate Job misses web.podAnnotations")

    # Alerts: every rule has an absolute runbook_url under the configured base.
    with_rules = _render(
        helm,
        root,
        *base,
        "--set",
        "metrics.prometheusRule.enabled=true",
        "--set",
        "metrics.prometheusRule.runbookBaseUrl=https://wiki.example.com/duka",
    )
    if with_rules.returncode:
        raise SystemExit(with_rules.stderr)
    for doc in yaml.safe_load_all(with_rules.stdout):
        if doc and doc["kind"] == "PrometheusRule":
            for group in doc["spec"]["groups"]:
                for rule in group["rules"]:
                    url = rule.get("annotations", {}).get("runbook_url", "")
                    if not url.startswith("https://wiki.example.com/duka#"):
                        failures.append(
                            f"{rule['alert']}: runbook_url {url!r} not absolute under the base"
                        )

    # Two releases in one Grafana: different dashboard uids.
    uids = set()
    for release, namespace in (("duka", "staging"), ("duka", "production")):
        result = subprocess.run(  # noqa: S603 - helm binary chosen by validate-deploy
            [helm, "template", release, str(root / "helm/duka"), "--namespace", namespace, *base],
            capture_output=True,
            text=True,
        )
        for doc in yaml.safe_load_all(result.stdout):
            if (
                doc
                and doc["kind"] == "ConfigMap"
                and doc["metadata"]["name"].endswith("-dashboard")
            ):
                uids.add(json.loads(doc["data"]["duka.json"])["uid"])
    if len(uids) != 2:
        failures.append(f"staging and production dashboards share a uid: {uids}")

    if failures:
        raise SystemExit("chart invariants violated:\n  " + "\n  ".join(failures))
    print(f"chart invariants hold ({shlex.quote(helm)})")


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[0] == "dashboard-rules":
        dashboard_rules(argv[1], argv[2])
    elif len(argv) == 4 and argv[0] == "split-rendered":
        split_rendered(argv[1], argv[2], argv[3])
    elif len(argv) == 5 and argv[0] == "cd-run":
        cd_run(Path(argv[1]), argv[2], argv[3], Path(argv[4]))
    elif len(argv) == 4 and argv[0] == "chart-invariants":
        chart_invariants(Path(argv[1]), argv[2], Path(argv[3]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
