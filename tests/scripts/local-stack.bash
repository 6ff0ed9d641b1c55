# shellcheck shell=bash
# What the bats files that deploy the real template share: the local AWS (local_aws/,
# on 127.0.0.1 with dummy credentials) with a VPC and two subnets for the network checks and
# one VPC per deployed stack, fake functions for the Lambda
# so no Rust build is needed, and deploy.sh with the options every deployment needs.
# Sourced by tests/scripts/deploy.bats and tests/scripts/destroy.bats; call local_stack_setup_file from
# setup_file and local_stack_teardown_file from teardown_file.

# shellcheck source=tests/scripts/script-tools.bash
source "${BATS_TEST_DIRNAME}/script-tools.bash"
# shellcheck source=local_aws/local-aws.sh
source "${BATS_TEST_DIRNAME}/../../local_aws/local-aws.sh"

# Starts the local AWS and makes the fake functions: answers.zip answers SUCCESS, silent.zip
# never answers, no-delete.zip answers everything but Delete, refuses.zip answers FAILED to
# everything but Delete (which it never answers).
local_stack_setup_file() {
  script_tools_setup_file
  mkdir -p "${BATS_FILE_TMPDIR}/efs"
  local_aws_start "$(free_port)" "${BATS_FILE_TMPDIR}/efs" "${BATS_FILE_TMPDIR}/local-aws.log"
  printf '%s\n' "$LOCAL_AWS_PID" >"${BATS_FILE_TMPDIR}/local-aws.pid"
  local network
  network="$(local_aws_network)"
  export VPC="${network% *}" SUBNETS="${network#* }"
  local_aws_zip "${ROOT}/tests/fixtures/custom-resource-bootstrap.sh" "${BATS_FILE_TMPDIR}/answers.zip"
  printf '#!/bin/sh\necho "fake-tree: giving up without an answer"\n' >"${BATS_FILE_TMPDIR}/silent.sh"
  local_aws_zip "${BATS_FILE_TMPDIR}/silent.sh" "${BATS_FILE_TMPDIR}/silent.zip"
  # shellcheck disable=SC2016 # the line is for the fake function, expanded there
  sed '/^response_url=/a [ "$(printf "%s" "$event" | jq -r .RequestType)" != Delete ] || exit 0' \
    "${ROOT}/tests/fixtures/custom-resource-bootstrap.sh" >"${BATS_FILE_TMPDIR}/no-delete.sh"
  local_aws_zip "${BATS_FILE_TMPDIR}/no-delete.sh" "${BATS_FILE_TMPDIR}/no-delete.zip"
  sed 's/Status: "SUCCESS"/Status: "FAILED"/' "${BATS_FILE_TMPDIR}/no-delete.sh" >"${BATS_FILE_TMPDIR}/refuses.sh"
  local_aws_zip "${BATS_FILE_TMPDIR}/refuses.sh" "${BATS_FILE_TMPDIR}/refuses.zip"
}

local_stack_teardown_file() {
  local pid
  pid="$(cat "${BATS_FILE_TMPDIR}/local-aws.pid" 2>/dev/null)" || return 0
  kill "$pid" 2>/dev/null || true
}

# The network of stack NAME ("VPC SUBNET,SUBNET"): one of its own, made on its first
# deployment. As on AWS, a VPC holds one private zone host.docker.internal, which every stack
# deployed with the template's defaults creates (CreateHostDockerInternalZone).
stack_network() { # NAME
  local file="${BATS_FILE_TMPDIR}/networks/$1"
  if [[ ! -s $file ]]; then
    mkdir -p "${file%/*}"
    local_aws_network >"$file"
  fi
  cat "$file"
}

# deploy.sh with the options every deployment here needs, then OPTION...
deploy() { # STACK_NAME LAMBDA_ZIP OPTION...
  local name="$1" zip="$2" network
  shift 2
  network="$(stack_network "$name")"
  "${ROOT}/scripts/deploy.sh" --stack-name "$name" --vpc-id "${network% *}" --subnets "${network#* }" \
    --ui-cidr 10.42.0.0/16 --lambda-zip "$zip" --timeout 3 "$@"
}
