#!/usr/bin/env bats
# scripts/smoke-aws.sh, the release check against a real AWS account, without AWS: its
# options, its refusal to start without --confirm-real-aws, and its --dry-run plan. An aws,
# curl and deploy.sh that only record their calls come first on PATH and in a copy of the
# scripts, so any call that slipped through would show.

# status, output and stderr are set by bats' run.
# shellcheck disable=SC2154
bats_require_minimum_version 1.5.0

# shellcheck source=tests/scripts/script-tools.bash
source "${BATS_TEST_DIRNAME}/script-tools.bash"

setup_file() { script_tools_setup_file; }

setup() {
  SCRIPT="${ROOT}/scripts/smoke-aws.sh"
  CALLS="${BATS_TEST_TMPDIR}/calls"
  local bin="${BATS_TEST_TMPDIR}/bin" name
  mkdir -p "$bin"
  for name in aws curl; do
    printf '#!/bin/sh\necho "%s $*" >>"%s"\nexit 1\n' "$name" "$CALLS" >"${bin}/${name}"
    chmod +x "${bin}/${name}"
  done
  export PATH="${bin}:${PATH}" AWS_REGION=eu-west-1
  FRESH=(--ui-cidr 203.0.113.7/32 --certificate-arn arn:aws:acm:eu-west-1:123456789012:certificate/abc)
  GIVEN=(--ui-cidr 10.0.0.0/8 --vpc-id vpc-01234567 --subnets "subnet-01234567,subnet-89abcdef")
}

no_calls() { [ ! -e "$CALLS" ] || { cat "$CALLS" >&2; return 1; }; }

@test "--help prints the usage" {
  run --separate-stderr "$SCRIPT" --help
  [ "$status" -eq 0 ]
  [[ $output == *"Usage: scripts/smoke-aws.sh --confirm-real-aws --ui-cidr CIDR"* ]]
  [[ $output == *"--dry-run"* && $output == *"--keep-on-failure"* && $output == *"--certificate-arn ARN"* ]]
}

@test "without --confirm-real-aws it refuses to start and calls nothing" {
  run --separate-stderr "$SCRIPT" "${FRESH[@]}"
  [ "$status" -eq 2 ]
  [[ $stderr == *"refusing to start: this creates billable resources in a real AWS account; pass --confirm-real-aws"* ]]
  [[ $stderr == *"Usage:"* ]]
  no_calls
}

@test "bad or missing options are refused with the usage, naming the option" {
  local cases=(
    "unknown option: --bogus|--confirm-real-aws --bogus"
    "--ui-cidr is required|--confirm-real-aws --certificate-arn arn:aws:acm:eu-west-1:123456789012:certificate/abc"
    "--ui-cidr is not an IPv4 CIDR|--confirm-real-aws --ui-cidr 10.0.0.300/8"
    "--vpc-id and --subnets go together|--confirm-real-aws --ui-cidr 10.0.0.0/8 --vpc-id vpc-01234567"
    "--vpc-id and --subnets go together|--confirm-real-aws --ui-cidr 10.0.0.0/8 --subnets subnet-01234567,subnet-89abcdef"
    "--subnets needs exactly two subnet ids|--confirm-real-aws --ui-cidr 10.0.0.0/8 --vpc-id vpc-01234567 --subnets subnet-01234567"
    "a fresh VPC needs --certificate-arn|--confirm-real-aws --ui-cidr 10.0.0.0/8"
    "--public-subnets goes with --vpc-id|--confirm-real-aws --ui-cidr 10.0.0.0/8 --public-subnets subnet-01234567,subnet-89abcdef"
    "--public-subnets needs --certificate-arn|--confirm-real-aws --ui-cidr 10.0.0.0/8 --vpc-id vpc-01234567 --subnets subnet-01234567,subnet-89abcdef --public-subnets subnet-11234567,subnet-99abcdef"
    "with --vpc-id needs --public-subnets|--confirm-real-aws --ui-cidr 10.0.0.0/8 --vpc-id vpc-01234567 --subnets subnet-01234567,subnet-89abcdef --certificate-arn arn:aws:acm:eu-west-1:123456789012:certificate/abc"
    "--certificate-arn is not an ACM certificate ARN|--confirm-real-aws --ui-cidr 10.0.0.0/8 --certificate-arn arn:aws:iam::123456789012:server-certificate/x"
    "--stack-name is also the environment name|--confirm-real-aws --ui-cidr 10.0.0.0/8 --stack-name Smoke_1"
    "--timeout needs minutes|--confirm-real-aws --ui-cidr 10.0.0.0/8 --vpc-id vpc-01234567 --subnets subnet-01234567,subnet-89abcdef --timeout soon"
  )
  local case args
  for case in "${cases[@]}"; do
    read -ra args <<<"${case#*|}"
    run --separate-stderr "$SCRIPT" "${args[@]}"
    [ "$status" -eq 2 ] || { echo "exit ${status} for: ${case#*|}"; return 1; }
    [[ $stderr == *"${case%%|*}"*"Usage:"* ]] || { echo "for: ${case#*|}"; echo "$stderr"; return 1; }
  done
  no_calls
}

@test "--dry-run in a fresh VPC: the plan creates it, deploys behind a load balancer, and deletes all it created" {
  run --separate-stderr env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$SCRIPT" --dry-run "${FRESH[@]}" --stack-name smoke-1
  [ "$status" -eq 0 ]
  no_calls
  [[ ${lines[0]} == "Plan of the release check for stack smoke-1 in eu-west-1 (nothing is run):" ]]
  # Each step, in order.
  local steps
  steps="$(grep -E '^[0-9]\. ' <<<"$output" | cut -c1-2 | tr -d '\n')"
  [ "$steps" = "1.2.3.4.5.6.7.8." ]
  [[ $output == *"aws ec2 create-vpc --cidr-block 10.77.0.0/16 --tag-specifications 'ResourceType=vpc,Tags=[{Key=Name,Value=smoke-1},{Key=cloud-exchange:smoke-test,Value=smoke-1}]'"* ]]
  [[ $output == *"scripts/deploy.sh --stack-name smoke-1 --vpc-id <vpc> --subnets <private-subnet-1>,<private-subnet-2> --region eu-west-1 --parameter LoadBalancerScheme=internet-facing --parameter LoadBalancerSubnetIds=<public-subnet-1>,<public-subnet-2> --parameter LoadBalancerCertificateArn=arn:aws:acm:eu-west-1:123456789012:certificate/abc --parameter LoadBalancerIngressCidr=203.0.113.7/32"* ]]
  [[ $output != *"--ui-cidr"* ]]
  [[ $output == *"scripts/register-task-definition.sh --stack-name smoke-1 --region eu-west-1"* ]]
  [[ $output == *"scripts/create-service.sh --stack-name smoke-1 --region eu-west-1"* ]]
  [[ $output == *"scripts/status.sh --stack-name smoke-1 --region eu-west-1"* ]]
  [[ $output == *"curl -ksS --max-time 30 -o /dev/null -w '%{http_code}' <ui-url>"* ]]
  [[ $output == *"scripts/destroy.sh --stack-name smoke-1 --delete-data --region eu-west-1"* ]]
  [[ $output == *"aws ecs deregister-task-definition --task-definition <task-definition-arn>"* ]]
  # Everything the plan creates, it deletes: four subnets, two route tables, the NAT
  # gateway before its address, the address before the internet gateway, the VPC last.
  [ "$(grep -c 'create-subnet' <<<"$output")" -eq 4 ]
  [ "$(grep -c 'delete-subnet' <<<"$output")" -eq 4 ]
  [ "$(grep -c 'create-route-table' <<<"$output")" -eq 2 ]
  [ "$(grep -c 'delete-route-table' <<<"$output")" -eq 2 ]
  local order
  order="$(grep -oE 'delete-nat-gateway|release-address|delete-internet-gateway|delete-subnet|delete-route-table|delete-vpc' <<<"$output" | uniq | tr '\n' ' ')"
  [ "$order" = "delete-nat-gateway release-address delete-internet-gateway delete-subnet delete-route-table delete-vpc " ]
  [ "${lines[-1]}" = "  \$ aws ec2 delete-vpc --vpc-id <vpc>" ]
}

@test "--dry-run in given subnets: no VPC is created or deleted, the UI is reached at the task's IP" {
  run --separate-stderr "$SCRIPT" --dry-run "${GIVEN[@]}" --stack-name smoke-2 --profile ops
  [ "$status" -eq 0 ]
  no_calls
  [[ $output == *"1. the given network: vpc-01234567, subnets subnet-01234567,subnet-89abcdef"* ]]
  [[ $output == *"scripts/deploy.sh --stack-name smoke-2 --vpc-id vpc-01234567 --subnets subnet-01234567,subnet-89abcdef --region eu-west-1 --profile ops --ui-cidr 10.0.0.0/8"* ]]
  [[ $output != *"LoadBalancer"* ]]
  [[ $output != *"aws ec2"* ]]
  [[ $output != *"8. "* ]]
  [[ $output == *"scripts/destroy.sh --stack-name smoke-2 --delete-data --region eu-west-1 --profile ops"* ]]
}
