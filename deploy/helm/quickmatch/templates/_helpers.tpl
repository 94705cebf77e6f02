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

{{/* The Secret of the allocator's join token private key (key join.key), failing when none is given. */}}
{{- define "quickmatch.joinKeySecret" -}}
{{- $k := .Values.joinKeys.privateKey -}}
{{- if $k.existingSecret -}}
{{- $k.existingSecret -}}
{{- else if $k.value -}}
{{- printf "%s-join-key" .Release.Name -}}
{{- else -}}
{{- fail "joinKeys.privateKey: set existingSecret (a Secret with key join.key) or value (the PEM of an Ed25519 private key: openssl genpkey -algorithm ed25519); the allocator signs join tokens with it" -}}
{{- end -}}
{{- end -}}

{{/* The ConfigMap of the public keys game servers verify join tokens with, failing when none is given. */}}
{{- define "quickmatch.joinPublicKeysConfigMap" -}}
{{- $k := .Values.joinKeys.publicKeys -}}
{{- if $k.existingConfigMap -}}
{{- $k.existingConfigMap -}}
{{- else if $k.values -}}
{{- printf "%s-join-public-keys" .Release.Name -}}
{{- else -}}
{{- fail "joinKeys.publicKeys: set existingConfigMap (every key a PEM file of public keys) or values (PEM public keys: openssl pkey -in join.key -pubout); the game servers verify join tokens with them" -}}
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
{{- include "quickmatch.tracingEnv" .root }}
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

{{/* The OpenTelemetry variables of every service and game server, when
tracing.otlpEndpoint is set (off otherwise). tracing.env without it
fails the render: it would be dropped, and tracing left off, without a
word (an endpoint given in env alone is refused too: otlpEndpoint is the
one switch). Takes the root context. */}}
{{- define "quickmatch.tracingEnv" -}}
{{- with .Values.tracing }}
{{- if and .env (not .otlpEndpoint) }}
{{- fail "tracing.env is set but tracing.otlpEndpoint is empty: set tracing.otlpEndpoint to turn tracing on (env only adds to it)" }}
{{- end }}
{{- if .otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .otlpEndpoint | quote }}
{{- with .env }}
{{ toYaml . }}
{{- end }}
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
{{- /* A service's pods (.c, its component) spread over nodes where the
scheduler can: a node drained or lost takes one, not most. Nodes only:
the scheduler scores a node that lacks any constraint's key as none, so
a zone constraint on a cluster without zone labels (kind, bare metal)
turned the spreading off altogether. */}}
{{- with .c }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "quickmatch.selector" $.c | nindent 8 }}
{{- end }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Probes of a service's ops endpoints. /healthz answers from the
moment the process listens, before it reaches NATS (service.New, then
Connect): a service waiting out a NATS outage is alive, and restarting it
would only wait again, behind a crash loop's backoff. /readyz says ready
once the service is connected and bound. Readiness is asked on readyPort
(default port): the frontend's on the players' port, which it is ready to
serve, its liveness on its ops port, so that a frontend slow under load at
peak is taken out of the load balancer, not restarted with every socket
on it. One failed readiness takes it out (a drain relies on it), so a
probe gets two seconds. */}}
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
  httpGet: { path: /readyz, port: {{ .readyPort | default .port }} }
  periodSeconds: 2
  timeoutSeconds: 2
  failureThreshold: 1
{{- end -}}

{{/* The frontend's identity flags (services/frontend: -auth-*), failing
the render the way the frontend would fail to start: no identity provider
(neither jwksURL nor publicKeys) without insecure, a provider without
issuer, insecure together with a provider, or a ticket claim with
insecure. */}}
{{- define "quickmatch.frontendAuthEnv" -}}
{{- $a := .Values.frontend.auth -}}
{{- $provider := or $a.jwksURL $a.publicKeys -}}
{{- if and $a.insecure $provider -}}
{{- fail "frontend.auth.insecure is true but frontend.auth.jwksURL or frontend.auth.publicKeys is set too: choose one" -}}
{{- end -}}
{{- if not (or $provider $a.insecure) -}}
{{- fail "frontend.auth.jwksURL: set it (your identity provider's JWKS URL) or frontend.auth.publicKeys (PEM public keys), with frontend.auth.issuer; or set frontend.auth.insecure: true to trust every caller's player id (tests and trusted networks only)" -}}
{{- end -}}
{{- if and $a.insecure $a.ticketClaim -}}
{{- fail "frontend.auth.ticketClaim needs an identity provider that puts it in tokens: not with frontend.auth.insecure" -}}
{{- end -}}
{{- if and $provider (not $a.issuer) -}}
{{- fail "frontend.auth.issuer: required with frontend.auth.jwksURL or frontend.auth.publicKeys (the iss every token must carry)" -}}
{{- end -}}
{{- if $a.insecure }}
- name: AUTH_INSECURE
  value: "true"
{{- else }}
- name: AUTH_ISSUER
  value: {{ $a.issuer | quote }}
{{- with $a.audience }}
- name: AUTH_AUDIENCE
  value: {{ . | quote }}
{{- end }}
{{- with $a.jwksURL }}
- name: AUTH_JWKS_URL
  value: {{ . | quote }}
{{- end }}
{{- if $a.publicKeys }}
{{- $files := list }}
{{- range $i, $_ := $a.publicKeys }}
{{- $files = append $files (printf "/etc/quickmatch/auth/key-%d.pem" $i) }}
{{- end }}
- name: AUTH_PUBLIC_KEYS
  value: {{ join "," $files | quote }}
{{- end }}
{{- end }}
- name: AUTH_PLAYER_CLAIM
  value: {{ $a.playerClaim | quote }}
{{- with $a.ticketClaim }}
- name: AUTH_TICKET_CLAIM
  value: {{ . | quote }}
{{- end }}
- name: AUTH_SERVER_SCOPE
  value: {{ $a.serverScope | quote }}
{{- end -}}

{{/* The replicas line of an autoscaled Deployment (dict "c" the
component's dict): the count it runs now, read from the cluster, or no
line where there is none to read (an install, or a render without the
cluster: helm template, Argo CD), the autoscaler's to set. Left out on an
upgrade, the upgrade that turned the autoscaler on removed the field, and
Kubernetes set the Deployment to one replica until the autoscaler caught
up (launch day's frontends down to one); rendered from the values, every
upgrade set an autoscaled count back, and so would a render without the
cluster that wrote minReplicas, on every sync. */}}
{{- define "quickmatch.autoscaledReplicas" -}}
{{- include "quickmatch.liveReplicas" (dict "root" .c.root "apiVersion" "apps/v1" "kind" "Deployment" "name" (include "quickmatch.name" .c)) -}}
{{- end -}}

{{/* The replicas line of an object an autoscaler sizes (dict "root",
"apiVersion", "kind", "name"): the count it has now, read from the
cluster, or no line (quickmatch.autoscaledReplicas says why). */}}
{{- define "quickmatch.liveReplicas" -}}
{{- $live := lookup .apiVersion .kind .root.Release.Namespace .name -}}
{{- if and $live $live.spec (hasKey $live.spec "replicas") }}
replicas: {{ $live.spec.replicas }}
{{- end -}}
{{- end -}}

{{/* The hosts of frontend.ingress.hosts that no frontend.ingress.tls
entry names (an exact name, or a wildcard "*.example.com" for one label
more), comma-separated; an entry without hosts covers every host (the
controller's default certificate). Empty when TLS covers them all. */}}
{{- define "quickmatch.ingressHostsWithoutTLS" -}}
{{- $ing := .Values.frontend.ingress | default dict -}}
{{- $bare := list -}}
{{- range $h := $ing.hosts -}}
{{- $covered := false -}}
{{- range $ing.tls -}}
{{- if not .hosts -}}
{{- $covered = true -}}
{{- end -}}
{{- range $t := .hosts -}}
{{- if eq $t $h -}}
{{- $covered = true -}}
{{- else if hasPrefix "*." $t -}}
{{- $label := trimSuffix (trimPrefix "*" $t) $h -}}
{{- if and (hasSuffix (trimPrefix "*" $t) $h) $label (not (contains "." $label)) -}}
{{- $covered = true -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if not $covered -}}
{{- $bare = append $bare $h -}}
{{- end -}}
{{- end -}}
{{- join ", " $bare -}}
{{- end -}}
