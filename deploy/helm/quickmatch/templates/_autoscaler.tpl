{{/*
FleetAutoscalers: the checks Agones would otherwise make at install, and
what the Webhook policy (the allocator's /autoscale) needs from the
fleets it sizes.
*/}}

{{/* quickmatch.checkBuffer refuses the FleetAutoscaler settings Agones'
validation refuses (ValidateBufferPolicy, ValidateListPolicy), so that
they fail at render with the value named, not at install. Arguments:
size (bufferSize: a number, or "N%"), min and max, and the path of each
(sizePath, minPath, maxPath). */}}
{{- define "quickmatch.checkBuffer" -}}
{{- $min := int .min -}}
{{- $max := int .max -}}
{{- if gt $min $max -}}
{{- fail (printf "%s %d is above %s %d: Agones refuses it" .minPath $min .maxPath $max) -}}
{{- end -}}
{{- if kindIs "string" .size -}}
{{- $pct := trimSuffix "%" .size -}}
{{- if or (not (hasSuffix "%" .size)) (not (regexMatch "^[0-9]+$" $pct)) -}}
{{- fail (printf "%s %q: want a number, or a percentage such as \"10%%\"" .sizePath .size) -}}
{{- end -}}
{{- if or (lt (int $pct) 1) (gt (int $pct) 99) -}}
{{- fail (printf "%s %q: Agones takes a percentage from 1%% to 99%%" .sizePath .size) -}}
{{- end -}}
{{- if lt $min 1 -}}
{{- fail (printf "%s %d: with a percentage bufferSize Agones wants it at least 1" .minPath $min) -}}
{{- end -}}
{{- else -}}
{{- $size := int .size -}}
{{- if le $size 0 -}}
{{- fail (printf "%s %d: Agones wants it above 0" .sizePath $size) -}}
{{- end -}}
{{- if lt $max $size -}}
{{- fail (printf "%s %d is above %s %d: Agones refuses it" .sizePath $size .maxPath $max) -}}
{{- end -}}
{{- if and (ne $min 0) (lt $min $size) -}}
{{- fail (printf "%s %d is below %s %d: Agones refuses it (0 means bufferSize)" .minPath $min .sizePath $size) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* quickmatch.checkAutoscaler refuses fleet .f's autoscaler settings
that Agones' FleetAutoscaler validation refuses, and the Counter policy
of the rooms counter, which is gone. */}}
{{- define "quickmatch.checkAutoscaler" -}}
{{- $as := .f.autoscaler -}}
{{- $at := dict "raw" .f.raw "i" .f.index -}}
{{- $path := dict -}}
{{- range $k := list "policy" "counter" "buffer.bufferSize" "buffer.minReplicas" "buffer.maxReplicas" "list.bufferSize" "list.minCapacity" "list.maxCapacity" "webhook.url" "webhook.caBundle" -}}
{{- $_ := set $path $k (include "quickmatch.valuePath" (merge (dict "keys" (concat (list "autoscaler") (splitList "." $k))) $at)) -}}
{{- end -}}
{{- if hasKey $as "counter" -}}
{{- fail (printf "%s is gone: rooms are a List now; move its settings to %s (policy List)" $path.counter (trimSuffix ".counter" $path.counter | printf "%s.list")) -}}
{{- end -}}
{{- if eq $as.policy "Counter" -}}
{{- fail (printf "%s Counter: the rooms counter is gone (rooms are a List): use List, with bufferSize, minCapacity and maxCapacity in rooms under autoscaler.list" $path.policy) -}}
{{- else if eq $as.policy "Buffer" -}}
{{- include "quickmatch.checkBuffer" (dict "size" $as.buffer.bufferSize "min" $as.buffer.minReplicas "max" $as.buffer.maxReplicas "sizePath" (get $path "buffer.bufferSize") "minPath" (get $path "buffer.minReplicas") "maxPath" (get $path "buffer.maxReplicas")) -}}
{{- else if eq $as.policy "List" -}}
{{- include "quickmatch.checkBuffer" (dict "size" $as.list.bufferSize "min" $as.list.minCapacity "max" $as.list.maxCapacity "sizePath" (get $path "list.bufferSize") "minPath" (get $path "list.minCapacity") "maxPath" (get $path "list.maxCapacity")) -}}
{{- else if eq $as.policy "Webhook" -}}
{{- $w := $as.webhook -}}
{{- /* An https URL without caBundle is fine: since Agones 1.54 the
webhook client trusts the system's CAs then. */ -}}
{{- if $w.caBundle -}}
{{- if not $w.url -}}
{{- fail (printf "%s: only with %s; without a URL the FleetAutoscaler calls the allocator Service of this release, which serves /autoscale over plain HTTP, and Agones calls a Service over HTTPS when a caBundle is set" (get $path "webhook.caBundle") (get $path "webhook.url")) -}}
{{- end -}}
{{- /* The form only: Agones parses the certificates
(AppendCertsFromPEM); sprig has nothing that parses one without its key. */ -}}
{{- if not (contains "-----BEGIN CERTIFICATE-----" (b64dec (nospace $w.caBundle))) -}}
{{- fail (printf "%s: not the base64 of a PEM certificate (-----BEGIN CERTIFICATE-----); Agones refuses it" (get $path "webhook.caBundle")) -}}
{{- end -}}
{{- end -}}
{{- else -}}
{{- fail (printf "%s %q: want Buffer, List or Webhook" $path.policy $as.policy) -}}
{{- end -}}
{{- end -}}

{{/* A bufferSize as the FleetAutoscaler takes it: a number, or "N%". */}}
{{- define "quickmatch.intOrPercent" -}}
{{- if kindIs "string" . -}}
{{- quote . -}}
{{- else -}}
{{- int . -}}
{{- end -}}
{{- end -}}

{{/* quickmatch.checkWebhookRegions refuses a fleet with the Webhook policy
whose region holds another fleet of this release (in gameServers.fleets,
or in allocator.clusters for this release's allocator). The webhook
sizes a fleet from every ticket waiting in its region, and tickets carry
no mode in their subject: two fleets of one region would each be sized
from the demand of both. .fleets: the fleets of quickmatch.fleets. */}}
{{- define "quickmatch.checkWebhookRegions" -}}
{{- $v := .root.Values -}}
{{- $byRegion := dict -}}
{{- range $f := .fleets -}}
{{- $_ := set $byRegion $f.region (append (get $byRegion $f.region | default (list)) $f.name) -}}
{{- end -}}
{{- if and $v.allocator.enabled (eq $v.allocator.backend "kube") -}}
{{- range $i, $c := $v.allocator.clusters -}}
{{- $_ := set $byRegion $c.region (append (get $byRegion $c.region | default (list)) (printf "allocator.clusters[%d] (%s, fleet %s)" $i $c.name $c.fleet)) -}}
{{- end -}}
{{- end -}}
{{- range $f := .fleets -}}
{{- $in := get $byRegion $f.region -}}
{{- if and $f.autoscaler.enabled (eq $f.autoscaler.policy "Webhook") (gt (len $in) 1) -}}
{{- fail (printf "%s Webhook: region %q has fleets %s; the webhook sizes a fleet from every ticket waiting in its region (tickets carry no mode), so each would be sized from the demand of all: use List for them, or keep one fleet per region" (include "quickmatch.valuePath" (dict "raw" $f.raw "i" $f.index "keys" (list "autoscaler" "policy"))) $f.region (join ", " $in)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* quickmatch.webhookPlayersPerRoom is the allocator's
-autoscale-players-per-room: the players of the smallest mode hosted by
the fleets whose Webhook calls this release's allocator (no webhook.url),
the least of them if several (one flag for every fleet; the smallest
mode asks for the most rooms, so no fleet is sized short). Empty when no
such fleet: the flag's default stays. */}}
{{- define "quickmatch.webhookPlayersPerRoom" -}}
{{- $min := 0 -}}
{{- if .Values.gameServers.enabled -}}
{{- $fl := dict -}}
{{- include "quickmatch.fleets" (dict "root" . "out" $fl) -}}
{{- range $f := $fl.fleets -}}
{{- if and $f.autoscaler.enabled (eq $f.autoscaler.policy "Webhook") (not $f.autoscaler.webhook.url) -}}
{{- if or (eq $min 0) (lt (int $f.minPlayers) $min) -}}
{{- $min = int $f.minPlayers -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if gt $min 0 -}}
{{- $min -}}
{{- end -}}
{{- end -}}
