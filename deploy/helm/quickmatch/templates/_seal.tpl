{{/* The seal keys' Secret (seal-keys.yaml), mounted by the frontends and
the matchers (services' -seal-key-file); nothing when sealKeys.enabled is
false. */}}
{{- define "quickmatch.sealKeysSecret" -}}
{{- .Values.sealKeys.existingSecret | default (printf "%s-seal-keys" .Release.Name) -}}
{{- end -}}

{{- define "quickmatch.sealEnv" -}}
{{- if .Values.sealKeys.enabled -}}
- name: SEAL_KEY_FILE
  value: /etc/quickmatch/seal/seal.keys
{{- end -}}
{{- end -}}

{{- define "quickmatch.sealVolumeMount" -}}
{{- if .Values.sealKeys.enabled -}}
- { name: seal-keys, mountPath: /etc/quickmatch/seal, readOnly: true }
{{- end -}}
{{- end -}}

{{- define "quickmatch.sealVolume" -}}
{{- if .Values.sealKeys.enabled -}}
- name: seal-keys
  secret: { secretName: {{ include "quickmatch.sealKeysSecret" . }} }
{{- end -}}
{{- end -}}
