{{/*
Chart name, truncated to 63 characters (the DNS label limit for names).
*/}}
{{- define "flexgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: <release>-<chart>, or just <release> if it already contains the chart name.
*/}}
{{- define "flexgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version for the helm.sh/chart label.
*/}}
{{- define "flexgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels that select the operator pods. Never change these after a release: Deployment selectors are immutable.
*/}}
{{- define "flexgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flexgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Standard labels for every object of the chart.
*/}}
{{- define "flexgate.labels" -}}
helm.sh/chart: {{ include "flexgate.chart" . }}
{{ include "flexgate.selectorLabels" . }}
app.kubernetes.io/version: {{ include "flexgate.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: flexgate
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "flexgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "flexgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image tag: image.tag, else the chart's appVersion.
*/}}
{{- define "flexgate.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion | toString }}
{{- end }}

{{/*
Full image reference; a digest pins the image and wins over the tag.
*/}}
{{- define "flexgate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "flexgate.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
Namespace the operator's reconcile permissions are granted in when watchNamespace is set.
*/}}
{{- define "flexgate.watchNamespace" -}}
{{- .Values.watchNamespace | default "" | trim }}
{{- end }}

{{/*
Rules the operator needs on the resources it reconciles (shared by the ClusterRole and the namespaced Role).
Exactly what `flexgate run` calls, nothing more: tests/e2e/helm.rs records every call the operator makes with this
ServiceAccount's token and fails on a refused call and on a grant no call used. It never writes Secrets or the
objects' specs, never touches CRDs, and writes status only by server-side apply.
*/}}
{{- define "flexgate.reconcileRules" -}}
# Connections are only read from the watch cache.
- apiGroups: ["flexgate.dev"]
  resources: ["vendorconnections"]
  verbs: ["list", "watch"]
# Bindings: the cleanup finalizer is added by server-side apply and removed by a JSON patch of a fresh read.
- apiGroups: ["flexgate.dev"]
  resources: ["accessgroupbindings"]
  verbs: ["get", "list", "watch", "patch"]
# SiteMappings: read fresh before each sync (the saved mapping lives in status).
- apiGroups: ["flexgate.dev"]
  resources: ["sitemappings"]
  verbs: ["get", "list", "watch"]
# Status, by server-side apply.
- apiGroups: ["flexgate.dev"]
  resources: ["vendorconnections/status", "accessgroupbindings/status", "sitemappings/status"]
  verbs: ["patch"]
# Vendor credentials: read when a connection is used; watched (metadata only) so a rotated Secret applies at once.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
# events.k8s.io/v1 Events; an Event repeated within minutes is patched as a series.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/*
Operator container arguments built from values. The image's ENTRYPOINT is /flexgate.
*/}}
{{- define "flexgate.args" -}}
- run
- "--http-addr=0.0.0.0:{{ .Values.ports.http }}"
- "--webhook-addr=0.0.0.0:{{ .Values.ports.webhook }}"
- "--leader-election={{ .Values.leaderElection.enabled }}"
- "--log-format={{ .Values.logging.format }}"
{{- with include "flexgate.watchNamespace" . }}
- "--namespace={{ . }}"
{{- end }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/*
Fail early on value combinations that would deploy a broken operator.
*/}}
{{- define "flexgate.validateValues" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: without a leader, every replica would reconcile the same resources and fight over vendor state." }}
{{- end }}
{{- if not (has .Values.logging.format (list "json" "text")) }}
{{- fail (printf "logging.format must be \"json\" or \"text\", got %q" (toString .Values.logging.format)) }}
{{- end }}
{{- if eq (int .Values.ports.http) (int .Values.ports.webhook) }}
{{- fail "ports.http and ports.webhook must differ: the operator binds both." }}
{{- end }}
{{- end }}
