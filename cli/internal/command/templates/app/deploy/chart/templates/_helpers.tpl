{{/* Labels every object of the chart carries. */}}
{{- define "app.labels" -}}
app: {{ .Values.name }}
app.kubernetes.io/name: {{ .Values.name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The Pods' labels: app and version, what Istio selects on. */}}
{{- define "app.podLabels" -}}
app: {{ .Values.name }}
version: {{ .Values.version }}
{{- end -}}
