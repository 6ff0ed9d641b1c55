#!/usr/bin/env bash
# Local end-to-end test of the whole flow on the local AWS (local_aws/): deploy.sh with
# the custom resource answered by the real Lambda binary on the EFS folder (a local folder that plays EFS),
# register-task-definition.sh, create-service.sh, then an update that changes the tree, a
# delete that keeps the data, and a tree the Lambda refuses (the stack rolls back and
# deploy.sh fails with the Lambda's reason). Expectations are read from the template itself.
# Bounded in time; stops and removes everything it started. Exits non-zero on any failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/lib/tools.sh
source "${ROOT}/scripts/lib/tools.sh"
# shellcheck source=tests/lib/checks.sh
source "${ROOT}/tests/lib/checks.sh"
# shellcheck source=local_aws/local-aws.sh
source "${ROOT}/local_aws/local-aws.sh"
# shellcheck source=tests/e2e/deployed-tree.sh
source "${ROOT}/tests/e2e/deployed-tree.sh"

STACK="ce-e2e"
BAD_STACK="ce-e2e-bad"
LIMIT_SECONDS="${E2E_LIMIT_SECONDS:-600}"
# A directory the update adds, and one the refused tree declares (it must never appear).
EXTRA_DIR="data/e2e-extra"
REFUSED_MARKER="data/e2e-refused"

WORK_DIR=""
EFS_DIR=""
WATCHDOG=""
NETWORK=""
LAMBDA_ZIP=""

usage() {
  cat <<'USAGE'
Usage: tests/e2e/e2e-local.sh [--help]

Runs deploy, custom resource, register, service, update and delete on the local AWS
(local_aws/), plus a refused tree that must roll back. Must run as root
(the Lambda chowns the tree to uid 1001). Gives up after E2E_LIMIT_SECONDS (default 600).
USAGE
}

cleanup() {
  if [[ -n $WATCHDOG ]]; then
    pkill -P "$WATCHDOG" 2>/dev/null || true
    kill "$WATCHDOG" 2>/dev/null || true
  fi
  local_aws_stop
  [[ -z $WORK_DIR ]] || rm -rf "$WORK_DIR"
}

# The test stops itself (cleanup included) if it runs past its limit. The watchdog holds no
# output stream open, so a pipe reading the test ends with it.
start_watchdog() {
  local test_pid=$$
  (
    sleep "$LIMIT_SECONDS"
    kill -TERM "$test_pid"
  ) >/dev/null 2>&1 &
  WATCHDOG=$!
}

stopped() {
  printf 'error: stopped by SIGTERM (the watchdog sends it after %s seconds)\n' "$LIMIT_SECONDS" >&2
  exit 143
}

setup() {
  [[ $(id -u) -eq 0 ]] || die "run as root: the Lambda chowns the tree to uid 1001"
  cd "$ROOT"
  activate_tools
  WORK_DIR="$(mktemp -d)"
  EFS_DIR="${WORK_DIR}/efs"
  mkdir "$EFS_DIR"
  LAMBDA_ZIP="$(local_aws_build_lambda "$ROOT")"
  local_aws_start "$(free_port)" "$EFS_DIR" "${WORK_DIR}/local-aws.log"
  NETWORK="$(local_aws_network)"
}

# ------------------------------------------------------------------ templates

# A copy of the repository's scripts and template, with the template's tree changed by a jq
# filter, so the real deploy.sh deploys the changed tree.
repo_copy() { # NAME JQ_FILTER [JQ_ARGS...]
  local copy="${WORK_DIR}/$1" filter="$2"
  shift 2
  mkdir -p "${copy}/cfn"
  cp -r "${ROOT}/scripts" "$copy/"
  # Written back as block YAML (intrinsics in their long form), the layout deploy.sh reads
  # the template's parameter names from.
  deployed_tree_template_json "${ROOT}/cfn/CloudExchangeTemplate.yaml" | jq "$@" "$filter" |
    python -c 'import json, sys, yaml; yaml.safe_dump(json.load(sys.stdin), sys.stdout, sort_keys=False, width=1000)' \
      >"${copy}/cfn/CloudExchangeTemplate.yaml"
  printf '%s\n' "$copy"
}

deploy_from() { # REPO STACK LOG
  DEPLOY_POLL_SECONDS=1 "$1/scripts/deploy.sh" --stack-name "$2" --vpc-id "${NETWORK% *}" \
    --subnets "${NETWORK#* }" --ui-cidr 10.42.0.0/16 --lambda-zip "$LAMBDA_ZIP" --timeout 5 >"$3" 2>&1
}

deploy_fails() { # REPO STACK LOG
  ! deploy_from "$@"
}

# ------------------------------------------------------------------ checks

stack_status() { # STACK_NAME_OR_ID
  aws cloudformation describe-stacks --stack-name "$1" --query 'Stacks[0].StackStatus' --output text
}

status_is() { # STACK EXPECTED
  local status
  status="$(stack_status "$1")"
  [[ $status == "$2" ]] || { printf '      %s is %s\n' "$1" "$status"; return 1; }
}

# True when the stack's events hold STATUS for LOGICAL_ID.
has_event() { # STACK LOGICAL_ID STATUS
  aws cloudformation describe-stack-events --stack-name "$1" --output json |
    jq -e --arg id "$2" --arg status "$3" \
      'any(.StackEvents[]; .LogicalResourceId == $id and .ResourceStatus == $status)' >/dev/null
}

# Every directory and file the template's EfsTree declares exists with its owner and mode;
# every file holds its declared content unless SKIP_CONTENT names it. Entries under Fn::If
# depend on parameters this test leaves at their defaults, which drop them.
tree_matches() { # TEMPLATE_JSON_FILE [SKIP_CONTENT]
  local ok=0 path owner group mode kind want got
  while IFS=$'\t' read -r kind path owner group mode; do
    want="$(printf '%d:%d %04o' "$owner" "$group" "$((8#$mode))")"
    if [[ $kind == d && ! -d ${EFS_DIR}/${path} ]] || [[ $kind == f && ! -f ${EFS_DIR}/${path} ]]; then
      printf '      %s is missing\n' "$path"
      ok=1
      continue
    fi
    got="$(stat -c '%u:%g %04a' "${EFS_DIR}/${path}")"
    [[ $got == "$want" ]] || { printf '      %s is %s, declared %s\n' "$path" "$got" "$want"; ok=1; }
    if [[ $kind == f && $path != "${2:-}" ]] && ! cmp -s "${EFS_DIR}/${path}" <(jq -j --arg p "$path" \
      '.Resources.EfsTree.Properties.Files[] | select(.Path == $p) | .Content' "$1"); then
      printf '      %s does not hold its declared content\n' "$path"
      ok=1
    fi
  done < <(jq -r '.Resources.EfsTree.Properties
      | (.Directories[] | select(has("Path")) | ["d", .Path, .Owner, .Group, .Mode]),
        (.Files[] | select(has("Path")) | ["f", .Path, .Owner, .Group, .Mode]) | map(tostring) | @tsv' "$1")
  return "$ok"
}

output_of() { # STACK KEY
  aws cloudformation describe-stacks --stack-name "$1" --output text \
    --query "Stacks[0].Outputs[?OutputKey=='$2'].OutputValue"
}

# Every volume of the registered revision is on the stack's file system, as many as the
# task definition template declares.
registered_on_stack() { # ARN
  local fs count
  fs="$(output_of "$STACK" FileSystemId)"
  count="$(jq '.volumes | length' "${ROOT}/cfn/CloudExchangeTaskDefinition.json")"
  aws ecs describe-task-definition --task-definition "$1" --output json |
    jq -e --arg fs "$fs" --argjson count "$count" \
      '[.taskDefinition.volumes[].efsVolumeConfiguration.fileSystemId] | length == $count and all(. == $fs)' \
      >/dev/null
}

service_runs() { # ARN
  local cluster
  cluster="$(output_of "$STACK" DefaultClusterName)"
  aws ecs describe-services --cluster "$cluster" --services cloud-exchange --output json |
    jq -e --arg arn "$1" --arg subnets "${NETWORK#* }" '.services[0]
      | .networkConfiguration.awsvpcConfiguration as $net
      | .status == "ACTIVE" and .desiredCount == 1 and .taskDefinition == $arn and .launchType == "FARGATE"
        and ($net.subnets | sort) == ($subnets | split(",") | sort) and $net.assignPublicIp == "DISABLED"' \
      >/dev/null
}

log_holds() { # FILE PATTERN
  grep -qE "$2" "$1" || { printf '      no match for /%s/ in:\n' "$2"; sed 's/^/      | /' "$1"; return 1; }
}

file_holds() { # FILE TEXT
  [[ -f $1 ]] && grep -qxF "$2" "$1"
}

# ------------------------------------------------------------------ steps

test_create() {
  deployed_tree_template_json "${ROOT}/cfn/CloudExchangeTemplate.yaml" >"${WORK_DIR}/template.json"
  check "deploy.sh creates the stack" deploy_from "$ROOT" "$STACK" "${WORK_DIR}/create.log"
  check "stack is CREATE_COMPLETE" status_is "$STACK" CREATE_COMPLETE
  check "custom resource EfsTree is CREATE_COMPLETE" has_event "$STACK" EfsTree CREATE_COMPLETE
  check "the tree on the EFS folder has the declared owners, modes and custom.conf" \
    tree_matches "${WORK_DIR}/template.json"
}

test_register_and_service() {
  local arn
  if ! arn="$(scripts/register-task-definition.sh --stack-name "$STACK" 2>"${WORK_DIR}/register.log")"; then
    cat "${WORK_DIR}/register.log"
  fi
  check "register-task-definition.sh prints a task definition ARN" \
    log_holds <(printf '%s\n' "$arn") '^arn:aws:ecs:us-east-1:[0-9]{12}:task-definition/ce-e2e-cloud-exchange:[0-9]+$'
  check "the task definition mounts the stack's file system" registered_on_stack "$arn"
  # No container runs locally (no container runtime), so the service is not waited for.
  check "create-service.sh creates the service" scripts/create-service.sh --stack-name "$STACK" --no-wait
  check "the service is ACTIVE: 1 FARGATE task on that revision, the stack's subnets, no public IP" \
    service_runs "$arn"
}

test_update() {
  local copy
  # An operator's edit of the seed file must survive (Overwrite: false).
  printf 'e2e = operator edit\n' >>"${EFS_DIR}/data/rabbitmq/conf/custom.conf"
  # One more directory, and a changed environment loader (one of our scripts: Overwrite true).
  # shellcheck disable=SC2016 # $path is jq's, not the shell's
  copy="$(repo_copy updated '.Resources.EfsTree.Properties.Directories +=
      [{Path: $path, Owner: "1001", Group: "1001", Mode: "0700"}]
    | (.Resources.EfsTree.Properties.Files[] | select(.Path == "data/env/ce-env.sh") | .Content) += "# e2e update\n"' \
    --arg path "$EXTRA_DIR")"
  deployed_tree_template_json "${copy}/cfn/CloudExchangeTemplate.yaml" >"${WORK_DIR}/updated.json"
  check "deploy.sh updates the stack with one more directory and a new env loader" \
    deploy_from "$copy" "$STACK" "${WORK_DIR}/update.log"
  check "stack is UPDATE_COMPLETE" status_is "$STACK" UPDATE_COMPLETE
  check "custom resource EfsTree is UPDATE_COMPLETE" has_event "$STACK" EfsTree UPDATE_COMPLETE
  check "the new directory reached the EFS folder with its owner and mode" \
    tree_matches "${WORK_DIR}/updated.json" data/rabbitmq/conf/custom.conf
  check "the operator's edit of custom.conf survived the update" \
    file_holds "${EFS_DIR}/data/rabbitmq/conf/custom.conf" "e2e = operator edit"
  check "the changed env loader replaced the old one (Overwrite true)" \
    file_holds "${EFS_DIR}/data/env/ce-env.sh" "# e2e update"
}

test_delete() {
  local stack_id
  printf 'e2e data\n' >"${EFS_DIR}/data/mongo-data/e2e-keep.txt"
  stack_id="$(aws cloudformation describe-stacks --stack-name "$STACK" --query 'Stacks[0].StackId' --output text)"
  check "delete-stack is accepted" aws cloudformation delete-stack --stack-name "$STACK"
  check "stack is DELETE_COMPLETE" status_is "$stack_id" DELETE_COMPLETE
  check "the Lambda answered Delete with SUCCESS (EfsTree DELETE_COMPLETE)" has_event "$stack_id" EfsTree DELETE_COMPLETE
  check "the file system is retained (DELETE_SKIPPED)" has_event "$stack_id" FileSystem DELETE_SKIPPED
  check "data written before the delete is kept" file_holds "${EFS_DIR}/data/mongo-data/e2e-keep.txt" "e2e data"
  check "the tree is kept" tree_matches "${WORK_DIR}/updated.json" data/rabbitmq/conf/custom.conf
}

test_refused_tree() {
  local copy
  # shellcheck disable=SC2016 # $marker is jq's, not the shell's
  copy="$(repo_copy refused '.Resources.EfsTree.Properties.Directories +=
    [{Path: $marker, Owner: "1001", Group: "1001", Mode: "0700"},
     {Path: "data/e2e-bad-mode", Owner: "1001", Group: "1001", Mode: "0999"}]' --arg marker "$REFUSED_MARKER")"
  check "deploy.sh fails when the Lambda answers FAILED" \
    deploy_fails "$copy" "$BAD_STACK" "${WORK_DIR}/refused.log"
  check "deploy.sh prints the Lambda's reason" log_holds "${WORK_DIR}/refused.log" 'EfsTree.*0999'
  check "stack is ROLLBACK_COMPLETE" status_is "$BAD_STACK" ROLLBACK_COMPLETE
  check "custom resource EfsTree is CREATE_FAILED" has_event "$BAD_STACK" EfsTree CREATE_FAILED
  check "nothing of the refused tree was written" test ! -e "${EFS_DIR}/${REFUSED_MARKER}"
  check "the rolled-back stack can be deleted" aws cloudformation delete-stack --stack-name "$BAD_STACK"
}

main() {
  case "${1:-}" in
    -h | --help) usage; exit 0 ;;
    "") ;;
    *) usage_error "unknown option: $1" ;;
  esac
  trap cleanup EXIT
  trap 'exit 130' INT
  trap stopped TERM
  start_watchdog
  setup
  test_create
  test_register_and_service
  test_update
  test_delete
  test_refused_tree
  if ! checks_summary e2e-local; then
    printf 'local AWS log: last lines\n' >&2
    tail -n 40 "$LOCAL_AWS_LOG" >&2
    exit 1
  fi
}

main "$@"
