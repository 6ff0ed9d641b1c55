#!/usr/bin/env bash
# Takes a Cloud Exchange deployment down: the ECS service (scaled to 0, deleted, waited
# for), the cluster if scripts/create-service.sh created it for this stack, then the stack,
# printing its events as deploy.sh does (a deletion takes minutes).
# A deletion that ends DELETE_FAILED is retried once retaining the resources that failed,
# after saying which and why. What the stack retains on purpose (the file system with CE's
# data, the maintenance password) is listed with the commands that would delete it; this
# script deletes it only with --delete-data and the file system id typed back.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/init.sh
source "${ROOT}/scripts/lib/init.sh"

POLL_SECONDS="${DESTROY_POLL_SECONDS:-5}"

STACK_NAME=""
CLUSTER=""
SERVICE=""
REGION_ARG=""
PROFILE_ARG=""
DELETE_DATA=false
TIMEOUT=30
STACK_ID=""
WORK_DIR=""

usage() {
  cat <<'USAGE'
Usage: scripts/destroy.sh --stack-name NAME [options]

Deletes the ECS service (scaled to 0 first), the cluster when scripts/create-service.sh
created it for this stack (its cloud-exchange:created-by tag) and nothing else runs in it,
then the stack, printing its events. If the deletion ends DELETE_FAILED, it says which
resources failed and why, and deletes the stack again retaining them (a custom resource
holds nothing).
The file system (CE's data) and the maintenance password are retained by the stack: they
are listed with the commands that delete them, and with the command that brings them back
into a new stack (scripts/deploy.sh --import-file-system).

Options:
  --stack-name NAME    the stack deployed by scripts/deploy.sh (required)
  --cluster NAME       ECS cluster (default: the stack's DefaultClusterName output)
  --service NAME       ECS service (default: the stack's ServiceName output)
  --delete-data        also delete the retained file system and secrets, after you type the
                       file system's id to confirm (secrets keep AWS's 30-day recovery window)
  --timeout MINUTES    how long to wait for each deletion (default: 30; "90s" for seconds)
  --region REGION      AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, aws configure)
  --profile PROFILE    AWS CLI profile
  -h, --help           this text
USAGE
}

parse_args() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -h | --help) usage; exit 0 ;;
      --delete-data) DELETE_DATA=true; shift ;;
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

service_status() {
  aws_cli ecs describe-services --cluster "$CLUSTER" --services "$SERVICE" --output json 2>/dev/null |
    jq -r '.services[0].status // "MISSING"' || printf 'MISSING\n'
}

service_gone() { [[ $(service_status) != ACTIVE && $(service_status) != DRAINING ]]; }

# Scales the service to 0 so its task stops (MongoDB shuts down cleanly on SIGTERM), deletes
# it, and waits until it is no longer ACTIVE or DRAINING.
delete_service() {
  case "$(service_status)" in
    ACTIVE)
      log "scaling service ${SERVICE} to 0 and deleting it"
      aws_cli ecs update-service --cluster "$CLUSTER" --service "$SERVICE" --desired-count 0 >/dev/null
      aws_cli ecs delete-service --cluster "$CLUSTER" --service "$SERVICE" >/dev/null
      ;;
    DRAINING) log "service ${SERVICE} is being deleted already" ;;
    *)
      log "no service ${SERVICE} in cluster ${CLUSTER}"
      return 0
      ;;
  esac
  wait_until "$(duration_seconds "$TIMEOUT")" "$POLL_SECONDS" service_gone ||
    die "service ${SERVICE} is still being deleted after $(duration_text "$TIMEOUT"); run this script again later"
  log "service ${SERVICE} deleted"
}

# Deletes the cluster only if create-service.sh created it for this stack and nothing else
# runs in it: a cluster someone else made, or shares, is left alone.
delete_cluster() {
  local cluster
  cluster="$(aws_cli ecs describe-clusters --clusters "$CLUSTER" --include TAGS --output json |
    jq -c '.clusters[0] // empty | select(.status == "ACTIVE")')"
  [[ -n $cluster ]] || return 0
  if ! jq -e --arg key "$CLUSTER_CREATED_BY_TAG" --arg stack "$STACK_NAME" \
    'any(.tags[]?; .key == $key and .value == $stack)' <<<"$cluster" >/dev/null; then
    log "cluster ${CLUSTER} kept: scripts/create-service.sh did not create it for stack ${STACK_NAME}"
    return 0
  fi
  if ! jq -e '.activeServicesCount == 0 and .runningTasksCount == 0' <<<"$cluster" >/dev/null; then
    log "cluster ${CLUSTER} kept: other services or tasks still run in it"
    return 0
  fi
  log "deleting cluster ${CLUSTER}"
  aws_cli ecs delete-cluster --cluster "$CLUSTER" >/dev/null
}

stack_status() {
  aws_cli cloudformation describe-stacks --stack-name "$STACK_ID" --output json | jq -r '.Stacks[0].StackStatus'
}

# Prints the stack's new events (scripts/lib/events.sh), then says whether it settled.
# Status first, events second: the events of a settled stack are then all printed.
stack_settled() {
  local status
  status="$(stack_status)"
  stack_events_new "$STACK_ID" "${WORK_DIR}/seen" | stack_events_print
  [[ $status != *_IN_PROGRESS ]]
}

# delete-stack, then streams the stack's events until it is DELETE_COMPLETE or DELETE_FAILED.
delete_stack() { # RETAIN_ID...
  local args=(--stack-name "$STACK_ID")
  [[ $# -eq 0 ]] || args+=(--retain-resources "$@")
  stack_events_new "$STACK_ID" "${WORK_DIR}/seen" >/dev/null # earlier operations' events
  aws_cli cloudformation delete-stack "${args[@]}"
  wait_until "$(duration_seconds "$TIMEOUT")" "$POLL_SECONDS" stack_settled ||
    die "stack ${STACK_NAME} is still $(stack_status) after $(duration_text "$TIMEOUT"); it carries on without this script"
}

remove_stack() {
  local failed ids
  log "deleting stack ${STACK_NAME}"
  delete_stack
  [[ $(stack_status) == DELETE_FAILED ]] || return 0
  failed="$(stack_failed_deletions "$STACK_ID")"
  [[ -n $failed ]] || die "stack ${STACK_NAME} is DELETE_FAILED, but no resource says why: see aws cloudformation describe-stack-events --stack-name ${STACK_NAME}$(aws_args_text)"
  printf 'The deletion failed on:\n' >&2
  jq -r '"  \(.LogicalResourceId) (\(.ResourceType)): \(.ResourceStatusReason // "no reason given")"' <<<"$failed" >&2
  printf '%s\n' "$failed" >>"${WORK_DIR}/left.jsonl"
  mapfile -t ids < <(jq -r .LogicalResourceId <<<"$failed")
  log "deleting stack ${STACK_NAME} again, retaining ${ids[*]} (a custom resource holds nothing; anything else stays in the account, listed below)"
  delete_stack "${ids[@]}"
  [[ $(stack_status) == DELETE_COMPLETE ]] ||
    die "stack ${STACK_NAME} is $(stack_status) again: see aws cloudformation describe-stack-events --stack-name ${STACK_NAME}$(aws_args_text)"
}

# The resources the stack retained on purpose (DeletionPolicy Retain: DELETE_SKIPPED) and
# those retained because their deletion failed, one JSON line each. A retained custom
# resource is left out: it exists only in the stack.
retained_resources() {
  {
    aws_cli cloudformation describe-stack-events --stack-name "$STACK_ID" --output json |
      jq -c '.StackEvents[] | select(.ResourceStatus == "DELETE_SKIPPED")
        | {LogicalResourceId, ResourceType, PhysicalResourceId}'
    cat "${WORK_DIR}/left.jsonl"
  } | jq -sc 'unique_by(.LogicalResourceId)[] | select((.PhysicalResourceId // "") != "")
      | select(.ResourceType | test("^Custom::|^AWS::CloudFormation::CustomResource$") | not)'
}

# How to delete one retained resource, as a command line.
delete_command() { # TYPE PHYSICAL_ID
  case "$1" in
    AWS::EFS::FileSystem) printf 'aws efs delete-file-system --file-system-id %s%s' "$2" "$(aws_args_text)" ;;
    AWS::SecretsManager::Secret) printf 'aws secretsmanager delete-secret --secret-id %s%s' "$2" "$(aws_args_text)" ;;
    AWS::S3::Bucket) printf 'aws s3 rb s3://%s --force%s' "$2" "$(aws_args_text)" ;;
    *) printf '(delete %s %s with its service'"'"'s console or CLI)' "$1" "$2" ;;
  esac
}

report_retained() { # RETAINED_JSON_LINES
  [[ -n $1 ]] || { printf '\nNothing was retained.\n'; return 0; }
  printf '\nRetained (they cost money until deleted; CE'"'"'s data is on the file system):\n'
  jq -r '"  \(.LogicalResourceId) (\(.ResourceType)) \(.PhysicalResourceId)"' <<<"$1"
  printf '\nTo delete them (the file system holds CE'"'"'s data; AWS Backup keeps its recovery points apart):\n'
  while IFS=$'\t' read -r type id; do
    printf '  %s\n' "$(delete_command "$type" "$id")"
  done < <(jq -r '[.ResourceType, .PhysicalResourceId] | @tsv' <<<"$1")
  local fs secret
  fs="$(jq -r 'select(.LogicalResourceId == "FileSystem") | .PhysicalResourceId' <<<"$1")"
  secret="$(jq -r 'select(.LogicalResourceId == "MaintenancePasswordSecret") | .PhysicalResourceId' <<<"$1")"
  if [[ -n $fs && -n $secret ]]; then
    printf '\nTo bring the data back into a new stack:\n'
    printf '  scripts/deploy.sh --stack-name %s --vpc-id ... --subnets ... --ui-cidr ... --import-file-system %s --import-secret %s%s\n' \
      "$STACK_NAME" "$fs" "$secret" "$(aws_args_text)"
  fi
}

# Deletes the retained file system and secrets after the file system's id is typed back.
delete_data() { # RETAINED_JSON_LINES
  local fs answer type id
  fs="$(jq -r 'select(.ResourceType == "AWS::EFS::FileSystem") | .PhysicalResourceId' <<<"$1" | head -n 1)"
  [[ -n $fs ]] || { log "no retained file system to delete"; return 0; }
  printf '\n--delete-data: this deletes file system %s with all of CE'"'"'s data, and the retained secrets.\n' "$fs" >&2
  printf 'Type the file system id to confirm: ' >&2
  read -r answer || answer=""
  [[ $answer == "$fs" ]] || die "'${answer}' is not ${fs}: nothing was deleted"
  while IFS=$'\t' read -r type id; do
    case "$type" in
      AWS::EFS::FileSystem)
        log "deleting file system ${id}"
        aws_cli efs delete-file-system --file-system-id "$id"
        ;;
      AWS::SecretsManager::Secret)
        log "deleting secret ${id} (recoverable for 30 days: aws secretsmanager restore-secret)"
        aws_cli secretsmanager delete-secret --secret-id "$id" >/dev/null
        ;;
    esac
  done < <(jq -r '[.ResourceType, .PhysicalResourceId] | @tsv' <<<"$1")
}

main() {
  parse_args "$@"
  require_command aws "install the AWS CLI (https://aws.amazon.com/cli/)"
  require_command jq "install jq (apt-get install jq, brew install jq)"
  aws_setup "$REGION_ARG" "$PROFILE_ARG"
  local stack retained
  stack="$(stack_describe "$STACK_NAME")"
  [[ -n $stack ]] || die "stack ${STACK_NAME} does not exist in ${REGION}: nothing to delete"
  STACK_ID="$(jq -r .StackId <<<"$stack")"
  [[ $(jq -r .StackStatus <<<"$stack") != *_IN_PROGRESS ]] ||
    die "stack ${STACK_NAME} is busy ($(jq -r .StackStatus <<<"$stack")): wait for it to finish, then run this script again"
  WORK_DIR="$(mktemp -d)"
  trap 'rm -rf "$WORK_DIR"' EXIT
  touch "${WORK_DIR}/left.jsonl"
  [[ -n $CLUSTER ]] || CLUSTER="$(stack_output "$stack" DefaultClusterName)"
  [[ -n $SERVICE ]] || SERVICE="$(stack_service_name "$stack")"
  if [[ -n $CLUSTER ]]; then
    delete_service
    delete_cluster
  fi
  remove_stack
  log "stack ${STACK_NAME} deleted"
  retained="$(retained_resources)"
  report_retained "$retained"
  if $DELETE_DATA; then
    delete_data "$retained"
  fi
}

main "$@"
