#!/usr/bin/env bash
# One screen on a Cloud Exchange stack: the stack's status, the ECS service and its
# deployments, the running task and each container's status and health, the UI's address,
# the load balancer's targets, days until the generated certificates expire and the last
# service events; then a verdict. Exit status: 0 healthy, 1 not healthy (the reasons are
# listed), 2 bad usage. Reads only (describe/list calls); changes nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/init.sh
source "${ROOT}/scripts/lib/init.sh"

STACK_NAME=""
CLUSTER=""
SERVICE=""
REGION_ARG=""
PROFILE_ARG=""
JSON=false

usage() {
  cat <<'USAGE'
Usage: scripts/status.sh --stack-name NAME [options]

Shows on one screen: stack status; service, deployments (rollout state, running/desired);
the running task and each container's status and health; the UI's URL (load balancer or
task IP); load balancer target health; days until the generated certificates expire; the
last service events. Ends with a verdict and the reasons CE is not healthy.

Exit status: 0 healthy, 1 not healthy, 2 bad usage. Changes nothing.

Options:
  --stack-name NAME    stack deployed by scripts/deploy.sh (required)
  --cluster NAME       ECS cluster (default: the stack's DefaultClusterName output)
  --service NAME       ECS service (default: the stack's ServiceName output)
  --json               print the collected snapshot as JSON instead of the screen
                       (the exit status is the same)
  --region REGION      AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, aws configure)
  --profile PROFILE    AWS CLI profile
  -h, --help           this text
USAGE
}

parse_args() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -h | --help) usage; exit 0 ;;
      --json) JSON=true; shift ;;
      --stack-name) STACK_NAME="$(option_value "$@")"; shift 2 ;;
      --cluster) CLUSTER="$(option_value "$@")"; shift 2 ;;
      --service) SERVICE="$(option_value "$@")"; shift 2 ;;
      --region) REGION_ARG="$(option_value "$@")"; shift 2 ;;
      --profile) PROFILE_ARG="$(option_value "$@")"; shift 2 ;;
      *) usage_error "unknown option: $1" ;;
    esac
  done
  [[ -n $STACK_NAME ]] || usage_error "--stack-name is required"
  check_service_names "${SERVICE:-cloud-exchange}" "$CLUSTER"
}

# The cluster's status: ACTIVE, INACTIVE, ... or MISSING.
cluster_status() {
  aws_cli ecs describe-clusters --clusters "$CLUSTER" --output json |
    jq -r '.clusters[0].status // "MISSING"'
}

# describe-services .services[0], or null when the service does not exist.
service_json() {
  aws_cli ecs describe-services --cluster "$CLUSTER" --services "$SERVICE" --output json |
    jq -c '.services[0] // null'
}

# describe-tasks .tasks for the service's tasks with DESIRED_STATUS (at most 5), or [].
tasks_json() { # RUNNING|STOPPED
  local arns
  arns="$(aws_cli ecs list-tasks --cluster "$CLUSTER" --service-name "$SERVICE" \
    --desired-status "$1" --output json | jq -r '.taskArns[:5][]')"
  if [[ -z $arns ]]; then
    printf '[]\n'
    return 0
  fi
  # shellcheck disable=SC2086 # one argument per task ARN
  aws_cli ecs describe-tasks --cluster "$CLUSTER" --tasks $arns --output json | jq -c '.tasks // []'
}

# The load balancer's view of its targets, or null when the stack has no load balancer.
targets_json() { # TARGET_GROUP_ARN
  if [[ -z $1 ]]; then
    printf 'null\n'
    return 0
  fi
  aws_cli elbv2 describe-target-health --target-group-arn "$1" --output json |
    jq -c '.TargetHealthDescriptions // []'
}

# Everything the screen shows, as one JSON object (the input of scripts/lib/status.jq).
snapshot() {
  local stack cluster_state="MISSING" service=null tasks='[]' stopped='[]' targets=null
  stack="$(stack_describe "$STACK_NAME")"
  [[ -n $stack ]] || stack=null
  [[ $stack != null ]] || SERVICE="${SERVICE:-cloud-exchange}"
  if [[ $stack != null ]]; then
    [[ -n $CLUSTER ]] || CLUSTER="$(stack_output "$stack" DefaultClusterName)"
    [[ -n $SERVICE ]] || SERVICE="$(stack_service_name "$stack")"
    [[ -z $CLUSTER ]] || cluster_state="$(cluster_status)"
    if [[ $cluster_state == ACTIVE ]]; then
      service="$(service_json)"
      if [[ $service != null ]]; then
        tasks="$(tasks_json RUNNING)"
        [[ $tasks != '[]' ]] || stopped="$(tasks_json STOPPED)"
      fi
    fi
    targets="$(targets_json "$(stack_output "$stack" TargetGroupArn)")"
  fi
  jq -n --argjson now "$(date +%s)" --arg region "$REGION" --arg stackName "$STACK_NAME" \
    --arg cluster "$CLUSTER" --arg serviceName "$SERVICE" --arg clusterStatus "$cluster_state" \
    --argjson stack "$stack" --argjson service "$service" --argjson tasks "$tasks" \
    --argjson stoppedTasks "$stopped" --argjson targets "$targets" '$ARGS.named'
}

main() {
  parse_args "$@"
  require_command aws "install the AWS CLI (https://aws.amazon.com/cli/)"
  require_command jq "install jq (apt-get install jq, brew install jq)"
  aws_setup "$REGION_ARG" "$PROFILE_ARG"
  local state
  state="$(snapshot)"
  if $JSON; then
    printf '%s\n' "$state"
  else
    jq -r -L "${ROOT}/scripts/lib" 'include "status"; screen' <<<"$state"
  fi
  if jq -e -L "${ROOT}/scripts/lib" 'include "status"; reasons | length == 0' <<<"$state" >/dev/null; then
    return 0
  fi
  return 1
}

main "$@"
