#!/usr/bin/env bats
# scripts/destroy.sh before it calls AWS: its usage and its refusals. destroy.bats
# takes deployments down on the local AWS.

# status, output and stderr are set by bats' run.
# shellcheck disable=SC2154
bats_require_minimum_version 1.5.0

# shellcheck source=tests/scripts/script-tools.bash
source "${BATS_TEST_DIRNAME}/script-tools.bash"

setup_file() { script_tools_setup_file; }

setup() {
  SCRIPT="${ROOT}/scripts/destroy.sh"
}

@test "--help prints the usage; bad options are refused with it" {
  run --separate-stderr "$SCRIPT" --help
  [ "$status" -eq 0 ]
  [[ $output == *"Usage: scripts/destroy.sh --stack-name NAME"* ]]
  [[ $output == *"--delete-data"* ]]
  run --separate-stderr "$SCRIPT" --stack-name ce --bogus
  [ "$status" -eq 2 ]
  [[ $stderr == *"error: unknown option: --bogus"*"Usage:"* ]]
  run --separate-stderr "$SCRIPT" --delete-data
  [ "$status" -eq 2 ]
  [[ $stderr == *"--stack-name is required"* ]]
}
