#!/usr/bin/env bash
# Creates or updates the Cloud Exchange stack: builds the EFS-tree Lambda for arm64,
# packages it to an artifacts bucket, runs create-stack/update-stack and follows the
# stack's events until it settles, then prints the outputs and the next command.
#
# create-stack/update-stack with our own wait loop rather than `aws cloudformation deploy`:
# the loop streams one line per resource event, explains failures (including the custom
# resource's Lambda log) and behaves the same on a local emulator, where change sets
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

Required:
  --stack-name NAME        CloudFormation stack name
  --vpc-id VPC             VPC of the two subnets
  --subnets A,B            exactly two private subnets in different Availability Zones
  --ui-cidr CIDR           IPv4 CIDR allowed to reach the UI on port 3000 (no default)

Options:
  --env-name NAME          environment name in every resource name: 1-16 lowercase letters,
                           digits and inner hyphens (default: the stack name, if it is one)
  --route-tables R1,R2     route tables of the subnets: creates an S3 gateway endpoint so the
                           Lambda can answer CloudFormation without a NAT gateway ("none":
                           remove it)
  --log-retention DAYS     CloudWatch Logs retention (default: the template's, 90, also when
                           updating)
  --lambda-zip FILE        use this Lambda archive instead of building one (skips cargo)
  --timeout MINUTES        stop following the stack after this long (default: 60; "90s"
                           for seconds)
  --region REGION          AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, aws configure)
  --profile PROFILE        AWS CLI profile
  -h, --help               this text

An update keeps the previous --env-name and --route-tables when they are left out.

Needs: aws, jq; to build: cargo, cargo-lambda and zig (pip install cargo-lambda ziglang).
USAGE
}

parse_args() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -h | --help) usage; exit 0 ;;
      --stack-name | --vpc-id | --subnets | --region | --profile | --env-name | --ui-cidr | \
        --route-tables | --log-retention | --lambda-zip | --timeout)
        [[ $# -ge 2 && -n $2 ]] || usage_error "$1 needs a value"
        set_option "$1" "$2"
        shift 2
        ;;
      *) usage_error "unknown option: $1" ;;
    esac
  done
  validate_args
}

set_option() { # FLAG VALUE
  case "$1" in
    --stack-name) STACK_NAME="$2" ;;
    --vpc-id) VPC_ID="$2" ;;
    --subnets) SUBNETS="$2" ;;
    --region) REGION_ARG="$2" ;;
    --profile) PROFILE_ARG="$2" ;;
    --env-name) ENV_NAME="$2" ;;
    --ui-cidr) UI_CIDR="$2" ;;
    --route-tables) ROUTE_TABLES="$2" ;;
    --log-retention) LOG_RETENTION="$2" ;;
    --lambda-zip) LAMBDA_ZIP_ARG="$2" ;;
    --timeout) TIMEOUT="$2" ;;
  esac
}

# Every flag is checked before anything is called, so a typo costs no build and no AWS call.
validate_args() {
  local id_re='[0-9a-f]{8}([0-9a-f]{9})?' octet='(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
  [[ -n $STACK_NAME ]] || usage_error "--stack-name is required"
  [[ -n $VPC_ID ]] || usage_error "--vpc-id is required"
  [[ -n $SUBNETS ]] || usage_error "--subnets is required"
  [[ -n $UI_CIDR ]] || usage_error "--ui-cidr is required (the CIDR allowed to reach the UI; there is no default)"
  [[ $STACK_NAME =~ ^[A-Za-z][A-Za-z0-9-]{0,127}$ ]] ||
    usage_error "--stack-name must start with a letter and hold only letters, digits and hyphens"
  [[ $VPC_ID =~ ^vpc-${id_re}$ ]] || usage_error "--vpc-id is not a VPC id: $VPC_ID"
  [[ $SUBNETS =~ ^subnet-${id_re},subnet-${id_re}$ ]] ||
    usage_error "--subnets needs exactly two subnet ids separated by a comma: $SUBNETS"
  [[ ${SUBNETS%,*} != "${SUBNETS#*,}" ]] || usage_error "--subnets names the same subnet twice"
  [[ $UI_CIDR =~ ^${octet}\.${octet}\.${octet}\.${octet}/(3[0-2]|[12]?[0-9])$ ]] ||
    usage_error "--ui-cidr is not an IPv4 CIDR (a.b.c.d/n): $UI_CIDR"
  [[ -z $ROUTE_TABLES || $ROUTE_TABLES == none || $ROUTE_TABLES =~ ^rtb-${id_re}(,rtb-${id_re})*$ ]] ||
    usage_error "--route-tables needs route table ids separated by commas: $ROUTE_TABLES"
  [[ -z $LOG_RETENTION || $LOG_RETENTION =~ ^[1-9][0-9]*$ ]] ||
    usage_error "--log-retention needs a number of days: $LOG_RETENTION"
  is_duration "$TIMEOUT" || usage_error "--timeout needs minutes (or seconds, like 90s): $TIMEOUT"
  [[ -z $LAMBDA_ZIP_ARG || -f $LAMBDA_ZIP_ARG ]] || usage_error "--lambda-zip: no such file: $LAMBDA_ZIP_ARG"
  [[ -z $LAMBDA_ZIP_ARG || $(head -c 2 "$LAMBDA_ZIP_ARG") == PK ]] ||
    usage_error "--lambda-zip is not a zip archive: $LAMBDA_ZIP_ARG"
  [[ -z $ENV_NAME || $ENV_NAME =~ $ENV_NAME_RE ]] ||
    usage_error "--env-name needs 1-16 lowercase letters, digits and inner hyphens, starting with a letter: $ENV_NAME"
  if [[ $UI_CIDR == */0 ]]; then
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
  printf 'Delete it, then run this script again:\n' >&2
  printf '  aws cloudformation delete-stack --stack-name %s%s\n' "$STACK_NAME" "$(aws_args_text)" >&2
  printf '  aws cloudformation wait stack-delete-complete --stack-name %s%s\n' "$STACK_NAME" "$(aws_args_text)" >&2
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
      print_delete_commands
      exit 1
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
  # An endpoint reached over plain HTTP (a local emulator) is exactly what the policy refuses.
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

# A new stack's environment name defaults to the stack name, when that is a valid one.
default_env_name() {
  [[ $STACK_NAME =~ $ENV_NAME_RE ]] ||
    usage_error "the stack name is not a valid environment name: pass --env-name (1-16 lowercase letters, digits, inner hyphens)"
  ENV_NAME="$STACK_NAME"
}

# Parameters as JSON (jq --arg): the route-table list holds commas, which the CLI's
# shorthand syntax would split. On an update, a left-out environment name or route-table
# list keeps its previous value, so a re-run never renames the environment; both are
# always given on a create. A left-out log retention is the template's default.
write_parameters() { # CURRENT_STATUS
  jq -n --arg env "$ENV_NAME" --arg vpc "$VPC_ID" --arg s1 "${SUBNETS%,*}" --arg s2 "${SUBNETS#*,}" \
    --arg cidr "$UI_CIDR" --arg rtb "$ROUTE_TABLES" --arg days "$LOG_RETENTION" --arg status "$1" '
    def given($key; $value): {ParameterKey: $key, ParameterValue: $value};
    def kept($key; $value):
      if $value == "" and $status != "" then {ParameterKey: $key, UsePreviousValue: true}
      else given($key; $value) end;
    [kept("EnvironmentName"; $env),
     given("VpcId"; $vpc), given("PrivateSubnet1Id"; $s1), given("PrivateSubnet2Id"; $s2),
     given("UiIngressCidr"; $cidr),
     if $rtb == "none" then given("S3EndpointRouteTableIds"; "") else kept("S3EndpointRouteTableIds"; $rtb) end]
    + if $days == "" then [] else [given("LogRetentionInDays"; $days)] end
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
  new_events >/dev/null # the events of earlier operations are not this one's
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

# Prints the stack's events not printed yet, oldest first, as JSON lines, and remembers
# their ids. describe-stack-events lists newest first; its first page is enough at one poll
# every few seconds.
new_events() {
  local seen="${WORK_DIR}/seen" events
  touch "$seen"
  events="$(aws_cli cloudformation describe-stack-events --stack-name "${STACK_ID:-$STACK_NAME}" \
    --max-items 100 --output json | jq -c --rawfile seen "$seen" '
      ($seen | split("\n") | map({(.): true}) | add // {}) as $old
      | .StackEvents | reverse | .[] | select($old[.EventId] | not)')"
  [[ -n $events ]] || return 0
  jq -r .EventId <<<"$events" >>"$seen"
  printf '%s\n' "$events"
}

print_events() {
  jq -r 'def pad($n): . + (" " * ([$n - length, 1] | max));
    "\(.Timestamp[11:19])  \(.ResourceStatus | pad(28))\(.ResourceType | pad(38))\(.LogicalResourceId)"
    + (if (.ResourceStatusReason // "") == "" then "" else "  \(.ResourceStatusReason)" end)'
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
    events="$(new_events)"
    if [[ -n $events ]]; then
      printf '%s\n' "$events" >>"${WORK_DIR}/events.jsonl"
      print_events <<<"$events"
    fi
    if [[ ! -s ${WORK_DIR}/lambda.log ]] && jq -e --arg id "$EFS_TREE_ID" \
      'select(.LogicalResourceId == $id and (.ResourceStatus | endswith("FAILED")))' \
      <<<"$events" >/dev/null 2>&1; then
      save_lambda_log
    fi
    case "$status" in
      CREATE_COMPLETE | UPDATE_COMPLETE) return 0 ;;
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
  check_identity
  local status lambda_zip
  status="$(check_stack_state)"
  if [[ -z $status && -z $ENV_NAME ]]; then
    default_env_name
  fi
  WORK_DIR="$(mktemp -d)"
  trap 'rm -rf "$WORK_DIR"' EXIT
  lambda_zip="$(build_lambda)"
  ensure_artifacts_bucket
  package_template "$lambda_zip"
  write_parameters "$status"
  start_operation "$status"
  if [[ -n $STACK_ID ]]; then
    wait_for_stack
  fi
  print_outputs
}

main "$@"
