#!/usr/bin/env bats
# scripts/deploy.sh: credentials, the network preflight, and whole deployments of the real
# template on the local AWS (tests/scripts/local-stack.bash: moto with the project's patches,
# on 127.0.0.1, dummy credentials) with fake functions for the Lambda, so no Rust build is
# needed here. Its options and prerequisites: tests/scripts/deploy-options.bats.
# bats file_tags=aws

# status, output and stderr are set by bats' run.
# shellcheck disable=SC2154
bats_require_minimum_version 1.5.0

# shellcheck source=tests/scripts/local-stack.bash
source "${BATS_TEST_DIRNAME}/local-stack.bash"

setup_file() { local_stack_setup_file; }

teardown_file() { local_stack_teardown_file; }

setup() {
  SCRIPT="${ROOT}/scripts/deploy.sh"
  export DEPLOY_POLL_SECONDS=1
}

# The stack's parameters as one JSON object.
stack_parameters() { # STACK_NAME
  aws cloudformation describe-stacks --stack-name "$1" |
    jq -c '.Stacks[0].Parameters | map({(.ParameterKey): .ParameterValue}) | add'
}

stack_status_is() { # STACK_NAME STATUS
  aws cloudformation describe-stacks --stack-name "$1" | jq -e --arg status "$2" '.Stacks[0].StackStatus == $status' >/dev/null
}

@test "a new stack without --ui-cidr is refused with the usage" {
  run --separate-stderr "$SCRIPT" --stack-name ce --vpc-id "$VPC" --subnets "$SUBNETS" \
    --lambda-zip "${BATS_FILE_TMPDIR}/answers.zip"
  [ "$status" -eq 2 ]
  [[ $stderr == *"--ui-cidr is required"* ]]
}

@test "no credentials or no region: one line on what to do" {
  local args=(--stack-name ce --vpc-id vpc-01234567 --subnets "subnet-01234567,subnet-89abcdef"
    --ui-cidr 10.0.0.0/8 --lambda-zip "${BATS_FILE_TMPDIR}/answers.zip")
  run --separate-stderr env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_EC2_METADATA_DISABLED=true \
    "$SCRIPT" "${args[@]}"
  [ "$status" -eq 1 ]
  [[ $stderr == *"aws sts get-caller-identity failed (Unable to locate credentials"*"aws configure"* ]]
  run --separate-stderr env -u AWS_REGION -u AWS_DEFAULT_REGION "$SCRIPT" "${args[@]}"
  [ "$status" -eq 1 ]
  [[ $stderr == *"no AWS region: pass --region"* ]]
}

@test "a deployment streams events, prints the outputs and the next command; a re-run is a no-op" {
  run --separate-stderr deploy ce-ok "${BATS_FILE_TMPDIR}/answers.zip"
  [ "$status" -eq 0 ]
  [[ $output == *"CREATE_COMPLETE"*"Custom::CloudExchangeEfsTree"*"EfsTree"* ]]
  [[ $output =~ [0-9]{2}:[0-9]{2}:[0-9]{2}\ +CREATE_COMPLETE\ +AWS::CloudFormation::Stack\ +ce-ok ]]
  [[ $output == *"Stack ce-ok: CREATE_COMPLETE"* ]]
  [[ $output =~ TaskDefinitionFamily\ +ce-ok-cloud-exchange ]]
  [[ $output == *"scripts/register-task-definition.sh --stack-name ce-ok --region us-east-1"* ]]
  [[ $stderr == *"creating the artifacts bucket ce-artifacts-123456789012-us-east-1"* ]]
  # The new bucket: encrypted by default and closed to the public.
  aws s3api get-bucket-encryption --bucket ce-artifacts-123456789012-us-east-1 |
    jq -e '.ServerSideEncryptionConfiguration.Rules[0].ApplyServerSideEncryptionByDefault.SSEAlgorithm == "AES256"'
  aws s3api get-public-access-block --bucket ce-artifacts-123456789012-us-east-1 |
    jq -e '.PublicAccessBlockConfiguration | [.[]] | all'
  # The parameters reached the stack; the environment is named after it.
  stack_parameters ce-ok | jq -e '.EnvironmentName == "ce-ok" and .UiIngressCidr == "10.42.0.0/16"'

  run --separate-stderr deploy ce-ok "${BATS_FILE_TMPDIR}/answers.zip"
  [ "$status" -eq 0 ]
  [[ $stderr == *"no changes: stack ce-ok is already up to date"* ]]
  [[ $stderr == *"artifacts bucket: ce-artifacts-123456789012-us-east-1"* ]]
  [[ $output != *"UPDATE_IN_PROGRESS"* ]]
  [[ $output == *"Stack ce-ok: CREATE_COMPLETE"* ]]
  [[ $output == *"scripts/create-service.sh --stack-name ce-ok --region us-east-1"* ]]
}

@test "an update applies what is given and keeps the environment name left out" {
  run --separate-stderr deploy ce-keep "${BATS_FILE_TMPDIR}/answers.zip" --env-name keep
  [ "$status" -eq 0 ]
  run --separate-stderr deploy ce-keep "${BATS_FILE_TMPDIR}/answers.zip" --log-retention 30
  [ "$status" -eq 0 ]
  [[ $stderr == *"updating stack ce-keep (now CREATE_COMPLETE)"* ]]
  [[ $output =~ UPDATE_COMPLETE\ +AWS::CloudFormation::Stack\ +ce-keep ]]
  [[ $output != *"CREATE_IN_PROGRESS"* ]] # only this operation's events
  [[ $output == *"Stack ce-keep: UPDATE_COMPLETE"* ]]
  stack_parameters ce-keep | jq -e '.EnvironmentName == "keep" and .LogRetentionInDays == "30"'
}

@test "a new stack whose name is no environment name needs --env-name" {
  run --separate-stderr deploy CloudExchange "${BATS_FILE_TMPDIR}/answers.zip"
  [ "$status" -eq 2 ]
  [[ $stderr == *"the stack name is not a valid environment name: pass --env-name"* ]]
  run --separate-stderr aws cloudformation describe-stacks --stack-name CloudExchange
  [ "$status" -ne 0 ]
}

@test "a custom resource without an answer: reasons, then ROLLBACK_COMPLETE explained with its delete command" {
  run --separate-stderr deploy ce-bad "${BATS_FILE_TMPDIR}/silent.zip"
  [ "$status" -eq 1 ]
  [[ $output == *"CREATE_FAILED"*"EfsTree"* ]]
  [[ $output == *"ROLLBACK_COMPLETE"* ]]
  [[ $stderr == *"error: stack ce-bad ended in ROLLBACK_COMPLETE."* ]]
  [[ $stderr == *"Failed resources:"*"EfsTree (Custom::CloudExchangeEfsTree): CloudFormation did not receive a response from your Custom Resource."* ]]
  [[ $stderr == *"pass --route-tables to add an S3 gateway endpoint"* ]]
  [[ $stderr == *"aws cloudformation delete-stack --stack-name ce-bad --region us-east-1"* ]]
  [[ $stderr =~ "DeletionPolicy Retain"[^$'\n']*$'\n'("  "[^$'\n']*$'\n')*"  FileSystem (AWS::EFS::FileSystem) fs-" ]]

  # Run again: refused up front, nothing packaged, the stack left as it is.
  run --separate-stderr deploy ce-bad "${BATS_FILE_TMPDIR}/answers.zip"
  [ "$status" -eq 1 ]
  [[ $stderr == *"stack ce-bad is in ROLLBACK_COMPLETE"* ]]
  [[ $stderr == *"aws cloudformation delete-stack --stack-name ce-bad --region us-east-1"* ]]
  [[ $stderr != *"packaging"* ]]
  aws cloudformation describe-stacks --stack-name ce-bad | jq -e '.Stacks[0].StackStatus == "ROLLBACK_COMPLETE"'
}

@test "an update refuses a new environment name before building or changing anything" {
  run --separate-stderr deploy ce-keep "${BATS_FILE_TMPDIR}/answers.zip" --env-name other
  [ "$status" -eq 1 ]
  [[ $stderr == *"stack ce-keep has the environment name 'keep'; it cannot become 'other'"* ]]
  [[ $stderr != *"packaging"* ]]
  stack_parameters ce-keep | jq -e '.EnvironmentName == "keep"'
}

@test "--parameter: an unknown key, a key given twice or no KEY=VALUE is refused with the usage" {
  run --separate-stderr deploy ce-p "${BATS_FILE_TMPDIR}/answers.zip" --parameter NoSuchThing=1
  [ "$status" -eq 2 ]
  [[ $stderr == *"--parameter NoSuchThing: the template has no parameter NoSuchThing (it has: EnvironmentName VpcId"* ]]
  run --separate-stderr deploy ce-p "${BATS_FILE_TMPDIR}/answers.zip" --parameter UiIngressCidr=10.0.0.0/8
  [ "$status" -eq 2 ]
  [[ $stderr == *"parameter UiIngressCidr is given twice"* ]]
  run --separate-stderr deploy ce-p "${BATS_FILE_TMPDIR}/answers.zip" --parameter novalue
  [ "$status" -eq 2 ]
  [[ $stderr == *"--parameter needs KEY=VALUE: novalue"* ]]
}

@test "preflight: subnets outside the VPC, in one Availability Zone, or without a route to S3 are refused, saying what to pass" {
  local other same network vpc subnets table own
  other="$(aws ec2 create-vpc --cidr-block 10.43.0.0/16 --query Vpc.VpcId --output text)"
  own="$(stack_network ce-net)"
  run --separate-stderr deploy ce-net "${BATS_FILE_TMPDIR}/answers.zip" --vpc-id "$other"
  [ "$status" -eq 1 ]
  subnets="${own#* }"
  [[ $stderr == *"subnet ${subnets%,*} is not in ${other} (it is in ${own% *}): pass two subnets of the VPC"* ]]
  same="$(aws ec2 create-subnet --vpc-id "$VPC" --cidr-block 10.42.9.0/24 --availability-zone us-east-1a \
    --query Subnet.SubnetId --output text)"
  run --separate-stderr "$SCRIPT" --stack-name ce-net --vpc-id "$VPC" --subnets "${SUBNETS%,*},${same}" \
    --ui-cidr 10.42.0.0/16 --lambda-zip "${BATS_FILE_TMPDIR}/answers.zip"
  [ "$status" -eq 1 ]
  [[ $stderr == *"are both in us-east-1a: pass two subnets in different Availability Zones"* ]]
  network="$(NO_NAT=1 local_aws_network)"
  read -r vpc subnets table <<<"$network"
  run --separate-stderr "$SCRIPT" --stack-name ce-net --vpc-id "$vpc" --subnets "$subnets" \
    --ui-cidr 10.42.0.0/16 --lambda-zip "${BATS_FILE_TMPDIR}/answers.zip"
  [ "$status" -eq 1 ]
  [[ $stderr == *"route table ${table} of the subnets reaches S3 neither through a NAT gateway"*"Pass --route-tables ${table} to add an S3 gateway endpoint"* ]]
  [[ $stderr != *"packaging"* ]]
  run aws cloudformation describe-stacks --stack-name ce-net
  [ "$status" -ne 0 ]
}

@test "a stack in DELETE_FAILED: refused, naming delete-stack --retain-resources for what failed" {
  deploy ce-stuck "${BATS_FILE_TMPDIR}/no-delete.zip" >/dev/null
  aws cloudformation delete-stack --stack-name ce-stuck
  wait_until 120 1 stack_status_is ce-stuck DELETE_FAILED
  run --separate-stderr deploy ce-stuck "${BATS_FILE_TMPDIR}/answers.zip"
  [ "$status" -eq 1 ]
  [[ $stderr == *"stack ce-stuck is in DELETE_FAILED"* ]]
  [[ $stderr == *"aws cloudformation delete-stack --stack-name ce-stuck --retain-resources EfsTree --region us-east-1"* ]]
  [[ $stderr == *"scripts/destroy.sh --stack-name ce-stuck"* ]]
  [[ $stderr != *"packaging"* ]]
}

@test "a creation whose rollback fails (ROLLBACK_FAILED): delete, then delete retaining EfsTree" {
  run --separate-stderr deploy ce-rbf "${BATS_FILE_TMPDIR}/refuses.zip"
  [ "$status" -eq 1 ]
  [[ $stderr == *"error: stack ce-rbf ended in ROLLBACK_FAILED."* ]]
  [[ $stderr == *"Delete it; when the deletion ends in DELETE_FAILED, delete it again retaining what failed"* ]]
  [[ $stderr == *"aws cloudformation delete-stack --stack-name ce-rbf --retain-resources EfsTree --region us-east-1"* ]]
}

@test "a load balancer without --ui-cidr: deploy.sh's own path (no UiIngressCidr given) is accepted by CloudFormation" {
  local lb_subnets
  lb_subnets="$(aws ec2 describe-subnets --filters "Name=vpc-id,Values=${VPC}" --query 'Subnets[].SubnetId' --output text | tr '\t' ',')"
  run --separate-stderr "${ROOT}/scripts/deploy.sh" --stack-name ce-lbnocidr --vpc-id "$VPC" --subnets "$SUBNETS" \
    --lambda-zip "${BATS_FILE_TMPDIR}/answers.zip" --timeout 3 --parameter LoadBalancerScheme=internal \
    --parameter LoadBalancerSubnetIds="$lb_subnets" --parameter LoadBalancerIngressCidr=10.0.0.0/8 \
    --parameter LoadBalancerCertificateArn=arn:aws:acm:us-east-1:123456789012:certificate/0f8e4c2a-1111-2222-3333-444455
  # CloudFormation accepted the parameters (the local AWS has no ACM, so the listener fails later).
  [[ $stderr == *"creating stack ce-lbnocidr"* ]]
  [[ $stderr != *"must have values"* ]]
  stack_parameters ce-lbnocidr | jq -e '.UiIngressCidr == "" and .LoadBalancerScheme == "internal"'
}

@test "--route-tables naming a table that already has an S3 gateway endpoint is refused before anything is created" {
  local vpc subnets table endpoint
  read -r vpc subnets table <<<"$(NO_NAT=1 local_aws_network)"
  endpoint="$(aws ec2 create-vpc-endpoint --vpc-id "$vpc" --service-name com.amazonaws.us-east-1.s3 \
    --vpc-endpoint-type Gateway --route-table-ids "$table" --query VpcEndpoint.VpcEndpointId --output text)"
  run --separate-stderr "$SCRIPT" --stack-name ce-twice --vpc-id "$vpc" --subnets "$subnets" --ui-cidr 10.42.0.0/16 \
    --route-tables "$table" --lambda-zip "${BATS_FILE_TMPDIR}/answers.zip"
  [ "$status" -eq 1 ]
  [[ $stderr == *"route table ${table} (endpoint ${endpoint}) already has an S3 gateway endpoint"* ]]
  [[ $stderr != *"packaging"* ]]
  run aws cloudformation describe-stacks --stack-name ce-twice
  [ "$status" -ne 0 ]
}

@test "default routes to a firewall endpoint or a Cloud WAN core network reach S3" {
  local vpc subnets table
  read -r vpc subnets table <<<"$(NO_NAT=1 local_aws_network)"
  # describe-route-tables as AWS returns such a table; everything else goes to the local AWS.
  mkdir -p "${BATS_TEST_TMPDIR}/bin"
  cat >"${BATS_TEST_TMPDIR}/bin/aws" <<STUB
#!/usr/bin/env bash
if [[ " \$* " == *" describe-route-tables "* ]]; then
  printf '{"RouteTables":[{"RouteTableId":"${table}","Routes":[{"DestinationCidrBlock":"0.0.0.0/0","GatewayId":"vpce-0123456789abcdef0","State":"active"}]}]}'
  exit 0
fi
exec $(command -v aws) "\$@"
STUB
  chmod +x "${BATS_TEST_TMPDIR}/bin/aws"
  run --separate-stderr env PATH="${BATS_TEST_TMPDIR}/bin:${PATH}" "$SCRIPT" --stack-name ce-fw --vpc-id "$vpc" \
    --subnets "$subnets" --ui-cidr 10.42.0.0/16 --lambda-zip "${BATS_FILE_TMPDIR}/answers.zip" --timeout 3
  # The preflight lets it through (the local AWS's own network model knows no such route).
  [[ $stderr != *"reaches S3 neither"* ]]
  [[ $stderr == *"creating stack ce-fw"* ]]
}

@test "an empty stack left by a failed import (IMPORT_ROLLBACK_COMPLETE): refused, naming the retry, never a new file system" {
  local fs=fs-0123456789abcdef0 secret=arn:aws:secretsmanager:us-east-1:123456789012:secret:ce-maint-AbCdEf
  mkdir -p "${BATS_TEST_TMPDIR}/bin"
  cat >"${BATS_TEST_TMPDIR}/bin/aws" <<STUB
#!/usr/bin/env bash
case " \$* " in
  *" describe-stacks "*) printf '{"Stacks":[{"StackName":"ce-imp","StackId":"arn:aws:cloudformation:us-east-1:123456789012:stack/ce-imp/1","StackStatus":"IMPORT_ROLLBACK_COMPLETE","Parameters":[]}]}' ;;
  *" describe-stack-resources "*) printf '{"StackResources":[]}' ;;
  *" describe-stack-events "*) printf '{"StackEvents":[{"LogicalResourceId":"FileSystem","PhysicalResourceId":"${fs}"},{"LogicalResourceId":"MaintenancePasswordSecret","PhysicalResourceId":"${secret}"}]}' ;;
  *" create-stack "* | *" update-stack "*) echo "must not be called" >&2; exit 99 ;;
  *) exec $(command -v aws) "\$@" ;;
esac
STUB
  chmod +x "${BATS_TEST_TMPDIR}/bin/aws"
  run --separate-stderr env PATH="${BATS_TEST_TMPDIR}/bin:${PATH}" "$SCRIPT" --stack-name ce-imp --vpc-id "$VPC" \
    --subnets "$SUBNETS" --ui-cidr 10.42.0.0/16 --lambda-zip "${BATS_FILE_TMPDIR}/answers.zip"
  [ "$status" -eq 1 ]
  [[ $stderr == *"stack ce-imp is in IMPORT_ROLLBACK_COMPLETE: its import of the retained file system was undone"* ]]
  [[ $stderr == *"would create a new, empty file system"* ]]
  [[ $stderr == *"--import-file-system ${fs} --import-secret ${secret}"* ]]
  [[ $stderr != *"packaging"* ]]
}

@test "load balancer subnets are preflighted: in two Availability Zones, public for internet-facing" {
  local lb=(--parameter LoadBalancerIngressCidr=10.0.0.0/8
    --parameter LoadBalancerCertificateArn=arn:aws:acm:us-east-1:123456789012:certificate/0f8e4c2a-1111-2222-3333-444455)
  # deploy() puts each stack in a network of its own; the load balancer's subnets come from it.
  local network subnets
  network="$(stack_network ce-lbnet)"
  subnets="${network#* }"
  run --separate-stderr deploy ce-lbnet "${BATS_FILE_TMPDIR}/answers.zip" --parameter LoadBalancerScheme=internal \
    --parameter LoadBalancerSubnetIds="${subnets%,*}" "${lb[@]}"
  [ "$status" -eq 1 ]
  [[ $stderr == *"the load balancer subnets ${subnets%,*} are all in us-east-1a"* ]]
  run --separate-stderr deploy ce-lbnet "${BATS_FILE_TMPDIR}/answers.zip" --parameter LoadBalancerScheme=internet-facing \
    --parameter LoadBalancerSubnetIds="$subnets" "${lb[@]}"
  [ "$status" -eq 1 ]
  [[ $stderr == *"load balancer subnet ${subnets%,*} has no route 0.0.0.0/0 to an internet gateway"* ]]
  [[ $stderr != *"packaging"* ]]
  run aws cloudformation describe-stacks --stack-name ce-lbnet
  [ "$status" -ne 0 ]
}
