{{/* Name of a component's objects: <release>-<component>. */}}
{{- define "quickmatch.name" -}}
{{- printf "%s-%s" .root.Release.Name .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "quickmatch.labels" -}}
app.kubernetes.io/name: quickmatch
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "quickmatch.selector" -}}
app.kubernetes.io/name: quickmatch
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "quickmatch.image" -}}
{{- printf "%s/%s:%s" .root.Values.image.registry .component (default .root.Chart.AppVersion .root.Values.image.tag) -}}
{{- end -}}

{{/* The join secret's name, failing when none is given. */}}
{{- define "quickmatch.joinSecret" -}}
{{- if .Values.joinSecret.existingSecret -}}
{{- .Values.joinSecret.existingSecret -}}
{{- else if .Values.joinSecret.value -}}
{{- printf "%s-join" .Release.Name -}}
{{- else -}}
{{- fail "joinSecret: set joinSecret.existingSecret (a Secret with key join-secret) or joinSecret.value (hex); the allocator and the game servers of every cluster need the same one" -}}
{{- end -}}
{{- end -}}

{{/* Environment every NATS-backed service shares (flags of pkg/servicekit). */}}
{{- define "quickmatch.natsEnv" -}}
{{- $v := .root.Values -}}
- name: NATS_URL
  value: {{ $v.nats.url | quote }}
- name: SUBJECT_PREFIX
  value: {{ $v.nats.subjectPrefix | quote }}
- name: STREAM_REPLICAS
  value: {{ $v.nats.streamReplicas | quote }}
- name: LOG_FORMAT
  value: {{ $v.logFormat | quote }}
- name: LOG_LEVEL
  value: {{ $v.logLevel | quote }}
- name: REGIONS
  value: {{ join "," $v.regions | quote }}
{{- if eq $v.nats.auth.type "password" }}
- name: NATS_USER
  valueFrom:
    secretKeyRef: { name: {{ index $v.nats.auth.secrets .component | quote }}, key: user }
- name: NATS_PASSWORD
  valueFrom:
    secretKeyRef: { name: {{ index $v.nats.auth.secrets .component | quote }}, key: password }
{{- else if eq $v.nats.auth.type "creds" }}
- name: NATS_CREDS
  value: /etc/quickmatch/nats-creds/nats.creds
{{- end }}
{{- if $v.nats.tls.enabled }}
- name: NATS_TLS_CA
  value: /etc/quickmatch/nats-tls/ca.crt
{{- if $v.nats.tls.clientCert }}
- name: NATS_TLS_CERT
  value: /etc/quickmatch/nats-tls/tls.crt
- name: NATS_TLS_KEY
  value: /etc/quickmatch/nats-tls/tls.key
{{- end }}
{{- end }}
{{- end -}}

{{- define "quickmatch.natsVolumeMounts" -}}
{{- $v := .root.Values -}}
{{- if eq $v.nats.auth.type "creds" }}
- name: nats-creds
  mountPath: /etc/quickmatch/nats-creds
  readOnly: true
{{- end }}
{{- if $v.nats.tls.enabled }}
- name: nats-tls
  mountPath: /etc/quickmatch/nats-tls
  readOnly: true
{{- end }}
{{- end -}}

{{- define "quickmatch.natsVolumes" -}}
{{- $v := .root.Values -}}
{{- if eq $v.nats.auth.type "creds" }}
- name: nats-creds
  secret:
    secretName: {{ index $v.nats.auth.secrets .component | quote }}
    items: [{ key: nats.creds, path: nats.creds }]
{{- end }}
{{- if $v.nats.tls.enabled }}
- name: nats-tls
  secret:
    secretName: {{ $v.nats.tls.secret | quote }}
{{- end }}
{{- end -}}

{{/* Pod scheduling fields of a component's values. */}}
{{- define "quickmatch.scheduling" -}}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "quickmatch.opsProbes" -}}
startupProbe:
  httpGet: { path: /healthz, port: {{ .port }} }
  periodSeconds: 1
  failureThreshold: 60
livenessProbe:
  httpGet: { path: /healthz, port: {{ .port }} }
  periodSeconds: 10
  failureThreshold: 3
readinessProbe:
  httpGet: { path: /readyz, port: {{ .port }} }
  periodSeconds: 2
  failureThreshold: 1
{{- end -}}
