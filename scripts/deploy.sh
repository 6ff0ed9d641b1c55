#!/usr/bin/env bash
# Creates or updates the Cloud Exchange stack: checks the network (subnets, AZs, a route to
# S3), builds the EFS-tree Lambda for arm64, packages it to an artifacts bucket, runs
# create-stack/update-stack (after an IMPORT change set of retained data, when asked) and
# follows the stack's events until it settles, then prints the outputs and the next command.
#
# create-stack/update-stack with our own wait loop rather than `aws cloudformation deploy`:
# the loop streams one line per resource event, explains failures (including the custom
# resource's Lambda log) and behaves the same on the local AWS, where change sets
# complete without outputs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/init.sh
source "${ROOT}/scripts/lib/init.sh"

TEMPLATE="${ROOT}/cfn/CloudExchangeTemplate.yaml"
# The Lambda's Code in the template: a path relative to cfn/, where cargo lambda puts it.
LAMBDA_CODE_PATH="../target/lambda/bootstrap/bootstrap.zip"
# The custom resource's logical id in the template: its failure is explained with the
# Lambda's log.
EFS_TREE_ID="EfsTree"
POLL_SECONDS="${DEPLOY_POLL_SECONDS:-5}"
# The template's EnvironmentName pattern, checked here so a bad name costs no build.
ENV_NAME_RE='^[a-z]([a-z0-9-]{0,14}[a-z0-9])?$'

STACK_NAME=""
VPC_ID=""
SUBNETS=""
REGION_ARG=""
PROFILE_ARG=""
ENV_NAME=""
UI_CIDR=""
ROUTE_TABLES=""
LOG_RETENTION=""
LAMBDA_ZIP_ARG=""
TIMEOUT=60
# Template parameters given on the command line, as a JSON object {Key: Value}.
GIVEN='{}'
PARAMETER_PAIRS=() # --parameter KEY=VALUE, in order
ENABLE_EXEC=false
IMPORT_FS=""
IMPORT_SECRET=""
# The retained resources --import-file-system and --import-secret bring back.
FILE_SYSTEM_ID="FileSystem"
SECRET_ID="MaintenancePasswordSecret"

ACCOUNT_ID=""
PARTITION=""
BUCKET=""
TEMPLATE_URL=""
STACK_ID=""
WORK_DIR=""
STARTED_MS=""

usage() {
  cat <<'USAGE'
Usage: scripts/deploy.sh --stack-name NAME --vpc-id vpc-... --subnets subnet-a,subnet-b
                         --ui-cidr CIDR [options]

Builds the EFS-tree Lambda (arm64), packages it to the bucket ce-artifacts-ACCOUNT-REGION
(created if missing: encrypted, public access blocked, TLS only), creates or updates the
CloudFormation stack while printing its events, then prints the stack's outputs and the
next command to run. Re-running with nothing changed is a no-op.

Required (on an update, left-out values are kept):
  --stack-name NAME        CloudFormation stack name
  --vpc-id VPC             VPC of the two subnets
  --subnets A,B            exactly two private subnets in different Availability Zones
  --ui-cidr CIDR           IPv4 CIDR allowed to reach the UI on port 3000 (no default;
                           not needed with a load balancer, see --parameter)

Options:
  --env-name NAME          environment name in every resource name: 1-16 lowercase letters,
                           digits and inner hyphens (default: the stack name, if it is one)
  --route-tables R1,R2     route tables of the subnets: creates an S3 gateway endpoint so the
                           Lambda can answer CloudFormation without a NAT gateway ("none":
                           remove it)
  --log-retention DAYS     CloudWatch Logs retention (default: the template's, 90, also when
                           updating)
  --parameter KEY=VALUE    any template parameter (repeatable; the value may hold commas
                           and newlines, e.g. CaCertificatesPem="$(cat ca.pem)")
  --enable-exec            same as --parameter EnableExec=true (ECS Exec permissions)
  --import-file-system FS  new stack only: adopt the file system FS (fs-...) a deleted stack
                           retained, through a CloudFormation resource import, then create
                           the rest; needs --import-secret
  --import-secret ARN      with --import-file-system: the retained maintenance password
                           secret (MongoDB's data opens only with it)
  --lambda-zip FILE        use this Lambda archive instead of building one (skips cargo)
  --timeout MINUTES        stop following the stack after this long (default: 60; "90s"
                           for seconds)
  --region REGION          AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, aws configure)
  --profile PROFILE        AWS CLI profile
  -h, --help               this text

An update keeps the previous value of every parameter left out. The environment name cannot
change on an update (it names the custom resource's function); deploy a new stack instead.
Before creating anything, the subnets are checked: in the VPC, in two Availability Zones, and
with route tables that reach S3 (NAT or an S3 gateway endpoint), unless --route-tables is given.

Needs: aws, jq; to build: cargo, cargo-lambda and zig (pip install cargo-lambda ziglang).
USAGE
}

parse_args() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -h | --help) usage; exit 0 ;;
      --enable-exec) ENABLE_EXEC=true; shift ;;
      --stack-name) STACK_NAME="$(option_value "$@")"; shift 2 ;;
      --vpc-id) VPC_ID="$(option_value "$@")"; shift 2 ;;
      --subnets) SUBNETS="$(option_value "$@")"; shift 2 ;;
      --region) REGION_ARG="$(option_value "$@")"; shift 2 ;;
      --profile) PROFILE_ARG="$(option_value "$@")"; shift 2 ;;
      --env-name) ENV_NAME="$(option_value "$@")"; shift 2 ;;
      --ui-cidr) UI_CIDR="$(option_value "$@")"; shift 2 ;;
      --route-tables) ROUTE_TABLES="$(option_value "$@")"; shift 2 ;;
      --log-retention) LOG_RETENTION="$(option_value "$@")"; shift 2 ;;
      --lambda-zip) LAMBDA_ZIP_ARG="$(option_value "$@")"; shift 2 ;;
      --timeout) TIMEOUT="$(option_value "$@")"; shift 2 ;;
      --import-file-system) IMPORT_FS="$(option_value "$@")"; shift 2 ;;
      --import-secret) IMPORT_SECRET="$(option_value "$@")"; shift 2 ;;
      --parameter)
        [[ ${2:-} =~ ^[A-Za-z0-9]+= ]] || usage_error "--parameter needs KEY=VALUE: ${2:-}"
        PARAMETER_PAIRS+=("$2")
        shift 2
        ;;
      *) usage_error "unknown option: $1" ;;
    esac
  done
  validate_args
}

# The template parameters this run gives, from the options (after the tools are checked:
# this needs jq).
collect_parameters() {
  local pair
  for pair in "${PARAMETER_PAIRS[@]}"; do
    given_parameter "${pair%%=*}" "${pair#*=}" "--parameter ${pair%%=*}"
  done
  ! $ENABLE_EXEC || given_parameter EnableExec true --enable-exec
  given_parameter EnvironmentName "$ENV_NAME" --env-name
  given_parameter VpcId "$VPC_ID" --vpc-id
  given_parameter PrivateSubnet1Id "${SUBNETS:+${SUBNETS%,*}}" --subnets
  given_parameter PrivateSubnet2Id "${SUBNETS:+${SUBNETS#*,}}" --subnets
  given_parameter UiIngressCidr "$UI_CIDR" --ui-cidr
  given_parameter S3EndpointRouteTableIds "$([[ $ROUTE_TABLES == none ]] || printf '%s' "$ROUTE_TABLES")" --route-tables
  [[ -z $ROUTE_TABLES ]] || GIVEN="$(jq -c '.S3EndpointRouteTableIds //= ""' <<<"$GIVEN")"
  given_parameter LogRetentionInDays "$LOG_RETENTION" --log-retention
  ENV_NAME="$(jq -r '.EnvironmentName // ""' <<<"$GIVEN")"
  [[ -z $ENV_NAME || $ENV_NAME =~ $ENV_NAME_RE ]] ||
    usage_error "--env-name needs 1-16 lowercase letters, digits and inner hyphens, starting with a letter: $ENV_NAME"
}

# Records template parameter KEY=VALUE (an empty VALUE: not given); the same key twice is
# refused, whichever options gave it, and so is a key the template does not have.
given_parameter() { # KEY VALUE OPTION
  [[ -n $2 ]] || return 0
  template_parameters | grep -qxF -- "$1" ||
    usage_error "$3: the template has no parameter $1 (it has: $(template_parameters | paste -sd ' '))"
  jq -e --arg key "$1" 'has($key) | not' <<<"$GIVEN" >/dev/null || usage_error "$3: parameter $1 is given twice"
  GIVEN="$(jq -c --arg key "$1" --arg value "$2" '.[$key] = $value' <<<"$GIVEN")"
}

# The template's parameter names, one per line: the keys two spaces into its Parameters
# (block YAML, as ours is), or its Parameters' keys when it is JSON.
template_parameters() {
  if [[ $(head -c 1 "$TEMPLATE") == "{" ]]; then
    jq -r '.Parameters // {} | keys_unsorted[]' "$TEMPLATE"
    return
  fi
  awk '/^[A-Za-z]/ { inside = ($0 ~ /^Parameters:/) } inside && /^  [A-Za-z0-9]+:/ { sub(/^  /, ""); sub(/:.*/, ""); print }' "$TEMPLATE"
}

# Every flag is checked before anything is called, so a typo costs no build and no AWS call.
validate_args() {
  local id_re='[0-9a-f]{8}([0-9a-f]{9})?' octet='(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
  [[ -n $STACK_NAME ]] || usage_error "--stack-name is required"
  [[ $STACK_NAME =~ ^[A-Za-z][A-Za-z0-9-]{0,127}$ ]] ||
    usage_error "--stack-name must start with a letter and hold only letters, digits and hyphens"
  [[ -z $VPC_ID || $VPC_ID =~ ^vpc-${id_re}$ ]] || usage_error "--vpc-id is not a VPC id: $VPC_ID"
  [[ -z $SUBNETS || $SUBNETS =~ ^subnet-${id_re},subnet-${id_re}$ ]] ||
    usage_error "--subnets needs exactly two subnet ids separated by a comma: $SUBNETS"
  [[ -z $SUBNETS || ${SUBNETS%,*} != "${SUBNETS#*,}" ]] || usage_error "--subnets names the same subnet twice"
  [[ -z $UI_CIDR || $UI_CIDR =~ ^${octet}\.${octet}\.${octet}\.${octet}/(3[0-2]|[12]?[0-9])$ ]] ||
    usage_error "--ui-cidr is not an IPv4 CIDR (a.b.c.d/n): $UI_CIDR"
  [[ -z $IMPORT_FS || $IMPORT_FS =~ ^fs-${id_re}$ ]] || usage_error "--import-file-system is not a file system id: $IMPORT_FS"
  [[ -z $IMPORT_SECRET || $IMPORT_SECRET =~ ^arn:[a-z-]+:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$ ]] ||
    usage_error "--import-secret needs the secret's ARN: $IMPORT_SECRET"
  [[ -z $IMPORT_SECRET || -n $IMPORT_FS ]] || usage_error "--import-secret goes with --import-file-system"
  [[ -z $IMPORT_FS || -n $IMPORT_SECRET ]] ||
    usage_error "--import-file-system needs --import-secret ARN: the retained data opens only with the retained maintenance password (find it with: aws secretsmanager list-secrets --filters Key=tag-key,Values=cloud-exchange-environment)"
  [[ -z $ROUTE_TABLES || $ROUTE_TABLES == none || $ROUTE_TABLES =~ ^rtb-${id_re}(,rtb-${id_re})*$ ]] ||
    usage_error "--route-tables needs route table ids separated by commas: $ROUTE_TABLES"
  [[ -z $LOG_RETENTION || $LOG_RETENTION =~ ^[1-9][0-9]*$ ]] ||
    usage_error "--log-retention needs a number of days: $LOG_RETENTION"
  is_duration "$TIMEOUT" || usage_error "--timeout needs minutes (or seconds, like 90s): $TIMEOUT"
  [[ -z $LAMBDA_ZIP_ARG || -f $LAMBDA_ZIP_ARG ]] || usage_error "--lambda-zip: no such file: $LAMBDA_ZIP_ARG"
  [[ -z $LAMBDA_ZIP_ARG || $(head -c 2 "$LAMBDA_ZIP_ARG") == PK ]] ||
    usage_error "--lambda-zip is not a zip archive: $LAMBDA_ZIP_ARG"
  if [[ ${UI_CIDR:-} == */0 ]]; then
    warn "--ui-cidr ${UI_CIDR} opens the UI to the whole internet"
  fi
}

check_prerequisites() {
  require_command aws "install the AWS CLI (https://aws.amazon.com/cli/)"
  require_command jq "install jq (apt-get install jq, brew install jq)"
  [[ -f $TEMPLATE ]] || die "template not found: ${TEMPLATE}"
  [[ -z $LAMBDA_ZIP_ARG ]] || return 0
  require_command cargo "install Rust (https://rustup.rs), or pass --lambda-zip FILE"
  cargo lambda --version >/dev/null 2>&1 ||
    die "cargo lambda not found: pip install cargo-lambda (or see https://www.cargo-lambda.info), or pass --lambda-zip FILE"
  # cargo-lambda cross-compiles with zig, found as `python3 -m ziglang` or `zig` on PATH.
  python3 -m ziglang version >/dev/null 2>&1 || zig version >/dev/null 2>&1 ||
    die "zig not found (cargo lambda needs it to build for arm64): pip install ziglang, or pass --lambda-zip FILE"
}

check_identity() {
  local identity
  aws_setup "$REGION_ARG" "$PROFILE_ARG"
  identity="$(aws_identity)"
  ACCOUNT_ID="$(jq -r .Account <<<"$identity")"
  PARTITION="$(jq -r '.Arn | split(":")[1]' <<<"$identity")"
  log "deploying as $(jq -r .Arn <<<"$identity") to ${REGION}"
}

# How to clear a stack that can only be deleted; this script never deletes one itself.
print_delete_commands() {
  printf 'Delete it (or run scripts/destroy.sh --stack-name %s), then run this script again:\n' "$STACK_NAME" >&2
  printf '  aws cloudformation delete-stack --stack-name %s%s\n' "$STACK_NAME" "$(aws_args_text)" >&2
  printf '  aws cloudformation wait stack-delete-complete --stack-name %s%s\n' "$STACK_NAME" "$(aws_args_text)" >&2
}

# A rollback or deletion that failed: almost always EfsTree, whose Lambda could not answer
# CloudFormation (no route to S3), so its deletion never completes. A custom resource holds
# nothing, so the way out is to delete the stack while retaining it.
print_retain_commands() { # STATUS
  local failed
  failed="$(stack_failed_deletions "$STACK_NAME" 2>/dev/null | jq -rs 'map(.LogicalResourceId) | join(" ")' || true)"
  [[ -n $failed ]] || failed="$EFS_TREE_ID"
  if [[ $1 == ROLLBACK_FAILED ]]; then
    printf 'Delete it; when the deletion ends in DELETE_FAILED, delete it again retaining what failed\n' >&2
    printf '(or run scripts/destroy.sh --stack-name %s, which does both):\n' "$STACK_NAME" >&2
    printf '  aws cloudformation delete-stack --stack-name %s%s\n' "$STACK_NAME" "$(aws_args_text)" >&2
    printf '  aws cloudformation wait stack-delete-complete --stack-name %s%s\n' "$STACK_NAME" "$(aws_args_text)" >&2
  else
    printf 'Delete it retaining what failed to delete (or run scripts/destroy.sh --stack-name %s):\n' "$STACK_NAME" >&2
  fi
  printf '  aws cloudformation delete-stack --stack-name %s --retain-resources %s%s\n' \
    "$STACK_NAME" "$failed" "$(aws_args_text)" >&2
  printf 'Retaining %s leaves nothing behind; any other resource named there stays in the account.\n' "$EFS_TREE_ID" >&2
}

# Refuses a stack that cannot be updated, saying how to clear it. Prints the current
# status (empty: no stack).
check_stack_state() {
  local stack status
  stack="$(stack_describe "$STACK_NAME")"
  [[ -n $stack ]] || return 0
  status="$(jq -r .StackStatus <<<"$stack")"
  case "$status" in
    ROLLBACK_COMPLETE | ROLLBACK_FAILED | DELETE_FAILED | REVIEW_IN_PROGRESS)
      if [[ $status == DELETE_FAILED ]]; then
        printf 'error: stack %s is in DELETE_FAILED: an earlier deletion did not finish.\n' "$STACK_NAME" >&2
      else
        printf 'error: stack %s is in %s: its first creation failed (or never ran), so it cannot be updated.\n' \
          "$STACK_NAME" "$status" >&2
      fi
      printf 'See why with:\n  aws cloudformation describe-stack-events --stack-name %s%s\n' \
        "$STACK_NAME" "$(aws_args_text)" >&2
      if [[ $status == *_FAILED ]]; then
        print_retain_commands "$status"
      else
        print_delete_commands
      fi
      exit 1
      ;;
    IMPORT_ROLLBACK_COMPLETE | IMPORT_ROLLBACK_FAILED)
      check_failed_import "$status"
      ;;
    UPDATE_ROLLBACK_FAILED)
      die "stack ${STACK_NAME} is in UPDATE_ROLLBACK_FAILED: fix the cause shown in its events, then run: aws cloudformation continue-update-rollback --stack-name ${STACK_NAME}$(aws_args_text)"
      ;;
    *_IN_PROGRESS)
      die "stack ${STACK_NAME} is busy (${status}): wait for it to finish, then run this script again"
      ;;
  esac
  printf '%s\n' "$status"
}

# A stack whose first operation, the import of retained data, was rolled back holds nothing:
# an update would create a new, empty file system beside the retained one. Only a new import
# (--import-file-system, into this stack) may go on; without it, the refusal names the file
# system and secret the failed import tried to adopt, and the command that retries it.
check_failed_import() { # STATUS
  local held events fs secret
  held="$(aws_cli cloudformation describe-stack-resources --stack-name "$STACK_NAME" --output json |
    jq -r --arg fs "$FILE_SYSTEM_ID" '[.StackResources[] | select(.LogicalResourceId == $fs)] | length')"
  [[ $held == 0 ]] || return 0
  [[ -z $IMPORT_FS ]] || return 0
  events="$(aws_cli cloudformation describe-stack-events --stack-name "$STACK_NAME" --output json)"
  fs="$(jq -r --arg id "$FILE_SYSTEM_ID" '[.StackEvents[] | select(.LogicalResourceId == $id) | .PhysicalResourceId
    | select(. != null and . != "")][0] // "FS"' <<<"$events")"
  secret="$(jq -r --arg id "$SECRET_ID" '[.StackEvents[] | select(.LogicalResourceId == $id) | .PhysicalResourceId
    | select(. != null and . != "")][0] // "SECRET_ARN"' <<<"$events")"
  printf 'error: stack %s is in %s: its import of the retained file system was undone, so it holds nothing.\n' \
    "$STACK_NAME" "$1" >&2
  printf 'Running without --import-file-system would create a new, empty file system beside the retained data.\n' >&2
  printf 'See why the import failed with:\n  aws cloudformation describe-stack-events --stack-name %s%s\n' \
    "$STACK_NAME" "$(aws_args_text)" >&2
  printf 'Fix that, then retry the import into this stack:\n  scripts/deploy.sh --stack-name %s ... --import-file-system %s --import-secret %s\n' \
    "$STACK_NAME" "$fs" "$secret" >&2
  exit 1
}

# A parameter's value as this run gives it, else as the stack has it.
effective_parameter() { # STACK_JSON KEY
  jq -r --arg key "$2" --argjson given "$GIVEN" \
    '$given[$key] // ((.Parameters // []) | map(select(.ParameterKey == $key))[0].ParameterValue) // ""' <<<"${1:-null}"
}

# Before anything is created: the subnets exist, lie in the VPC and in two Availability
# Zones, and their route tables (an explicit association, else the VPC's main table) reach
# S3, where the custom resource answers CloudFormation: a 0.0.0.0/0 route to a NAT gateway
# (or a transit gateway, a NAT instance, a firewall or Gateway Load Balancer endpoint vpce-,
# a Cloud WAN core network) or an S3 gateway endpoint on the table. With --route-tables the
# stack adds that endpoint itself, so none of those tables may hold one already (a table
# holds one route to S3's prefix list). The load balancer's subnets are checked too.
check_network() { # STACK_JSON (empty: a create)
  local vpc s1 s2 tables subnets endpoints subnet table reach missing=() no_nat=()
  vpc="$(effective_parameter "$1" VpcId)"
  s1="$(effective_parameter "$1" PrivateSubnet1Id)"
  s2="$(effective_parameter "$1" PrivateSubnet2Id)"
  tables="$(effective_parameter "$1" S3EndpointRouteTableIds)"
  subnets="$(aws_cli ec2 describe-subnets --subnet-ids "$s1" "$s2" --output json 2>"${WORK_DIR}/subnets.err")" ||
    die "cannot read subnets ${s1} and ${s2}: $(tail -n 1 "${WORK_DIR}/subnets.err")"
  for subnet in "$s1" "$s2"; do
    jq -e --arg s "$subnet" --arg vpc "$vpc" '.Subnets[] | select(.SubnetId == $s) | .VpcId == $vpc' <<<"$subnets" >/dev/null ||
      die "subnet ${subnet} is not in ${vpc} (it is in $(jq -r --arg s "$subnet" '.Subnets[] | select(.SubnetId == $s) | .VpcId' <<<"$subnets")): pass two subnets of the VPC"
  done
  jq -e '[.Subnets[].AvailabilityZone] | unique | length == 2' <<<"$subnets" >/dev/null ||
    die "subnets ${s1} and ${s2} are both in $(jq -r '.Subnets[0].AvailabilityZone' <<<"$subnets"): pass two subnets in different Availability Zones (EFS needs a mount target in each)"
  check_load_balancer_subnets "$1" "$vpc"
  endpoints="$(aws_cli ec2 describe-vpc-endpoints --filters "Name=vpc-id,Values=${vpc}" --output json |
    jq -c --arg own "$(own_s3_endpoint)" '[.VpcEndpoints[] | select(.VpcEndpointType == "Gateway"
      and (.ServiceName | endswith(".s3")) and ((.State | ascii_downcase) | IN("available", "pending"))
      and .VpcEndpointId != $own) | {id: .VpcEndpointId, tables: .RouteTableIds}]')"
  if [[ -n $tables ]]; then
    local taken
    taken="$(jq -r --arg tables "$tables" '($tables | split(",")) as $mine
      | [.[] | .id as $id | .tables[] | select(IN($mine[])) | "\(.) (endpoint \($id))"] | join(", ")' <<<"$endpoints")"
    [[ -z $taken ]] ||
      die "route table ${taken} already has an S3 gateway endpoint, and a route table holds only one route to S3: leave those tables out of --route-tables (their endpoint already gives the Lambda its route to S3)"
    log "network: the stack adds an S3 gateway endpoint to ${tables}"
    return 0
  fi
  endpoints="$(jq -c '[.[].tables[]]' <<<"$endpoints")"
  for subnet in "$s1" "$s2"; do
    table="$(subnet_route_table "$subnet" "$vpc")"
    [[ -n $table ]] || die "subnet ${subnet} has no route table (and ${vpc} no main route table)"
    reach="$(jq -r --argjson endpoints "$endpoints" '
      if any(.Routes[]; .DestinationCidrBlock == "0.0.0.0/0" and .State != "blackhole"
        and ((.NatGatewayId // .TransitGatewayId // .NetworkInterfaceId // .InstanceId // .CoreNetworkArn // "") != ""
          or (.GatewayId // "" | startswith("vpce-")))) then "nat"
      elif (.RouteTableId | IN($endpoints[])) then "endpoint" else "none" end' <<<"$table")"
    case "$reach" in
      none) missing+=("$(jq -r .RouteTableId <<<"$table")") ;;
      endpoint) no_nat+=("$subnet") ;;
    esac
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    die "the route table $(printf '%s\n' "${missing[@]}" | sort -u | paste -sd ' ') of the subnets reaches S3 neither through a NAT gateway (0.0.0.0/0) nor through an S3 gateway endpoint, so the custom resource could not answer CloudFormation. Pass --route-tables $(printf '%s\n' "${missing[@]}" | sort -u | paste -sd ,) to add an S3 gateway endpoint, or route 0.0.0.0/0 to a NAT gateway."
  fi
  if [[ ${#no_nat[@]} -gt 0 ]]; then
    warn "subnet ${no_nat[*]} reaches S3 through an endpoint but has no NAT route: the task cannot pull its images without NAT or VPC endpoints for them"
  fi
}

# The route table of SUBNET as JSON: its explicit association, else the VPC's main table;
# empty when there is none.
subnet_route_table() { # SUBNET VPC
  local table
  table="$(aws_cli ec2 describe-route-tables --filters "Name=association.subnet-id,Values=${1}" --output json |
    jq -c '.RouteTables[0] // empty')"
  [[ -n $table ]] || table="$(aws_cli ec2 describe-route-tables --output json \
    --filters "Name=vpc-id,Values=${2}" "Name=association.main,Values=true" | jq -c '.RouteTables[0] // empty')"
  printf '%s\n' "$table"
}

# The stack's own S3 gateway endpoint (an update keeps it), empty when it has none.
own_s3_endpoint() {
  [[ -n $(stack_describe "$STACK_NAME") ]] || return 0
  aws_cli cloudformation describe-stack-resources --stack-name "$STACK_NAME" --output json 2>/dev/null |
    jq -r '[.StackResources[] | select(.LogicalResourceId == "S3GatewayEndpoint") | .PhysicalResourceId][0] // ""' || true
}

# With a load balancer, its subnets are checked before anything is created, like the task's:
# they exist, lie in the VPC and span two Availability Zones; an internet-facing one needs
# subnets whose route table sends 0.0.0.0/0 to an internet gateway.
check_load_balancer_subnets() { # STACK_JSON VPC
  local scheme ids subnets subnet table
  scheme="$(effective_parameter "$1" LoadBalancerScheme)"
  [[ -n $scheme && $scheme != none ]] || return 0
  ids="$(effective_parameter "$1" LoadBalancerSubnetIds)"
  [[ -n $ids ]] || die "LoadBalancerScheme ${scheme} needs LoadBalancerSubnetIds (two or more subnets in different Availability Zones)"
  # shellcheck disable=SC2086 # one argument per subnet id
  subnets="$(aws_cli ec2 describe-subnets --subnet-ids ${ids//,/ } --output json 2>"${WORK_DIR}/lb-subnets.err")" ||
    die "cannot read the load balancer subnets ${ids}: $(tail -n 1 "${WORK_DIR}/lb-subnets.err")"
  for subnet in ${ids//,/ }; do
    jq -e --arg s "$subnet" --arg vpc "$2" '.Subnets[] | select(.SubnetId == $s) | .VpcId == $vpc' <<<"$subnets" >/dev/null ||
      die "load balancer subnet ${subnet} is not in ${2}: pass LoadBalancerSubnetIds of the VPC"
  done
  jq -e '[.Subnets[].AvailabilityZone] | unique | length >= 2' <<<"$subnets" >/dev/null ||
    die "the load balancer subnets ${ids} are all in $(jq -r '.Subnets[0].AvailabilityZone' <<<"$subnets"): an Application Load Balancer needs subnets in two Availability Zones"
  [[ $scheme == internet-facing ]] || return 0
  for subnet in ${ids//,/ }; do
    table="$(subnet_route_table "$subnet" "$2")"
    jq -e 'any(.Routes[]?; .DestinationCidrBlock == "0.0.0.0/0" and (.GatewayId // "" | startswith("igw-")))' \
      <<<"${table:-null}" >/dev/null ||
      die "load balancer subnet ${subnet} has no route 0.0.0.0/0 to an internet gateway: an internet-facing load balancer needs public subnets"
  done
}

# The file system and the secret to import exist and are free: a file system with mount
# targets is still in use (a deleted stack's mount targets are gone); a secret scheduled for
# deletion must be restored first.
check_import_sources() {
  local fs secret mounts
  fs="$(aws_cli efs describe-file-systems --file-system-id "$IMPORT_FS" --output json 2>"${WORK_DIR}/fs.err")" ||
    die "cannot read file system ${IMPORT_FS}: $(tail -n 1 "${WORK_DIR}/fs.err")"
  [[ $(jq -r '.FileSystems[0].LifeCycleState' <<<"$fs") == available ]] ||
    die "file system ${IMPORT_FS} is $(jq -r '.FileSystems[0].LifeCycleState' <<<"$fs"), not available"
  mounts="$(aws_cli efs describe-mount-targets --file-system-id "$IMPORT_FS" --output json |
    jq -r '[.MountTargets[] | "\(.MountTargetId) (\(.SubnetId))"] | join(", ")')"
  [[ -z $mounts ]] ||
    die "file system ${IMPORT_FS} still has mount targets ${mounts}: is another stack using it? Delete them first if not."
  secret="$(aws_cli secretsmanager describe-secret --secret-id "$IMPORT_SECRET" --output json 2>"${WORK_DIR}/secret.err")" ||
    die "cannot read secret ${IMPORT_SECRET}: $(tail -n 1 "${WORK_DIR}/secret.err")"
  [[ -z $(jq -r '.DeletedDate // empty' <<<"$secret") ]] ||
    die "secret ${IMPORT_SECRET} is scheduled for deletion: aws secretsmanager restore-secret --secret-id ${IMPORT_SECRET}$(aws_args_text), then run this script again"
}

# Prints the template of the import: the Parameters, Rules, Mappings and Conditions of ours,
# and only the resources LOGICAL_ID... with their DeletionPolicy, without DependsOn and
# without the properties that name another resource (the file system policy names the roles
# the new stack creates: the update after the import sets it).
import_template() { # LOGICAL_ID...
  awk -v keep=" $* " -f "${ROOT}/scripts/lib/import-template.awk" "$TEMPLATE" "$TEMPLATE"
}

# Creates the stack by importing the retained file system and secret (an IMPORT change set),
# so CloudFormation manages them again; the normal update that follows creates the rest.
import_retained() {
  local template="${WORK_DIR}/import.yaml" change_set status reason
  change_set="import-$(date -u +%Y%m%dT%H%M%SZ)"
  import_template "$FILE_SYSTEM_ID" "$SECRET_ID" >"$template"
  jq -n --arg fs "$IMPORT_FS" --arg secret "$IMPORT_SECRET" --arg fs_id "$FILE_SYSTEM_ID" --arg secret_id "$SECRET_ID" '[
    {ResourceType: "AWS::EFS::FileSystem", LogicalResourceId: $fs_id, ResourceIdentifier: {FileSystemId: $fs}},
    {ResourceType: "AWS::SecretsManager::Secret", LogicalResourceId: $secret_id, ResourceIdentifier: {Id: $secret}}]' \
    >"${WORK_DIR}/import.json"
  log "importing file system ${IMPORT_FS} and secret ${IMPORT_SECRET##*:secret:} into the new stack ${STACK_NAME}"
  STARTED_MS="$(($(date +%s) * 1000))"
  STACK_ID="$(aws_cli cloudformation create-change-set --stack-name "$STACK_NAME" --change-set-name "$change_set" \
    --change-set-type IMPORT --template-body "file://${template}" --resources-to-import "file://${WORK_DIR}/import.json" \
    --parameters "file://${WORK_DIR}/parameters.json" --capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM \
    --output text --query StackId)"
  while true; do
    status="$(aws_cli cloudformation describe-change-set --stack-name "$STACK_ID" --change-set-name "$change_set" \
      --output json | jq -c '{Status, StatusReason}')"
    case "$(jq -r .Status <<<"$status")" in
      CREATE_COMPLETE) break ;;
      FAILED)
        reason="$(jq -r '.StatusReason // "no reason given"' <<<"$status")"
        # The stack holds nothing yet (REVIEW_IN_PROGRESS): remove it so a re-run can start over.
        aws_cli cloudformation delete-stack --stack-name "$STACK_ID" || true
        die "the import was refused: ${reason}"
        ;;
    esac
    sleep "$POLL_SECONDS"
  done
  aws_cli cloudformation execute-change-set --stack-name "$STACK_ID" --change-set-name "$change_set"
  wait_for_stack
}

# Prints the path of the Lambda archive to deploy: --lambda-zip's, or a fresh arm64 build.
build_lambda() {
  local built="${ROOT}/cfn/${LAMBDA_CODE_PATH}"
  if [[ -n $LAMBDA_ZIP_ARG ]]; then
    log "using the Lambda archive ${LAMBDA_ZIP_ARG}"
    printf '%s\n' "$LAMBDA_ZIP_ARG"
    return 0
  fi
  log "building the Lambda for arm64 (cargo lambda build)"
  # --lambda-dir puts the archive where the template expects it even when
  # CARGO_TARGET_DIR points elsewhere.
  (cd "$ROOT" && cargo lambda build --release --arm64 --output-format zip \
    --bin bootstrap --lambda-dir "${ROOT}/target/lambda" >&2)
  [[ -f $built ]] || die "cargo lambda build did not produce ${built}"
  printf '%s\n' "$built"
}

# The bucket holds the Lambda archive and the packaged template. When this script creates
# it, it is encrypted by default, blocks every kind of public access and refuses plain HTTP;
# an existing bucket is used as it is, and only if this account owns it.
ensure_artifacts_bucket() {
  local err="${WORK_DIR}/head-bucket.err"
  BUCKET="ce-artifacts-${ACCOUNT_ID}-${REGION}"
  if aws_cli s3api head-bucket --bucket "$BUCKET" --expected-bucket-owner "$ACCOUNT_ID" >/dev/null 2>"$err"; then
    log "artifacts bucket: ${BUCKET}"
    return 0
  fi
  grep -qE '404|Not Found|NoSuchBucket' "$err" ||
    die "bucket ${BUCKET} exists but this account cannot use it ($(tail -n 1 "$err"))"
  log "creating the artifacts bucket ${BUCKET}"
  if [[ $REGION == us-east-1 ]]; then
    aws_cli s3api create-bucket --bucket "$BUCKET" >/dev/null
  else
    aws_cli s3api create-bucket --bucket "$BUCKET" \
      --create-bucket-configuration "LocationConstraint=${REGION}" >/dev/null
  fi
  aws_cli s3api put-public-access-block --bucket "$BUCKET" --public-access-block-configuration \
    BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
  aws_cli s3api put-bucket-encryption --bucket "$BUCKET" --server-side-encryption-configuration \
    '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"},"BucketKeyEnabled":true}]}'
  # An endpoint reached over plain HTTP (the local AWS) is exactly what the policy refuses.
  if [[ ${AWS_ENDPOINT_URL_S3:-${AWS_ENDPOINT_URL:-https://}} == http://* ]]; then
    warn "the S3 endpoint is plain HTTP: the bucket gets no TLS-only policy, which would refuse this script"
    return 0
  fi
  aws_cli s3api put-bucket-policy --bucket "$BUCKET" --policy "$(jq -cn \
    --arg bucket "arn:${PARTITION}:s3:::${BUCKET}" '{
      Version: "2012-10-17",
      Statement: [{
        Sid: "DenyPlainHttp", Effect: "Deny", Principal: "*", Action: "s3:*",
        Resource: [$bucket, "\($bucket)/*"],
        Condition: {Bool: {"aws:SecureTransport": "false"}}
      }]
    }')"
}

# Uploads the Lambda archive (content-addressed by the CLI) and the packaged template; the
# template goes by URL because create-stack takes at most 51,200 bytes inline. Packaging
# runs on a copy of the template with the archive at its Code path, so the archive can come
# from anywhere and nothing in the repository is overwritten.
package_template() { # LAMBDA_ZIP
  local stage="${WORK_DIR}/stage" packaged="${WORK_DIR}/packaged.yaml" key domain=amazonaws.com
  mkdir -p "${stage}/cfn" "$(dirname "${stage}/cfn/${LAMBDA_CODE_PATH}")"
  cp "$TEMPLATE" "${stage}/cfn/"
  cp "$1" "${stage}/cfn/${LAMBDA_CODE_PATH}"
  log "packaging the template to s3://${BUCKET}/${STACK_NAME}/"
  if ! aws_cli cloudformation package --template-file "${stage}/cfn/$(basename "$TEMPLATE")" --s3-bucket "$BUCKET" \
    --s3-prefix "$STACK_NAME" --output-template-file "$packaged" >/dev/null 2>"${WORK_DIR}/package.err"; then
    tr '\r' '\n' <"${WORK_DIR}/package.err" | grep -v -e '^Uploading to' -e '^[[:space:]]*$' >&2
    die "aws cloudformation package failed"
  fi
  key="${STACK_NAME}/template-$(date -u +%Y%m%dT%H%M%SZ).yaml"
  aws_cli s3 cp "$packaged" "s3://${BUCKET}/${key}" --only-show-errors
  [[ $PARTITION != aws-cn ]] || domain=amazonaws.com.cn
  TEMPLATE_URL="https://${BUCKET}.s3.${REGION}.${domain}/${key}"
}

# A new stack needs its network and, without a load balancer, the UI's CIDR; its
# environment name defaults to the stack name, when that is a valid one.
check_create_parameters() {
  [[ -n $VPC_ID ]] || usage_error "--vpc-id is required to create stack ${STACK_NAME}"
  [[ -n $SUBNETS ]] || usage_error "--subnets is required to create stack ${STACK_NAME}"
  [[ -n $UI_CIDR || $(jq -r '.LoadBalancerScheme // "none"' <<<"$GIVEN") != none ]] ||
    usage_error "--ui-cidr is required (the CIDR allowed to reach the UI; there is no default)"
  if [[ -z $ENV_NAME ]]; then
    [[ $STACK_NAME =~ $ENV_NAME_RE ]] ||
      usage_error "the stack name is not a valid environment name: pass --env-name (1-16 lowercase letters, digits, inner hyphens)"
    ENV_NAME="$STACK_NAME"
    GIVEN="$(jq -c --arg env "$ENV_NAME" '.EnvironmentName = $env' <<<"$GIVEN")"
  fi
}

# The environment name is in every resource name, the custom resource's function too: a new
# name would change the custom resource's ServiceToken, which CloudFormation refuses after
# replacing half the stack. Refused here, before anything is built or changed.
check_env_name_unchanged() { # STACK_JSON
  local current
  current="$(jq -r '.Parameters // [] | map(select(.ParameterKey == "EnvironmentName"))[0].ParameterValue // ""' <<<"$1")"
  [[ -z $ENV_NAME || -z $current || $ENV_NAME == "$current" ]] ||
    die "stack ${STACK_NAME} has the environment name '${current}'; it cannot become '${ENV_NAME}' (every resource, the custom resource's function too, is named after it, and CloudFormation refuses a new ServiceToken). Leave --env-name out, or deploy another stack with the new name."
}

# Parameters as JSON (jq --arg): values may hold commas, which the CLI's shorthand syntax
# would split. On an update, every parameter of the stack that is not given and that the
# template still has keeps its previous value (UsePreviousValue), so a re-run never renames
# the environment or turns off an option chosen earlier. On a create, what is not given is
# the template's default.
write_parameters() { # STACK_JSON (empty: a create)
  jq -n --argjson given "$GIVEN" --argjson stack "${1:-null}" --arg names "$(template_parameters)" '
    ($names | split("\n")) as $known
    | [$given | to_entries[] | {ParameterKey: .key, ParameterValue: .value}]
      + [($stack.Parameters // [])[] | .ParameterKey as $key | select(($given | has($key)) | not)
         | select($key | IN($known[])) | {ParameterKey: $key, UsePreviousValue: true}]
  ' >"${WORK_DIR}/parameters.json"
}

# Starts create-stack or update-stack and sets STACK_ID, left empty when there is nothing
# to update. Events older than this operation are marked as seen so only new ones print.
start_operation() { # CURRENT_STATUS
  local args err="${WORK_DIR}/operation.err"
  args=(--stack-name "$STACK_NAME" --template-url "$TEMPLATE_URL"
    --parameters "file://${WORK_DIR}/parameters.json"
    --capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM --output text --query StackId)
  STARTED_MS="$(($(date +%s) * 1000))"
  if [[ -z $1 ]]; then
    log "creating stack ${STACK_NAME}"
    STACK_ID="$(aws_cli cloudformation create-stack "${args[@]}")"
    return 0
  fi
  stack_events_new "$STACK_NAME" "${WORK_DIR}/seen" >/dev/null # earlier operations' events
  log "updating stack ${STACK_NAME} (now ${1})"
  if STACK_ID="$(aws_cli cloudformation update-stack "${args[@]}" 2>"$err")"; then
    return 0
  fi
  if grep -q 'No updates are to be performed' "$err"; then
    log "no changes: stack ${STACK_NAME} is already up to date, nothing was done"
    STACK_ID=""
    return 0
  fi
  cat "$err" >&2
  die "update-stack was refused"
}

# Polls until the stack settles, printing each new event like `rain` does, and exits
# non-zero unless it completed. The custom resource's Lambda log is read as soon as it
# fails, before a rollback deletes its log group.
wait_for_stack() {
  local deadline=$((SECONDS + $(duration_seconds "$TIMEOUT"))) stack status events
  while true; do
    # Status first, events second: the events of a settled stack are then all printed.
    stack="$(stack_describe "$STACK_ID")"
    status="$(jq -r '.StackStatus // "GONE"' <<<"${stack:-null}")"
    events="$(stack_events_new "${STACK_ID:-$STACK_NAME}" "${WORK_DIR}/seen")"
    if [[ -n $events ]]; then
      printf '%s\n' "$events" >>"${WORK_DIR}/events.jsonl"
      stack_events_print <<<"$events"
    fi
    if [[ ! -s ${WORK_DIR}/lambda.log ]] && jq -e --arg id "$EFS_TREE_ID" \
      'select(.LogicalResourceId == $id and (.ResourceStatus | endswith("FAILED")))' \
      <<<"$events" >/dev/null 2>&1; then
      save_lambda_log
    fi
    case "$status" in
      CREATE_COMPLETE | UPDATE_COMPLETE | IMPORT_COMPLETE) return 0 ;;
      *_IN_PROGRESS) ;;
      *)
        report_failure "$status"
        exit 1
        ;;
    esac
    if ((SECONDS >= deadline)); then
      printf 'error: stack %s is still %s after %s; it carries on without this script.\n' \
        "$STACK_NAME" "$status" "$(duration_text "$TIMEOUT")" >&2
      printf 'Follow it with:\n  aws cloudformation describe-stack-events --stack-name %s%s\n' \
        "$STACK_NAME" "$(aws_args_text)" >&2
      exit 1
    fi
    sleep "$POLL_SECONDS"
  done
}

# The custom resource's log group: the stack output when the stack has one (an update),
# else the log group of the stack's Lambda function.
lambda_log_group() {
  local group
  group="$(stack_output "$(stack_describe "$STACK_ID")" EfsTreeLambdaLogGroupName)"
  if [[ -z $group ]]; then
    group="$(aws_cli cloudformation describe-stack-resources --stack-name "$STACK_ID" --output json |
      jq -r '[.StackResources[] | select(.ResourceType == "AWS::Lambda::Function")
        | "/aws/lambda/\(.PhysicalResourceId)"][0] // empty' || true)"
  fi
  printf '%s\n' "$group"
}

save_lambda_log() {
  local group lines
  group="$(lambda_log_group)"
  [[ -n $group ]] || return 0
  lines="$(aws_cli logs filter-log-events --log-group-name "$group" --start-time "$STARTED_MS" \
    --output json 2>/dev/null | jq -r '.events[-40:][] | "  \(.message | rtrimstr("\n"))"')" ||
    lines="  (log group not readable)"
  printf 'Last lines of the Lambda log %s:\n%s\n' "$group" "${lines:-  (empty)}" >"${WORK_DIR}/lambda.log"
}

report_failure() { # STATUS
  local reasons kept
  printf '\nerror: stack %s ended in %s.\n' "$STACK_NAME" "$1" >&2
  reasons="$(jq -r 'select((.ResourceStatus | endswith("FAILED"))
      and .ResourceStatusReason != "Resource creation cancelled"
      and .ResourceType != "AWS::CloudFormation::Stack")
    | "  \(.LogicalResourceId) (\(.ResourceType)): \(.ResourceStatusReason // "no reason given")"' \
    "${WORK_DIR}/events.jsonl" 2>/dev/null || true)"
  if [[ -n $reasons ]]; then
    printf 'Failed resources:\n%s\n' "$reasons" >&2
  fi
  if [[ -s ${WORK_DIR}/lambda.log ]]; then
    cat "${WORK_DIR}/lambda.log" >&2
  fi
  if grep -qiE 'did not receive a response|no response|timed out' <<<"$reasons"; then
    printf '%s\n' "The custom resource got no answer. Unless the Lambda's log shows an error, the Lambda" \
      "could not reach CloudFormation's response URL from the private subnets: give them a NAT" \
      "gateway, or pass --route-tables to add an S3 gateway endpoint." >&2
  fi
  case "$1" in
    ROLLBACK_COMPLETE)
      printf 'The stack cannot be updated now. ' >&2
      print_delete_commands
      kept="$(jq -r 'select(.ResourceStatus == "DELETE_SKIPPED")
        | "  \(.LogicalResourceId) (\(.ResourceType)) \(.PhysicalResourceId // "")"' "${WORK_DIR}/events.jsonl")"
      if [[ -n $kept ]]; then
        printf 'The rollback kept these (DeletionPolicy Retain); delete them by hand if unused:\n%s\n' "$kept" >&2
      fi
      ;;
    UPDATE_ROLLBACK_COMPLETE)
      printf 'The stack is back on its previous version and still works; fix the cause and run this script again.\n' >&2
      ;;
    ROLLBACK_FAILED | DELETE_FAILED)
      print_retain_commands "$1"
      ;;
    IMPORT_ROLLBACK_COMPLETE | IMPORT_ROLLBACK_FAILED)
      printf 'The import was undone; the file system and the secret are as they were.\n' >&2
      ;;
  esac
}

print_outputs() {
  local stack
  stack="$(stack_describe "$STACK_NAME")"
  printf '\nStack %s: %s\n' "$STACK_NAME" "$(jq -r .StackStatus <<<"$stack")"
  jq -r '(.Outputs // []) as $o | ($o | map(.OutputKey | length) | max // 0) as $w
    | $o | sort_by(.OutputKey)[] | "  \(.OutputKey)\(" " * ($w - (.OutputKey | length) + 2))\(.OutputValue)"' \
    <<<"$stack"
  printf '\nNext, register the task definition, then start the service:\n'
  printf '  scripts/register-task-definition.sh --stack-name %s%s\n' "$STACK_NAME" "$(aws_args_text)"
  printf '  scripts/create-service.sh --stack-name %s%s\n' "$STACK_NAME" "$(aws_args_text)"
}

main() {
  parse_args "$@"
  check_prerequisites
  collect_parameters
  check_identity
  local status stack="" lambda_zip
  status="$(check_stack_state)"
  if [[ -z $status ]]; then
    check_create_parameters
  else
    [[ -z $IMPORT_FS || $status == IMPORT_ROLLBACK_* ]] ||
      usage_error "--import-file-system creates a new stack; stack ${STACK_NAME} exists (${status})"
    stack="$(stack_describe "$STACK_NAME")"
    check_env_name_unchanged "$stack"
  fi
  WORK_DIR="$(mktemp -d)"
  trap 'rm -rf "$WORK_DIR"' EXIT
  check_network "$stack"
  [[ -z $IMPORT_FS ]] || check_import_sources
  lambda_zip="$(build_lambda)"
  ensure_artifacts_bucket
  package_template "$lambda_zip"
  write_parameters "$stack"
  if [[ -n $IMPORT_FS ]]; then
    import_retained
    status="$(check_stack_state)"
    stack="$(stack_describe "$STACK_NAME")"
    write_parameters "$stack"
  fi
  start_operation "$status"
  if [[ -n $STACK_ID ]]; then
    wait_for_stack
  fi
  print_outputs
}

main "$@"
