#!/usr/bin/env bats
# scripts/destroy.sh on the local AWS (local_aws/, 127.0.0.1, dummy credentials) with
# the real template and fake functions for the Lambda: the service, its cluster and the stack go;
# the file system and the maintenance password stay, listed with their delete commands,
# unless --delete-data gets the file system id typed back; a deletion that fails on the
# custom resource is retried retaining it. Its options: destroy-options.bats.
# bats file_tags=aws

# status, output and stderr are set by bats' run.
# shellcheck disable=SC2154
bats_require_minimum_version 1.5.0

# shellcheck source=tests/scripts/local-stack.bash
source "${BATS_TEST_DIRNAME}/local-stack.bash"

setup_file() { local_stack_setup_file; }

teardown_file() { local_stack_teardown_file; }

setup() {
  SCRIPT="${ROOT}/scripts/destroy.sh"
  export DEPLOY_POLL_SECONDS=1 DESTROY_POLL_SECONDS=1 CREATE_SERVICE_POLL_SECONDS=1
}

# A deployed stack NAME running its service, as deploy.sh, register and create-service.sh leave it.
deployed_with_service() { # NAME [LAMBDA_ZIP [DEPLOY_OPTION...]]
  deploy "$1" "${2:-${BATS_FILE_TMPDIR}/answers.zip}" "${@:3}" >/dev/null
  aws ecs register-task-definition --family "$1-cloud-exchange" --requires-compatibilities FARGATE \
    --network-mode awsvpc --cpu 256 --memory 512 \
    --container-definitions '[{"name":"ui","image":"example/ui","essential":true}]' >/dev/null
  "${ROOT}/scripts/create-service.sh" --stack-name "$1" --no-wait >/dev/null
}

output_of() { # STACK OUTPUT
  aws cloudformation describe-stacks --stack-name "$1" |
    jq -r --arg key "$2" '.Stacks[0].Outputs[] | select(.OutputKey == $key) | .OutputValue'
}

@test "a stack that does not exist: nothing to delete" {
  run --separate-stderr "$SCRIPT" --stack-name nothing-here
  [ "$status" -eq 1 ]
  [[ $stderr == *"stack nothing-here does not exist in us-east-1: nothing to delete"* ]]
}

@test "deletes the service, its cluster and the stack, streaming its events; lists what is retained; a wrong confirmation deletes no data" {
  local fs secret
  deployed_with_service gone
  fs="$(output_of gone FileSystemId)"
  secret="$(output_of gone MaintenancePasswordSecretArn)"
  run --separate-stderr "$SCRIPT" --stack-name gone --delete-data <<<"fs-wrong"
  [ "$status" -eq 1 ]
  [[ $stderr == *"scaling service cloud-exchange to 0 and deleting it"* ]]
  [[ $stderr == *"deleting cluster gone-cloud-exchange"* ]]
  [[ $stderr == *"stack gone deleted"* ]]
  # The deletion's events, one line each as deploy.sh prints them, the deploy's not again.
  [[ $output =~ [0-9]{2}:[0-9]{2}:[0-9]{2}\ +DELETE_SKIPPED\ +AWS::EFS::FileSystem\ +FileSystem ]]
  [[ $output =~ [0-9]{2}:[0-9]{2}:[0-9]{2}\ +DELETE_COMPLETE\ +AWS::CloudFormation::Stack\ +gone ]]
  [[ $output != *CREATE_COMPLETE* ]]
  [[ $output == *"FileSystem (AWS::EFS::FileSystem) ${fs}"* ]]
  [[ $output == *"MaintenancePasswordSecret (AWS::SecretsManager::Secret) ${secret}"* ]]
  [[ $output == *"aws efs delete-file-system --file-system-id ${fs} --region us-east-1"* ]]
  [[ $output == *"aws secretsmanager delete-secret --secret-id ${secret} --region us-east-1"* ]]
  [[ $output == *"--import-file-system ${fs} --import-secret ${secret}"* ]]
  [[ $stderr == *"error: 'fs-wrong' is not ${fs}: nothing was deleted"* ]]
  aws ecs describe-clusters --clusters gone-cloud-exchange | jq -e 'all(.clusters[]; .status == "INACTIVE")'
  aws cloudformation describe-stacks --stack-name gone 2>/dev/null && return 1
  aws efs describe-file-systems --file-system-id "$fs" | jq -e '.FileSystems | length == 1'
  aws secretsmanager describe-secret --secret-id "$secret" | jq -e 'has("DeletedDate") | not'
}

@test "the stack's own cluster and service names (EcsClusterName, EcsServiceName) are the ones created and deleted" {
  deployed_with_service named "${BATS_FILE_TMPDIR}/answers.zip" \
    --parameter EcsClusterName=ce-named-cluster --parameter EcsServiceName=ce-named-service
  aws ecs describe-services --cluster ce-named-cluster --services ce-named-service |
    jq -e '.services[0].status == "ACTIVE"'
  run --separate-stderr "$SCRIPT" --stack-name named <<<""
  [[ $stderr == *"scaling service ce-named-service to 0 and deleting it"* ]]
  [[ $stderr == *"deleting cluster ce-named-cluster"* ]]
}

@test "--delete-data with the file system id typed back deletes the data; a cluster it did not create is kept" {
  local fs secret
  aws ecs create-cluster --cluster-name shared >/dev/null
  deploy data "${BATS_FILE_TMPDIR}/answers.zip" >/dev/null
  fs="$(output_of data FileSystemId)"
  secret="$(output_of data MaintenancePasswordSecretArn)"
  run --separate-stderr "$SCRIPT" --stack-name data --cluster shared --delete-data <<<"$fs"
  [ "$status" -eq 0 ]
  [[ $stderr == *"no service cloud-exchange in cluster shared"* ]]
  [[ $stderr == *"cluster shared kept: scripts/create-service.sh did not create it for stack data"* ]]
  [[ $stderr == *"deleting file system ${fs}"* ]]
  run aws efs describe-file-systems --file-system-id "$fs"
  [ "$status" -ne 0 ]
  aws secretsmanager describe-secret --secret-id "$secret" | jq -e 'has("DeletedDate")'
  aws ecs describe-clusters --clusters shared | jq -e '.clusters[0].status == "ACTIVE"'
}

@test "a deletion that fails on the custom resource is retried retaining it, after saying why" {
  deploy stuck "${BATS_FILE_TMPDIR}/no-delete.zip" >/dev/null
  run --separate-stderr "$SCRIPT" --stack-name stuck --timeout 2
  [ "$status" -eq 0 ]
  [[ $stderr == *"The deletion failed on:"*"EfsTree (Custom::CloudExchangeEfsTree): "* ]]
  [[ $stderr == *"deleting stack stuck again, retaining EfsTree"* ]]
  [[ $output =~ DELETE_FAILED\ +Custom::CloudExchangeEfsTree\ +EfsTree ]]
  [[ $stderr == *"stack stuck deleted"* ]]
  [[ $output == *"FileSystem (AWS::EFS::FileSystem) fs-"* ]]
  [[ $output != *"EfsTree (Custom"* ]]
}

@test "retained data comes back: a new stack imports the file system and the secret, then creates the rest" {
  local fs secret
  deploy keep "${BATS_FILE_TMPDIR}/answers.zip" >/dev/null
  fs="$(output_of keep FileSystemId)"
  secret="$(output_of keep MaintenancePasswordSecretArn)"
  "$SCRIPT" --stack-name keep >/dev/null
  run --separate-stderr deploy back "${BATS_FILE_TMPDIR}/answers.zip" --import-file-system "$fs"
  [ "$status" -eq 2 ]
  [[ $stderr == *"--import-file-system needs --import-secret ARN"* ]]
  run --separate-stderr deploy back "${BATS_FILE_TMPDIR}/answers.zip" --import-file-system "$fs" --import-secret "$secret"
  [ "$status" -eq 0 ]
  [[ $stderr == *"importing file system ${fs} and secret"* ]]
  [[ $output =~ IMPORT_COMPLETE\ +AWS::CloudFormation::Stack\ +back ]]
  [[ $output == *"Stack back: UPDATE_COMPLETE"* ]]
  [ "$(output_of back FileSystemId)" == "$fs" ]
  [ "$(output_of back MaintenancePasswordSecretArn)" == "$secret" ]
  # An existing stack imports nothing.
  run --separate-stderr deploy back "${BATS_FILE_TMPDIR}/answers.zip" --import-file-system "$fs" --import-secret "$secret"
  [ "$status" -eq 2 ]
  [[ $stderr == *"--import-file-system creates a new stack; stack back exists"* ]]
}
