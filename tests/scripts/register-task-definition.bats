#!/usr/bin/env bats
# scripts/register-task-definition.sh: options, refusals and rendering, against the fixture
# stacks in tests/fixtures and the plain local AWS on 127.0.0.1 (AWS_ENDPOINT_URL, dummy
# credentials; no real AWS is ever called).
# bats file_tags=aws

# status, output and stderr are set by bats' run; literal ${...} in single quotes is meant.
# shellcheck disable=SC2154,SC2016
bats_require_minimum_version 1.5.0

# shellcheck source=tests/scripts/script-tools.bash
source "${BATS_TEST_DIRNAME}/script-tools.bash"
# shellcheck source=local_aws/local-aws.sh
source "${BATS_TEST_DIRNAME}/../../local_aws/local-aws.sh"

setup_file() {
  script_tools_setup_file
  local port
  port="$(free_port)"
  local_aws_start --plain "$port" "${BATS_FILE_TMPDIR}/moto.log"
  echo "$LOCAL_AWS_PID" >"${BATS_FILE_TMPDIR}/moto.pid"
  # The fixture stacks are in eu-west-1.
  local_aws_environment "$port" eu-west-1
}

teardown_file() {
  kill "$(cat "${BATS_FILE_TMPDIR}/moto.pid")" 2>/dev/null || true
}

setup() {
  SCRIPT="${ROOT}/scripts/register-task-definition.sh"
  FIXTURES="${ROOT}/tests/fixtures"
}

# Variants of the fixture stack, derived here rather than kept as copies.
fixture_with() { # JQ_FILTER OUT
  jq "$1" "${FIXTURES}/stack-outputs.json" >"$2"
}

# A moto stack whose outputs are the fixture's; prints nothing.
create_fixture_stack() { # NAME
  jq '{Resources: {Handle: {Type: "AWS::CloudFormation::WaitConditionHandle"}},
       Outputs: (.Stacks[0].Outputs | map({key: .OutputKey, value: {Value: .OutputValue}}) | from_entries)}' \
    "${FIXTURES}/stack-outputs.json" >"${BATS_TEST_TMPDIR}/template.json"
  aws cloudformation create-stack --stack-name "$1" \
    --template-body "file://${BATS_TEST_TMPDIR}/template.json" >/dev/null
}

@test "--help prints the usage and every documented variable" {
  run --separate-stderr "$SCRIPT" --help
  [ "$status" -eq 0 ]
  [[ $output == *"Usage: scripts/register-task-definition.sh --stack-name NAME"* ]]
  for name in Region Cpu Memory CeProfile MemoryRabbitmq MemoryMongodb MemoryCore ImageCore ImageUi ImageMongodb ImageRabbitmq CoreTag UiTag CeVersion; do
    [[ $output == *"$name"* ]]
  done
}

@test "an unknown option is refused with the usage" {
  run --separate-stderr "$SCRIPT" --stack-name x --bogus
  [ "$status" -eq 2 ]
  [[ $stderr == *"unknown argument: --bogus"* ]]
  [[ $stderr == *"Usage:"* ]]
  [ -z "$output" ]
}

@test "no stack, a missing option value or a bad size is refused with the usage" {
  run --separate-stderr "$SCRIPT" --dry-run
  [ "$status" -eq 2 ]
  [[ $stderr == *"--stack-name or --outputs-file is required"* ]]
  run --separate-stderr "$SCRIPT" --stack-name
  [ "$status" -eq 2 ]
  [[ $stderr == *"--stack-name needs a value"* ]]
  run --separate-stderr "$SCRIPT" --outputs-file "${FIXTURES}/stack-outputs.json" --size huge
  [ "$status" -eq 2 ]
  [[ $stderr == *"--size must be medium or large, not 'huge'"* ]]
  # CE 6.1 has no small profile (8 vCPU / 16 GB is its minimum).
  run --separate-stderr "$SCRIPT" --outputs-file "${FIXTURES}/stack-outputs.json" --size small
  [ "$status" -eq 2 ]
  [[ $stderr == *"--size must be medium or large, not 'small'"* ]]
  run --separate-stderr "$SCRIPT" --outputs-file "${FIXTURES}/stack-outputs.json" --image-core "a b"
  [ "$status" -eq 2 ]
  [[ $stderr == *"not an image URI"* ]]
}

@test "a missing stack gets a clear error" {
  run --separate-stderr "$SCRIPT" --stack-name no-such-stack
  [ "$status" -eq 1 ]
  [[ $stderr == *"error: stack no-such-stack does not exist in eu-west-1"* ]]
  [ -z "$output" ]
}

@test "a stack in ROLLBACK_COMPLETE is refused" {
  fixture_with '.Stacks[0].StackStatus = "ROLLBACK_COMPLETE"' "${BATS_TEST_TMPDIR}/rolled-back.json"
  run --separate-stderr "$SCRIPT" --dry-run --outputs-file "${BATS_TEST_TMPDIR}/rolled-back.json"
  [ "$status" -eq 1 ]
  [[ $stderr == *"is ROLLBACK_COMPLETE: its creation failed"* ]]
  [ -z "$output" ]
}

@test "a stack still in progress is refused; UPDATE_ROLLBACK_COMPLETE is usable" {
  fixture_with '.Stacks[0].StackStatus = "UPDATE_IN_PROGRESS"' "${BATS_TEST_TMPDIR}/busy.json"
  run --separate-stderr "$SCRIPT" --dry-run --outputs-file "${BATS_TEST_TMPDIR}/busy.json"
  [ "$status" -eq 1 ]
  [[ $stderr == *"is UPDATE_IN_PROGRESS; wait until"* ]]
  fixture_with '.Stacks[0].StackStatus = "UPDATE_ROLLBACK_COMPLETE"' "${BATS_TEST_TMPDIR}/rolled.json"
  run --separate-stderr "$SCRIPT" --dry-run --outputs-file "${BATS_TEST_TMPDIR}/rolled.json"
  [ "$status" -eq 0 ]
}

@test "an outputs file for another stack is refused" {
  run --separate-stderr "$SCRIPT" --dry-run --stack-name other --outputs-file "${FIXTURES}/stack-outputs.json"
  [ "$status" -eq 1 ]
  [[ $stderr == *"describes stack ce-test, not other"* ]]
}

@test "--dry-run renders every placeholder from the outputs and the options" {
  run --separate-stderr "$SCRIPT" --dry-run --outputs-file "${FIXTURES}/stack-outputs.json"
  [ "$status" -eq 0 ]
  [[ $output != *'${'* ]]
  # medium: 8 vCPU / 16 GB, split rabbitmq 6/32, mongodb 4/32, core 18/32, ui 256 MiB.
  jq -e '.family == "ce-cloud-exchange" and .cpu == "8192" and .memory == "16384"
         and ([.containerDefinitions[] | {(.name): .memory}] | add)
             == {"mongodb-primary": 2048, "rabbitmq-stats": 3072, "seed-plugins": 512, "core": 9216, "ui": 256}
         and (.containerDefinitions[] | select(.name == "rabbitmq-stats") | .environment[]
              | select(.name == "RABBITMQ_RAM_RESOURCES") | .value) == "3072"
         and (.containerDefinitions[] | select(.name == "core") | .environment[]
              | select(.name == "CE_PROFILE") | .value) == "Medium"
         and (.containerDefinitions[0].logConfiguration.options["awslogs-region"] == "eu-west-1")
         and ([.volumes[].efsVolumeConfiguration.fileSystemId] | length == 12 and all(. == "fs-0123456789abcdef0"))
         and ([.containerDefinitions[].secrets[]?.valueFrom | startswith("arn:aws:secretsmanager:eu-west-1:")] | all)' \
    <<<"$output"

  run --separate-stderr "$SCRIPT" --dry-run --outputs-file "${FIXTURES}/stack-outputs.json" \
    --size large --image-core registry.example/core:1
  [ "$status" -eq 0 ]
  jq -e '.cpu == "16384" and .memory == "32768"
         and ([.containerDefinitions[] | {(.name): .memory}] | add)
             == {"mongodb-primary": 4096, "rabbitmq-stats": 6144, "seed-plugins": 512, "core": 18432, "ui": 256}
         and ([.containerDefinitions[] | select(.image == "registry.example/core:1") | .name] == ["seed-plugins", "core"])
         and (.containerDefinitions[] | select(.name == "seed-plugins") | .environment[0].value) == "registry.example/core:1"' \
    <<<"$output"
}

@test "registry credentials become repositoryCredentials of every image outside ECR, never of ECR's" {
  local arn=arn:aws:secretsmanager:eu-west-1:123456789012:secret:dockerhub-AbCdEf
  local ecr=123456789012.dkr.ecr.eu-west-1.amazonaws.com/docker-hub/netskopetechnicalalliances/cloudexchange:ui6-6.1.0
  fixture_with ".Stacks[0].Outputs += [{OutputKey: \"RegistryCredentialsSecretArn\", OutputValue: \"${arn}\"}]" \
    "${BATS_TEST_TMPDIR}/credentials.json"
  run --separate-stderr "$SCRIPT" --dry-run --outputs-file "${BATS_TEST_TMPDIR}/credentials.json" --image-ui "$ecr"
  [ "$status" -eq 0 ]
  jq -e --arg arn "$arn" '[.containerDefinitions[] | {(.name): .repositoryCredentials.credentialsParameter}] | add
    == {"mongodb-primary": $arn, "rabbitmq-stats": $arn, "seed-plugins": $arn, "core": $arn, "ui": null}' <<<"$output"
  # Without the output, no container names credentials.
  run --separate-stderr "$SCRIPT" --dry-run --outputs-file "${FIXTURES}/stack-outputs.json"
  [ "$status" -eq 0 ]
  jq -e '[.containerDefinitions[] | has("repositoryCredentials")] | any | not' <<<"$output"
}

@test "CORE_TAG and UI_TAG are the images without their registry, as CE's setup passes them; INSTALL_VERSION from core's tag" {
  # The default images (Docker Hub): setup's own values, netskopetechnicalalliances/cloudexchange:...
  run --separate-stderr "$SCRIPT" --dry-run --outputs-file "${FIXTURES}/stack-outputs.json"
  [ "$status" -eq 0 ]
  local env='[.containerDefinitions[] | select(.name == $c) | .environment[] | {(.name): .value}] | add'
  for container in core ui; do
    jq -e --arg c "$container" "($env) as \$e
      | \$e.CORE_TAG == \"netskopetechnicalalliances/cloudexchange:core6-6.1.0\"
        and \$e.UI_TAG == \"netskopetechnicalalliances/cloudexchange:ui6-6.1.0\"
        and \$e.INSTALL_VERSION == \"6.1.0\"" <<<"$output"
  done
  # A mirror in ECR keeps the repository path and tag; a tag naming no version gets 6.1.0.
  run --separate-stderr "$SCRIPT" --dry-run --outputs-file "${FIXTURES}/stack-outputs.json" \
    --image-core 123456789012.dkr.ecr.eu-west-1.amazonaws.com/ce/cloudexchange:core6-6.2.1 \
    --image-ui localhost/ui:mine
  [ "$status" -eq 0 ]
  jq -e --arg c core "($env) as \$e
    | \$e.CORE_TAG == \"ce/cloudexchange:core6-6.2.1\" and \$e.UI_TAG == \"ui:mine\"
      and \$e.INSTALL_VERSION == \"6.2.1\"" <<<"$output"
  run --separate-stderr "$SCRIPT" --dry-run --outputs-file "${FIXTURES}/stack-outputs.json" \
    --image-core "netskopetechnicalalliances/cloudexchange@sha256:$(printf '0%.0s' {1..64})"
  [ "$status" -eq 0 ]
  jq -e --arg c core "($env).INSTALL_VERSION == \"6.1.0\"" <<<"$output"
  [[ $stderr == *"names no CE version"* ]]
}

@test "a placeholder without a value is refused and named" {
  fixture_with '.Stacks[0].Outputs |= map(select(.OutputKey != "JwtSecretArn"))' "${BATS_TEST_TMPDIR}/missing.json"
  run --separate-stderr "$SCRIPT" --dry-run --outputs-file "${BATS_TEST_TMPDIR}/missing.json"
  [ "$status" -eq 1 ]
  [[ $stderr == *'placeholders without a value: ${JwtSecretArn}'* ]]
  [ -z "$output" ]
}

@test "reading the stack from AWS renders the same as the outputs file" {
  create_fixture_stack ce-test
  run --separate-stderr "$SCRIPT" --dry-run --stack-name ce-test
  [ "$status" -eq 0 ]
  diff <(printf '%s\n' "$output") <("$SCRIPT" --dry-run --outputs-file "${FIXTURES}/stack-outputs.json" 2>/dev/null)
}

@test "registering prints only the new revision's ARN" {
  create_fixture_stack ce-register
  run --separate-stderr "$SCRIPT" --stack-name ce-register --size large
  [ "$status" -eq 0 ]
  [[ $output =~ ^arn:aws:ecs:eu-west-1:[0-9]{12}:task-definition/ce-cloud-exchange:[0-9]+$ ]]
  run aws ecs describe-task-definition --task-definition "$output" \
    --query 'taskDefinition.[cpu, memory, containerDefinitions[?name==`core`].secrets[0].name | [0]]' --output text
  [ "$status" -eq 0 ]
  [ "$output" = "$(printf '16384\t32768\tMAINTENANCE_PASSWORD')" ]
}
