#!/usr/bin/env bash
# A release check against a real AWS account: the README's AWS quick start run end to end by
# a script, then undone. Deploys the stack (scripts/deploy.sh), registers the task definition,
# creates the service, waits with scripts/status.sh until CE is healthy, fetches the UI, and
# takes everything down again with scripts/destroy.sh --delete-data.
#
# The network is either the operator's (--vpc-id/--subnets: private subnets with a NAT
# gateway or an S3 route, as for a real deployment) or a fresh VPC this script creates (two
# private subnets behind one NAT gateway, two public subnets for the load balancer) and
# deletes at the end. Every resource it creates is printed as it is created, and listed
# again at the end with anything it could not delete and the command that deletes it.
#
# Nothing in the repository's tests can run this (they never reach AWS); its options and
# its --dry-run plan are tested in tests/scripts/smoke-aws.bats.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/init.sh
source "${ROOT}/scripts/lib/init.sh"

# The fresh VPC's address range and the tag on everything this script creates itself.
VPC_CIDR="10.77.0.0/16"
SMOKE_TAG="cloud-exchange:smoke-test"
POLL_SECONDS="${SMOKE_POLL_SECONDS:-30}"

CONFIRMED=false
DRY_RUN=false
KEEP_ON_FAILURE=false
STACK_NAME=""
VPC_ID=""
SUBNETS=""
PUBLIC_SUBNETS=""
CERTIFICATE_ARN=""
UI_CIDR=""
TIMEOUT=45
REGION_ARG=""
PROFILE_ARG=""

CREATED=()  # "kind id" of what this script created, in order
STAGE=""    # the last stage reached, for the cleanup after a failure
TASK_DEFINITION=""

usage() {
  cat <<'USAGE'
Usage: scripts/smoke-aws.sh --confirm-real-aws --ui-cidr CIDR [network] [options]
       scripts/smoke-aws.sh --dry-run ...

A release check in a real AWS account (it costs money while it runs: a Fargate task of
8 vCPU / 16 GB, EFS, a NAT gateway, a load balancer; about an hour). In order:
  1. a fresh VPC (unless --vpc-id/--subnets are given)
  2. scripts/deploy.sh        the stack
  3. scripts/register-task-definition.sh
  4. scripts/create-service.sh
  5. scripts/status.sh        every 30 s until CE is healthy (--timeout)
  6. the UI fetched over HTTPS through the load balancer, or at the task's IP
  7. scripts/destroy.sh --delete-data, the task definition deregistered, the fresh VPC
     deleted
Each resource it creates is printed as it is created and listed again at the end. After a
failure it still takes everything down, unless --keep-on-failure.

Required:
  --confirm-real-aws       you know this creates billable resources in the account of your
                           AWS credentials (not needed with --dry-run)
  --ui-cidr CIDR           who may reach the UI, e.g. your address/32: the load balancer's
                           ingress, or the task's (without a load balancer)

Network (default: a fresh VPC in the region's first two Availability Zones, with a load
balancer; that needs --certificate-arn):
  --vpc-id VPC             an existing VPC, with --subnets
  --subnets A,B            two private subnets in two Availability Zones that reach S3 and
                           the image registries (NAT gateway)
  --public-subnets P,Q     with --vpc-id: subnets for an internet-facing load balancer
  --certificate-arn ARN    an ACM certificate in the region for the load balancer's HTTPS
                           listener; without it (and --vpc-id) the UI is fetched at the
                           task's private IP, so run this from inside the VPC

Options:
  --stack-name NAME        default: smoke-MMDDHHMM (UTC); also the environment name
  --timeout MINUTES        how long to wait for a healthy CE (default: 45)
  --keep-on-failure        after a failure, leave everything for inspection (printed with
                           the commands that delete it)
  --dry-run                print the plan (every command, ids not known yet as <...>);
                           calls no AWS API and creates nothing
  --region REGION          AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, aws configure)
  --profile PROFILE        AWS CLI profile
  -h, --help               this text

Needs: aws, jq, curl; and what scripts/deploy.sh needs to build the Lambda.
USAGE
}

parse_args() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -h | --help) usage; exit 0 ;;
      --confirm-real-aws) CONFIRMED=true; shift ;;
      --dry-run) DRY_RUN=true; shift ;;
      --keep-on-failure) KEEP_ON_FAILURE=true; shift ;;
      --stack-name) STACK_NAME="$(option_value "$@")"; shift 2 ;;
      --vpc-id) VPC_ID="$(option_value "$@")"; shift 2 ;;
      --subnets) SUBNETS="$(option_value "$@")"; shift 2 ;;
      --public-subnets) PUBLIC_SUBNETS="$(option_value "$@")"; shift 2 ;;
      --certificate-arn) CERTIFICATE_ARN="$(option_value "$@")"; shift 2 ;;
      --ui-cidr) UI_CIDR="$(option_value "$@")"; shift 2 ;;
      --timeout) TIMEOUT="$(option_value "$@")"; shift 2 ;;
      --region) REGION_ARG="$(option_value "$@")"; shift 2 ;;
      --profile) PROFILE_ARG="$(option_value "$@")"; shift 2 ;;
      *) usage_error "unknown option: $1" ;;
    esac
  done
  $CONFIRMED || $DRY_RUN ||
    usage_error "refusing to start: this creates billable resources in a real AWS account; pass --confirm-real-aws (or --dry-run to see the plan)"
  [[ -n $STACK_NAME ]] || STACK_NAME="smoke-$(date -u +%m%d%H%M)"
  [[ $STACK_NAME =~ ^[a-z]([a-z0-9-]{0,14}[a-z0-9])?$ ]] ||
    usage_error "--stack-name is also the environment name: 1-16 lowercase letters, digits and inner hyphens: $STACK_NAME"
  [[ -n $UI_CIDR ]] || usage_error "--ui-cidr is required (who may reach the UI, e.g. your address/32)"
  local octet='(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])' id='[0-9a-f]{8}([0-9a-f]{9})?'
  [[ $UI_CIDR =~ ^${octet}\.${octet}\.${octet}\.${octet}/(3[0-2]|[12]?[0-9])$ ]] ||
    usage_error "--ui-cidr is not an IPv4 CIDR (a.b.c.d/n): $UI_CIDR"
  [[ -z $VPC_ID || $VPC_ID =~ ^vpc-${id}$ ]] || usage_error "--vpc-id is not a VPC id: $VPC_ID"
  [[ -z $SUBNETS || $SUBNETS =~ ^subnet-${id},subnet-${id}$ ]] ||
    usage_error "--subnets needs exactly two subnet ids separated by a comma: $SUBNETS"
  [[ -z $PUBLIC_SUBNETS || $PUBLIC_SUBNETS =~ ^subnet-${id},subnet-${id}$ ]] ||
    usage_error "--public-subnets needs exactly two subnet ids separated by a comma: $PUBLIC_SUBNETS"
  [[ -z $VPC_ID && -z $SUBNETS || -n $VPC_ID && -n $SUBNETS ]] || usage_error "--vpc-id and --subnets go together"
  if [[ -z $VPC_ID ]]; then
    [[ -z $PUBLIC_SUBNETS ]] || usage_error "--public-subnets goes with --vpc-id (a fresh VPC has its own)"
    [[ -n $CERTIFICATE_ARN ]] ||
      usage_error "a fresh VPC needs --certificate-arn: its task is reached only through the load balancer"
  else
    [[ -n $CERTIFICATE_ARN || -z $PUBLIC_SUBNETS ]] || usage_error "--public-subnets needs --certificate-arn"
    [[ -z $CERTIFICATE_ARN || -n $PUBLIC_SUBNETS ]] ||
      usage_error "--certificate-arn with --vpc-id needs --public-subnets for the load balancer"
  fi
  [[ -z $CERTIFICATE_ARN || $CERTIFICATE_ARN =~ ^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/.+$ ]] ||
    usage_error "--certificate-arn is not an ACM certificate ARN: $CERTIFICATE_ARN"
  is_duration "$TIMEOUT" || usage_error "--timeout needs minutes (or seconds, like 90s): $TIMEOUT"
}

# ------------------------------------------------------------------ running, or the plan

# Runs COMMAND and prints its output; with --dry-run prints the command instead (to the
# plan, fd 3) and prints PLACEHOLDER, so the ids of later commands read <vpc> and the like.
act() { # PLACEHOLDER COMMAND...
  local placeholder="$1"
  shift
  if $DRY_RUN; then
    printf '  $%s\n' "$(shown "$@")" >&3
    [[ -z $placeholder ]] || printf '%s\n' "$placeholder"
    return 0
  fi
  "$@"
}

# COMMAND... as a user would type it: aws for aws_cli, scripts/ relative to the repository,
# single quotes around words with characters the shell would take.
shown() { # COMMAND...
  local word
  case "$1" in
    ui_url) printf ' %s' scripts/status.sh --stack-name "$STACK_NAME" --json "${AWS_ARGS[@]}" \
      "  # the UI: the load balancer's URL, else https://<task IP>:3000"; return ;;
    stack_file_system_id) printf ' %s' aws cloudformation describe-stacks --stack-name "$STACK_NAME" "${AWS_ARGS[@]}" \
      "  # its FileSystemId output"; return ;;
  esac
  for word in "$@"; do
    word="${word/#aws_cli/aws}"
    word="${word/#"${ROOT}/"/}"
    if [[ $word =~ ^[A-Za-z0-9_./:=,@%+\<\>-]+$ ]]; then printf ' %s' "$word"; else printf " '%s'" "$word"; fi
  done
}

step() { # TEXT
  if $DRY_RUN; then printf '%s\n' "$*" >&3; else log "$*"; fi
}

# Records a resource this script created and prints it at once.
created() { # KIND ID
  CREATED+=("$1 $2")
  $DRY_RUN || printf 'created: %s %s\n' "$1" "$2"
}

tags() { # RESOURCE_TYPE
  printf 'ResourceType=%s,Tags=[{Key=Name,Value=%s},{Key=%s,Value=%s}]' "$1" "$STACK_NAME" "$SMOKE_TAG" "$STACK_NAME"
}

# ------------------------------------------------------------------ the fresh VPC

create_network() {
  local azs az1 az2 igw public_table private_table eip nat p1 p2 s1 s2
  step "1. a fresh VPC ${VPC_CIDR}: two private subnets behind one NAT gateway, two public subnets"
  VPC_ID="$(act '<vpc>' aws_cli ec2 create-vpc --cidr-block "$VPC_CIDR" \
    --tag-specifications "$(tags vpc)" --query Vpc.VpcId --output text)"
  created vpc "$VPC_ID"
  # EFS mount targets are reached by DNS name from the task and the Lambda.
  act '' aws_cli ec2 modify-vpc-attribute --vpc-id "$VPC_ID" --enable-dns-hostnames '{"Value":true}'
  azs="$(act '<az-1> <az-2>' aws_cli ec2 describe-availability-zones --filters Name=state,Values=available \
    Name=zone-type,Values=availability-zone --query 'AvailabilityZones[0:2].ZoneName' --output text)"
  read -r az1 az2 <<<"$azs"
  [[ -n $az2 ]] || die "region ${REGION} has fewer than two Availability Zones available"
  new_subnet s1 10.77.1.0/24 "$az1" '<private-subnet-1>'
  new_subnet s2 10.77.2.0/24 "$az2" '<private-subnet-2>'
  new_subnet p1 10.77.101.0/24 "$az1" '<public-subnet-1>'
  new_subnet p2 10.77.102.0/24 "$az2" '<public-subnet-2>'
  SUBNETS="${s1},${s2}"
  PUBLIC_SUBNETS="${p1},${p2}"
  igw="$(act '<igw>' aws_cli ec2 create-internet-gateway --tag-specifications "$(tags internet-gateway)" \
    --query InternetGateway.InternetGatewayId --output text)"
  created internet-gateway "$igw"
  act '' aws_cli ec2 attach-internet-gateway --internet-gateway-id "$igw" --vpc-id "$VPC_ID"
  new_route_table public_table '<public-route-table>'
  act '' aws_cli ec2 create-route --route-table-id "$public_table" --destination-cidr-block 0.0.0.0/0 \
    --gateway-id "$igw" >/dev/null
  associate "$public_table" "$p1" "$p2"
  eip="$(act '<eip-allocation>' aws_cli ec2 allocate-address --domain vpc \
    --tag-specifications "$(tags elastic-ip)" --query AllocationId --output text)"
  created elastic-ip "$eip"
  nat="$(act '<nat>' aws_cli ec2 create-nat-gateway --subnet-id "$p1" --allocation-id "$eip" \
    --tag-specifications "$(tags natgateway)" --query NatGateway.NatGatewayId --output text)"
  created nat-gateway "$nat"
  act '' aws_cli ec2 wait nat-gateway-available --nat-gateway-ids "$nat"
  new_route_table private_table '<private-route-table>'
  act '' aws_cli ec2 create-route --route-table-id "$private_table" --destination-cidr-block 0.0.0.0/0 \
    --nat-gateway-id "$nat" >/dev/null
  associate "$private_table" "$s1" "$s2"
}

# Creates a subnet and sets the variable VAR to its id.
new_subnet() { # VAR CIDR AZ PLACEHOLDER
  local id
  id="$(act "$4" aws_cli ec2 create-subnet --vpc-id "$VPC_ID" --cidr-block "$2" --availability-zone "$3" \
    --tag-specifications "$(tags subnet)" --query Subnet.SubnetId --output text)"
  created subnet "$id"
  printf -v "$1" '%s' "$id"
}

# Creates a route table in the VPC and sets the variable VAR to its id.
new_route_table() { # VAR PLACEHOLDER
  local id
  id="$(act "$2" aws_cli ec2 create-route-table --vpc-id "$VPC_ID" --tag-specifications "$(tags route-table)" \
    --query RouteTable.RouteTableId --output text)"
  created route-table "$id"
  printf -v "$1" '%s' "$id"
}

associate() { # TABLE SUBNET...
  local table="$1" subnet
  shift
  for subnet in "$@"; do
    act '' aws_cli ec2 associate-route-table --route-table-id "$table" --subnet-id "$subnet" >/dev/null
  done
}

# Deletes the fresh VPC's resources in the order AWS allows: the NAT gateway before its
# address, the address before the internet gateway (a VPC with a mapped public address
# keeps its gateway), subnets before their route tables, the VPC last. Lambda's network
# interfaces can stay in the subnets for a while after its function is gone, so subnets
# are retried for up to 30 minutes.
delete_network() {
  local order kind id entry
  step "8. the fresh VPC deleted"
  for order in nat-gateway elastic-ip internet-gateway subnet route-table vpc; do
    for entry in "${CREATED[@]}"; do
      read -r kind id <<<"$entry"
      [[ $kind == "$order" ]] || continue
      if case "$kind" in
        nat-gateway)
          act '' aws_cli ec2 delete-nat-gateway --nat-gateway-id "$id" >/dev/null &&
            act '' aws_cli ec2 wait nat-gateway-deleted --nat-gateway-ids "$id" ;;
        elastic-ip) act '' aws_cli ec2 release-address --allocation-id "$id" ;;
        internet-gateway)
          act '' aws_cli ec2 detach-internet-gateway --internet-gateway-id "$id" --vpc-id "$VPC_ID" &&
            act '' aws_cli ec2 delete-internet-gateway --internet-gateway-id "$id" ;;
        subnet)
          if $DRY_RUN; then act '' aws_cli ec2 delete-subnet --subnet-id "$id"
          else wait_until 1800 30 aws_cli ec2 delete-subnet --subnet-id "$id" 2>/dev/null; fi ;;
        route-table) act '' aws_cli ec2 delete-route-table --route-table-id "$id" ;;
        vpc) act '' aws_cli ec2 delete-vpc --vpc-id "$id" ;;
      esac; then gone "$entry"; fi
    done
  done
}

# Marks an entry of CREATED as deleted.
gone() { # "KIND ID"
  local i
  for i in "${!CREATED[@]}"; do
    [[ ${CREATED[i]} != "$1" ]] || CREATED[i]="deleted: $1"
  done
}

# ------------------------------------------------------------------ the deployment

deploy_stack() {
  local args=(--stack-name "$STACK_NAME" --vpc-id "$VPC_ID" --subnets "$SUBNETS" "${AWS_ARGS[@]}")
  if [[ -n $CERTIFICATE_ARN ]]; then
    args+=(--parameter LoadBalancerScheme=internet-facing --parameter "LoadBalancerSubnetIds=${PUBLIC_SUBNETS}"
      --parameter "LoadBalancerCertificateArn=${CERTIFICATE_ARN}" --parameter "LoadBalancerIngressCidr=${UI_CIDR}")
  else
    args+=(--ui-cidr "$UI_CIDR")
  fi
  step "2. the stack ${STACK_NAME}"
  STAGE=deployed
  act '' "${ROOT}/scripts/deploy.sh" "${args[@]}"
  created stack "$STACK_NAME"
  $DRY_RUN || aws_cli cloudformation describe-stack-resources --stack-name "$STACK_NAME" --output json |
    jq -r '.StackResources[] | "  in the stack: \(.ResourceType) \(.PhysicalResourceId // "")"'
  step "3. the task definition"
  TASK_DEFINITION="$(act '<task-definition-arn>' "${ROOT}/scripts/register-task-definition.sh" \
    --stack-name "$STACK_NAME" "${AWS_ARGS[@]}")"
  created task-definition "$TASK_DEFINITION"
  step "4. the service"
  act '' "${ROOT}/scripts/create-service.sh" --stack-name "$STACK_NAME" "${AWS_ARGS[@]}"
  created service "cloud-exchange (and its cluster, when create-service.sh created it)"
}

wait_healthy() {
  step "5. scripts/status.sh every ${POLL_SECONDS} s until healthy, for at most $(duration_text "$TIMEOUT")"
  if $DRY_RUN; then
    act '' "${ROOT}/scripts/status.sh" --stack-name "$STACK_NAME" "${AWS_ARGS[@]}"
    return 0
  fi
  wait_until "$(duration_seconds "$TIMEOUT")" "$POLL_SECONDS" \
    "${ROOT}/scripts/status.sh" --stack-name "$STACK_NAME" "${AWS_ARGS[@]}" >/dev/null 2>&1 || {
    "${ROOT}/scripts/status.sh" --stack-name "$STACK_NAME" "${AWS_ARGS[@]}" || true
    die "CE is not healthy after $(duration_text "$TIMEOUT") (the screen above says why)"
  }
  "${ROOT}/scripts/status.sh" --stack-name "$STACK_NAME" "${AWS_ARGS[@]}"
}

# The UI's address as status.sh shows it: the load balancer's URL, else the task's IP.
ui_url() {
  { "${ROOT}/scripts/status.sh" --stack-name "$STACK_NAME" --json "${AWS_ARGS[@]}" || true; } |
    jq -r -L "${ROOT}/scripts/lib" 'include "status";
      outputs.LoadBalancerUrl // ([.tasks[] | task_ip | select(. != null)][0] | if . then "https://\(.):3000" else empty end)'
}

# The UI answers over HTTPS. Its certificate names neither the load balancer's DNS name
# nor the task's IP (CE's own, or the ACM certificate's domain), so it is not verified here.
fetch_ui() {
  local url code
  step "6. the UI fetched over HTTPS"
  url="$(act '<ui-url>' ui_url)"
  [[ -n $url ]] || die "status.sh shows no address for the UI"
  code="$(act 200 curl -ksS --max-time 30 -o /dev/null -w '%{http_code}' "$url")" ||
    die "the UI at ${url} did not answer"
  [[ $code =~ ^[23][0-9][0-9]$ ]] || die "the UI at ${url} answered HTTP ${code}"
  $DRY_RUN || log "the UI at ${url} answered HTTP ${code}"
}

# The stack's FileSystemId output (what destroy.sh --delete-data asks to have typed back).
stack_file_system_id() { stack_output "$(stack_describe "$STACK_NAME")" FileSystemId; }

destroy_all() {
  local fs
  step "7. scripts/destroy.sh --delete-data (the file system's id typed back), the task definition deregistered"
  fs="$(act '<file-system-id>' stack_file_system_id)"
  if [[ -n $fs ]]; then
    printf '%s\n' "$fs" | act '' "${ROOT}/scripts/destroy.sh" --stack-name "$STACK_NAME" --delete-data "${AWS_ARGS[@]}" &&
      gone "stack ${STACK_NAME}" && gone "service cloud-exchange (and its cluster, when create-service.sh created it)"
  else
    act '' "${ROOT}/scripts/destroy.sh" --stack-name "$STACK_NAME" "${AWS_ARGS[@]}" && gone "stack ${STACK_NAME}"
  fi
  if [[ -n $TASK_DEFINITION ]]; then
    act '' aws_cli ecs deregister-task-definition --task-definition "$TASK_DEFINITION" >/dev/null &&
      gone "task-definition ${TASK_DEFINITION}"
  fi
}

# What this script created, and what is still there with the command that deletes it.
report() {
  local entry
  $DRY_RUN && return 0
  printf '\nResources this run created:\n'
  for entry in "${CREATED[@]}"; do printf '  %s\n' "$entry"; done
  if printf '%s\n' "${CREATED[@]}" | grep -qv '^deleted: '; then
    printf 'Still there (tagged %s=%s where AWS allows tags): delete them with the console, or\n' "$SMOKE_TAG" "$STACK_NAME"
    printf '  scripts/destroy.sh --stack-name %s --delete-data%s, then the VPC resources above in reverse order\n' \
      "$STACK_NAME" "$(aws_args_text)"
  fi
}

# After a failure: take down what was created, unless --keep-on-failure.
cleanup() {
  local status=$?
  trap - EXIT
  if ((status != 0)) && ! $DRY_RUN; then
    if $KEEP_ON_FAILURE; then
      log "failed; --keep-on-failure: everything is left as it is"
    else
      log "failed; taking down what this run created"
      [[ $STAGE != deployed ]] || destroy_all || true
      [[ ${CREATED[*]} != *vpc* ]] || delete_network || true
    fi
  fi
  report
  exit "$status"
}

main() {
  parse_args "$@"
  exec 3>&1
  if $DRY_RUN; then
    REGION="${REGION_ARG:-${AWS_REGION:-${AWS_DEFAULT_REGION:-<region>}}}"
    AWS_ARGS=(--region "$REGION")
    [[ -z $PROFILE_ARG ]] || AWS_ARGS+=(--profile "$PROFILE_ARG")
    printf 'Plan of the release check for stack %s in %s (nothing is run):\n' "$STACK_NAME" "$REGION"
  else
    require_command aws "install the AWS CLI (https://aws.amazon.com/cli/)"
    require_command jq "install jq (apt-get install jq, brew install jq)"
    require_command curl "install curl"
    aws_setup "$REGION_ARG" "$PROFILE_ARG"
    log "account $(aws_identity | jq -r .Account), region ${REGION}: stack ${STACK_NAME}"
    [[ -z $(stack_describe "$STACK_NAME") ]] || die "stack ${STACK_NAME} exists already: pass another --stack-name"
    trap cleanup EXIT
  fi
  if [[ -z $VPC_ID ]]; then
    create_network
  else
    step "1. the given network: ${VPC_ID}, subnets ${SUBNETS}${PUBLIC_SUBNETS:+, load balancer in ${PUBLIC_SUBNETS}}"
  fi
  deploy_stack
  wait_healthy
  fetch_ui
  destroy_all
  STAGE=""
  if [[ ${CREATED[*]} == *vpc* ]]; then
    delete_network
  fi
  $DRY_RUN || log "release check passed: deployed, healthy, UI answered, taken down"
}

main "$@"
