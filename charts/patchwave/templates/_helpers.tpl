{{/* Chart name, 63 characters at most. */}}
{{- define "patchwave.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name if it contains the chart name, else `<release>-<chart>`. */}}
{{- define "patchwave.fullname" -}}
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

{{/* Name of the operator's Deployment, ClusterRole and Service. */}}
{{- define "patchwave.operatorName" -}}
{{- printf "%s-operator" (include "patchwave.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The operator's ServiceAccount. */}}
{{- define "patchwave.operatorServiceAccount" -}}
{{- default (include "patchwave.operatorName" .) .Values.operator.serviceAccount.name }}
{{- end }}

{{/* The leader Lease. */}}
{{- define "patchwave.leaseName" -}}
{{- default (include "patchwave.operatorName" .) .Values.operator.leaderElection.leaseName }}
{{- end }}

{{/* Namespace of the nodes' Assets. */}}
{{- define "patchwave.assetNamespace" -}}
{{- default .Release.Namespace .Values.nodeAgent.assetNamespace }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "patchwave.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "patchwave.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: patchwave
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of the operator pods (never change: Deployment selectors are immutable). */}}
{{- define "patchwave.operatorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "patchwave.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Selector labels of the node agent pods. */}}
{{- define "patchwave.nodeAgentSelectorLabels" -}}
app.kubernetes.io/name: {{ include "patchwave.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: node-agent
{{- end }}

{{/* An image reference: repository and tag, the tag defaulting to the appVersion. */}}
{{- define "patchwave.image" -}}
{{- $image := index . 0 }}
{{- $root := index . 1 }}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) }}
{{- end }}
