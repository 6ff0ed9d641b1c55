#!/usr/bin/env bats
# scripts/status.sh, the whole script against the local AWS (local_aws/: moto with the
# project's patches, on 127.0.0.1, dummy credentials) on a stack deployed by deploy.sh with
# the real Lambda. No container runs locally, so the verdict must be "not healthy" with its
# reasons. Its usage and its screen on fixtures: tests/scripts/status-screen.bats.
# bats file_tags=aws

# status, output and stderr are set by bats' run.
# shellcheck disable=SC2154
bats_require_minimum_version 1.5.0

# shellcheck source=tests/scripts/script-tools.bash
source "${BATS_TEST_DIRNAME}/script-tools.bash"
# shellcheck source=local_aws/local-aws.sh
source "${BATS_TEST_DIRNAME}/../../local_aws/local-aws.sh"

setup_file() {
  script_tools_setup_file
  local zip network
  zip="$(local_aws_build_lambda "$ROOT")"
  mkdir -p "${BATS_FILE_TMPDIR}/efs"
  local_aws_start "$(free_port)" "${BATS_FILE_TMPDIR}/efs" "${BATS_FILE_TMPDIR}/local-aws.log"
  printf '%s\n' "$LOCAL_AWS_PID" >"${BATS_FILE_TMPDIR}/local-aws.pid"
  network="$(local_aws_network)"
  DEPLOY_POLL_SECONDS=1 "${ROOT}/scripts/deploy.sh" --stack-name ce-status --vpc-id "${network% *}" \
    --subnets "${network#* }" --ui-cidr 10.42.0.0/16 --lambda-zip "$zip" --timeout 3 \
    >"${BATS_FILE_TMPDIR}/deploy.log" 2>&1 || { cat "${BATS_FILE_TMPDIR}/deploy.log" >&2; return 1; }
}

teardown_file() {
  local pid
  pid="$(cat "${BATS_FILE_TMPDIR}/local-aws.pid" 2>/dev/null)" || return 0
  kill "$pid" 2>/dev/null || true
}

setup() {
  SCRIPT="${ROOT}/scripts/status.sh"
}

@test "local AWS: a stack that does not exist is not healthy (exit 1)" {
  run --separate-stderr "$SCRIPT" --stack-name nothing-here
  [ "$status" -eq 1 ]
  [[ $output == *"Stack        does not exist"* ]]
  [[ $output == *"  - stack nothing-here does not exist in us-east-1"* ]]
}

@test "local AWS: before create-service.sh the verdict names the missing cluster" {
  run --separate-stderr "$SCRIPT" --stack-name ce-status
  [ "$status" -eq 1 ]
  [[ $output == *"Stack        CREATE_COMPLETE"* ]]
  [[ $output == *"cluster ce-status-cloud-exchange does not exist or is not ACTIVE: run scripts/create-service.sh --stack-name ce-status"* ]]
}

@test "local AWS: a created service with no task running is not healthy, and says why" {
  "${ROOT}/scripts/register-task-definition.sh" --stack-name ce-status >/dev/null 2>&1
  "${ROOT}/scripts/create-service.sh" --stack-name ce-status --no-wait >/dev/null 2>&1
  run --separate-stderr "$SCRIPT" --stack-name ce-status
  [ "$status" -eq 1 ]
  [[ $output == *"Service      cloud-exchange in ce-status-cloud-exchange: ACTIVE, running 0/1"* ]]
  [[ $output == *"Deployment   PRIMARY ce-status-cloud-exchange:1  rollout IN_PROGRESS"* ]]
  [[ $output == *"Task         none running"* ]]
  [[ $output == *"UI           unknown (no running task with an address)"* ]]
  # The generated certificates' expiry dates come from the custom resource's Data.
  [[ $output =~ Certificates\ internal\ CA\ [0-9]+\ days,\ internal\ TLS\ [0-9]+\ days,\ UI\ [0-9]+\ days ]]
  [[ $output == *"Verdict      NOT HEALTHY"* ]]
  [[ $output == *"  - 0 of 1 tasks running"* ]]
  [[ $output == *"  - no running task"* ]]
  # --json gives the same snapshot the screen is made of, and the same exit status.
  run --separate-stderr "$SCRIPT" --stack-name ce-status --json
  [ "$status" -eq 1 ]
  jq -e '.stack.StackName == "ce-status" and .service.desiredCount == 1 and .tasks == [] and .targets == null' <<<"$output"
}
