#!/usr/bin/env bats
# scripts/status.sh without AWS: its usage, and the screen and the verdict of
# scripts/lib/status.jq on fixture snapshots (AWS CLI v1 epoch and v2 ISO timestamps; one
# planted fault per reason). status.bats runs the whole script on the local AWS.

# status, output and stderr are set by bats' run.
# shellcheck disable=SC2154
bats_require_minimum_version 1.5.0

# shellcheck source=tests/scripts/script-tools.bash
source "${BATS_TEST_DIRNAME}/script-tools.bash"

setup_file() { script_tools_setup_file; }

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
