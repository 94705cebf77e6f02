{{/*
Fleets, modes and the checks Agones would otherwise make at install.

Every fleet of gameServers.fleets is the defaults of gameServers with the
entry's own settings laid over them (quickmatch.overlay). Each check names
the value to change: the entry's when the entry sets it, else the default
in gameServers (quickmatch.valuePath).
*/}}

{{/* The built-in rule set's modes (pkg/rules, Default);
deploy/chart_fleets_test.go keeps the two equal. */}}
{{- define "quickmatch.builtinModes" -}}
[{"name":"1v1","teams":2,"team_size":1},{"name":"2v2","teams":2,"team_size":2},{"name":"5v5","teams":2,"team_size":5},{"name":"ffa","teams":8,"team_size":1}]
{{- end -}}

{{/* quickmatch.modeTable sets on .out: names (in the file's order),
players and teamSize (by name), from the rule set (rules) or the
built-in modes. A rule set that is no JSON object with a list of modes
fails here, not in the services' logs; the rest of it the services check
(pkg/rules, Parse). */}}
{{- define "quickmatch.modeTable" -}}
{{- $list := list -}}
{{- $what := "the built-in modes" -}}
{{- if .root.Values.rules -}}
{{- $doc := fromJson .root.Values.rules -}}
{{- if or (hasKey $doc "Error") (not (kindIs "slice" $doc.modes)) -}}
{{- fail "rules: want a JSON rule set, an object with a list of modes (pkg/rules/ruleset.schema.json)" -}}
{{- end -}}
{{- $list = $doc.modes -}}
{{- $what = "the rule set's modes (rules)" -}}
{{- else -}}
{{- $list = fromJsonArray (include "quickmatch.builtinModes" .) -}}
{{- end -}}
{{- $names := list -}}
{{- $players := dict -}}
{{- $teamSize := dict -}}
{{- range $m := $list -}}
{{- if not (and (kindIs "map" $m) (kindIs "string" $m.name) $m.name (kindIs "float64" $m.teams) (kindIs "float64" $m.team_size)) -}}
{{- fail (printf "rules: want each mode with name, teams and team_size (pkg/rules/ruleset.schema.json); got %v" $m) -}}
{{- end -}}
{{- $names = append $names $m.name -}}
{{- $_ := set $players $m.name (int (mul $m.teams $m.team_size)) -}}
{{- $_ := set $teamSize $m.name (int $m.team_size) -}}
{{- end -}}
{{- if not $names -}}
{{- fail "rules: no modes; the frontends and matchers need at least one" -}}
{{- end -}}
{{- $_ := set .out "names" $names -}}
{{- $_ := set .out "players" $players -}}
{{- $_ := set .out "teamSize" $teamSize -}}
{{- $_ := set .out "source" $what -}}
{{- end -}}

{{/* quickmatch.overlay lays .src over .dst (a map it changes): maps are
merged key by key, anything else replaces. Unlike sprig's merge, a 0, a
false or an empty list in .src wins (replicas: 0 is a choice). */}}
{{- define "quickmatch.overlay" -}}
{{- $dst := .dst -}}
{{- range $k, $v := .src -}}
{{- if and (kindIs "map" $v) (kindIs "map" (get $dst $k)) -}}
{{- include "quickmatch.overlay" (dict "dst" (get $dst $k) "src" $v) -}}
{{- else -}}
{{- $_ := set $dst $k $v -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* quickmatch.valuePath is where the value .keys (a list) of fleet .i
comes from: gameServers.fleets[i].<keys> when the entry .raw sets it,
else gameServers.<keys>. */}}
{{- define "quickmatch.valuePath" -}}
{{- $in := .raw -}}
{{- $own := true -}}
{{- range $k := .keys -}}
{{- if and $own (kindIs "map" $in) (hasKey $in $k) -}}
{{- $in = get $in $k -}}
{{- else -}}
{{- $own = false -}}
{{- end -}}
{{- end -}}
{{- if $own -}}
{{- printf "gameServers.fleets[%d].%s" (int .i) (join "." .keys) -}}
{{- else -}}
{{- printf "gameServers.%s" (join "." .keys) -}}
{{- end -}}
{{- end -}}

{{/* quickmatch.checkGone refuses the values this chart no longer reads,
saying what replaced them. */}}
{{- define "quickmatch.checkGone" -}}
{{- $g := .Values.gameServers -}}
{{- if hasKey $g "fleetName" -}}
{{- fail "gameServers.fleetName is gone: list the fleets in gameServers.fleets (- name: rps), each with its region and modes" -}}
{{- end -}}
{{- if hasKey $g "playersPerServer" -}}
{{- fail "gameServers.playersPerServer is gone: the players List holds roomsPerServer x seatsPerRoom players; set gameServers.seatsPerRoom (the seats of the largest room)" -}}
{{- end -}}
{{- if hasKey .Values.allocator "region" -}}
{{- fail "allocator.region is gone: each fleet has its own region, gameServers.region (or the fleet's region in gameServers.fleets)" -}}
{{- end -}}
{{- end -}}

{{/* quickmatch.fleets sets .out.fleets: the effective settings of every
fleet of gameServers.fleets, with index, path (of the entry) and hosted
(the modes it hosts, every known mode when modes is empty) and
minPlayers (the players of its smallest hosted mode); and refuses
what Agones or the other services would refuse. */}}
{{- define "quickmatch.fleets" -}}
{{- $root := .root -}}
{{- $g := $root.Values.gameServers -}}
{{- $modes := dict -}}
{{- include "quickmatch.modeTable" (dict "root" $root "out" $modes) -}}
{{- $defaults := omit $g "enabled" "regionLabel" "fleets" "fleetName" "playersPerServer" -}}
{{- $list := list -}}
{{- $names := dict -}}
{{- range $i, $raw := $g.fleets -}}
{{- $f := deepCopy $defaults -}}
{{- include "quickmatch.overlay" (dict "dst" $f "src" (deepCopy $raw)) -}}
{{- $at := dict "raw" $raw "i" $i -}}
{{- if hasKey $names $f.name -}}
{{- fail (printf "gameServers.fleets[%d].name %q: fleets[%d] has that name too" $i $f.name (int (get $names $f.name))) -}}
{{- end -}}
{{- $_ := set $names $f.name $i -}}
{{- $players := mul $f.roomsPerServer $f.seatsPerRoom -}}
{{- if gt (int $players) 1000 -}}
{{- fail (printf "%s %d x %s %d = %d players: Agones refuses a List (players) above 1000; lower one of them" (include "quickmatch.valuePath" (merge (dict "keys" (list "roomsPerServer")) $at)) (int $f.roomsPerServer) (include "quickmatch.valuePath" (merge (dict "keys" (list "seatsPerRoom")) $at)) (int $f.seatsPerRoom) (int $players)) -}}
{{- end -}}
{{- $hosted := $f.modes -}}
{{- if not $hosted -}}
{{- $hosted = $modes.names -}}
{{- end -}}
{{- $minPlayers := 0 -}}
{{- range $m := $hosted -}}
{{- if not (has $m $modes.names) -}}
{{- fail (printf "%s: %q is none of %s (%s)" (include "quickmatch.valuePath" (merge (dict "keys" (list "modes")) $at)) $m $modes.source (join ", " $modes.names)) -}}
{{- end -}}
{{- if gt (int (get $modes.players $m)) (int $f.seatsPerRoom) -}}
{{- fail (printf "%s %d: mode %s seats %d players, so its rooms would never fit; set it to the players of the largest mode the fleet hosts" (include "quickmatch.valuePath" (merge (dict "keys" (list "seatsPerRoom")) $at)) (int $f.seatsPerRoom) $m (int (get $modes.players $m))) -}}
{{- end -}}
{{- if or (eq $minPlayers 0) (lt (int (get $modes.players $m)) $minPlayers) -}}
{{- $minPlayers = int (get $modes.players $m) -}}
{{- end -}}
{{- end -}}
{{- if and $root.Values.allocator.enabled (not (has $f.region $root.Values.regions)) -}}
{{- fail (printf "%s %q is not in regions (%s): the allocator reports capacity and the matchers form matches in those only" (include "quickmatch.valuePath" (merge (dict "keys" (list "region")) $at)) $f.region (join ", " $root.Values.regions)) -}}
{{- end -}}
{{- include "quickmatch.checkResources" (dict "resources" $f.resources "path" (include "quickmatch.valuePath" (merge (dict "keys" (list "resources")) $at))) -}}
{{- $_ := set $f "index" $i -}}
{{- $_ := set $f "raw" $raw -}}
{{- $_ := set $f "hosted" $hosted -}}
{{- $_ := set $f "minPlayers" $minPlayers -}}
{{- $list = append $list $f -}}
{{- end -}}
{{- $_ := set .out "fleets" $list -}}
{{- end -}}

{{/* quickmatch.checkHostedModes fails when a mode of the rule set is
hosted by no fleet: the frontends would accept its tickets and the
matchers form its matches, which no game server could then take. Only a
release with the kube allocator knows its fleets (gameServers.fleets and
allocator.clusters); otherwise every mode counts as hosted. */}}
{{- define "quickmatch.checkHostedModes" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $modes := dict -}}
{{- include "quickmatch.modeTable" (dict "root" $root "out" $modes) -}}
{{- $entries := list -}}
{{- if and $v.allocator.enabled (eq $v.allocator.backend "kube") -}}
{{- if $v.gameServers.enabled -}}
{{- $fl := dict -}}
{{- include "quickmatch.fleets" (dict "root" $root "out" $fl) -}}
{{- $entries = concat $entries $fl.fleets -}}
{{- end -}}
{{- $entries = concat $entries $v.allocator.clusters -}}
{{- end -}}
{{- $hosted := dict -}}
{{- $every := not $entries -}}
{{- range $e := $entries -}}
{{- if not $e.modes -}}
{{- $every = true -}}
{{- end -}}
{{- range $m := (default (list) $e.modes) -}}
{{- $_ := set $hosted $m true -}}
{{- end -}}
{{- end -}}
{{- $missing := list -}}
{{- range $m := $modes.names -}}
{{- if not (or $every (hasKey $hosted $m)) -}}
{{- $missing = append $missing $m -}}
{{- end -}}
{{- end -}}
{{- if $missing -}}
{{- fail (printf "rules: no fleet hosts the mode(s) %s of %s; add them to the modes of a fleet (gameServers.fleets, allocator.clusters) or take them out of the rule set" (join ", " $missing) $modes.source) -}}
{{- end -}}
{{- end -}}

{{/* quickmatch.checkResources refuses what Agones' GameServer validation
(ValidateResourceRequirements) refuses: a request above its limit. The
schema already keeps every quantity a non-negative Kubernetes quantity. */}}
{{- define "quickmatch.checkResources" -}}
{{- $r := .resources -}}
{{- $limits := default (dict) $r.limits -}}
{{- range $name, $req := (default (dict) $r.requests) -}}
{{- if hasKey $limits $name -}}
{{- $lim := get $limits $name -}}
{{- if gt (float64 (include "quickmatch.quantity" $req)) (float64 (include "quickmatch.quantity" $lim)) -}}
{{- fail (printf "%s.requests.%s %v is above its limit %v: Agones refuses it" $.path $name $req $lim) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* quickmatch.quantity is a Kubernetes quantity ("100m", "64Mi", "1.5",
"2e3") as a plain number, for comparisons. */}}
{{- define "quickmatch.quantity" -}}
{{- $q := toString . | trimPrefix "+" -}}
{{- $scale := dict "n" 1e-9 "u" 1e-6 "m" 1e-3 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "E" 1e18 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 "Ei" 1152921504606846976.0 -}}
{{- $num := regexFind "^([0-9]+(\\.[0-9]*)?|\\.[0-9]+)" $q -}}
{{- $suffix := trimPrefix $num $q -}}
{{- if regexMatch "^[eE]" $suffix -}}
{{- $num = $q -}}
{{- $suffix = "" -}}
{{- end -}}
{{- mulf (float64 $num) (default 1.0 (get $scale $suffix)) -}}
{{- end -}}

{{/* quickmatch.allocatorClusters is the allocator's clusters file (JSON):
the fleets of this release (in-cluster: no kubeconfig) and those of
allocator.clusters, each with its region and modes. Names must differ,
modes must be known, and regions must be among regions, where the
allocator reports capacity. */}}
{{- define "quickmatch.allocatorClusters" -}}
{{- $v := .Values -}}
{{- $modes := dict -}}
{{- include "quickmatch.modeTable" (dict "root" . "out" $modes) -}}
{{- $list := list -}}
{{- $seen := dict -}}
{{- if $v.gameServers.enabled -}}
{{- $fl := dict -}}
{{- include "quickmatch.fleets" (dict "root" . "out" $fl) -}}
{{- range $f := $fl.fleets -}}
{{- $name := printf "local-%s" $f.name -}}
{{- $_ := set $seen $name (printf "gameServers.fleets[%d]" (int $f.index)) -}}
{{- $list = append $list (dict "name" $name "kubeconfig" "" "context" "" "namespace" $.Release.Namespace "fleet" $f.name "region" $f.region "modes" (default (list) $f.modes) "priority" 0 "weight" 1 "scheduling" $f.scheduling) -}}
{{- end -}}
{{- end -}}
{{- range $i, $c := $v.allocator.clusters -}}
{{- $path := printf "allocator.clusters[%d]" $i -}}
{{- if hasKey $seen $c.name -}}
{{- fail (printf "%s.name %q: %s has that name too" $path $c.name (get $seen $c.name)) -}}
{{- end -}}
{{- $_ := set $seen $c.name $path -}}
{{- if not (has $c.region $v.regions) -}}
{{- fail (printf "%s.region %q is not in regions (%s): the allocator reports capacity and the matchers form matches in those only" $path $c.region (join ", " $v.regions)) -}}
{{- end -}}
{{- range $m := (default (list) $c.modes) -}}
{{- if not (has $m $modes.names) -}}
{{- fail (printf "%s.modes: %q is none of %s (%s)" $path $m $modes.source (join ", " $modes.names)) -}}
{{- end -}}
{{- end -}}
{{- $list = append $list (dict "name" $c.name "kubeconfig" (printf "/etc/quickmatch/kubeconfigs/%s/kubeconfig" $c.name) "context" (default "" $c.context) "namespace" $c.namespace "fleet" $c.fleet "region" $c.region "modes" (default (list) $c.modes) "priority" (int (default 0 $c.priority)) "weight" (int (default 1 $c.weight)) "scheduling" (default "Packed" $c.scheduling)) -}}
{{- end -}}
{{- toJson $list -}}
{{- end -}}
