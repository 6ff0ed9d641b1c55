#!/usr/bin/env bash
# Runs Cloud Exchange's rendered task definition on this machine as one podman pod, the way
# ECS runs it on Fargate: one shared loopback, every container with its entry point, user,
# environment, secrets, mounts, init process and stop timeout, EFS volumes through their
# access points (the EFS latency model, efs-latency/, forcing each access point's uid/gid), start
# order by dependsOn and health checks evaluated as ECS does. The rules live in
# scripts/lib/task_pod/ (task.py: plain functions with their tests; pod.py: podman calls).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/init.sh
source "${ROOT}/scripts/lib/init.sh"

usage() {
  cat <<USAGE
Usage: scripts/run-local.sh up     --task-definition RENDERED.json --efs DIR --access-points AP.json
                                   [--secrets SECRETS.json] [--image CONTAINER=REF]... [--timeout SECONDS]
       scripts/run-local.sh up     --stack-name NAME --efs DIR [--image CONTAINER=REF]... [--timeout SECONDS]
       scripts/run-local.sh status --task-definition RENDERED.json | --stack-name NAME
       scripts/run-local.sh down   --task-definition RENDERED.json | --stack-name NAME

  up      creates the pod and starts the containers in dependsOn order; exits 0 once every
          essential container runs (healthy where it has a health check), 1 when the task
          stops (printing stoppedReason, which names the container; the stopped containers
          stay for 'status' and 'podman logs' until 'down'), 2 on a usage error
  status  each container's state, last known health and exit code
  down    removes what 'up' made (pod, containers, podman secrets, EFS latency model mounts)

  --task-definition FILE  what 'scripts/register-task-definition.sh --dry-run' prints
  --access-points FILE    what 'aws efs describe-access-points' prints
  --efs DIR               the folder standing in for the file system's root
  --secrets FILE          JSON object: secret ARN (as valueFrom names it) -> SecretString
                          ('-': read it from stdin);
                          'ARN:key::' values are read from the JSON SecretString
  --stack-name NAME       read the task definition (rendered from the stack's outputs), the
                          access points and the secrets from the AWS the CLI points at (the
                          local AWS of scripts/demo.sh)
  --image CONTAINER=REF   run CONTAINER from REF instead of the task definition's image
  --timeout SECONDS       give up (stopping the task) when not RUNNING by then (default 600)
  --name NAME             pod name (default: the task definition's family)
  --health-interval-cap S tests only: health checks at most S seconds apart

Runs as root (FUSE mounts with allow_other; the stand-in takes each access point's identity).
Needs podman; its settings for these machines are in scripts/lib/containers.conf, used unless
CONTAINERS_CONF is already set. Secrets reach the containers as podman secrets (type=env), never
on a command line nor in a file of ours; they stay in podman's root-only secret store until
'down' and, as on ECS, in each container's environment, which 'podman inspect' of a running
container shows (podman 4.3) to whoever may run podman, i.e. root.
USAGE
}

COMMAND=""
STACK_NAME=""
PASS=()
WORK=""

cleanup() { if [[ -n $WORK ]]; then rm -rf "$WORK"; fi; }

parse_args() {
  [[ $# -gt 0 ]] || usage_error "no command"
  case "$1" in
    up | status | down) COMMAND="$1" ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown command: $1" ;;
  esac
  shift
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --stack-name) STACK_NAME="$(option_value "$@")"; shift 2 ;;
      --task-definition | --access-points | --secrets | --efs | --image | --timeout | --name | --health-interval-cap)
        PASS+=("$1" "$(option_value "$@")")
        shift 2
        ;;
      -h | --help) usage; exit 0 ;;
      *) usage_error "unknown option: $1" ;;
    esac
  done
}

# The task definition and access points of a stack, into the private folder WORK (its secrets
# are read by stack_secrets, into no file).
from_stack() {
  local stack outputs fs_id arn
  stack="$(stack_describe "$STACK_NAME")"
  [[ -n $stack ]] || die "stack ${STACK_NAME} does not exist"
  printf '%s\n' "$stack" | jq '{Stacks: [.]}' >"${WORK}/outputs.json"
  "${ROOT}/scripts/register-task-definition.sh" --dry-run --outputs-file "${WORK}/outputs.json" \
    >"${WORK}/task-definition.json"
  PASS+=(--task-definition "${WORK}/task-definition.json")
  [[ $COMMAND == up ]] || return 0
  outputs="$(stack_outputs_json "$stack")"
  fs_id="$(jq -r '.FileSystemId // empty' <<<"$outputs")"
  [[ -n $fs_id ]] || die "stack ${STACK_NAME} has no FileSystemId output"
  aws_cli efs describe-access-points --file-system-id "$fs_id" --output json >"${WORK}/access-points.json"
  PASS+=(--access-points "${WORK}/access-points.json" --secrets -)
}

# Each secret the task names, whole (a valueFrom of the ARN:key:: form reads from it), as one
# JSON object on stdout: through pipes only, never in a file or on a command line.
stack_secrets() {
  local arn
  while IFS= read -r arn; do
    aws_cli secretsmanager get-secret-value --secret-id "$arn" --output json \
      | jq -c --arg arn "$arn" '{($arn): .SecretString}'
  done < <(jq -r '[.containerDefinitions[].secrets // [] | .[].valueFrom
                   | if test(":secret:[^:]+:[^:]*:[^:]*:[^:]*$") then sub(":[^:]*:[^:]*:[^:]*$"; "") else . end]
                  | unique[]' "${WORK}/task-definition.json") | jq -s 'add // {}'
}

# The EFS latency model, built from this checkout (a binary elsewhere may be another version).
efs_latency() {
  (cd "$ROOT" && cargo build --locked -q -p efs-latency --bins) >&2 || die "could not build efs-latency"
  printf '%s\n' "${ROOT}/target/debug/efs-latency"
}

main() {
  parse_args "$@"
  [[ $(id -u) -eq 0 ]] || die "run as root: the EFS latency model mounts with allow_other and takes the access points' uids"
  command -v podman >/dev/null || die "podman is not installed (apt-get install podman runc); docker is not supported yet"
  export CONTAINERS_CONF="${CONTAINERS_CONF:-${ROOT}/scripts/lib/containers.conf}"
  WORK="$(mktemp -d)"
  trap cleanup EXIT
  if [[ -n $STACK_NAME ]]; then
    aws_setup "" ""
    from_stack
  fi
  if [[ $COMMAND == up ]]; then
    PASS+=(--efs-latency "$(efs_latency)")
  fi
  local status=0
  if [[ -n $STACK_NAME && $COMMAND == up ]]; then
    stack_secrets | (cd "$ROOT" && python3 -m scripts.lib.task_pod "$COMMAND" "${PASS[@]}") || status=$?
  else
    (cd "$ROOT" && python3 -m scripts.lib.task_pod "$COMMAND" "${PASS[@]}") || status=$?
  fi
  return "$status"
}

main "$@"
