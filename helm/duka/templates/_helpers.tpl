{{/* Chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "duka.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name; leaves room for the "-worker-metrics" suffix. */}}
{{- define "duka.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "duka.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The image tag doubles as the app version label and Sentry release. */}}
{{- define "duka.version" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "duka.labels" -}}
helm.sh/chart: {{ include "duka.chart" . }}
app.kubernetes.io/name: {{ include "duka.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "duka.version" . | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: duka
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component; call with (dict "root" $ "component" "web"). */}}
{{- define "duka.selectorLabels" -}}
app.kubernetes.io/name: {{ include "duka.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "duka.componentLabels" -}}
{{ include "duka.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "duka.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "duka.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "duka.secretName" -}}
{{- default (include "duka.fullname" .) .Values.existingSecret }}
{{- end }}

{{- define "duka.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "duka.version" .) }}
{{- end }}
{{- end }}

{{/* Public URL: explicit config, else the first ingress host (https when TLS is configured). */}}
{{- define "duka.publicUrl" -}}
{{- if .Values.config.DUKA_PUBLIC_URL }}
{{- .Values.config.DUKA_PUBLIC_URL }}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts }}
{{- printf "%s://%s" (ternary "https" "http" (gt (len .Values.ingress.tls) 0)) (first .Values.ingress.hosts) }}
{{- end }}
{{- end }}

{{/* Non-secret settings, without empty values (the app then applies its own default). */}}
{{- define "duka.configData" -}}
{{- range $key, $value := merge (dict) .Values.config .Values.extraConfig }}
{{- if and (ne $key "DUKA_PUBLIC_URL") (ne (toString $value) "") }}
{{ $key }}: {{ toString $value | quote }}
{{- end }}
{{- end }}
{{- with include "duka.publicUrl" . }}
DUKA_PUBLIC_URL: {{ . | quote }}
{{- end }}
{{- end }}

{{/*
Secret settings. DJANGO_SECRET_KEY and, with the built-in issuer, OIDC_RSA_PRIVATE_KEY are
generated once and then read back from the live Secret, so upgrades keep sessions and tokens valid.
*/}}
{{- define "duka.secretData" -}}
{{- $data := dict }}
{{- range $key, $value := .Values.secrets }}
{{- if $value }}
{{- $_ := set $data $key (toString $value) }}
{{- end }}
{{- end }}
{{- $missing := list }}
{{- if not (hasKey $data "DJANGO_SECRET_KEY") }}{{ $missing = append $missing "DJANGO_SECRET_KEY" }}{{ end }}
{{- if and (not .Values.config.OIDC_ISSUER) (not (hasKey $data "OIDC_RSA_PRIVATE_KEY")) }}{{ $missing = append $missing "OIDC_RSA_PRIVATE_KEY" }}{{ end }}
{{- if $missing }}
{{- $live := (lookup "v1" "Secret" .Release.Namespace (include "duka.fullname" .)).data | default dict }}
{{- range $key, $value := $live }}
{{- if not (hasKey $data $key) }}
{{- $_ := set $data $key (b64dec $value) }}
{{- end }}
{{- end }}
{{- /*
A key is generated only when `lookup` demonstrably reaches the cluster: every namespace has a
"default" ServiceAccount. Under `helm template` (Argo CD), `--dry-run` or into a namespace that
does not exist yet, lookup returns nothing, and a key generated there would change on every
render and invalidate every session and token.
*/}}
{{- $clusterReachable := lookup "v1" "ServiceAccount" .Release.Namespace "default" }}
{{- range $key := $missing }}
{{- if not (hasKey $data $key) }}
{{- if not $clusterReachable }}
{{- fail (printf "secrets.%s is empty and cannot be generated: `lookup` found no cluster (helm template, Argo CD, --dry-run, or namespace %q not created yet), so a generated key would change on every render and invalidate every token. Set existingSecret (a Secret you manage) or secrets.%s explicitly." $key $.Release.Namespace $key) }}
{{- end }}
{{- $_ := set $data $key (ternary (randAlphaNum 64) (genPrivateKey "rsa") (eq $key "DJANGO_SECRET_KEY")) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* Required settings: refused at render, not found after `helm --timeout`. */}}
{{- range $key := list "DATABASE_URL" "REDIS_URL" }}
{{- if not (hasKey $data $key) }}
{{- fail (printf "secrets.%s is required: set it, or set existingSecret to a Secret that holds %s (a Kubernetes deployment has no embedded database or in-process broker)" $key $key) }}
{{- end }}
{{- end }}
{{- range $key, $value := $data }}
{{ $key }}: {{ $value | b64enc | quote }}
{{- end }}
{{- end }}

{{/* DJANGO_ALLOWED_HOSTS: configured hosts, ingress hosts, Service DNS names, then the pod IP. */}}
{{- define "duka.allowedHosts" -}}
{{- $svc := printf "%s-web" (include "duka.fullname" .) }}
{{- $ns := .Release.Namespace }}
{{- $hosts := concat .Values.allowedHosts (ternary .Values.ingress.hosts (list) .Values.ingress.enabled) }}
{{- $hosts = concat $hosts (list "localhost" "127.0.0.1" $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns)) }}
{{- printf "%s,$(POD_IP)" (join "," (uniq $hosts)) }}
{{- end }}

{{/* Environment shared by web and worker (secrets and config come in via envFrom). */}}
{{- define "duka.env" -}}
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: DJANGO_ALLOWED_HOSTS
  value: {{ include "duka.allowedHosts" . | quote }}
- name: SENTRY_RELEASE
  value: {{ include "duka.version" . | quote }}
- name: METRICS_PORT
  value: {{ .Values.worker.metricsPort | quote }}
{{- include "duka.secretKeyEnv" . }}
{{- end }}

{{/* existingSecretKeys: variables read from a differently named key, or from another Secret. */}}
{{- define "duka.secretKeyEnv" -}}
{{- if .Values.existingSecret }}
{{- range $var, $ref := .Values.existingSecretKeys }}
- name: {{ $var }}
  valueFrom:
    secretKeyRef:
      {{- if kindIs "string" $ref }}
      name: {{ $.Values.existingSecret }}
      key: {{ $ref }}
      {{- else }}
      name: {{ $ref.name }}
      key: {{ $ref.key }}
      {{- end }}
{{- end }}
{{- end }}
{{- end }}

{{- define "duka.envFrom" -}}
- configMapRef:
    name: {{ include "duka.fullname" . }}
- secretRef:
    name: {{ include "duka.secretName" . }}
{{- end }}

{{- define "duka.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.volumes.tmpSizeLimit }}
- name: prometheus
  emptyDir:
    medium: Memory
    sizeLimit: {{ .Values.volumes.prometheusSizeLimit }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "duka.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: prometheus
  mountPath: /var/lib/duka/prometheus
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Scheduling fields of a component's pods; call with (dict "root" $ "component" "web").
Default spread: one replica per node and per zone where possible (ScheduleAnyway never blocks).
*/}}
{{- define "duka.scheduling" -}}
{{- $cfg := index .root.Values .component }}
{{- with $cfg.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $cfg.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $cfg.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $cfg.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $cfg.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml $cfg.topologySpreadConstraints | nindent 2 }}
{{- else if $cfg.defaultTopologySpread }}
topologySpreadConstraints:
  {{- range $key := list "kubernetes.io/hostname" "topology.kubernetes.io/zone" }}
  - maxSkew: 1
    topologyKey: {{ $key }}
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "duka.selectorLabels" $ | nindent 8 }}
    matchLabelKeys:
      - pod-template-hash
  {{- end }}
{{- end }}
{{- end }}

{{/* Pod spec fields every pod of the chart shares. */}}
{{- define "duka.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}

{{/*
Optional custom resources, rendered only where the cluster serves their API: Argo CD and
`helm install` know the cluster's APIs; `helm template` needs `--api-versions`.
*/}}
{{- define "duka.serviceMonitorEnabled" -}}
{{- if and .Values.metrics.serviceMonitor.enabled (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor") }}true{{ end }}
{{- end }}
{{- define "duka.prometheusRuleEnabled" -}}
{{- if and .Values.metrics.prometheusRule.enabled (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/PrometheusRule") }}true{{ end }}
{{- end }}
{{- define "duka.kedaEnabled" -}}
{{- if and .Values.worker.keda.enabled (.Capabilities.APIVersions.Has "keda.sh/v1alpha1/ScaledObject") }}true{{ end }}
{{- end }}

{{/* Argo CD sync-wave of the Deployments: after the migrate Job in migrations.mode=job. */}}
{{- define "duka.deploymentAnnotations" -}}
{{- if and .Values.migrations.enabled (eq .Values.migrations.mode "job") }}
annotations:
  argocd.argoproj.io/sync-wave: {{ add1 .Values.migrations.syncWave | quote }}
{{- end }}
{{- end }}

{{/*
Checks across values that values.schema.json cannot express; each fails the render with one line
naming the values, instead of a broken rollout found after `helm --timeout`.
*/}}
{{- define "duka.validate" -}}
{{- $w := .Values.worker }}
{{- if ge (int $w.shutdownMarginSeconds) (int $w.terminationGracePeriodSeconds) }}
{{- fail (printf "worker.shutdownMarginSeconds (%d) must be below worker.terminationGracePeriodSeconds (%d): the worker's --worker-shutdown-timeout would be %d ms" (int $w.shutdownMarginSeconds) (int $w.terminationGracePeriodSeconds) (mul (sub (int $w.terminationGracePeriodSeconds) (int $w.shutdownMarginSeconds)) 1000)) }}
{{- end }}
{{- if and $w.autoscaling.enabled (not $w.keda.enabled) (not (and $w.autoscaling.queueDepth.enabled $w.autoscaling.queueDepth.queues)) (not $w.autoscaling.targetCPUUtilizationPercentage) }}
{{- fail "worker.autoscaling.enabled needs worker.autoscaling.queueDepth (queues) or an explicit targetCPUUtilizationPercentage" }}
{{- end }}
{{- if .Values.existingSecret }}
{{- /* A live cluster (helm install/upgrade): the Secret must hold both, directly or mapped. */}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace .Values.existingSecret }}
{{- if $secret }}
{{- range $key := list "DATABASE_URL" "REDIS_URL" }}
{{- if and (not (hasKey ($secret.data | default dict) $key)) (not (hasKey $.Values.existingSecretKeys $key)) }}
{{- fail (printf "existingSecret %s has no key %s (and existingSecretKeys maps none)" $.Values.existingSecret $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Egress of web, worker and the migrate Job (networkpolicy.yaml). */}}
{{- define "duka.egressRules" -}}
{{- if .Values.networkPolicy.egress }}
# DNS, so that the hosts of DATABASE_URL, REDIS_URL and the gateway resolve.
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{ toYaml .Values.networkPolicy.egress }}
{{- else }}
# networkPolicy.egress is empty: all egress, explicitly (a default-deny policy would block it).
- {}
{{- end }}
{{- end }}
