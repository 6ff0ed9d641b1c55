#!/usr/bin/env bash
# The whole flow with no AWS account: a local AWS (moto with the project's patches) on
# 127.0.0.1, a VPC with two subnets, then the same three scripts as on AWS — deploy.sh,
# register-task-definition.sh, create-service.sh — pointed at it with AWS_ENDPOINT_URL.
# The custom resource is answered by the real Lambda binary, built for this machine,
# working on the EFS folder (a temporary folder that plays EFS). Prints the tree it built, the
# stack's outputs and the registered task definition's ARN; stops everything it started.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/tools.sh
source "${ROOT}/scripts/lib/tools.sh"
# shellcheck source=local_aws/local-aws.sh
source "${ROOT}/local_aws/local-aws.sh"

STACK_NAME="ce-demo"
PORT=""
KEEP=false
WORK_DIR=""
EFS_DIR=""
RUN_TASK=false
IMAGES=()
TASK_UP=false

usage() {
  cat <<'USAGE'
Usage: scripts/demo.sh [--keep] [--port N] [--run-task [--image CONTAINER=REF]...] [--help]

Runs deploy.sh, register-task-definition.sh and create-service.sh against the local AWS
on 127.0.0.1 (no AWS account, nothing leaves this machine). Installs what it needs
on first run (scripts/lib/tools.sh), builds the Lambda for this machine, and prints the
directory tree the custom resource built, the stack's outputs and the task definition's ARN.
Must run as root: the Lambda gives the tree to uid 1001, as on EFS.

  --keep      leave the local AWS running afterwards (until Ctrl-C) to look around with
              the aws CLI; the commands to point it there are printed
  --port N    port of the local AWS on 127.0.0.1 (default: a free one)
  --run-task  end by running the registered task as a pod (scripts/run-local.sh, podman) on
              the tree the Lambda built, with STAND-IN images built here from Debian packages
              (standin_images/build.sh), print the containers' states, and remove it
  --image CONTAINER=REF
              with --run-task: run CONTAINER from REF (e.g. CE's real image) instead
  -h, --help  this text
USAGE
}

parse_args() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -h | --help) usage; exit 0 ;;
      --keep) KEEP=true; shift ;;
      --run-task) RUN_TASK=true; shift ;;
      --image) IMAGES+=("$(option_value "$@")"); shift 2 ;;
      --port)
        [[ $# -ge 2 && $2 =~ ^[1-9][0-9]{0,4}$ && $2 -le 65535 ]] ||
          { printf 'error: --port needs a port number\n\n' >&2; usage >&2; exit 2; }
        PORT="$2"
        shift 2
        ;;
      *) usage_error "unknown option: $1" ;;
    esac
  done
  [[ ${#IMAGES[@]} -eq 0 || $RUN_TASK == true ]] || usage_error "--image needs --run-task"
}

require_root() {
  [[ $(id -u) -eq 0 ]] && return 0
  die "run this as root (sudo scripts/demo.sh): the Lambda sets the tree's owners to uid 1001
and only root may chown; on EFS it runs as root through its own access point"
}

cleanup() {
  if [[ $TASK_UP == true ]]; then
    "${ROOT}/scripts/run-local.sh" down --stack-name "$STACK_NAME" --name "${STACK_NAME}-task" >/dev/null 2>&1 || true
  fi
  local_aws_stop
  [[ -z $WORK_DIR ]] || rm -rf "$WORK_DIR"
}

start_local_aws() {
  WORK_DIR="$(mktemp -d)"
  EFS_DIR="${WORK_DIR}/efs"
  mkdir "$EFS_DIR"
  [[ -n $PORT ]] || PORT="$(free_port)"
  log "starting the local AWS on 127.0.0.1:${PORT} (EFS folder ${EFS_DIR})"
  local_aws_start "$PORT" "$EFS_DIR" "${WORK_DIR}/local-aws.log"
}

deploy() { # LAMBDA_ZIP
  local network
  network="$(local_aws_network)"
  log "created ${network% *} with subnets ${network#* }"
  DEPLOY_POLL_SECONDS=1 "${ROOT}/scripts/deploy.sh" --stack-name "$STACK_NAME" \
    --vpc-id "${network% *}" --subnets "${network#* }" --ui-cidr 10.42.0.0/16 --lambda-zip "$1"
}

print_tree() {
  printf '\nThe tree the custom resource built (mode owner:group path) in the EFS folder (a local folder that plays EFS):\n'
  (cd "$EFS_DIR" && find . -mindepth 1 -printf '  %#m %U:%G %P\n' | sort -k3)
  # Only names and certificate fields are printed: openssl x509 -noout shows no key, even
  # from the combined PEM that holds one.
  printf '\nCertificates the custom resource generated (the keys above are shown by mode only):\n'
  local file
  while IFS= read -r -d '' file; do
    printf '  %s\n' "${file#"${EFS_DIR}"/}"
    openssl x509 -in "$file" -noout -subject -issuer -enddate | sed 's/^/      /'
  done < <(grep -rlZ -- '-----BEGIN CERTIFICATE-----' "$EFS_DIR" | sort -z)
}

print_outputs() {
  printf '\nStack outputs:\n'
  aws cloudformation describe-stacks --stack-name "$STACK_NAME" --output text \
    --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' | sort | awk -F'\t' '{ printf "  %-34s %s\n", $1, $2 }'
}

# The operator's screen. No container runs here, so status.sh must judge CE not healthy
# (exit 1, "no running task"); the demo still succeeds.
print_status() {
  local rc=0
  printf '\nscripts/status.sh --stack-name %s:\n' "$STACK_NAME"
  "${ROOT}/scripts/status.sh" --stack-name "$STACK_NAME" || rc=$?
  case "$rc" in
    1) printf '(status.sh exits 1, not healthy, as expected here: there is no container runtime, so no task runs)\n' ;;
    0) warn "status.sh found CE healthy, which a local run cannot be" ;;
    *) warn "status.sh failed with exit status ${rc}" ;;
  esac
}

# The registered task, run as a pod from the stack (its task definition, access points and
# secrets read from the local AWS) with the stand-in images unless --image names others.
run_task() {
  command -v podman >/dev/null 2>&1 || { warn "--run-task needs podman; no task run"; return 0; }
  local images=() image override
  mapfile -t images < <("${ROOT}/standin_images/build.sh")
  for override in "${IMAGES[@]}"; do
    images=("${images[@]/#${override%%=*}=*/${override}}")
  done
  local args=()
  for image in "${images[@]}"; do args+=(--image "$image"); done
  printf '
Running the task as a pod (scripts/run-local.sh up --stack-name %s):
' "$STACK_NAME"
  TASK_UP=true
  local rc=0
  "${ROOT}/scripts/run-local.sh" up --stack-name "$STACK_NAME" --efs "$EFS_DIR" --name "${STACK_NAME}-task" \
    "${args[@]}" --timeout 300 || rc=$?
  "${ROOT}/scripts/run-local.sh" status --stack-name "$STACK_NAME" --name "${STACK_NAME}-task" || true
  printf '
Images:
'
  printf '  %s
' "${images[@]}"
  if [[ ${#IMAGES[@]} -lt 6 ]]; then
    printf 'Images named localhost/ce-standin-* are STAND-INS built here from Debian packages (RabbitMQ is
'
    printf "Debian's, MongoDB is a TLS listener, core and ui are small scripts): they prove our task definition,
"
    printf 'tree, certificates and start order, not Cloud Exchange itself.
'
  fi
  [[ $rc -eq 0 ]] || warn "the task stopped (run-local.sh exit ${rc}); see stoppedReason above"
  "${ROOT}/scripts/run-local.sh" down --stack-name "$STACK_NAME" --name "${STACK_NAME}-task"
  TASK_UP=false
}

keep_running() {
  printf '\nThe local AWS keeps running until Ctrl-C. In another shell:\n'
  printf '  export AWS_ENDPOINT_URL=%s AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1\n' \
    "$AWS_ENDPOINT_URL"
  printf '  aws cloudformation describe-stack-events --stack-name %s\n' "$STACK_NAME"
  trap 'exit 0' INT TERM
  wait "$LOCAL_AWS_PID" || true
}

main() {
  parse_args "$@"
  require_root
  cd "$ROOT"
  activate_tools
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  local zip arn
  zip="$(local_aws_build_lambda "$ROOT")"
  start_local_aws
  deploy "$zip"
  arn="$("${ROOT}/scripts/register-task-definition.sh" --stack-name "$STACK_NAME")"
  # No container runs here (no container runtime): the service is created, not waited for;
  # on AWS, create-service.sh waits until the task runs and prints its address.
  "${ROOT}/scripts/create-service.sh" --stack-name "$STACK_NAME" --no-wait
  print_tree
  print_outputs
  printf '\nRegistered task definition:\n%s\n' "$arn"
  print_status
  [[ $RUN_TASK == false ]] || run_task
  [[ $KEEP == false ]] || keep_running
}

main "$@"
