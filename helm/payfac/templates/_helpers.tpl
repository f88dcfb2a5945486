{{/* Names and labels. */}}
{{- define "payfac.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "payfac.fullname" -}}
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

{{- define "payfac.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "payfac.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "payfac.selectorLabels" -}}
app.kubernetes.io/name: {{ include "payfac.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "payfac.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "payfac.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "payfac.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The non-secret config as TOML, without empty strings and nulls: the binary rejects unknown keys
but treats a present empty value as a value, so "unset" must mean "absent". Helm's toToml is not
used because it writes every number as a float (`10000.0`), which an integer field rejects.
*/}}
{{- define "payfac.configToml" -}}
{{- range $k, $v := .Values.config }}
{{- if or (kindIs "invalid" $v) (and (kindIs "string" $v) (eq $v "")) }}
{{- else if kindIs "bool" $v }}
{{ $k }} = {{ $v }}
{{- else if or (kindIs "float64" $v) (kindIs "int64" $v) (kindIs "int" $v) }}
{{- if eq (float64 $v) (floor $v) }}
{{ $k }} = {{ int64 $v }}
{{- else }}
{{ $k }} = {{ $v }}
{{- end }}
{{- else if kindIs "string" $v }}
{{ $k }} = {{ toJson $v }}
{{- else if kindIs "slice" $v }}
{{ $k }} = {{ toJson $v }}
{{- else }}
{{- fail (printf "payfac: config.%s must be a string, number, boolean or list (got %s)" $k (kindOf $v)) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Where one secret entry comes from, as YAML {name, key, optional} or "" when it has no source.
Fails the render, naming the entry and the three ways to provide it, when a required one has none.
Call with (dict "root" $ "entry" "databaseUrl" "required" true); "valueSecret" names the
chart-created Secret when it is not the default one (the migration hook's).
*/}}
{{- define "payfac.secretRef" -}}
{{- $root := .root }}
{{- $spec := index $root.Values.secrets .entry }}
{{- if $spec.existingSecret }}
name: {{ $spec.existingSecret }}
key: {{ $spec.key }}
{{- else if $spec.value }}
name: {{ default (include "payfac.fullname" $root) .valueSecret }}
key: {{ $spec.key }}
{{- else if $root.Values.secrets.existingSecret }}
name: {{ $root.Values.secrets.existingSecret }}
key: {{ $spec.key }}
{{- if not .required }}
optional: true
{{- end }}
{{- else if .required }}
{{- fail (printf "payfac: required secret %q is missing: set secrets.%s.existingSecret (an existing Secret holding key %q), secrets.%s.value (the chart creates the Secret), or secrets.existingSecret (one Secret holding every key)" .entry .entry $spec.key .entry) }}
{{- end }}
{{- end }}

{{/* The CodePay entries are required only against the real gateway. */}}
{{- define "payfac.codepayRequired" -}}
{{- if not .Values.config.sandbox }}true{{ end }}
{{- end }}

{{/*
Environment shared by api, worker and the migration Job: listen address, config file, and every
secret as a secretKeyRef (values never appear in the pod spec). Call with (dict "root" $ "job" bool "valueSecret" name-of-the-hook-secret-for-the-job).
*/}}
{{- define "payfac.env" -}}
{{- $root := .root }}
{{- $codepay := eq (include "payfac.codepayRequired" $root) "true" }}
- name: PAYFAC_LISTEN
  value: {{ printf "0.0.0.0:%v" $root.Values.containerPort | quote }}
{{- if not .job }}
- name: PAYFAC_METRICS_LISTEN
  value: {{ printf "0.0.0.0:%v" $root.Values.metricsPort | quote }}
{{- end }}
- name: PAYFAC_DATABASE_URL
  valueFrom:
    secretKeyRef:
      {{- include "payfac.secretRef" (dict "root" $root "entry" "databaseUrl" "required" true "valueSecret" .valueSecret) | trim | nindent 6 }}
{{- if not .job }}
- name: PAYFAC_CONFIG
  value: /etc/payfac/payfac.toml
- name: PAYFAC_REDIS_URL
  valueFrom:
    secretKeyRef:
      {{- include "payfac.secretRef" (dict "root" $root "entry" "redisUrl" "required" true) | trim | nindent 6 }}
- name: PAYFAC_MASTER_KEY
  valueFrom:
    secretKeyRef:
      {{- include "payfac.secretRef" (dict "root" $root "entry" "masterKey" "required" true) | trim | nindent 6 }}
{{- with include "payfac.secretRef" (dict "root" $root "entry" "masterKeyPrevious" "required" false) }}
- name: PAYFAC_MASTER_KEY_PREVIOUS
  valueFrom:
    secretKeyRef:
      {{- . | trim | nindent 6 }}
{{- end }}
{{- with include "payfac.secretRef" (dict "root" $root "entry" "bootstrapOperatorKey" "required" false) }}
- name: PAYFAC_BOOTSTRAP_OPERATOR_KEY
  valueFrom:
    secretKeyRef:
      {{- . | trim | nindent 6 }}
{{- end }}
{{- if $codepay }}
{{- if not $root.Values.config.codepay_app_id }}
- name: PAYFAC_CODEPAY_APP_ID
  valueFrom:
    secretKeyRef:
      {{- include "payfac.secretRef" (dict "root" $root "entry" "codepayAppId" "required" true) | trim | nindent 6 }}
{{- end }}
- name: PAYFAC_CODEPAY_PRIVATE_KEY_FILE
  value: /etc/payfac/codepay/private-key.pem
- name: PAYFAC_CODEPAY_GATEWAY_PUBLIC_KEY_FILE
  value: /etc/payfac/codepay/gateway-public-key.pem
{{- end }}
{{- else }}
- name: PAYFAC_LOG_FORMAT
  value: {{ $root.Values.config.log_format | default "json" | quote }}
- name: PAYFAC_DATA_DIR
  value: /tmp/payfac
{{- end }}
{{- end }}

{{/* Volumes of api and worker pods: /tmp, the config file, the CodePay key files. */}}
{{- define "payfac.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
- name: config
  configMap:
    name: {{ include "payfac.fullname" . }}
{{- if eq (include "payfac.codepayRequired" .) "true" }}
{{- $priv := include "payfac.secretRef" (dict "root" . "entry" "codepayPrivateKey" "required" true) | fromYaml }}
{{- $pub := include "payfac.secretRef" (dict "root" . "entry" "codepayGatewayPublicKey" "required" true) | fromYaml }}
- name: codepay-keys
  projected:
    defaultMode: 0440
    sources:
      - secret:
          name: {{ $priv.name }}
          items:
            - key: {{ $priv.key }}
              path: private-key.pem
      - secret:
          name: {{ $pub.name }}
          items:
            - key: {{ $pub.key }}
              path: gateway-public-key.pem
{{- end }}
{{- end }}

{{- define "payfac.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: config
  mountPath: /etc/payfac/payfac.toml
  subPath: payfac.toml
  readOnly: true
{{- if eq (include "payfac.codepayRequired" .) "true" }}
- name: codepay-keys
  mountPath: /etc/payfac/codepay
  readOnly: true
{{- end }}
{{- end }}

{{/*
Pod annotations that change whenever the config or a chart-created secret changes, so a
`helm upgrade` that only edits values still rolls the pods.
*/}}
{{- define "payfac.checksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}

{{/* Default affinity: prefer one pod per node so a node loss takes out as few as possible. */}}
{{- define "payfac.affinity" -}}
{{- $root := .root }}
{{- if .affinity }}
{{- toYaml .affinity }}
{{- else }}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "payfac.selectorLabels" $root | nindent 12 }}
            app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{/* Seconds Kubernetes waits after the preStop hook began before SIGKILL. */}}
{{- define "payfac.terminationGrace" -}}
{{- add (int .Values.config.shutdown_grace_seconds) (int .Values.lifecycle.preStopSleepSeconds) 10 }}
{{- end }}
