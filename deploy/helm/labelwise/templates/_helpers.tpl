{{- define "labelwise.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "labelwise.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end -}}

{{- define "labelwise.labels" -}}
{{ include "labelwise.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "labelwise.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "labelwise.probe" -}}
{{- if .root.Values.tls.enabled -}}
exec:
  command:
    - labelwise
    - health
    - --tls-ca
    - /etc/labelwise/tls/ca.crt
    - --server-name
    - {{ default (printf "%s.%s.svc" (include "labelwise.fullname" .root) .root.Release.Namespace) .root.Values.tls.probeServerName }}
    {{- if .service }}
    - --service
    - {{ .service }}
    {{- end }}
{{- else -}}
grpc:
  port: {{ .root.Values.ports.grpc }}
  {{- if .service }}
  service: {{ .service }}
  {{- end }}
{{- end -}}
{{- end -}}
