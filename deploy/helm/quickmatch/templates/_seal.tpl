{{/* The seal keys' Secret (seal-keys.yaml), mounted by the frontends and
the matchers (services' -seal-key-file); nothing when sealKeys.enabled is
false. Read through "default dict": a release upgraded with
--reuse-values from before sealKeys existed has no such value. */}}
{{- define "quickmatch.sealKeysOn" -}}
{{- if dig "enabled" true (.Values.sealKeys | default dict) -}}true{{- end -}}
{{- end -}}

{{- define "quickmatch.sealKeysSecret" -}}
{{- dig "existingSecret" "" (.Values.sealKeys | default dict) | default (printf "%s-seal-keys" .Release.Name) -}}
{{- end -}}

{{/* The chart's seal key file, base64 (its Secret's data): the release's
Secret's, read back, or one random key, made once per render and kept in
.Values, so that the Secret and the pods' checksum agree. */}}
{{- define "quickmatch.sealKeysData" -}}
{{- if not (hasKey .Values "_sealKeysData") -}}
{{- $old := lookup "v1" "Secret" .Release.Namespace (include "quickmatch.sealKeysSecret" .) -}}
{{- $data := printf "%s\n" (randBytes 32) | b64enc -}}
{{- if and $old $old.data (index $old.data "seal.keys") -}}
{{- $data = index $old.data "seal.keys" -}}
{{- end -}}
{{- $_ := set .Values "_sealKeysData" $data -}}
{{- end -}}
{{- index .Values "_sealKeysData" -}}
{{- end -}}

{{/* The pods' annotation that rolls them when the chart's key changes
(a Secret made anew): a pod reads its key at start, and frontends and
matchers on different keys would read every ticket. None with
existingSecret: rolling the pods after replacing it is the owner's. */}}
{{- define "quickmatch.sealChecksum" -}}
{{- if and (include "quickmatch.sealKeysOn" .) (not (dig "existingSecret" "" (.Values.sealKeys | default dict))) -}}
checksum/seal-keys: {{ include "quickmatch.sealKeysData" . | sha256sum }}
{{- end -}}
{{- end -}}

{{- define "quickmatch.sealEnv" -}}
{{- if include "quickmatch.sealKeysOn" . -}}
- name: SEAL_KEY_FILE
  value: /etc/quickmatch/seal/seal.keys
{{- end -}}
{{- end -}}

{{- define "quickmatch.sealVolumeMount" -}}
{{- if include "quickmatch.sealKeysOn" . -}}
- { name: seal-keys, mountPath: /etc/quickmatch/seal, readOnly: true }
{{- end -}}
{{- end -}}

{{- define "quickmatch.sealVolume" -}}
{{- if include "quickmatch.sealKeysOn" . -}}
- name: seal-keys
  secret: { secretName: {{ include "quickmatch.sealKeysSecret" . }} }
{{- end -}}
{{- end -}}
