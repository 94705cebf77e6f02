{{/* The rule set's ConfigMap, mounted by the frontends and the matchers
(rules.yaml); nothing when the release uses the built-in rule set. */}}
{{- define "quickmatch.rulesConfigMap" -}}
{{- include "quickmatch.name" (dict "root" . "component" "rules") -}}
{{- end -}}

{{- define "quickmatch.rulesEnv" -}}
{{- if .Values.rules -}}
- name: RULES
  value: /etc/quickmatch/rules/rules.json
{{- end -}}
{{- end -}}

{{- define "quickmatch.rulesVolumeMount" -}}
{{- if .Values.rules -}}
- { name: rules, mountPath: /etc/quickmatch/rules, readOnly: true }
{{- end -}}
{{- end -}}

{{- define "quickmatch.rulesVolume" -}}
{{- if .Values.rules -}}
- name: rules
  configMap: { name: {{ include "quickmatch.rulesConfigMap" . }} }
{{- end -}}
{{- end -}}
