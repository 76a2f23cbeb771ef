{{/* The chart's name, overridable. */}}
{{- define "openlines.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release-qualified name every object starts with (63 characters at most). */}}
{{- define "openlines.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "openlines.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "openlines.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component: call with (dict "ctx" $ "component" "ingress"). */}}
{{- define "openlines.selectorLabels" -}}
app.kubernetes.io/name: {{ include "openlines.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The image reference: [registry/]repository:tag, the tag defaulting to the appVersion. */}}
{{- define "openlines.image" -}}
{{- $repository := .Values.image.repository }}
{{- with .Values.image.registry }}
{{- $repository = printf "%s/%s" (trimSuffix "/" .) $repository }}
{{- end }}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The ServiceAccount the pods run as. */}}
{{- define "openlines.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "openlines.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret the pods read: ours, or the one the operator made. */}}
{{- define "openlines.secretName" -}}
{{- if .Values.secret.create }}
{{- printf "%s-secrets" (include "openlines.fullname" .) }}
{{- else }}
{{- required "secret.existingSecret is required when secret.create is false" .Values.secret.existingSecret }}
{{- end }}
{{- end }}

{{/* envFrom shared by the ingress and the workers: the settings, then the secrets (later wins). */}}
{{- define "openlines.envFrom" -}}
- configMapRef:
    name: {{ include "openlines.fullname" . }}-config
- secretRef:
    name: {{ include "openlines.secretName" . }}
{{- end }}

{{/* REDIS_URL from a Secret, named explicitly: a Secret without the key stops the pod from
starting (CreateContainerConfigError) instead of letting it run without Redis. */}}
{{- define "openlines.redisEnv" -}}
{{- if and .Values.secret.create (not .Values.redis.existingSecret) }}
{{- $_ := required "redis.url is required: the Redis the pods use (or name a Secret in redis.existingSecret)" .Values.redis.url }}
{{- end -}}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ default (include "openlines.secretName" .) .Values.redis.existingSecret }}
      key: {{ .Values.redis.existingSecretKey }}
{{- end }}

{{/* Scheduling shared by every pod. */}}
{{- define "openlines.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The ingress pod template, the same whether a Deployment or a StatefulSet runs it (only the
spool volume differs: an emptyDir here, a claim template in the StatefulSet). */}}
{{- define "openlines.ingressPodTemplate" -}}
metadata:
  labels:
    {{- include "openlines.selectorLabels" (dict "ctx" . "component" "ingress") | nindent 4 }}
  annotations:
    checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
    {{- with .Values.ingress.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "openlines.serviceAccountName" . }}
  automountServiceAccountToken: false
  {{- with .Values.image.pullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  containers:
    - name: ingress
      image: {{ include "openlines.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args: ["ingress"]
      ports:
        - name: http
          containerPort: {{ .Values.config.INGRESS_PORT | int }}
      envFrom:
        {{- include "openlines.envFrom" . | nindent 8 }}
      env:
        {{- include "openlines.redisEnv" . | nindent 8 }}
      readinessProbe:
        httpGet:
          path: {{ .Values.ingress.readinessPath }}
          port: http
        periodSeconds: 5
        timeoutSeconds: 2
        failureThreshold: 3
      livenessProbe:
        httpGet:
          path: {{ .Values.ingress.livenessPath }}
          port: http
        initialDelaySeconds: 10
        periodSeconds: 10
        timeoutSeconds: 2
        failureThreshold: 3
      resources:
        {{- toYaml .Values.ingress.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.containerSecurityContext | nindent 8 }}
      volumeMounts:
        - name: spool
          mountPath: {{ .Values.config.SPOOL_DIR }}
        - name: tmp
          mountPath: /tmp
  volumes:
    {{- if not .Values.ingress.spool.persistence.enabled }}
    # Survives container restarts, not the pod's deletion: the replayer empties it as soon as
    # Redis answers again.
    - name: spool
      emptyDir:
        sizeLimit: {{ .Values.ingress.spool.sizeLimit }}
    {{- end }}
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
  {{- with include "openlines.scheduling" . }}
  {{- . | trim | nindent 2 }}
  {{- end }}
{{- end }}
