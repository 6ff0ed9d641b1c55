#!/usr/bin/env bats
# scripts/create-service.sh: a missing stack or task definition,
# the service's settings checked against botocore's ECS model, and creating, updating and
# waiting on two plain local AWS servers on 127.0.0.1 (dummy credentials; no real AWS is called).
# One server reports services as running (MOTO_ECS_SERVICE_RUNNING=1), the other never
# does, so the bounded wait and its explanation are exercised too. Its options and
# prerequisites: create-service-options.bats.
# bats file_tags=aws

# status, output and stderr are set by bats' run.
# shellcheck disable=SC2154
# Each test runs in its own subshell, so a test's export stays in it.
# shellcheck disable=SC2030,SC2031
bats_require_minimum_version 1.5.0

# shellcheck source=tests/scripts/script-tools.bash
source "${BATS_TEST_DIRNAME}/script-tools.bash"
# shellcheck source=local_aws/local-aws.sh
source "${BATS_TEST_DIRNAME}/../../local_aws/local-aws.sh"

setup_file() {
  script_tools_setup_file
  start_plain stuck 0
  STUCK_URL="$AWS_ENDPOINT_URL"
  start_plain running 1
  RUNNING_URL="$AWS_ENDPOINT_URL"
  export RUNNING_URL STUCK_URL
  AWS_ENDPOINT_URL="$RUNNING_URL" create_outputs_stack ce
  AWS_ENDPOINT_URL="$STUCK_URL" create_outputs_stack ce
}

# Starts the plain local AWS NAME, whose ECS services report RUNNING (1) or never do (0),
# and points the AWS CLI at it (AWS_ENDPOINT_URL, dummy credentials).
start_plain() { # NAME RUNNING
  MOTO_ECS_SERVICE_RUNNING="$2" local_aws_start --plain "$(free_port)" "${BATS_FILE_TMPDIR}/$1.log"
  printf '%s\n' "$LOCAL_AWS_PID" >"${BATS_FILE_TMPDIR}/$1.pid"
}

# A stack named NAME with the outputs create-service.sh reads, on a real (moto) VPC.
# EXTRA_OUTPUTS: more outputs as a JSON object {name: value}; ENABLE_EXEC: the value of the
# stack parameter EnableExec (none when left out), as deploy.sh's stacks have it.
create_outputs_stack() { # NAME [EXTRA_OUTPUTS] [ENABLE_EXEC]
  local vpc subnet1 subnet2 sg extra="${2:-}"
  [[ -n $extra ]] || extra='{}'
  vpc="$(aws ec2 create-vpc --cidr-block 10.42.0.0/16 --query Vpc.VpcId --output text)"
  subnet1="$(aws ec2 create-subnet --vpc-id "$vpc" --cidr-block 10.42.1.0/24 \
    --availability-zone us-east-1a --query Subnet.SubnetId --output text)"
  subnet2="$(aws ec2 create-subnet --vpc-id "$vpc" --cidr-block 10.42.2.0/24 \
    --availability-zone us-east-1b --query Subnet.SubnetId --output text)"
  sg="$(aws ec2 create-security-group --group-name "$1-task" --description task --vpc-id "$vpc" \
    --query GroupId --output text)"
  jq -n --arg family "$1-cloud-exchange" --arg s1 "$subnet1" --arg s2 "$subnet2" --arg sg "$sg" \
    --argjson extra "$extra" --arg exec "${3:-}" '
    {Resources: {Handle: {Type: "AWS::CloudFormation::WaitConditionHandle"}},
     Outputs: ({DefaultClusterName: {Value: $family}, TaskDefinitionFamily: {Value: $family},
       PrivateSubnet1Id: {Value: $s1}, PrivateSubnet2Id: {Value: $s2}, TaskSecurityGroupId: {Value: $sg}}
       + ($extra | map_values({Value: .})))}
    + if $exec == "" then {} else {Parameters: {EnableExec: {Type: "String", Default: $exec}}} end' \
    >"${BATS_FILE_TMPDIR}/template.json"
  aws cloudformation create-stack --stack-name "$1" \
    --template-body "file://${BATS_FILE_TMPDIR}/template.json" >/dev/null
}

# Validates the JSON on stdin as the input of the ECS OPERATION (botocore's model).
valid_for() { # OPERATION
  python -c 'import json, sys
import botocore.session
from botocore.validate import validate_parameters
model = botocore.session.get_session().get_service_model("ecs")
validate_parameters(json.load(sys.stdin), model.operation_model(sys.argv[1]).input_shape)' "$1"
}

# Puts an `aws` first on PATH that runs the real one but passes describe-services' answer
# through the jq FILTER: events and deployments moto does not make. The service never runs.
fake_describe_services() { # FILTER
  local bin="${BATS_TEST_TMPDIR}/fake-bin"
  mkdir -p "$bin"
  # shellcheck disable=SC2016 # expanded by the fake aws, not here
  printf '%s\n' '#!/usr/bin/env bash' \
    'if [[ " $* " == *" describe-services "* ]]; then "$REAL_AWS" "$@" | jq "$FAKE_FILTER"; else exec "$REAL_AWS" "$@"; fi' \
    >"${bin}/aws"
  chmod +x "${bin}/aws"
  REAL_AWS="$(command -v aws)"
  export REAL_AWS FAKE_FILTER=".services[0].runningCount = 0 | $1" PATH="${bin}:${PATH}"
}

register_task_definition() { # FAMILY
  aws ecs register-task-definition --family "$1" --requires-compatibilities FARGATE \
    --network-mode awsvpc --cpu 256 --memory 512 \
    --container-definitions '[{"name":"ui","image":"example/ui","essential":true}]' \
    --query taskDefinition.taskDefinitionArn --output text
}

teardown_file() {
  local name
  for name in running stuck; do
    kill "$(cat "${BATS_FILE_TMPDIR}/${name}.pid")" 2>/dev/null || true
  done
}

setup() {
  SCRIPT="${ROOT}/scripts/create-service.sh"
  export AWS_ENDPOINT_URL="$RUNNING_URL" CREATE_SERVICE_POLL_SECONDS=1
}

@test "a missing stack points at deploy.sh" {
  run --separate-stderr "$SCRIPT" --stack-name nothing-here
  [ "$status" -eq 1 ]
  [[ $stderr == *"stack nothing-here does not exist in us-east-1: run scripts/deploy.sh --stack-name nothing-here"* ]]
}

@test "no registered task definition points at register-task-definition.sh" {
  run --separate-stderr "$SCRIPT" --stack-name ce --no-wait
  [ "$status" -eq 1 ]
  [[ $stderr == *"no ACTIVE task definition in family ce-cloud-exchange: run scripts/register-task-definition.sh --stack-name ce"* ]]
  aws ecs describe-clusters --clusters ce-cloud-exchange | jq -e '(.clusters | length) == 0'
}

@test "--dry-run prints a CreateService input valid for botocore's ECS model: 0 %/100 %, circuit breaker with rollback" {
  local arn
  arn="$(register_task_definition ce-cloud-exchange)"
  run --separate-stderr "$SCRIPT" --stack-name ce --dry-run
  [ "$status" -eq 0 ]
  valid_for CreateService <<<"$output"
  printf '%s' "$output" | jq -e --arg arn "$arn" '
    .cluster == "ce-cloud-exchange" and .serviceName == "cloud-exchange" and .taskDefinition == $arn
    and .launchType == "FARGATE" and .platformVersion == "LATEST" and .schedulingStrategy == "REPLICA"
    and .desiredCount == 1 and .enableExecuteCommand == false
    and .deploymentConfiguration == {minimumHealthyPercent: 0, maximumPercent: 100,
      deploymentCircuitBreaker: {enable: true, rollback: true}}
    and .networkConfiguration.awsvpcConfiguration.assignPublicIp == "DISABLED"
    and (.networkConfiguration.awsvpcConfiguration.subnets | length == 2)
    and (.networkConfiguration.awsvpcConfiguration.securityGroups | length == 1)'
  # A dry run changes nothing: not even the cluster exists.
  aws ecs describe-clusters --clusters ce-cloud-exchange | jq -e '(.clusters | length) == 0'
}

@test "the cluster it creates is tagged as its own, and ECS's service-linked role is created when missing" {
  create_outputs_stack ce-own '{"DefaultClusterName": "ce-own"}'
  register_task_definition ce-own-cloud-exchange
  aws iam list-roles --path-prefix /aws-service-role/ecs.amazonaws.com/ | jq -e '.Roles == []'
  run --separate-stderr "$SCRIPT" --stack-name ce-own --no-wait
  [ "$status" -eq 0 ]
  [[ $stderr == *"creating ECS's service-linked role AWSServiceRoleForECS"* ]]
  aws iam list-roles --path-prefix /aws-service-role/ecs.amazonaws.com/ | jq -e '.Roles | length == 1'
  aws ecs describe-clusters --clusters ce-own --include TAGS |
    jq -e '.clusters[0].tags == [{key: "cloud-exchange:created-by", value: "ce-own"}]'
  # The role exists now: the next run does not try again.
  run --separate-stderr "$SCRIPT" --stack-name ce-own --cluster ce-own --no-wait
  [ "$status" -eq 0 ]
  [[ $stderr != *"service-linked role"* ]]
}

@test "creates the cluster and the service, waits until stable, then updates it in place" {
  local arn
  arn="$(register_task_definition ce-cloud-exchange)"
  run --separate-stderr "$SCRIPT" --stack-name ce
  [ "$status" -eq 0 ]
  [[ $stderr == *"creating cluster ce-cloud-exchange"* ]]
  [[ $stderr == *"creating service cloud-exchange on ${arn##*/}"* ]]
  [[ $stderr == *"service cloud-exchange is stable: running 1/1"* ]]
  [[ $output == *"Task def  ${arn}"* ]]
  # moto runs no task, so there is no address to show, and the script says so.
  [[ $output == *"Task IP   unknown (the service has no running task yet)"* ]]
  [[ $output == *"UI        https://<task private IP>:3000"* ]]
  aws ecs describe-services --cluster ce-cloud-exchange --services cloud-exchange | jq -e --arg arn "$arn" '
    .services[0] | .status == "ACTIVE" and .taskDefinition == $arn and .launchType == "FARGATE"
    and .networkConfiguration.awsvpcConfiguration.assignPublicIp == "DISABLED"'

  arn="$(register_task_definition ce-cloud-exchange)"
  run --separate-stderr "$SCRIPT" --stack-name ce
  [ "$status" -eq 0 ]
  [[ $stderr == *"cluster ce-cloud-exchange exists"* ]]
  [[ $stderr == *"updating service cloud-exchange to ${arn##*/}"* ]]
  aws ecs describe-services --cluster ce-cloud-exchange --services cloud-exchange |
    jq -e --arg arn "$arn" '.services[0].taskDefinition == $arn'
}

@test "a service that never becomes stable: the wait ends and says what it saw" {
  export AWS_ENDPOINT_URL="$STUCK_URL"
  register_task_definition ce-cloud-exchange
  run --separate-stderr "$SCRIPT" --stack-name ce --timeout 5s
  [ "$status" -eq 1 ]
  [[ $stderr == *"waiting for service cloud-exchange to be stable (up to 5 seconds)"* ]]
  [[ $stderr == *"error: service cloud-exchange is not stable after 5 seconds (running 0/1, pending 1, deployments 1)."* ]]
  [[ $stderr == *"Recent service events:"* ]]
  [[ $stderr == *"aws ecs describe-services --cluster ce-cloud-exchange --services cloud-exchange --region us-east-1"* ]]
}

@test "an existing service gets an UpdateService input valid for botocore's ECS model" {
  export AWS_ENDPOINT_URL="$STUCK_URL"
  register_task_definition ce-cloud-exchange
  "$SCRIPT" --stack-name ce --no-wait
  run --separate-stderr "$SCRIPT" --stack-name ce --dry-run
  [ "$status" -eq 0 ]
  valid_for UpdateService <<<"$output"
  printf '%s' "$output" | jq -e '.service == "cloud-exchange" and (has("serviceName") | not)
    and .deploymentConfiguration.minimumHealthyPercent == 0 and .deploymentConfiguration.maximumPercent == 100
    and .deploymentConfiguration.deploymentCircuitBreaker == {enable: true, rollback: true}'
}

# AWS CLI v1 prints ECS timestamps as epoch seconds, v2 as ISO 8601 strings: the wait's
# explanation shows an event created at CREATED_AT (a jq literal) as 2023-11-14T22:13:20.
event_time_shown() { # CREATED_AT
  export AWS_ENDPOINT_URL="$STUCK_URL"
  register_task_definition ce-cloud-exchange
  fake_describe_services ".services[0].events = [{id: \"e1\", createdAt: $1, message: \"(service cloud-exchange) has started 1 tasks\"}]"
  run --separate-stderr "$SCRIPT" --stack-name ce --timeout 2s
  [ "$status" -eq 1 ]
  [[ $stderr == *"Recent service events:"*"  2023-11-14T22:13:20  (service cloud-exchange) has started 1 tasks"* ]]
  [[ $stderr == *"The service keeps trying; follow it with:"* ]]
}

@test "service events with epoch-number timestamps (CLI v1) are shown" { event_time_shown 1700000000.123; }

@test "service events with ISO 8601 timestamps (CLI v2) are shown the same way" {
  event_time_shown '"2023-11-14T22:13:20.123000+00:00"'
}

@test "a deployment the circuit breaker failed ends the wait at once and says so" {
  export AWS_ENDPOINT_URL="$STUCK_URL"
  register_task_definition ce-cloud-exchange
  # As ECS shows it: this revision's deployment, failed by the circuit breaker.
  fake_describe_services '.services[0].deployments[0] += {rolloutState: "FAILED", taskDefinition: .services[0].taskDefinition}'
  run --separate-stderr "$SCRIPT" --stack-name ce --timeout 30s
  [ "$status" -eq 1 ]
  [[ $stderr == *"error: the deployment of ce-cloud-exchange:"*" failed; the circuit breaker rolls the service back to its previous revision"* ]]
  [[ $stderr != *"is not stable after"* ]]
}

@test "--enable-exec is refused while the stack's EnableExec is off, naming deploy.sh's flag; nothing is created" {
  register_task_definition ce-cloud-exchange
  run --separate-stderr "$SCRIPT" --stack-name ce --enable-exec
  [ "$status" -eq 1 ]
  [[ $stderr == *"--enable-exec needs the stack parameter EnableExec=true"* ]]
  [[ $stderr == *"scripts/deploy.sh --stack-name ce ... --enable-exec"* ]]
  # Refused while reading the stack, before any change.
  [[ $stderr != *"creating"* && $stderr != *"updating"* ]]
}

@test "with a load balancer: the ui container joins its target group with a 2100 s grace period; Exec on request; Container Insights on" {
  local vpc tg arn input
  vpc="$(aws ec2 create-vpc --cidr-block 10.43.0.0/16 --query Vpc.VpcId --output text)"
  tg="$(aws elbv2 create-target-group --name ce-lb-ui --protocol HTTPS --port 3000 --target-type ip \
    --vpc-id "$vpc" --query 'TargetGroups[0].TargetGroupArn' --output text)"
  create_outputs_stack ce-lb "$(jq -cn --arg tg "$tg" '{TargetGroupArn: $tg, LoadBalancerUrl: "https://internal-ce-lb.example",
    ExecLogGroupName: "/ecs/ce-lb-cloud-exchange/exec"}')" true
  arn="$(register_task_definition ce-lb-cloud-exchange)"
  run --separate-stderr "$SCRIPT" --stack-name ce-lb --dry-run --enable-exec
  [ "$status" -eq 0 ]
  input="$output"
  printf '%s' "$input" | python -c 'import json, sys
import botocore.session
from botocore.validate import validate_parameters
model = botocore.session.get_session().get_service_model("ecs")
validate_parameters(json.load(sys.stdin), model.operation_model("CreateService").input_shape)'
  jq -e --arg tg "$tg" '.loadBalancers == [{targetGroupArn: $tg, containerName: "ui", containerPort: 3000}]
    and .healthCheckGracePeriodSeconds == 2100 and .enableExecuteCommand == true' <<<"$input"
  # Without --enable-exec, Exec is off again.
  run --separate-stderr "$SCRIPT" --stack-name ce-lb --dry-run
  jq -e '.enableExecuteCommand == false' <<<"$output"

  run --separate-stderr "$SCRIPT" --stack-name ce-lb --enable-exec
  [ "$status" -eq 0 ]
  [[ $stderr == *"creating cluster ce-lb-cloud-exchange (Container Insights on)"* ]]
  [[ $output == *"UI        https://internal-ce-lb.example (load balancer; point your DNS name at it)"* ]]
  [[ $output == *"aws ecs execute-command --cluster ce-lb-cloud-exchange --task <task id> --container core --interactive --command /bin/sh"* ]]
  # moto keeps the load balancers but not the grace period or the Exec flag (checked in the
  # input above).
  aws ecs describe-services --cluster ce-lb-cloud-exchange --services cloud-exchange | jq -e --arg tg "$tg" '
    .services[0].loadBalancers == [{targetGroupArn: $tg, containerName: "ui", containerPort: 3000}]'
  aws ecs describe-clusters --clusters ce-lb-cloud-exchange --include SETTINGS |
    jq -e '.clusters[0].settings == [{name: "containerInsights", value: "enabled"}]'
  # Exec sessions are logged to the stack's encrypted exec log group.
  [[ $stderr == *"ECS Exec sessions are logged to /ecs/ce-lb-cloud-exchange/exec"* ]]
  aws ecs describe-clusters --clusters ce-lb-cloud-exchange --include CONFIGURATIONS |
    jq -e '.clusters[0].configuration.executeCommandConfiguration == {logging: "OVERRIDE",
      logConfiguration: {cloudWatchLogGroupName: "/ecs/ce-lb-cloud-exchange/exec", cloudWatchEncryptionEnabled: true}}'
}

@test "the cluster and service are the stack's (its alarms watch them): other names are refused, naming the parameter" {
  create_outputs_stack ce-named '{"ServiceName": "ce-svc", "DefaultClusterName": "ce-cluster"}'
  register_task_definition ce-named-cloud-exchange >/dev/null
  run --separate-stderr "$SCRIPT" --stack-name ce-named --dry-run --cluster other
  [ "$status" -eq 1 ]
  [[ $stderr == *"--cluster other: stack ce-named uses cluster ce-cluster, which its alarms watch"*"--parameter EcsClusterName=other"* ]]
  run --separate-stderr "$SCRIPT" --stack-name ce-named --dry-run --service cloud-exchange
  [ "$status" -eq 1 ]
  [[ $stderr == *"--parameter EcsServiceName=cloud-exchange"* ]]
  run --separate-stderr "$SCRIPT" --stack-name ce-named --dry-run
  [ "$status" -eq 0 ]
  jq -e '.serviceName == "ce-svc" and .cluster == "ce-cluster"' <<<"$output"
}
