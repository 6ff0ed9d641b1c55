#!/usr/bin/env bats
# scripts/deploy.sh before it calls AWS: its options and its prerequisites, each refusal
# naming what to do. deploy.bats deploys the real template on the local AWS.

# status, output and stderr are set by bats' run.
# shellcheck disable=SC2154
bats_require_minimum_version 1.5.0

# shellcheck source=tests/scripts/script-tools.bash
source "${BATS_TEST_DIRNAME}/script-tools.bash"

setup_file() { script_tools_setup_file; }

setup() {
  SCRIPT="${ROOT}/scripts/deploy.sh"
}

# Prints a new directory holding only links to the named commands (and bash, for the #!
# line), to be the whole PATH.
path_with() { # COMMAND...
  local dir name
  dir="$(mktemp -d "${BATS_TEST_TMPDIR}/bin.XXXXXX")"
  for name in bash dirname "$@"; do
    ln -sf "$(command -v "$name")" "${dir}/${name}"
  done
  printf '%s\n' "$dir"
}

@test "--help prints the usage" {
  run --separate-stderr "$SCRIPT" --help
  [ "$status" -eq 0 ]
  [[ $output == *"Usage: scripts/deploy.sh --stack-name NAME --vpc-id vpc-..."* ]]
  [[ $output == *"--ui-cidr CIDR"* ]]
  [[ $output == *"--lambda-zip FILE"* ]]
}

@test "an unknown option is refused with the usage" {
  run --separate-stderr "$SCRIPT" --stack-name ce --bogus
  [ "$status" -eq 2 ]
  [[ $stderr == *"unknown option: --bogus"* ]]
  [[ $stderr == *"Usage:"* ]]
}

@test "missing or malformed options are refused before anything runs" {
  local base=(--stack-name ce --vpc-id vpc-0123456789abcdef0)
  run --separate-stderr "$SCRIPT" "${base[@]}" --subnets subnet-01234567 --ui-cidr 10.0.0.0/8
  [ "$status" -eq 2 ]
  [[ $stderr == *"exactly two subnet ids"* ]]
  run --separate-stderr "$SCRIPT" "${base[@]}" --subnets subnet-01234567,subnet-01234567 --ui-cidr 10.0.0.0/8
  [ "$status" -eq 2 ]
  [[ $stderr == *"the same subnet twice"* ]]
  run --separate-stderr "$SCRIPT" "${base[@]}" --subnets subnet-01234567,subnet-89abcdef --ui-cidr 10.0.0.300/8
  [ "$status" -eq 2 ]
  [[ $stderr == *"--ui-cidr is not an IPv4 CIDR"* ]]
  run --separate-stderr "$SCRIPT" "${base[@]}" --subnets subnet-01234567,subnet-89abcdef \
    --ui-cidr 10.0.0.0/8 --env-name Prod
  [ "$status" -eq 2 ]
  [[ $stderr == *"--env-name needs 1-16 lowercase letters"* ]]
  run --separate-stderr "$SCRIPT" "${base[@]}" --subnets subnet-01234567,subnet-89abcdef \
    --ui-cidr 10.0.0.0/8 --lambda-zip "${ROOT}/README.md"
  [ "$status" -eq 2 ]
  [[ $stderr == *"--lambda-zip is not a zip archive"* ]]
  run --separate-stderr "$SCRIPT" "${base[@]}" --subnets subnet-01234567,subnet-89abcdef --ui-cidr
  [ "$status" -eq 2 ]
  [[ $stderr == *"--ui-cidr needs a value"* ]]
}

@test "each missing prerequisite is named with what to do" {
  local args=(--stack-name ce --vpc-id vpc-01234567 --subnets "subnet-01234567,subnet-89abcdef" --ui-cidr 10.0.0.0/8)
  run --separate-stderr env PATH="$(path_with jq)" "$SCRIPT" "${args[@]}"
  [ "$status" -eq 1 ]
  [[ $stderr == "error: aws not found on PATH: install the AWS CLI"* ]]
  run --separate-stderr env PATH="$(path_with aws)" "$SCRIPT" "${args[@]}"
  [ "$status" -eq 1 ]
  [[ $stderr == "error: jq not found on PATH"* ]]
  run --separate-stderr env PATH="$(path_with aws jq)" "$SCRIPT" "${args[@]}"
  [ "$status" -eq 1 ]
  [[ $stderr == *"cargo not found on PATH"*"or pass --lambda-zip FILE"* ]]
  run --separate-stderr env PATH="$(path_with aws jq cargo)" "$SCRIPT" "${args[@]}"
  [ "$status" -eq 1 ]
  [[ $stderr == *"cargo lambda not found: pip install cargo-lambda"* ]]
  # cargo-lambda without zig: the system python has no ziglang module.
  local no_zig
  no_zig="$(path_with aws jq cargo cargo-lambda rustup)"
  ln -s /usr/bin/python3 "${no_zig}/python3"
  run --separate-stderr env PATH="$no_zig" "$SCRIPT" "${args[@]}"
  [ "$status" -eq 1 ]
  [[ $stderr == *"zig not found"*"pip install ziglang"* ]]
}
