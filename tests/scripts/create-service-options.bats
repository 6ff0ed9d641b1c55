#!/usr/bin/env bats
# scripts/create-service.sh before it calls AWS: its usage, its refusals and its
# prerequisites. create-service.bats runs it against moto servers.

# status, output and stderr are set by bats' run.
# shellcheck disable=SC2154
bats_require_minimum_version 1.5.0

# shellcheck source=tests/scripts/script-tools.bash
source "${BATS_TEST_DIRNAME}/script-tools.bash"

setup_file() { script_tools_setup_file; }

setup() {
  SCRIPT="${ROOT}/scripts/create-service.sh"
}

@test "--help prints the usage" {
  run --separate-stderr "$SCRIPT" --help
  [ "$status" -eq 0 ]
  [[ $output == *"Usage: scripts/create-service.sh --stack-name NAME"* ]]
  [[ $output == *"--no-wait"* ]]
}

@test "an unknown option, no stack name or a bad timeout is refused with the usage" {
  run --separate-stderr "$SCRIPT" --stack-name ce --bogus
  [ "$status" -eq 2 ]
  [[ $stderr == *"unknown option: --bogus"* ]]
  [[ $stderr == *"Usage:"* ]]
  run --separate-stderr "$SCRIPT" --cluster c
  [ "$status" -eq 2 ]
  [[ $stderr == *"--stack-name is required"* ]]
  run --separate-stderr "$SCRIPT" --stack-name ce --timeout soon
  [ "$status" -eq 2 ]
  [[ $stderr == *"--timeout needs minutes (or seconds, like 90s)"* ]]
}

@test "without aws on PATH it says what to install" {
  local bin="${BATS_TEST_TMPDIR}/bin"
  mkdir -p "$bin"
  ln -s "$(command -v bash)" "${bin}/bash"
  ln -s "$(command -v dirname)" "${bin}/dirname"
  run --separate-stderr env PATH="$bin" "$SCRIPT" --stack-name ce
  [ "$status" -eq 1 ]
  [[ $stderr == "error: aws not found on PATH: install the AWS CLI"* ]]
}
