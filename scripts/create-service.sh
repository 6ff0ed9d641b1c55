#!/usr/bin/env bash
# Runs Cloud Exchange as an ECS service: creates the cluster if it does not exist (and ECS's
# service-linked role, on an account that never used ECS), then creates or updates the
# service on the latest registered task definition, waits until the service is stable (or
# says why not) and prints the task's private IP and the UI's URL.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/init.sh
source "${ROOT}/scripts/lib/init.sh"

POLL_SECONDS="${CREATE_SERVICE_POLL_SECONDS:-10}"
# CE's UI listens on 3000 and serves HTTPS (its certificate lives on the ssl_certs volume).
UI_PORT=3000
STACK_NAME=""
CLUSTER=""
SERVICE=""
REGION_ARG=""
PROFILE_ARG=""
WAIT=true
DRY_RUN=false
TIMEOUT=20
WORK_DIR=""
FAMILY=""
NETWORK=""
ENABLE_EXEC=false
# From the stack: the load balancer's target group and URL (when it has one), EnableExec.
TARGET_GROUP=""
LOAD_BALANCER_URL=""
STACK_EXEC=""
EXEC_LOG_GROUP=""
# CE's first start (plugin seeding, MongoDB's initialisation, core's own start, which may take
# the 20 minutes Netskope's Kubernetes chart allows) takes long; the load balancer's failed
# health checks must not stop the task meanwhile. At least the task definition's slowest path
# to a healthy ui: RabbitMQ's health-check budget (480 s), then core's (1300 s), then ui's
# (320 s); tests/check_cfn.py recomputes it.
HEALTH_CHECK_GRACE_SECONDS=2100

usage() {
  cat <<'USAGE'
Usage: scripts/create-service.sh --stack-name NAME [options]

Creates the ECS cluster if it does not exist (tagged cloud-exchange:created-by, so
scripts/destroy.sh may delete it) and ECS's service-linked role if the account lacks it,
then creates (or updates) the service on the latest ACTIVE revision of the stack's task
definition family: FARGATE, platform LATEST, REPLICA, 1 task, minimum healthy 0 %,
maximum 100 % (the old task stops before the new one starts: two MongoDB servers must
never open the same data), deployment circuit breaker on with rollback, the stack's two
private subnets and task security group, no public IP, ECS Exec only with --enable-exec,
and, when the stack has a load balancer, its target group (container ui, port 3000) with a
2100-second health-check grace period. The cluster gets Container Insights (the stack's
alarms read its metrics).
Waits until the service is stable, then prints the task's private IP and the UI's URL.

Options:
  --stack-name NAME    stack deployed by scripts/deploy.sh (required)
  --cluster NAME       ECS cluster (default: the stack's DefaultClusterName output); another
                       name than the stack's is refused: the alarms watch the stack's
                       (deploy with --parameter EcsClusterName=NAME to change it)
  --service NAME       ECS service (default: the stack's ServiceName output, cloud-exchange
                       unless deployed with --parameter EcsServiceName=NAME); another name
                       than the stack's is refused, as for --cluster
  --no-wait            return once the service is created or updated
  --enable-exec        turn on ECS Exec (aws ecs execute-command) for the service's new
                       tasks; the stack must have been deployed with EnableExec=true
                       (scripts/deploy.sh --enable-exec). Without it, Exec is turned off.
  --dry-run            print the CreateService (or UpdateService) input on stdout and
                       change nothing (the stack and the task definition are still read)
  --timeout MINUTES    how long to wait for a stable service (default: 20; "90s" for
                       seconds)
  --region REGION      AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, aws configure)
  --profile PROFILE    AWS CLI profile
  -h, --help           this text

Run scripts/register-task-definition.sh --stack-name NAME first.
USAGE
}

parse_args() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -h | --help) usage; exit 0 ;;
      --no-wait) WAIT=false; shift ;;
      --dry-run) DRY_RUN=true; shift ;;
      --enable-exec) ENABLE_EXEC=true; shift ;;
      --stack-name) STACK_NAME="$(option_value "$@")"; shift 2 ;;
      --cluster) CLUSTER="$(option_value "$@")"; shift 2 ;;
      --service) SERVICE="$(option_value "$@")"; shift 2 ;;
      --region) REGION_ARG="$(option_value "$@")"; shift 2 ;;
      --profile) PROFILE_ARG="$(option_value "$@")"; shift 2 ;;
      --timeout) TIMEOUT="$(option_value "$@")"; shift 2 ;;
      *) usage_error "unknown option: $1" ;;
    esac
  done
  [[ -n $STACK_NAME ]] || usage_error "--stack-name is required"
  check_service_names "${SERVICE:-cloud-exchange}" "$CLUSTER"
  is_duration "$TIMEOUT" || usage_error "--timeout needs minutes (or seconds, like 90s): $TIMEOUT"
}

# Sets the network and task definition settings from the stack's outputs.
read_stack() {
  local stack status name
  stack="$(stack_describe "$STACK_NAME")"
  [[ -n $stack ]] ||
    die "stack ${STACK_NAME} does not exist in ${REGION}: run scripts/deploy.sh --stack-name ${STACK_NAME} ... first"
  status="$(jq -r .StackStatus <<<"$stack")"
  stack_is_usable "$status" ||
    die "stack ${STACK_NAME} is ${status}: its outputs cannot be trusted; run scripts/deploy.sh again"
  for name in DefaultClusterName TaskDefinitionFamily PrivateSubnet1Id PrivateSubnet2Id TaskSecurityGroupId; do
    [[ -n $(stack_output "$stack" "$name") ]] ||
      die "stack ${STACK_NAME} has no output ${name}: is it a Cloud Exchange stack deployed by scripts/deploy.sh?"
  done
  check_names_match "$(stack_output "$stack" DefaultClusterName)" "$(stack_service_name "$stack")"
  EXEC_LOG_GROUP="$(stack_output "$stack" ExecLogGroupName)"
  FAMILY="$(stack_output "$stack" TaskDefinitionFamily)"
  TARGET_GROUP="$(stack_output "$stack" TargetGroupArn)"
  LOAD_BALANCER_URL="$(stack_output "$stack" LoadBalancerUrl)"
  STACK_EXEC="$(jq -r '.Parameters // [] | map(select(.ParameterKey == "EnableExec"))[0].ParameterValue // "false"' <<<"$stack")"
  if $ENABLE_EXEC && [[ $STACK_EXEC != true ]]; then
    die "--enable-exec needs the stack parameter EnableExec=true (the task role's ECS Exec permissions); deploy with scripts/deploy.sh --stack-name ${STACK_NAME} ... --enable-exec first"
  fi
  NETWORK="$(stack_outputs_json "$stack" | jq -c '{awsvpcConfiguration: {
      subnets: [.PrivateSubnet1Id, .PrivateSubnet2Id],
      securityGroups: [.TaskSecurityGroupId],
      assignPublicIp: "DISABLED"}}')"
}

# The stack names the cluster and the service (its alarms watch those): a --cluster or
# --service naming others is refused, so the alarms never watch a service that does not exist.
check_names_match() { # STACK_CLUSTER STACK_SERVICE
  local stack_service="$2"
  [[ -z $CLUSTER || $CLUSTER == "$1" ]] ||
    die "--cluster ${CLUSTER}: stack ${STACK_NAME} uses cluster ${1}, which its alarms watch; leave --cluster out, or deploy with --parameter EcsClusterName=${CLUSTER} first"
  [[ -z $SERVICE || $SERVICE == "$stack_service" ]] ||
    die "--service ${SERVICE}: stack ${STACK_NAME} uses service ${stack_service}, which its alarms watch; leave --service out, or deploy with --parameter EcsServiceName=${SERVICE} first"
  CLUSTER="$1"
  SERVICE="$stack_service"
}

# ECS Exec sessions are logged to the stack's encrypted exec log group (output
# ExecLogGroupName) through the cluster's executeCommandConfiguration.
exec_configuration() {
  jq -cn --arg group "$EXEC_LOG_GROUP" '{executeCommandConfiguration: {logging: "OVERRIDE",
    logConfiguration: {cloudWatchLogGroupName: $group, cloudWatchEncryptionEnabled: true}}}'
}

ensure_exec_logging() {
  $ENABLE_EXEC && [[ -n $EXEC_LOG_GROUP ]] || return 0
  log "cluster ${CLUSTER}: ECS Exec sessions are logged to ${EXEC_LOG_GROUP}"
  aws_cli ecs update-cluster --cluster "$CLUSTER" --configuration "$(exec_configuration)" >/dev/null
}

ensure_cluster() {
  local status
  status="$(aws_cli ecs describe-clusters --clusters "$CLUSTER" --output json |
    jq -r '.clusters[0].status // "MISSING"')"
  if [[ $status == ACTIVE ]]; then
    log "cluster ${CLUSTER} exists"
    ensure_container_insights
    return 0
  fi
  log "creating cluster ${CLUSTER} (Container Insights on)"
  aws_cli ecs create-cluster --cluster-name "$CLUSTER" --output json \
    --settings name=containerInsights,value=enabled --tags \
    "$(jq -cn --arg key "$CLUSTER_CREATED_BY_TAG" --arg stack "$STACK_NAME" '[{key: $key, value: $stack}]')" >/dev/null
}

# The stack's task alarms read Container Insights' metrics (RunningTaskCount, memory):
# turned on for a cluster that has it off ("enhanced" counts as on).
ensure_container_insights() {
  local setting
  setting="$(aws_cli ecs describe-clusters --clusters "$CLUSTER" --include SETTINGS --output json |
    jq -r '[.clusters[0].settings[]? | select(.name == "containerInsights") | .value][0] // "disabled"')"
  [[ $setting == disabled ]] || return 0
  log "turning on Container Insights for cluster ${CLUSTER} (the stack's alarms need it)"
  aws_cli ecs update-cluster-settings --cluster "$CLUSTER" --settings name=containerInsights,value=enabled \
    >/dev/null 2>&1 ||
    warn "could not turn on Container Insights for cluster ${CLUSTER}: the no-running-task and memory alarms see no data"
}

# The first CreateService of an account fails until ECS's service-linked role exists (ECS
# creates it, but not always in time); create it when it is missing. It is found by its
# path, which AWS fixes for every service-linked role of ECS. "has been taken": it
# appeared meanwhile. Without IAM read access the check is skipped with a warning.
ensure_service_linked_role() {
  local err="${WORK_DIR}/service-linked-role.err" found
  if ! found="$(aws_cli iam list-roles --path-prefix /aws-service-role/ecs.amazonaws.com/ \
    --query 'length(Roles)' --output text 2>"$err")"; then
    warn "cannot check ECS's service-linked role AWSServiceRoleForECS ($(tail -n 1 "$err")); carrying on"
    return 0
  fi
  [[ $found == 0 ]] || return 0
  log "creating ECS's service-linked role AWSServiceRoleForECS (first use of ECS in this account)"
  if aws_cli iam create-service-linked-role --aws-service-name ecs.amazonaws.com >/dev/null 2>"$err" ||
    grep -q 'has been taken' "$err"; then
    return 0
  fi
  cat "$err" >&2
  die "cannot create ECS's service-linked role: run aws iam create-service-linked-role --aws-service-name ecs.amazonaws.com$(aws_args_text) with an administrator's credentials"
}

# describe-task-definition on a family answers with its latest ACTIVE revision.
latest_task_definition() {
  local arn err="${WORK_DIR}/task-definition.err"
  if arn="$(aws_cli ecs describe-task-definition --task-definition "$FAMILY" \
    --query taskDefinition.taskDefinitionArn --output text 2>"$err")"; then
    printf '%s\n' "$arn"
    return 0
  fi
  grep -q 'Unable to describe task definition' "$err" || { cat "$err" >&2; die "cannot read task definition family ${FAMILY}"; }
  die "no ACTIVE task definition in family ${FAMILY}: run scripts/register-task-definition.sh --stack-name ${STACK_NAME}$(aws_args_text) first"
}

# The reference deployment's settings but one: it rolls out with 100 %/200 %, which starts
# the new task beside the old one, and the new MongoDB then waits forever for the data
# directory the old one holds on EFS, so every update hangs. 0 %/100 % stops the old task
# first (a short outage per rollout); the circuit breaker rolls a failing revision back.
# With a load balancer the service registers the task's ui container by IP in the stack's
# target group; an update without one detaches it (an empty list).
service_input() { # create|update TASK_DEFINITION_ARN
  jq -n --arg mode "$1" --arg cluster "$CLUSTER" --arg service "$SERVICE" --arg td "$2" \
    --argjson network "$NETWORK" --argjson exec "$ENABLE_EXEC" --arg tg "$TARGET_GROUP" \
    --argjson grace "$HEALTH_CHECK_GRACE_SECONDS" '
    {cluster: $cluster, taskDefinition: $td, desiredCount: 1, platformVersion: "LATEST",
     deploymentConfiguration: {minimumHealthyPercent: 0, maximumPercent: 100,
       deploymentCircuitBreaker: {enable: true, rollback: true}},
     networkConfiguration: $network, enableExecuteCommand: $exec}
    + if $tg != "" then {loadBalancers: [{targetGroupArn: $tg, containerName: "ui", containerPort: 3000}],
                         healthCheckGracePeriodSeconds: $grace}
      elif $mode == "update" then {loadBalancers: []} else {} end
    + if $mode == "create"
      then {serviceName: $service, launchType: "FARGATE", schedulingStrategy: "REPLICA"}
      else {service: $service} end'
}

# Prints the service's status: ACTIVE, DRAINING, INACTIVE or MISSING (also when the
# cluster does not exist yet).
service_status() {
  aws_cli ecs describe-services --cluster "$CLUSTER" --services "$SERVICE" --output json 2>/dev/null |
    jq -r '.services[0].status // "MISSING"' || printf 'MISSING\n'
}

create_or_update_service() { # TASK_DEFINITION_ARN
  case "$(service_status)" in
    ACTIVE)
      log "updating service ${SERVICE} to ${1##*/}"
      aws_cli ecs update-service --cli-input-json "$(service_input update "$1")" >/dev/null
      ;;
    DRAINING)
      die "service ${SERVICE} is being deleted (DRAINING); run this script again once it is gone"
      ;;
    *)
      log "creating service ${SERVICE} on ${1##*/}"
      aws_cli ecs create-service --cli-input-json "$(service_input create "$1")" >/dev/null
      ;;
  esac
}

describe_service() {
  aws_cli ecs describe-services --cluster "$CLUSTER" --services "$SERVICE" --output json |
    jq -c '.services[0]'
}

# Stable as `aws ecs wait services-stable` defines it (one deployment, running = desired),
# polled here so the service's own events print as they come and the wait is bounded;
# exits non-zero, with the reasons it can find, when the service is not stable in time or
# the circuit breaker failed this revision's deployment (it then rolls back).
wait_until_stable() { # TASK_DEFINITION_ARN
  local td="$1"
  local deadline=$((SECONDS + $(duration_seconds "$TIMEOUT"))) service seen="${WORK_DIR}/seen-events" line
  touch "$seen"
  # Events from before this run are history, not progress.
  describe_service | jq -r '.events[]?.id' >"$seen"
  log "waiting for service ${SERVICE} to be stable (up to $(duration_text "$TIMEOUT"))"
  while true; do
    service="$(describe_service)"
    jq -r -L "${ROOT}/scripts/lib" 'include "time"; .events // [] | reverse | .[] | "\(.id)\t\(.createdAt | clock)\t\(.message)"' <<<"$service" |
      while IFS=$'\t' read -r id at message; do
        grep -qxF -- "$id" "$seen" && continue
        printf '%s\n' "$id" >>"$seen"
        printf '%s  %s\n' "${at:11:8}" "$message"
      done
    line="$(jq -r '"running \(.runningCount)/\(.desiredCount), pending \(.pendingCount), deployments \(.deployments | length)"' <<<"$service")"
    if jq -e --arg td "$td" 'any(.deployments[]?; .taskDefinition == $td and .rolloutState == "FAILED")' \
      <<<"$service" >/dev/null; then
      explain_not_stable "the deployment of ${td##*/} failed; the circuit breaker rolls the service back to its previous revision" "$line"
      exit 1
    fi
    if jq -e '(.deployments | length) == 1 and .runningCount == .desiredCount' <<<"$service" >/dev/null; then
      # The service's task definition is its primary deployment's: after a rollback, the old one.
      if ! jq -e --arg td "$td" '.taskDefinition == $td' <<<"$service" >/dev/null; then
        explain_not_stable "service ${SERVICE} is stable on $(jq -r '.taskDefinition | split("/") | last' <<<"$service"), not ${td##*/}: the circuit breaker rolled the deployment back" "$line"
        exit 1
      fi
      log "service ${SERVICE} is stable: ${line}"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      explain_not_stable "service ${SERVICE} is not stable after $(duration_text "$TIMEOUT")" "$line"
      exit 1
    fi
    sleep "$POLL_SECONDS"
  done
}

explain_not_stable() { # PROBLEM PROGRESS_LINE
  local stopped
  printf 'error: %s (%s).\n' "$1" "$2" >&2
  printf 'Recent service events:\n' >&2
  describe_service | jq -r -L "${ROOT}/scripts/lib" 'include "time"; if (.events // []) == [] then "  (none)"
    else .events[:5][] | "  \(.createdAt | clock)  \(.message)" end' >&2
  stopped="$(aws_cli ecs list-tasks --cluster "$CLUSTER" --service-name "$SERVICE" \
    --desired-status STOPPED --query 'taskArns[:5]' --output json | jq -r '.[]')"
  if [[ -n $stopped ]]; then
    printf 'Recently stopped tasks:\n' >&2
    # shellcheck disable=SC2086 # one argument per task ARN
    aws_cli ecs describe-tasks --cluster "$CLUSTER" --tasks $stopped --output json | jq -r '.tasks[] |
      "  \(.taskArn | split("/") | last): \(.stoppedReason // "no reason given")",
      (.containers[] | select(.reason != null or (.exitCode // 0) != 0)
        | "    \(.name): \(.reason // "exit code \(.exitCode)")")' >&2
  fi
  printf 'The service keeps trying; follow it with:\n  aws ecs describe-services --cluster %s --services %s%s\n' \
    "$CLUSTER" "$SERVICE" "$(aws_args_text)" >&2
}

# The running task's private IP, or "unknown" with the reason (no task yet, or no network
# interface details, as on the local AWS).
task_private_ip() {
  local task ip
  task="$(aws_cli ecs list-tasks --cluster "$CLUSTER" --service-name "$SERVICE" \
    --desired-status RUNNING --query 'taskArns[0]' --output text)"
  if [[ -z $task || $task == None ]]; then
    printf 'unknown (the service has no running task yet)\n'
    return 0
  fi
  ip="$(aws_cli ecs describe-tasks --cluster "$CLUSTER" --tasks "$task" --output json | jq -r '
    [.tasks[0].attachments[]? | select(.type == "ElasticNetworkInterface") | .details[]
      | select(.name == "privateIPv4Address") | .value][0] // empty')"
  if [[ -z $ip ]]; then
    printf 'unknown (task %s has no network interface details yet)\n' "${task##*/}"
    return 0
  fi
  printf '%s\n' "$ip"
}

print_result() { # TASK_DEFINITION_ARN
  local ip
  ip="$(task_private_ip)"
  printf '\nService   %s (cluster %s)\n' "$SERVICE" "$CLUSTER"
  printf 'Task def  %s\n' "$1"
  printf 'Task IP   %s\n' "$ip"
  if [[ -n $LOAD_BALANCER_URL ]]; then
    printf 'UI        %s (load balancer; point your DNS name at it)\n' "$LOAD_BALANCER_URL"
  elif [[ $ip == unknown* ]]; then
    printf 'UI        https://<task private IP>:%s (once the task runs)\n' "$UI_PORT"
  else
    printf 'UI        https://%s:%s (from a network the UiIngressCidr admits)\n' "$ip" "$UI_PORT"
  fi
}

main() {
  parse_args "$@"
  require_command aws "install the AWS CLI (https://aws.amazon.com/cli/)"
  require_command jq "install jq (apt-get install jq, brew install jq)"
  aws_setup "$REGION_ARG" "$PROFILE_ARG"
  WORK_DIR="$(mktemp -d)"
  trap 'rm -rf "$WORK_DIR"' EXIT
  local task_definition
  read_stack
  # Checked before anything is created, so a missing registration changes nothing.
  task_definition="$(latest_task_definition)"
  if $DRY_RUN; then
    if [[ $(service_status) == ACTIVE ]]; then
      service_input update "$task_definition"
    else
      service_input create "$task_definition"
    fi
    return 0
  fi
  ensure_cluster
  ensure_exec_logging
  ensure_service_linked_role
  create_or_update_service "$task_definition"
  if $WAIT; then
    wait_until_stable "$task_definition"
  else
    printf 'Not waiting (--no-wait); follow the service with:\n  aws ecs describe-services --cluster %s --services %s%s\n' \
      "$CLUSTER" "$SERVICE" "$(aws_args_text)"
  fi
  print_result "$task_definition"
  if $ENABLE_EXEC; then
    printf 'Shell     aws ecs execute-command --cluster %s --task <task id> --container core --interactive --command /bin/sh%s\n' \
      "$CLUSTER" "$(aws_args_text)"
  fi
}

main "$@"
