{{/* The seal key sets, each a Secret (seal-keys.yaml) mounted in the
pods that read it; nothing when its enabled is false. Each helper takes
(dict "root" . "set" S), S one of:
- "seal" (values sealKeys; Secret <release>-seal-keys; SEAL_KEY_FILE):
  the frontends' and the matchers' (-seal-key-file), which seal and
  verify the tickets a frontend took first;
- "matchSeal" (values matchSealKeys; Secret <release>-match-seal-keys;
  MATCH_SEAL_KEY_FILE): the matchers' alone (-match-seal-key-file),
  which seal and verify the match each claim carries. Never mounted in
  a frontend: the frontends may write claims, and that key is what
  keeps them from writing a match.
Values are read through "default dict": a release upgraded with
--reuse-values from before a set existed has no such value. */}}
{{- define "quickmatch.sealKeysValues" -}}
{{- toYaml (index .root.Values (printf "%sKeys" .set) | default dict) -}}
{{- end -}}

{{- define "quickmatch.sealKeysOn" -}}
{{- if dig "enabled" true (include "quickmatch.sealKeysValues" . | fromYaml) -}}true{{- end -}}
{{- end -}}

{{/* The Secret's name the owner gave (existingSecret), "" for the chart's. */}}
{{- define "quickmatch.sealKeysExisting" -}}
{{- dig "existingSecret" "" (include "quickmatch.sealKeysValues" . | fromYaml) -}}
{{- end -}}

{{- define "quickmatch.sealKeysSecret" -}}
{{- include "quickmatch.sealKeysExisting" . | default (printf "%s-%s-keys" .root.Release.Name (kebabcase .set)) -}}
{{- end -}}

{{/* The chart's key file of the set, base64 (its Secret's data): the
release's Secret's, read back, or one random key, made once per render
and kept in .Values, so that the Secret and the pods' checksum agree. */}}
{{- define "quickmatch.sealKeysData" -}}
{{- $kept := printf "_%sKeysData" .set -}}
{{- if not (hasKey .root.Values $kept) -}}
{{- $old := lookup "v1" "Secret" .root.Release.Namespace (include "quickmatch.sealKeysSecret" .) -}}
{{- $data := printf "%s\n" (randBytes 32) | b64enc -}}
{{- if and $old $old.data (index $old.data "seal.keys") -}}
{{- $data = index $old.data "seal.keys" -}}
{{- end -}}
{{- $_ := set .root.Values $kept $data -}}
{{- end -}}
{{- index .root.Values $kept -}}
{{- end -}}

{{/* The pods' annotation that rolls them when the chart's key changes
(a Secret made anew): a pod reads its key at start, and pods on
different keys fail every seal. None with existingSecret: rolling the
pods after replacing it is the owner's. */}}
{{- define "quickmatch.sealChecksum" -}}
{{- if and (include "quickmatch.sealKeysOn" .) (not (include "quickmatch.sealKeysExisting" .)) -}}
checksum/{{ kebabcase .set }}-keys: {{ include "quickmatch.sealKeysData" . | sha256sum }}
{{- end -}}
{{- end -}}

{{- define "quickmatch.sealEnv" -}}
{{- if include "quickmatch.sealKeysOn" . -}}
- name: {{ snakecase .set | upper }}_KEY_FILE
  value: /etc/quickmatch/{{ kebabcase .set }}/seal.keys
{{- end -}}
{{- end -}}

{{- define "quickmatch.sealVolumeMount" -}}
{{- if include "quickmatch.sealKeysOn" . -}}
- { name: {{ kebabcase .set }}-keys, mountPath: /etc/quickmatch/{{ kebabcase .set }}, readOnly: true }
{{- end -}}
{{- end -}}

{{- define "quickmatch.sealVolume" -}}
{{- if include "quickmatch.sealKeysOn" . -}}
- name: {{ kebabcase .set }}-keys
  secret: { secretName: {{ include "quickmatch.sealKeysSecret" . }} }
{{- end -}}
{{- end -}}
