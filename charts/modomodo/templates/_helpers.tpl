{{/* Full name: the release name, suffixed with the chart name unless it already contains it. */}}
{{- define "modomodo.fullname" -}}
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

{{- define "modomodo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "modomodo.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "modomodo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modomodo
{{- end -}}

{{/* Selector labels of one component (the argument is a dict: ctx, component). */}}
{{- define "modomodo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modomodo.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "modomodo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "modomodo.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository@digest, else repository:tag (tag defaults to the argument's default). */}}
{{- define "modomodo.image" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (default .defaultTag .image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Pod-level security of every pod the chart runs. */}}
{{- define "modomodo.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .runAsUser }}
runAsGroup: {{ .runAsGroup }}
fsGroup: {{ .fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container-level security of every container the chart runs. */}}
{{- define "modomodo.containerSecurityContext" -}}
runAsNonRoot: true
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The Pushgateway as the pipeline steps reach it: by Service name, from pods of the same
namespace (its NetworkPolicy admits no other pushers), so the URL survives a kustomize namespace. */}}
{{- define "modomodo.pushgatewayUrl" -}}
{{- printf "http://%s-pushgateway:%d" (include "modomodo.fullname" .) (int .Values.pushgateway.port) -}}
{{- end -}}

{{/* Environment of the upload Job's containers: the root filesystem is read-only, so HOME and the
caches go to the /tmp volume. */}}
{{- define "modomodo.uploadEnv" -}}
- {name: HOME, value: /tmp}
- {name: MPLCONFIGDIR, value: /tmp/matplotlib}
- {name: XDG_CACHE_HOME, value: /tmp/cache}
{{- end -}}

{{/* Where the search step mounts the study PVC: pipelines/settings.py ClusterSettings.study_mount_path. */}}
{{- define "modomodo.studyMountPath" -}}
/mnt/modomodo-study
{{- end -}}
