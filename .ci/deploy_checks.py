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
ansible-role ROOT OUTDIR        the Ansible role's restart order and image/SENTRY_RELEASE handling.
pins ROOT                       images pinned by digest, uv by hash, Renovate, scan and signatures.
compose ROOT                    compose.yaml's production shape (after its schema check).
ci-parity ROOT OUTDIR           ci.yml runs every command of .ci/run, the tests through .ci/tests;
                                the test job's steps and .ci/tests run with shimmed tools agree.
chart-v3 ROOT HELM              the same for the defects of issue 25: Argo CD migrations, default-
                                deny NetworkPolicies, required URLs, worker scaling, cross-field
                                values, CRD capability checks, release-scoped alerts.
live-prometheus ROOT OUTDIR     see live_prometheus.py.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
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
    "matrix.environment": "staging",
}
CD_SITE_VALUES = (
    "existingSecret: duka-env\n"
    "ingress:\n  enabled: true\n  hosts: [duka.example.com]\n"
    "config:\n  OIDC_ISSUER: https://login.example.com/realms/duka\n"
)
HELM_SHIM = """#!/usr/bin/env bash
# helm as cd.yml calls it, offline: `upgrade --install R C ...` becomes `template R C ...`;
# status answers SHIM_STATUS (revision SHIM_REVISION), test fails when SHIM_TEST_FAIL is set;
# rollback and uninstall are only logged. Every call and its --timeout go to SHIM_LOG.
set -euo pipefail
printf '%s\\n' "$*" >>"$SHIM_LOG"
timeout=""
for ((i = 1; i <= $#; i++)); do
  if [[ ${!i} == --timeout ]]; then j=$((i + 1)); timeout=${!j}; fi
done
[[ -z $timeout ]] || echo "timeout $1=$timeout" >>"$SHIM_LOG"
case "$1" in
  upgrade)
    shift; args=()
    while (($#)); do
      case "$1" in
        --install|--create-namespace|--atomic|--wait) ;;
        --timeout) shift ;;
        *) args+=("$1") ;;
      esac
      shift
    done
    exec "$REAL_HELM" template "${args[@]}" >"$SHIM_OUT" ;;
  status)
    printf '{"version": %s, "info": {"status": "%s"}}\\n' "${SHIM_REVISION:-3}" "${SHIM_STATUS:-deployed}" ;;
  test) [[ -z ${SHIM_TEST_FAIL:-} ]] ;;
  rollback|uninstall) ;;
  *) echo "helm shim: unexpected helm $1" >&2; exit 1 ;;
esac
"""
# (case, site values, shim settings): what a runner meets. "pending": a killed run left the
# release pending-upgrade; "test-fails": the new revision fails `helm test`.
CD_CASES = (
    ("unset", "", {}),
    ("set", CD_SITE_VALUES, {}),
    ("pending", CD_SITE_VALUES, {"SHIM_STATUS": "pending-upgrade"}),
    ("test-fails", CD_SITE_VALUES, {"SHIM_TEST_FAIL": "1"}),
)


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


def _cd_policy(root: Path, job: dict[str, Any]) -> None:
    """Static CD rules of issue 25: staging before production, no tag re-pointed outside a
    release, and a job limit above the worst case of its helm calls (checked in cd_run)."""
    failures = []
    strategy = job.get("strategy", {})
    environments = strategy.get("matrix", {}).get("environment", [])
    if len(environments) < 2 or environments[-1] != "production":
        failures.append(f"deploy environments {environments}: not staging, then production")
    if strategy.get("max-parallel") != 1 or strategy.get("fail-fast") is not True:
        failures.append("environments not deployed one at a time, stopping at the first failure")
    if "matrix.environment" not in str(job.get("environment", {}).get("name", "")):
        failures.append("the deploy job does not use the matrix's GitHub environment")
    for path in sorted((root / ".github/workflows").glob("*.yml")):
        text = path.read_text()
        if "imagetools create" in text and path.name != "release.yml":
            failures.append(f"{path.name} re-points an image tag (only release.yml tags versions)")
    release = root / ".github/workflows/release.yml"
    if not release.exists():
        failures.append("no release.yml: version tags are never made immutably")
    elif "already exists" not in release.read_text():
        failures.append("release.yml does not refuse to re-point an existing version tag")
    if failures:
        raise SystemExit("cd.yml policy:\n  " + "\n  ".join(failures))


def cd_run(root: Path, real_helm: str, helm_sha256: str, out: Path) -> None:
    """Run the deploy job's `run:` blocks as a runner would, in the cases of CD_CASES."""
    workflow = yaml.safe_load((root / ".github/workflows/cd.yml").read_text())
    job = workflow["jobs"]["deploy"]
    _cd_policy(root, job)
    out.mkdir(parents=True, exist_ok=True)
    limits: dict[str, list[tuple[str, int]]] = {}  # case -> (helm command, --timeout) in order
    for case, site_values, shim in CD_CASES:
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
            **shim,
        }
        for name in ("GITHUB_ENV", "GITHUB_PATH", "GITHUB_OUTPUT", "SHIM_LOG"):
            Path(env[name]).write_text("")
        env.update(
            {k: _expression_value(str(v), site_values, runner) for k, v in job["env"].items()}
        )
        refused = False
        failed_step = None
        for step in job["steps"]:
            script = step.get("run")
            if script is None:
                continue
            if failed_step is not None and "always()" not in str(step.get("if", "")):
                continue  # a runner skips the rest after a failure, but for if: always()
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
                if case == "test-fails" and " test " in f" {script} ":
                    failed_step = where
                    continue
                raise SystemExit(f"{where} failed ({case}):\n{result.stdout}{result.stderr}")
            for line in Path(env["GITHUB_ENV"]).read_text().splitlines():
                key, _, value = line.partition("=")
                env[key] = value
            if (runner / "values.yaml").exists():  # the last step removes it
                (runner / "values.seen.yaml").write_text((runner / "values.yaml").read_text())
        if not refused and any((runner / name).exists() for name in ("kubeconfig", "values.yaml")):
            raise SystemExit(f"cd.yml ({case}): the kubeconfig or the values file outlives the job")
        values_text = (runner / "values.seen.yaml").read_text()
        values = yaml.safe_load(values_text)
        expected = yaml.safe_load(site_values) if site_values else {}
        if values != expected:
            raise SystemExit(f"HELM_VALUES {case}: values.yaml is {values_text!r}, not the input")
        log = (runner / "helm.log").read_text()
        calls = [line.split()[0] for line in log.splitlines() if not line.startswith("timeout ")]
        limits[case] = [
            (m.group(1), _seconds(m.group(2)))
            for m in re.finditer(r"^timeout (\w+)=(\S+)$", log, re.M)
        ]
        timeouts = dict(limits[case])
        if "upgrade" not in timeouts:
            raise SystemExit("cd.yml: helm upgrade without --timeout")
        if case == "pending":
            if "rollback" not in calls or calls.index("rollback") > calls.index("upgrade"):
                raise SystemExit(
                    f"cd.yml: a pending-upgrade release is not rolled back first: {calls}"
                )
        elif calls.index("upgrade") > 0 and "rollback" in calls[: calls.index("upgrade")]:
            raise SystemExit(f"cd.yml ({case}): rolled back a healthy release: {calls}")
        if case == "test-fails":
            if failed_step is None:
                raise SystemExit("cd.yml: the job succeeds although helm test failed")
            if "test" not in calls or "rollback" not in calls[calls.index("test") :]:
                raise SystemExit(f"cd.yml: a failed helm test is not rolled back: {calls}")
            print(f"cd.yml, helm test fails: {' -> '.join(calls)}, then the job fails")
        if case == "pending":
            print(f"cd.yml, release left pending-upgrade: {' -> '.join(calls)}")
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
        if case != "set":
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
        if deadline is None or deadline >= timeouts["upgrade"]:
            raise SystemExit(
                f"migrate Job activeDeadlineSeconds {deadline} is not below helm --timeout "
                f"{timeouts['upgrade']}s"
            )
        print(
            f"cd.yml, HELM_VALUES set: rendered {len(docs)} objects, image {image}, "
            f"migrate deadline {deadline}s < --timeout {timeouts['upgrade']}s"
        )
    # Worst case, each call at its limit: the unlock, the upgrade, --atomic's rollback (with the
    # upgrade's --timeout), the test and the rollback after the failed test.
    upgrade = dict(limits["set"])["upgrade"]
    pending = sum(t for _, t in limits["pending"])
    failed = limits["test-fails"]
    after_test = sum(t for _, t in failed[[c for c, _ in failed].index("test") + 1 :])
    worst = pending + upgrade + after_test
    limit = int(job["timeout-minutes"]) * 60
    # Installing helm and the checkout take about a minute: keep two in hand.
    if limit < worst + 120:
        raise SystemExit(
            f"cd.yml deploy timeout-minutes {limit // 60} is below the worst case of its helm "
            f"calls ({worst}s, unlock + upgrade + --atomic rollback + test + rollback) + 2m"
        )
    print(f"cd.yml deploy job limit {limit}s >= worst case {worst}s + 120s")


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


def _labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _pods(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """(object, pod labels) of every object of `docs` that makes pods."""
    for doc in docs:
        if doc["kind"] in {"Deployment", "Job"}:
            yield doc, doc["spec"]["template"]["metadata"].get("labels", {})
        elif doc["kind"] == "Pod":
            yield doc, doc["metadata"].get("labels", {})


def _annotations(doc: dict[str, Any]) -> dict[str, str]:
    return doc["metadata"].get("annotations") or {}


def chart_v3(root: Path, helm: str) -> None:
    """Rendered properties of issue 25 (platform v3), each tied to one of its defects."""
    failures: list[str] = []
    base = ["--set", "existingSecret=duka-env"]

    def render(*args: str, apis: bool = True, namespace: str = "duka") -> list[dict[str, Any]]:
        result = _render(helm, root, *args, apis=apis, namespace=namespace)
        if result.returncode:
            failures.append(f"render {' '.join(args)} failed: {result.stderr.strip()[-300:]}")
            return []
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    def expect_refusal(why: str, needle: str, *args: str) -> None:
        result = _render(helm, root, *args)
        if result.returncode == 0 or needle not in result.stderr:
            failures.append(f"{why}: render did not fail naming {needle!r}: {result.stderr[-300:]}")

    # (4) DATABASE_URL and REDIS_URL are required at render when the chart makes the Secret.
    keys = ["--set", "secrets.DJANGO_SECRET_KEY=x", "--set", "secrets.OIDC_RSA_PRIVATE_KEY=y"]
    expect_refusal("chart Secret without DATABASE_URL", "secrets.DATABASE_URL", *keys)
    expect_refusal(
        "chart Secret without REDIS_URL",
        "secrets.REDIS_URL",
        *keys,
        "--set",
        "secrets.DATABASE_URL=postgres://u:p@db:5432/duka",
    )

    # (9) Cross-field and closed-object checks of the values.
    expect_refusal(
        "shutdown margin above the grace period",
        "shutdownMarginSeconds",
        *base,
        "--set",
        "worker.shutdownMarginSeconds=70",
    )
    for component in ("web", "worker"):
        for value in ("0", "0%"):
            expect_refusal(
                f"{component}.pdb.maxUnavailable={value} (blocks every drain)",
                "maxUnavailable",
                *base,
                "--set-string" if value.endswith("%") else "--set",
                f"{component}.pdb.maxUnavailable={value}",
            )
    expect_refusal(
        "misspelt probe field",
        "timeoutSecond",
        *base,
        "--set",
        "web.readinessProbe.timeoutSecond=3",
    )
    expect_refusal(
        "misspelt httpGet field", "pth", *base, "--set", "worker.livenessProbe.httpGet.pth=/x"
    )

    # (2) migrations.mode=job: no Helm hook (Argo CD would run it as PreSync, before the Secrets
    # of the same sync exist), a sync-wave before the Deployments', the release's own Secret.
    hook_docs = render(*base)
    job = next((d for d in hook_docs if d["kind"] == "Job"), {"metadata": {}})
    if "pre-install" not in _annotations(job).get("helm.sh/hook", ""):
        failures.append("migrations.mode=hook (default): the migrate Job is not a pre-install hook")
    job_docs = render(*base, "--set", "migrations.mode=job")
    for doc in job_docs:
        hook = _annotations(doc).get("helm.sh/hook")
        if hook and hook != "test":
            failures.append(f"mode job: {doc['kind']} {doc['metadata']['name']} is a {hook} hook")
    jobs = [d for d in job_docs if d["kind"] == "Job"]
    if len(jobs) != 1:
        failures.append(f"mode job: {len(jobs)} Jobs rendered")
    else:
        job = jobs[0]
        wave = _annotations(job).get("argocd.argoproj.io/sync-wave")
        if wave is None:
            failures.append("mode job: the migrate Job has no argocd.argoproj.io/sync-wave")
        else:
            for doc in job_docs:
                if doc["kind"] == "Deployment":
                    later = _annotations(doc).get("argocd.argoproj.io/sync-wave")
                    if later is None or int(later) <= int(wave):
                        failures.append(
                            f"mode job: Deployment {doc['metadata']['name']} wave {later} "
                            f"is not after the Job's {wave}"
                        )
        spec = job["spec"]["template"]["spec"]
        refs = [
            e["secretRef"]["name"] for e in spec["containers"][0]["envFrom"] if "secretRef" in e
        ]
        if refs != ["duka-env"]:
            failures.append(f"mode job: the Job reads Secret {refs}, not existingSecret duka-env")
        if spec.get("serviceAccountName") != "duka":
            failures.append(f"mode job: the Job runs as {spec.get('serviceAccountName')}, not duka")
        other = render(*base, "--set", "migrations.mode=job", "--set", "image.tag=other")
        names = {d["metadata"]["name"] for d in other if d["kind"] == "Job"}
        if job["metadata"]["name"] in names:
            failures.append("mode job: a new image keeps the Job name (its template is immutable)")

    # (3) Default-deny namespaces: every pod of the chart (the migrate Job and the `helm test`
    # pod included) is selected by a policy of the chart that allows it egress; in hook mode the
    # migrate Job's policy is itself a hook created before the Job.
    for case, args in (
        ("hook mode", base),
        ("job mode", [*base, "--set", "migrations.mode=job"]),
        ("egress listed", ["-f", str(root / "helm/duka/ci/all-on-values.yaml")]),
    ):
        docs = render(*args)
        policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
        for obj, labels in _pods(docs):
            mine = [
                p
                for p in policies
                if _labels_match(p["spec"]["podSelector"].get("matchLabels", {}), labels)
            ]
            egress = [
                p
                for p in mine
                if "Egress" in p["spec"].get("policyTypes", []) and p["spec"].get("egress")
            ]
            where = f"{case}: {obj['kind']} {obj['metadata']['name']}"
            if not egress:
                failures.append(f"{where}: no NetworkPolicy of the chart allows its egress")
                continue
            hook = _annotations(obj).get("helm.sh/hook", "")
            if "pre-install" in hook:
                weight = int(_annotations(obj).get("helm.sh/hook-weight", "0"))
                early = [
                    p
                    for p in egress
                    if "pre-install" in _annotations(p).get("helm.sh/hook", "")
                    and int(_annotations(p).get("helm.sh/hook-weight", "0")) < weight
                ]
                if not early:
                    failures.append(f"{where}: its NetworkPolicy is not a hook created before it")
            if obj["kind"] == "Pod":  # the helm test pod reaches the web pods
                targets = [
                    peer.get("podSelector", {})
                    .get("matchLabels", {})
                    .get("app.kubernetes.io/component")
                    for p in egress
                    for rule in p["spec"]["egress"]
                    for peer in rule.get("to", [])
                ]
                if "web" not in targets and not any(
                    rule == {} for p in egress for rule in p["spec"]["egress"]
                ):
                    failures.append(f"{where}: its NetworkPolicy does not allow the web pods")

    # (5) Worker scaling: autoscaling.enabled alone scales on both queues' backlog, no CPU; the
    # External metric is the adapter's max, not the raw per-pod gauge an adapter would sum.
    docs = render(*base, "--set", "worker.autoscaling.enabled=true")
    hpa = next(
        (
            d
            for d in docs
            if d["kind"] == "HorizontalPodAutoscaler" and d["metadata"]["name"] == "duka-worker"
        ),
        None,
    )
    if hpa is None:
        failures.append("worker.autoscaling.enabled=true renders no worker HPA")
    else:
        metrics = hpa["spec"]["metrics"]
        if any(m["type"] == "Resource" for m in metrics):
            failures.append("worker.autoscaling.enabled=true alone still scales on CPU")
        external = [m["external"] for m in metrics if m["type"] == "External"]
        queues = {m["metric"]["selector"]["matchLabels"].get("queue") for m in external}
        if queues != {"sms", "webhooks"}:
            failures.append(
                f"worker HPA watches queues {sorted(q or '' for q in queues)}, not sms and webhooks"
            )
        names = {m["metric"]["name"] for m in external}
        deploy_doc = (root / "docs/deploy.md").read_text()
        for name in names:
            if (
                name == "duka_queue_depth"
                or f"{name}" not in deploy_doc
                or "max by (namespace, job, queue)" not in deploy_doc
            ):
                failures.append(
                    f"worker HPA metric {name}: not an adapter-side max (docs/deploy.md must give "
                    "the prometheus-adapter rule `max by (namespace, job, queue)` for it)"
                )
    keda = render("-f", str(root / "helm/duka/ci/keda-values.yaml"))
    scaled = [d for d in keda if d["kind"] == "ScaledObject"]
    queries = [t["metadata"]["query"] for d in scaled for t in d["spec"]["triggers"]]
    if not all(q.startswith("max(") for q in queries) or not all(
        any(f'queue="{queue}"' in q for q in queries) for queue in ("sms", "webhooks")
    ):
        failures.append(f"KEDA triggers {queries}: not max() over both sms and webhooks")

    # Capability checks: the CRD objects only where the cluster serves their API.
    for values, kinds in (
        ("all-on-values.yaml", {"ServiceMonitor", "PrometheusRule"}),
        ("keda-values.yaml", {"ScaledObject"}),
    ):
        args = ["-f", str(root / "helm/duka/ci" / values)]
        without = {d["kind"] for d in render(*args, apis=False)} & kinds
        with_apis = {d["kind"] for d in render(*args)} & kinds
        if without:
            failures.append(
                f"{values}: {sorted(without)} rendered for a cluster without their CRDs"
            )
        if with_apis != kinds:
            failures.append(
                f"{values}: {sorted(kinds - with_apis)} missing although their API is served"
            )

    # (8) Alerts scoped to the release; DukaMetricsAbsent only with the ServiceMonitor.
    rules_args = ["-f", str(root / "helm/duka/ci/all-on-values.yaml")]
    for namespace in ("duka", "staging"):
        docs = render(*rules_args, namespace=namespace)
        rule = next((d for d in docs if d["kind"] == "PrometheusRule"), {"spec": {"groups": []}})
        scope = f'namespace="{namespace}"'
        for group in rule["spec"]["groups"]:
            for item in group["rules"]:
                expr = item["expr"]
                bare = re.findall(r"\b((?:duka|django)_[a-z0-9_]+)\b(?!\{)", expr)
                selectors = re.findall(r"\b(?:duka|django|up)[a-z0-9_]*\{([^}]*)\}", expr)
                unscoped = [s for s in selectors if scope not in s or "job=" not in s]
                if bare or unscoped or not selectors:
                    failures.append(
                        f"{namespace}: {item.get('alert', item.get('record'))} matches other "
                        f"releases (selectors without {scope} and job): {expr.strip()[:160]}"
                    )
    no_sm = render(*rules_args, "--set", "metrics.serviceMonitor.enabled=false")
    alerts = {
        item.get("alert")
        for d in no_sm
        if d["kind"] == "PrometheusRule"
        for group in d["spec"]["groups"]
        for item in group["rules"]
    }
    if "DukaMetricsAbsent" in alerts:
        failures.append(
            "DukaMetricsAbsent rendered without the ServiceMonitor: it would fire forever"
        )

    # (8) The dashboard's 5xx panel leaves probes and scrapes out, like the alert.
    dashboard = json.loads((root / "helm/duka/files/dashboard.json").read_text())
    for panel in _panels(dashboard.get("panels", [])):
        if "5xx" in panel.get("title", ""):
            for target in panel.get("targets", []):
                for selector in re.findall(r"\{([^}]*)\}", target["expr"]):
                    if not all(
                        v in selector for v in ("healthz", "readyz", "prometheus-django-metrics")
                    ):
                        failures.append(
                            f"panel {panel['title']!r}: a selector counts probes/scrapes: {{{selector}}}"
                        )

    # Issue 26: the ingress routes /admin (the back-office) unless told not to.
    ingress = [*base, "--set", "ingress.enabled=true", "--set", "ingress.hosts={duka.example.com}"]

    def routed(*args: str) -> set[str]:
        return {
            path["path"]
            for doc in render(*ingress, *args)
            if doc["kind"] == "Ingress"
            for rule in doc["spec"]["rules"]
            for path in rule["http"]["paths"]
        }

    if "/admin" not in routed():
        failures.append("ingress: /admin is not routed by default")
    if "/admin" in routed("--set", "ingress.admin=false"):
        failures.append("ingress.admin=false: /admin is still routed")
    if "/admin" in routed("--set-string", "config.ADMIN_ENABLED=0"):
        failures.append("config.ADMIN_ENABLED=0: /admin is still routed")
    if not {"/api", "/o", "/static"} <= routed("--set", "ingress.admin=false"):
        failures.append("ingress.admin=false: the API's paths went with /admin")

    if failures:
        raise SystemExit("platform v3 invariants violated:\n  " + "\n  ".join(failures))
    print(f"platform v3 chart invariants hold ({shlex.quote(helm)})")


CI_SHIM = """#!/usr/bin/env bash
# Stand-in for a tool .ci/tests calls: logs its argv; psql answers SHOW hba_file.
args="$*"
printf '%s %s\\n' "$(basename "$0")" "${args//$'\\n'/ }" >>"$SHIM_LOG"
case "$(basename "$0") $*" in
  "psql "*"SHOW hba_file"*) echo "$SHIM_HBA" ;;
  sudo*) exec "$@" ;;
esac
exit 0
"""
CI_SHIMMED = ("uv", "npm", "docker", "psql", "pg_isready", "sudo", "apt-get", "redis-cli")


def _ci_commands(root: Path, out: Path, script: str, env: dict[str, str]) -> list[str]:
    """The commands `script` runs (bash, from the repository root) with CI_SHIMMED logging."""
    out.mkdir(parents=True, exist_ok=True)
    shims = out / "bin"
    shims.mkdir(exist_ok=True)
    for name in CI_SHIMMED:
        (shims / name).write_text(CI_SHIM)
        (shims / name).chmod(0o755)
    log, hba = out / "commands.log", out / "pg_hba.conf"
    log.write_text("")
    hba.write_text("local all all trust\n")
    result = subprocess.run(  # noqa: S603 - the repository's own scripts
        ["bash", "-e", "-c", script],  # noqa: S607
        cwd=root,
        env={
            "PATH": f"{shims}:/usr/bin:/bin",
            "HOME": str(out),
            "SHIM_LOG": str(log),
            "SHIM_HBA": str(hba),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode:
        raise SystemExit(f"{script!r} failed under shims:\n{result.stdout}{result.stderr}")
    commands = log.read_text().splitlines()
    if "host replication" in hba.read_text():
        commands.append("(pg_hba.conf: host replication entry added)")
    return commands


def ci_run(root: Path, out: Path) -> list[str]:
    """Run ci.yml's test job steps and .ci/run's `.ci/tests` with the external tools shimmed,
    and compare what they run: the same test command, npm ci, the replication entry."""
    workflow = yaml.safe_load((root / ".github/workflows/ci.yml").read_text())
    job = workflow["jobs"]["test"]
    samples = {
        "steps.python.outputs.python-path": "/usr/bin/python3",
        "job.services.postgres.id": "0123abcd-postgres",
        "matrix.python-version": "3.11",
        "env.UV_VERSION": "0.13.9",
    }

    def value(text: Any) -> str:
        def sample(match: re.Match[str]) -> str:
            if match.group(1) not in samples:
                raise SystemExit(f"ci.yml test job: no sample for ${{{{ {match.group(1)} }}}}")
            return samples[match.group(1)]

        return re.sub(r"\$\{\{\s*(.+?)\s*\}\}", sample, str(text))

    # A scratch checkout: the scripts, and the OpenID provider's folder that `npm ci` runs in
    # (the real tests/ may be absent, e.g. in the self-test's copy of the artifacts).
    sandbox = out / "repo"
    shutil.rmtree(sandbox, ignore_errors=True)
    shutil.copytree(root / ".ci", sandbox / ".ci")
    (sandbox / "tests/oidc_provider").mkdir(parents=True)
    job_env = {k: value(v) for k, v in job.get("env", {}).items()}
    github: list[str] = []
    for index, step in enumerate(job["steps"]):
        if "run" not in step:
            continue
        env = {**job_env, **{k: value(v) for k, v in step.get("env", {}).items()}}
        github += _ci_commands(sandbox, out / f"github-{index}", step["run"], env)
    local = _ci_commands(sandbox, out / "local", ".ci/tests", {})
    failures = []

    def tests(commands: list[str]) -> list[str]:
        return [c for c in commands if c.startswith("uv run pytest")]

    if not tests(local) or tests(github) != tests(local):
        failures.append(f"test commands differ: CI {tests(github)}, .ci/run {tests(local)}")
    for name, commands in (("CI", github), (".ci/run", local)):
        if "npm ci --no-audit --no-fund --ignore-scripts" not in commands:
            failures.append(f"{name} does not run npm ci for the OpenID provider")
    if not any(
        c.startswith("docker exec 0123abcd-postgres") and "host replication" in c for c in github
    ):
        failures.append("CI adds no replication entry to the PostgreSQL service container")
    if "(pg_hba.conf: host replication entry added)" not in local:
        failures.append(".ci/run adds no replication entry to the local cluster")
    if failures:
        raise SystemExit(
            "ci.yml's test job and .ci/run differ when run:\n  " + "\n  ".join(failures)
        )
    return tests(github)


# .ci/run commands whose CI twin differs on purpose: in CI the advisory database must answer.
PARITY_EQUIVALENTS = {"bash .ci/audit --allow-offline": "bash .ci/audit"}
RUN_COMMAND = re.compile(r"^(?:uv |\.ci/|bash \.ci/)")


def ci_parity(root: Path, out: Path) -> None:
    """The GitHub CI workflow runs every command of .ci/run (lint, deploy check, the shared test
    script, audit, deploy validation), the test job runs the test command through .ci/tests with
    what it needs to skip nothing, and the coverage gate is defined once (pyproject.toml)."""
    import tomllib

    failures: list[str] = []
    run_lines = [line.strip() for line in (root / ".ci/run").read_text().splitlines()]
    commands = [
        line
        for line in run_lines
        if RUN_COMMAND.match(line) and not line.startswith("uv --version")
    ]
    workflow = yaml.safe_load((root / ".github/workflows/ci.yml").read_text())
    jobs = workflow["jobs"]
    steps_by_job = {
        name: [step.get("run", "") for step in job.get("steps", [])] for name, job in jobs.items()
    }
    ci_lines = {
        line.strip() for runs in steps_by_job.values() for run in runs for line in run.splitlines()
    }
    for command in commands:
        wanted = PARITY_EQUIVALENTS.get(command, command)
        if wanted not in ci_lines:
            failures.append(f".ci/run runs `{command}`; no step of ci.yml runs `{wanted}`")
    for line in run_lines:
        if not line.startswith(("#", "echo")) and re.search(
            r"apt-get install|apt_install|npm (ci|install)", line
        ):
            failures.append(
                f".ci/run installs a test prerequisite itself ({line!r}): do it in .ci/tests, "
                "which the GitHub test job runs too"
            )
    if ".ci/tests" not in commands:
        failures.append(".ci/run does not run the shared test script .ci/tests")
    if any("pytest" in line for line in run_lines if not line.startswith("#")):
        failures.append(".ci/run calls pytest itself instead of through .ci/tests")
    tests_path = root / ".ci/tests"
    tests = tests_path.read_text() if tests_path.exists() else ""
    for needle, why in (
        ("(cd tests/oidc_provider && npm ci ", "npm ci for tests/oidc_provider"),
        ("host replication", "the replication entry for the read-replica standby"),
        ("PG_CONTAINER", "the replication entry inside a service container"),
        ('uv run pytest "$@" --cov', "the README's test command"),
    ):
        if needle not in tests:
            failures.append(f".ci/tests lacks {why} ({needle!r})")
    test_job = jobs.get("test", {})
    runs = steps_by_job.get("test", [])
    if ".ci/tests" not in [run.strip() for run in runs]:
        failures.append("ci.yml's test job does not run .ci/tests")
    if any("pytest" in run for runs_ in steps_by_job.values() for run in runs_):
        failures.append("ci.yml runs pytest outside .ci/tests (a second, different test command)")
    test_env = next(
        (
            s.get("env", {})
            for s in test_job.get("steps", [])
            if s.get("run", "").strip() == ".ci/tests"
        ),
        {},
    )
    if "job.services.postgres.id" not in str(test_env.get("PG_CONTAINER", "")):
        failures.append("the test job gives .ci/tests no PG_CONTAINER: the standby tests skip")
    postgres = test_job.get("services", {}).get("postgres", {})
    if postgres.get("env", {}).get("POSTGRES_HOST_AUTH_METHOD") != "trust":
        failures.append("the test job's PostgreSQL is not trust (pg_basebackup has no password)")
    if not any("setup-node" in s.get("uses", "") for s in test_job.get("steps", [])):
        failures.append("the test job sets up no node: the OpenID provider tests skip")
    text = "\n".join(p.read_text() for p in sorted((root / ".github/workflows").glob("*.yml")))
    if re.search(r"cov-fail-under|COVERAGE_FAIL_UNDER|fail_under", text):
        failures.append("a workflow defines a coverage gate of its own (pyproject.toml has it)")
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    if not pyproject.get("tool", {}).get("coverage", {}).get("report", {}).get("fail_under"):
        failures.append("pyproject.toml has no [tool.coverage.report] fail_under")
    if failures:
        raise SystemExit("ci.yml and .ci/run differ:\n  " + "\n  ".join(failures))
    print(f"ci.yml runs the {len(commands)} commands of .ci/run: " + "; ".join(commands))
    ran = ci_run(root, out)
    print(f"run with shimmed tools, both run {ran}, npm ci and the replication entry")


DIGEST_REF = re.compile(r"^[\w./:-]+:[\w.-]+@sha256:[0-9a-f]{64}$")


def pins(root: Path) -> None:
    """Issue 25 item 10: every image is pinned by tag and digest (Dockerfile FROM, workflow
    services and containers, compose.yaml), uv by hash, Renovate configured to keep all of them,
    and the workflows scan and sign what they publish."""
    failures: list[str] = []
    refs: list[tuple[str, str]] = []
    stages: set[str] = set()
    for number, line in enumerate((root / "Dockerfile").read_text().splitlines(), 1):
        match = re.match(r"^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if match:
            if match.group(1) not in stages:
                refs.append((f"Dockerfile:{number}", match.group(1)))
            if match.group(2):
                stages.add(match.group(2))
        match = re.match(r"^COPY\s+--from=(\S+)", line)
        if match and match.group(1) not in stages:
            refs.append((f"Dockerfile:{number} COPY --from", match.group(1)))
    dockerfile = (root / "Dockerfile").read_text()
    if "--require-hashes" not in dockerfile:
        failures.append("Dockerfile: uv is not installed by hash (pip --require-hashes)")

    def images(node: Any, where: str) -> Iterator[tuple[str, str]]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in {"image", "container"} and isinstance(value, str):
                    yield where, value
                else:
                    yield from images(value, f"{where}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from images(value, f"{where}[{index}]")

    for path in sorted((root / ".github/workflows").glob("*.yml")):
        refs += list(images(yaml.safe_load(path.read_text()).get("jobs", {}), path.name))
    compose_path = root / "compose.yaml"
    compose = yaml.safe_load(compose_path.read_text()) if compose_path.exists() else {}
    for name, service in compose.get("services", {}).items():
        if "image" in service and "build" not in service:
            refs.append((f"compose.yaml services.{name}", service["image"]))
    for where, ref in refs:
        if not DIGEST_REF.match(ref):
            failures.append(f"{where}: {ref} is not pinned as name:tag@sha256:<64 hex>")

    renovate = root / "renovate.json"
    if not renovate.exists():
        failures.append("no renovate.json: nothing proposes new versions and digests")
    else:
        config = json.loads(renovate.read_text())
        for preset in ("docker:pinDigests", "helpers:pinGitHubActionDigests"):
            if preset not in config.get("extends", []):
                failures.append(f"renovate.json does not extend {preset}")
        managed = json.dumps(config.get("customManagers", []))
        if "Dockerfile" not in managed or "renovate: datasource" not in managed:
            failures.append("renovate.json has no regex manager for the Dockerfile's ARG versions")
        if "# renovate: datasource=pypi depName=uv" not in dockerfile:
            failures.append("Dockerfile: UV_VERSION lacks its `# renovate:` annotation")

    ci = (root / ".github/workflows/ci.yml").read_text()
    if not re.search(r"trivy image --exit-code 1", ci):
        failures.append("ci.yml: no vulnerability scan of the image that fails the build")
    if "cosign sign" not in ci or "id-token: write" not in ci:
        failures.append("ci.yml: the pushed image is not signed (cosign keyless, id-token: write)")
    cd = (root / ".github/workflows/cd.yml").read_text()
    if "cosign verify" not in cd:
        failures.append("cd.yml: deploys without verifying the image's signature")
    release_path = root / ".github/workflows/release.yml"
    release = release_path.read_text() if release_path.exists() else ""
    for needle, why in (
        ("helm push", "the chart is not published as an OCI artifact"),
        ("cosign sign", "the chart is not signed"),
        ("cosign attest", "the chart's SBOM is not attested"),
    ):
        if needle not in release:
            failures.append(f"release.yml: {why} ({needle!r})")
    if failures:
        raise SystemExit("pins and supply chain:\n  " + "\n  ".join(failures))
    print(f"{len(refs)} image references pinned by digest: " + ", ".join(r for _, r in refs))


def compose_check(root: Path) -> None:
    """compose.yaml runs the production shape: release (migrations) before web and worker,
    PostgreSQL and Redis healthy first, Prometheus only under a profile."""
    failures: list[str] = []
    compose = yaml.safe_load((root / "compose.yaml").read_text())
    services = compose.get("services", {})
    for name in ("web", "worker", "release", "postgres", "redis"):
        if name not in services:
            failures.append(f"compose.yaml has no {name} service")
    for name in ("web", "worker"):
        depends = services.get(name, {}).get("depends_on", {})
        if not isinstance(depends, dict) or depends.get("release", {}).get("condition") != (
            "service_completed_successfully"
        ):
            failures.append(f"compose.yaml: {name} does not wait for release to complete")
        if "redis" not in depends:
            failures.append(f"compose.yaml: {name} does not wait for redis")
    release = services.get("release", {})
    if "migrate" not in release.get("command", []):
        failures.append("compose.yaml: release does not run the migrations")
    if services.get("release", {}).get("depends_on", {}).get("postgres", {}).get("condition") != (
        "service_healthy"
    ):
        failures.append("compose.yaml: release does not wait for a healthy PostgreSQL")
    if "prometheus" in services and "monitoring" not in services["prometheus"].get("profiles", []):
        failures.append("compose.yaml: Prometheus is not optional (profile monitoring)")
    for name in ("web", "worker", "release"):
        service = services.get(name, {})
        env = service.get("environment", {})
        if not (service.get("read_only") and "DATABASE_URL" in env and "REDIS_URL" in env):
            failures.append(
                f"compose.yaml: {name} is not read-only with DATABASE_URL and REDIS_URL"
            )
    if failures:
        raise SystemExit("compose.yaml:\n  " + "\n  ".join(failures))
    print(f"compose.yaml: {', '.join(services)}")


ANSIBLE_IMAGE_CASES = (
    # (duka_image, SENTRY_RELEASE it must give, or None: the role must refuse it)
    ("ghcr.io/example/duka@sha256:" + "ab" * 32, "sha256:" + "ab" * 32),
    ("registry.example.com:5000/team/duka:" + "0123456789" * 4, "0123456789" * 4),
    ("registry.example.com:5000/duka:1.2.3@sha256:" + "cd" * 32, "1.2.3"),
    ("ghcr.io/example/duka:0.1.0", "0.1.0"),
    ("ghcr.io/example/duka:latest", None),
    ("registry.example.com:5000/duka", None),
)
ANSIBLE_PROBE = """- name: Image checks of the duka role
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: The role's image checks
      ansible.builtin.include_role:
        name: duka
        tasks_from: image.yml
    - name: Report
      ansible.builtin.debug:
        msg: "SENTRY_RELEASE=[{{ duka_sentry_release }}]"
"""


def ansible_role(root: Path, out: Path) -> None:
    """Issue 25 item 11 (and 7): the restart handler drains and restarts the worker, then the
    web, one at a time with a health wait between; the image must be immutable; SENTRY_RELEASE
    is the tag, else the digest, whatever the registry's port."""
    failures: list[str] = []
    role = root / "ansible/roles/duka"
    handlers = yaml.safe_load((role / "handlers/main.yml").read_text()) or []
    tasks: list[dict[str, Any]] = []
    for handler in handlers:
        include = handler.get("ansible.builtin.include_tasks") or handler.get("include_tasks")
        if include:
            tasks += yaml.safe_load((role / "tasks" / include).read_text()) or []
        else:
            tasks.append(handler)

    def restarts(task: dict[str, Any]) -> list[str]:
        module = task.get("ansible.builtin.systemd_service") or task.get("ansible.builtin.systemd")
        if not module or module.get("state") != "restarted":
            return []
        names = task.get("loop") or [module.get("name")]
        return [str(name) for name in names]

    order = [(index, unit) for index, task in enumerate(tasks) for unit in restarts(task)]
    if any(len(restarts(task)) > 1 for task in tasks):
        failures.append("a handler task restarts web and worker together")
    units = [unit for _, unit in order]
    if sorted(units) != ["duka-web.service", "duka-worker.service"]:
        failures.append(f"the handler restarts {units}, not the worker and the web once each")
    else:
        positions = dict((unit, index) for index, unit in order)
        worker, web = positions["duka-worker.service"], positions["duka-web.service"]
        between = tasks[min(worker, web) + 1 : max(worker, web)]
        if worker > web:
            failures.append("the web restarts before the worker")
        if not any("ansible.builtin.uri" in task and "until" in task for task in between):
            failures.append("no health wait between the two restarts")
        if not any(
            "ansible.builtin.wait_for" in task or "drain" in task.get("name", "").lower()
            for task in between
        ):
            failures.append("the web is not drained before its restart")
        if not any("ansible.builtin.uri" in task for task in tasks[web + 1 :]):
            failures.append("no readiness wait after the web's restart")

    out.mkdir(parents=True, exist_ok=True)
    (out / "probe.yml").write_text(ANSIBLE_PROBE)
    env = {
        **os.environ,
        "ANSIBLE_ROLES_PATH": str(root / "ansible/roles"),
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
        "PYTHONWARNINGS": "ignore",
    }
    for image, expected in ANSIBLE_IMAGE_CASES:
        result = subprocess.run(  # noqa: S603 - ansible-playbook of validate-deploy's venv
            [
                str(Path(sys.executable).parent / "ansible-playbook"),
                "-i",
                "localhost,",
                str(out / "probe.yml"),
                "-e",
                json.dumps({"duka_image": image}),
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        found = re.search(r"SENTRY_RELEASE=\[([^\]]*)\]", result.stdout)
        if expected is None:
            if result.returncode == 0:
                failures.append(f"duka_image {image}: a moving tag is accepted")
        elif result.returncode or not found:
            failures.append(f"duka_image {image}: refused: {result.stdout[-300:]}")
        elif found.group(1) != expected:
            failures.append(
                f"duka_image {image}: SENTRY_RELEASE {found.group(1)!r}, not {expected!r}"
            )
    if failures:
        raise SystemExit("ansible role:\n  " + "\n  ".join(failures))
    print(
        f"ansible role: worker then web, one at a time; {len(ANSIBLE_IMAGE_CASES)} image references"
    )


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[0] == "dashboard-rules":
        dashboard_rules(argv[1], argv[2])
    elif len(argv) == 4 and argv[0] == "split-rendered":
        split_rendered(argv[1], argv[2], argv[3])
    elif len(argv) == 5 and argv[0] == "cd-run":
        cd_run(Path(argv[1]), argv[2], argv[3], Path(argv[4]))
    elif len(argv) == 4 and argv[0] == "chart-invariants":
        chart_invariants(Path(argv[1]), argv[2], Path(argv[3]))
    elif len(argv) == 3 and argv[0] == "ansible-role":
        ansible_role(Path(argv[1]), Path(argv[2]))
    elif len(argv) == 2 and argv[0] == "pins":
        pins(Path(argv[1]))
    elif len(argv) == 2 and argv[0] == "compose":
        compose_check(Path(argv[1]))
    elif len(argv) == 3 and argv[0] == "ci-parity":
        ci_parity(Path(argv[1]), Path(argv[2]))
    elif len(argv) == 3 and argv[0] == "chart-v3":
        chart_v3(Path(argv[1]), argv[2])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
