{{/*
The full name of the release's resources: release-chart, cut to 52 characters
so that suffixes such as "-operator" still fit Kubernetes' 63-character names.
*/}}
{{- define "gendoc.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "gendoc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on everything the chart creates. */}}
{{- define "gendoc.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 }}
app.kubernetes.io/name: {{ include "gendoc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The operator pod's selector. */}}
{{- define "gendoc.operatorSelector" -}}
app.kubernetes.io/name: {{ include "gendoc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "gendoc.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "gendoc.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* registry/repository:tag of one component ("operator", "service" or "converter"). */}}
{{- define "gendoc.image" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- printf "%s/%s:%s" $root.Values.images.registry (index $root.Values.images $component) (default $root.Chart.AppVersion $root.Values.images.tag) -}}
{{- end -}}

{{/* The namespaces the operator watches when operator.watch is "namespaces". */}}
{{- define "gendoc.watchedNamespaces" -}}
{{- if .Values.operator.namespaces -}}
{{- join "," .Values.operator.namespaces -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}
