{{/* Names, labels and the rendered flotilla.yaml, shared by every template. */}}

{{/* The chart's name, at most 63 characters. */}}
{{- define "flotilla.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: the release name, with the chart name unless it is already in it. */}}
{{- define "flotilla.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The loops the release runs: one per shard, or a single one (name "") for every pool.
Rendered as YAML so that templates can range over it with fromYamlArray.
*/}}
{{- define "flotilla.instances" -}}
{{- if .Values.shards -}}
{{- toYaml .Values.shards -}}
{{- else -}}
- name: ""
  pools: []
{{- end -}}
{{- end -}}

{{/*
The name of one loop's StatefulSet and Service; takes (dict "root" $ "shard" $shard). At most
52 characters: a StatefulSet's pods carry a label of its name plus 11 characters, and a label
value may have 63.
*/}}
{{- define "flotilla.instanceName" -}}
{{- $full := include "flotilla.fullname" .root -}}
{{- if .shard.name -}}
{{- printf "%s-%s" ($full | trunc (int (sub 51 (len .shard.name))) | trimSuffix "-") .shard.name -}}
{{- else -}}
{{- $full | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "flotilla.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flotilla.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "flotilla.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "flotilla.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* One loop's selector labels; takes (dict "root" $ "shard" $shard). */}}
{{- define "flotilla.shardSelectorLabels" -}}
{{ include "flotilla.selectorLabels" .root }}
flotilla.dev/shard: {{ default "all" .shard.name | quote }}
{{- end -}}

{{- define "flotilla.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "flotilla.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* What values.schema.json cannot say: combinations flotilla would refuse at start-up. */}}
{{- define "flotilla.checkValues" -}}
{{- $full := include "flotilla.fullname" . -}}
{{- if not (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" $full) -}}
{{- fail (printf "the release's full name %q is not a Service name (a lowercase letter first, no dots): set fullnameOverride" $full) -}}
{{- end -}}
{{- if and .Values.git.sshKey.secretName (not .Values.git.knownHosts.secretName) -}}
{{- fail "git.sshKey needs git.knownHosts: flotilla checks the Git server's host key" -}}
{{- end -}}
{{- if and .Values.git.sshPassphrase.secretName (not .Values.git.sshKey.secretName) -}}
{{- fail "git.sshPassphrase is set without git.sshKey" -}}
{{- end -}}
{{- $refs := dict -}}
{{- range .Values.credentials -}}
{{- if hasKey $refs .ref -}}
{{- fail (printf "credentials: ref %q is listed twice" .ref) -}}
{{- end -}}
{{- $_ := set $refs .ref true -}}
{{- end -}}
{{- $tokens := dict -}}
{{- range .Values.api.tokens -}}
{{- if hasKey $tokens .name -}}
{{- fail (printf "api.tokens: name %q is listed twice" .name) -}}
{{- end -}}
{{- $_ := set $tokens .name true -}}
{{- end -}}
{{- $pools := dict -}}
{{- range .Values.shards -}}
{{- $shard := .name -}}
{{- range .pools -}}
{{- if hasKey $pools . -}}
{{- fail (printf "shards: pool %q is in shards %q and %q; two loops would both own its VMs" . (get $pools .) $shard) -}}
{{- end -}}
{{- $_ := set $pools . $shard -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
flotilla.yaml: the user's config with the paths the chart owns. Every path points at a mount
made in statefulset.yaml; the files hold secrets, this text never does.
*/}}
{{- define "flotilla.config" -}}
{{- $_ := required "config.source.url is required: the fleet repository" .Values.config.source.url -}}
{{- $_ = required "api.token.secretName is required: the API listens beyond loopback, so it needs a token" .Values.api.token.secretName -}}
{{- include "flotilla.checkValues" . -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $source := $cfg.source -}}
{{- if not $source.path -}}
{{- $_ = unset $source "path" -}}
{{- end -}}
{{- $auth := dict -}}
{{- if .Values.git.token.secretName -}}
{{- $_ = set $auth "tokenFile" "/etc/flotilla/git/token/value" -}}
{{- $_ = set $auth "username" .Values.git.username -}}
{{- end -}}
{{- if .Values.git.sshKey.secretName -}}
{{- $_ = set $auth "sshKeyFile" "/etc/flotilla/git/ssh-key/value" -}}
{{- end -}}
{{- if .Values.git.sshPassphrase.secretName -}}
{{- $_ = set $auth "sshPassphraseFile" "/etc/flotilla/git/ssh-passphrase/value" -}}
{{- end -}}
{{- if .Values.git.knownHosts.secretName -}}
{{- $_ = set $auth "knownHostsFile" "/etc/flotilla/git/known_hosts/value" -}}
{{- end -}}
{{- if $auth -}}
{{- $_ = set $source "auth" $auth -}}
{{- end -}}
{{- if .Values.git.allowedSigners.configMapName -}}
{{- $_ = set $source "verify" (dict "allowedSignersFile" "/etc/flotilla/git/allowed_signers/value") -}}
{{- end -}}
{{- $_ = set $cfg "stateDir" "/var/lib/flotilla" -}}
{{- $_ = set $cfg "secretsDir" "/etc/flotilla/secrets" -}}
{{- $api := $cfg.api | default dict -}}
{{- $_ = set $api "listen" (printf "0.0.0.0:%d" (int .Values.api.port)) -}}
{{- $_ = set $api "tokenFile" "/etc/flotilla/api/token/value" -}}
{{- if .Values.api.tokens -}}
{{- $named := list -}}
{{- range .Values.api.tokens -}}
{{- $named = append $named (dict "name" .name "tokenFile" (printf "/etc/flotilla/api/tokens/%s/value" .name) "roles" .roles) -}}
{{- end -}}
{{- $_ = set $api "tokens" $named -}}
{{- end -}}
{{- if .Values.api.webhookSecret.secretName -}}
{{- $_ = set $api "webhookSecretFile" "/etc/flotilla/api/webhook-secret/value" -}}
{{- end -}}
{{- if .Values.api.tls.secretName -}}
{{- $_ = set $api "tls" (dict "certFile" "/etc/flotilla/tls/tls.crt" "keyFile" "/etc/flotilla/tls/tls.key") -}}
{{- end -}}
{{- $_ = set $cfg "api" $api -}}
{{- toYaml $cfg -}}
{{- end -}}
