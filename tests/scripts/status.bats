#!/usr/bin/env bats
# scripts/status.sh: usage, the screen and the verdict of scripts/lib/status.jq on fixture
# snapshots (AWS CLI v1 epoch and v2 ISO timestamps; one planted fault per reason), and the
# whole script against the local AWS (local_aws/: moto with the project's patches, on
# 127.0.0.1, dummy credentials) on a stack deployed by deploy.sh with the real Lambda.
# No container runs locally, so there the verdict must be "not healthy" with its reasons.

# status, output and stderr are set by bats' run.
# shellcheck disable=SC2154
bats_require_minimum_version 1.5.0

setup_file() {
  ROOT="$(cd "${BATS_TEST_DIRNAME}/../.." && pwd)"
  # shellcheck source=scripts/lib/tools.sh
  source "${ROOT}/scripts/lib/tools.sh"
  # shellcheck source=local_aws/local-aws.sh
  source "${ROOT}/local_aws/local-aws.sh"
  activate_tools
  local zip network
  zip="$(local_aws_build_lambda "$ROOT")"
  mkdir -p "${BATS_FILE_TMPDIR}/efs"
  local_aws_start "$(free_port)" "${BATS_FILE_TMPDIR}/efs" "${BATS_FILE_TMPDIR}/local-aws.log"
  printf '%s\n' "$LOCAL_AWS_PID" >"${BATS_FILE_TMPDIR}/local-aws.pid"
  network="$(local_aws_network)"
  DEPLOY_POLL_SECONDS=1 "${ROOT}/scripts/deploy.sh" --stack-name ce-status --vpc-id "${network% *}" \
    --subnets "${network#* }" --ui-cidr 10.42.0.0/16 --lambda-zip "$zip" --timeout 3 \
    >"${BATS_FILE_TMPDIR}/deploy.log" 2>&1 || { cat "${BATS_FILE_TMPDIR}/deploy.log" >&2; return 1; }
  export ROOT PATH
}

teardown_file() {
  local pid
  pid="$(cat "${BATS_FILE_TMPDIR}/local-aws.pid" 2>/dev/null)" || return 0
  kill "$pid" 2>/dev/null || true
}

setup() {
  SCRIPT="${ROOT}/scripts/status.sh"
  HEALTHY="${ROOT}/tests/fixtures/status/healthy-cli-v1.json"
}

# The screen, or the reasons (one a line), of a snapshot read from stdin.
screen() { jq -r -L "${ROOT}/scripts/lib" 'include "status"; screen'; }
reasons() { jq -r -L "${ROOT}/scripts/lib" 'include "status"; reasons[]'; }

# The healthy fixture changed by the jq FILTER, then its reasons.
reasons_after() { # FILTER
  jq "$1" "$HEALTHY" | reasons
}

@test "--help prints the usage and the exit statuses" {
  run --separate-stderr "$SCRIPT" --help
  [ "$status" -eq 0 ]
  [[ $output == *"Usage: scripts/status.sh --stack-name NAME"* ]]
  [[ $output == *"Exit status: 0 healthy, 1 not healthy, 2 bad usage."* ]]
}

@test "bad usage exits 2 with the usage" {
  run --separate-stderr "$SCRIPT"
  [ "$status" -eq 2 ]
  [[ $stderr == *"--stack-name is required"* ]]
  run --separate-stderr "$SCRIPT" --stack-name ce --bogus
  [ "$status" -eq 2 ]
  [[ $stderr == *"unknown option: --bogus"* ]]
  run --separate-stderr "$SCRIPT" --stack-name ce --service 'no spaces'
  [ "$status" -eq 2 ]
  [[ $stderr == *"--service is not a valid service name"* ]]
}

@test "fixture: a healthy CE has no reasons, and its screen shows every part" {
  run reasons <"$HEALTHY"
  [ "$status" -eq 0 ]
  [ -z "$output" ]
  run screen <"$HEALTHY"
  [ "$status" -eq 0 ]
  [[ $output == *"Stack        UPDATE_COMPLETE  (last change 2026-11-27 10:30 UTC)"* ]]
  [[ $output == *"Service      cloud-exchange in ce-cloud-exchange: ACTIVE, running 1/1, pending 0"* ]]
  [[ $output == *"Deployment   PRIMARY ce-cloud-exchange:7  rollout COMPLETED  running 1/1  since 2026-11-29 22:06 UTC"* ]]
  [[ $output == *"Task         4f1c0d5e6a7b8c9d RUNNING, health HEALTHY"* ]]
  [[ $output == *"  core               RUNNING   HEALTHY"* ]]
  [[ $output == *"  ui-certificate     STOPPED   UNKNOWN  exit 0"* ]]
  [[ $output == *"UI           https://internal-ce-123.eu-west-1.elb.amazonaws.com (load balancer)"* ]]
  [[ $output == *"Targets      10.0.1.25 healthy"* ]]
  [[ $output == *"Certificates internal CA 3641 days, internal TLS 720 days, UI 366 days"* ]]
  [[ $output == *"  2026-11-29 23:30 UTC  (service cloud-exchange) has reached a steady state."* ]]
  [[ $output == *"Verdict      healthy"* ]]
}

@test "fixture: AWS CLI v1 epoch numbers and v2 ISO strings give the same screen" {
  diff <(screen <"$HEALTHY") <(screen <"${ROOT}/tests/fixtures/status/healthy-cli-v2.json")
  # The fixtures really differ in how they write time.
  jq -e '.tasks[0].startedAt | type == "number"' "$HEALTHY"
  jq -e '.tasks[0].startedAt | type == "string"' "${ROOT}/tests/fixtures/status/healthy-cli-v2.json"
}

@test "fixture: timestamps in every form AWS CLIs print" {
  run jq -nr -L "${ROOT}/scripts/lib" 'include "time";
    [1796000000, 1796000000.987, "1796000000", "2026-11-30T00:53:20Z", "2026-11-30T00:53:20.123456+00:00",
     "2026-11-30T00:53:20+0000", "2026-11-30 00:53:20Z"] | map(epoch) | unique | .[]'
  [ "$output" = "1796000000" ]
  run jq -nr -L "${ROOT}/scripts/lib" 'include "time"; ["soon", null, {}] | map(epoch) | unique | .[]'
  [ "$output" = "null" ]
  run jq -nr -L "${ROOT}/scripts/lib" 'include "status"; "soon" | when'
  [ "$output" = "soon" ]
}

@test "fixture: each fault is a reason (one planted fault each)" {
  run reasons_after '.stack.StackStatus = "UPDATE_ROLLBACK_FAILED"'
  [ "$output" = "stack ce is UPDATE_ROLLBACK_FAILED" ]
  run reasons_after '.clusterStatus = "MISSING"'
  [[ $output == "cluster ce-cloud-exchange does not exist or is not ACTIVE"* ]]
  run reasons_after '.service = null'
  [[ $output == "service cloud-exchange does not exist in cluster ce-cloud-exchange (missing)"* ]]
  run reasons_after '.service.runningCount = 0 | .tasks = []'
  [[ $output == *"0 of 1 tasks running"* ]]
  [[ $output == *"no running task (and none stopped recently)"* ]]
  run reasons_after '.service.deployments[0].rolloutState = "FAILED" | .service.deployments[0].rolloutStateReason = "tasks failed to start"'
  [ "$output" = "the latest deployment failed: tasks failed to start" ]
  run reasons_after '.tasks[0].healthStatus = "UNHEALTHY" | .tasks[0].containers[3].healthStatus = "UNHEALTHY"'
  [ "$output" = "task 4f1c0d5e6a7b8c9d health is UNHEALTHY (core UNHEALTHY)" ]
  run reasons_after '.tasks[0].containers[0].exitCode = 1 | .tasks[0].containers[0].reason = "no secret"'
  [ "$output" = "container ui-certificate exited with code 1: no secret" ]
  run reasons_after '.targets[0].TargetHealth = {State: "unhealthy", Reason: "Target.ResponseCodeMismatch"}'
  [ "$output" = "the load balancer has no healthy target (10.0.1.25: unhealthy (Target.ResponseCodeMismatch))" ]
  run reasons_after '(.stack.Outputs[] | select(.OutputKey == "UiNotAfter") | .OutputValue) = "2026-11-01T00:00:00Z"'
  [ "$output" = "the UI certificate expired on 2026-11-01 00:00 UTC" ]
  run reasons_after '.service.runningCount = 0 | .tasks = [] | .stoppedTasks = [{stoppedReason: "Essential container in task exited",
    containers: [{name: "core", exitCode: 137}, {name: "ui", exitCode: 0}]}]'
  [[ $output == *"last stopped task: Essential container in task exited core: exit code 137"* ]]
}

@test "fixture: a certificate within 30 days is flagged on the screen but is not a reason" {
  local soon
  soon="$(jq '(.stack.Outputs[] | select(.OutputKey == "UiNotAfter") | .OutputValue) = "2026-12-10T00:00:00Z"' "$HEALTHY")"
  run reasons <<<"$soon"
  [ -z "$output" ]
  run screen <<<"$soon"
  [[ $output == *"UI 9 days  (renew soon)"* ]]
}

@test "fixture: without a load balancer the UI is the task's IP and no targets are shown" {
  run screen < <(jq '.targets = null | .stack.Outputs |= map(select(.OutputKey != "LoadBalancerUrl"))' "$HEALTHY")
  [[ $output == *"UI           https://10.0.1.25:3000 (task IP, from a network UiIngressCidr admits)"* ]]
  [[ $output != *"Targets"* ]]
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
