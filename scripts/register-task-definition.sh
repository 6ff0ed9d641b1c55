#!/usr/bin/env bash
# Registers Cloud Exchange's task definition from the stack's outputs: fills every ${Name}
# placeholder of cfn/CloudExchangeTaskDefinition.json with jq (stack outputs plus the
# variables documented in usage()), refuses to go on while any placeholder is left, then
# calls `aws ecs register-task-definition` and prints the new revision's ARN on stdout.
# Progress and errors go to stderr, so `arn=$(scripts/register-task-definition.sh ...)` works.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/init.sh
source "${ROOT}/scripts/lib/init.sh"

TASK_DEFINITION_TEMPLATE="${ROOT}/cfn/CloudExchangeTaskDefinition.json"
# Stack outputs that exist only when the operator set the matching parameter (the core proxy
# and the UI certificate secret). Without one, what names it is left out (see usage()).
OPTIONAL_OUTPUTS='["CoreHttpProxy","CoreHttpsProxy","CoreNoProxy","UiCertificateSecretArn"]'

# Cloud Exchange 6.1.0's four images, as its setup script names them (Docker Hub, x86-64:
# CE supports only x86 with AVX since 4.1). Mirror them into ECR or pin digests for
# production; an upgrade is a new revision with new --image-* values (see docs/compose-parity.md).
DEFAULT_IMAGE_CORE="docker.io/netskopetechnicalalliances/cloudexchange:core6-6.1.0"
DEFAULT_IMAGE_UI="docker.io/netskopetechnicalalliances/cloudexchange:ui6-6.1.0"
DEFAULT_IMAGE_MONGODB="docker.io/netskopetechnicalalliances/cloudexchange:mongo6-6.1.0-8.0.18"
DEFAULT_IMAGE_RABBITMQ="docker.io/netskopetechnicalalliances/cloudexchange:rabbitmq6-6.1.0-4.2.2"
# INSTALL_VERSION when the core image's tag names none (a digest, a tag of your own).
DEFAULT_CE_VERSION="6.1.0"

STACK_NAME=""
REGION_ARG=""
PROFILE_ARG=""
OUTPUTS_FILE=""
DRY_RUN=false
SIZE="medium"
IMAGE_CORE="$DEFAULT_IMAGE_CORE"
IMAGE_UI="$DEFAULT_IMAGE_UI"
IMAGE_MONGODB="$DEFAULT_IMAGE_MONGODB"
IMAGE_RABBITMQ="$DEFAULT_IMAGE_RABBITMQ"
CPU=""
MEMORY=""
CE_PROFILE=""
MEMORY_RABBITMQ=""
MEMORY_MONGODB=""
MEMORY_CORE=""
CORE_TAG=""
UI_TAG=""
CE_VERSION=""
WORK_DIR=""

usage() {
  cat <<USAGE
Usage: scripts/register-task-definition.sh --stack-name NAME [options]
       scripts/register-task-definition.sh --outputs-file FILE [options]

Renders cfn/CloudExchangeTaskDefinition.json from the stack's outputs and registers it as a
new revision of the family the stack names; prints the revision's ARN on stdout.
The stack must be in CREATE_COMPLETE, UPDATE_COMPLETE, UPDATE_ROLLBACK_COMPLETE,
IMPORT_COMPLETE or IMPORT_ROLLBACK_COMPLETE.

Options:
  --stack-name NAME      stack to read (describe-stacks); with --outputs-file it must match
  --region REGION        AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's)
  --profile PROFILE      AWS CLI profile
  --outputs-file FILE    read the stack from FILE (what 'aws cloudformation describe-stacks'
                         prints) instead of calling AWS
  --dry-run              print the rendered task definition on stdout; register nothing
  --size SIZE            task size: medium (default) or large; see below
  --image-core URI       core image   (default ${DEFAULT_IMAGE_CORE})
  --image-ui URI         ui image     (default ${DEFAULT_IMAGE_UI})
  --image-mongodb URI    MongoDB image (default ${DEFAULT_IMAGE_MONGODB})
  --image-rabbitmq URI   RabbitMQ image (default ${DEFAULT_IMAGE_RABBITMQ})
  -h, --help             this text

Sizes, Cloud Exchange 6.1's two profiles (Fargate task cpu units / memory MiB):
  medium 8192/16384 (8 vCPU, 16 GB)   large 16384/32768 (16 vCPU, 32 GB)
The containers' memory limits split the task's memory as CE's setup splits the host's:
rabbitmq 6/32, mongodb 4/32, core 18/32, ui 256 MiB; the rest is headroom for the init
containers (seed-plugins 512 MiB) and the Fargate agent.

Placeholders: every \${Name} in the template is a stack output (FileSystemId, TaskRoleArn,
the secret ARNs, ...) or one of these variables:
  Region        the stack's region, from its StackId
  Cpu, Memory   from --size
  CeProfile     Medium or Large, from --size (CE_PROFILE, as CE's setup names the profile)
  MemoryRabbitmq, MemoryMongodb, MemoryCore   container memory limits (MiB) from --size
  ImageCore, ImageUi, ImageMongodb, ImageRabbitmq   from the --image-* options
  CoreTag, UiTag   CORE_TAG and UI_TAG as CE's setup passes them: the --image-core and
                 --image-ui references without their registry host
                 (netskopetechnicalalliances/cloudexchange:core6-6.1.0)
  CeVersion      INSTALL_VERSION: the X.Y.Z ending the core image's tag (core6-6.1.0 gives
                 6.1.0), else ${DEFAULT_CE_VERSION}
Optional outputs, present only when the stack's parameter is set: CoreHttpProxy,
CoreHttpsProxy, CoreNoProxy (HTTP_PROXY, HTTPS_PROXY, NO_PROXY of core and mongodb-primary)
and UiCertificateSecretArn (the ui-certificate init container). Without one, the environment
entries naming it, and a container whose secrets name it (with the dependsOn on it), are
left out of the task definition. RegistryCredentialsSecretArn, when the stack has it, becomes
the repositoryCredentials of every image not in ECR (ECR images, an ECR pull-through cache's
among them, are pulled with the execution role).
USAGE
}

cleanup() { [[ -z $WORK_DIR ]] || rm -rf "$WORK_DIR"; }

# Takes the value of option $1 from $2, refusing a missing or empty one.
option_value() { # OPTION VALUE...
  [[ $# -ge 2 && -n $2 && $2 != --* ]] || usage_error "$1 needs a value"
  printf '%s' "$2"
}

parse_args() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --stack-name) STACK_NAME="$(option_value "$@")"; shift 2 ;;
      --region) REGION_ARG="$(option_value "$@")"; shift 2 ;;
      --profile) PROFILE_ARG="$(option_value "$@")"; shift 2 ;;
      --outputs-file) OUTPUTS_FILE="$(option_value "$@")"; shift 2 ;;
      --dry-run) DRY_RUN=true; shift ;;
      --size) SIZE="$(option_value "$@")"; shift 2 ;;
      --image-core) IMAGE_CORE="$(option_value "$@")"; shift 2 ;;
      --image-ui) IMAGE_UI="$(option_value "$@")"; shift 2 ;;
      --image-mongodb) IMAGE_MONGODB="$(option_value "$@")"; shift 2 ;;
      --image-rabbitmq) IMAGE_RABBITMQ="$(option_value "$@")"; shift 2 ;;
      -h | --help) usage; exit 0 ;;
      *) usage_error "unknown argument: $1" ;;
    esac
  done
  [[ -n $STACK_NAME || -n $OUTPUTS_FILE ]] || usage_error "--stack-name or --outputs-file is required"
  [[ -z $OUTPUTS_FILE || -r $OUTPUTS_FILE ]] || usage_error "cannot read --outputs-file ${OUTPUTS_FILE}"
  local image
  for image in "$IMAGE_CORE" "$IMAGE_UI" "$IMAGE_MONGODB" "$IMAGE_RABBITMQ"; do
    [[ $image =~ ^[^[:space:]\$]+$ ]] || usage_error "not an image URI: '${image}'"
  done
  size_to_cpu_memory
  image_tags_and_version
}

# An image reference without its registry host, the form CE's setup gives CORE_TAG and
# UI_TAG (its compose file puts the registry in front): a first path component with a dot
# or a port, or "localhost", is a registry.
image_without_registry() { # IMAGE
  local image="$1" first="${1%%/*}"
  if [[ $image == */* && ($first == *.* || $first == *:* || $first == localhost) ]]; then
    image="${image#*/}"
  fi
  printf '%s' "$image"
}

image_tags_and_version() {
  CORE_TAG="$(image_without_registry "$IMAGE_CORE")"
  UI_TAG="$(image_without_registry "$IMAGE_UI")"
  if [[ $IMAGE_CORE =~ :[^/@:]*-([0-9]+\.[0-9]+\.[0-9]+)$ ]]; then
    CE_VERSION="${BASH_REMATCH[1]}"
  else
    CE_VERSION="$DEFAULT_CE_VERSION"
    log "the core image's tag names no CE version; INSTALL_VERSION is ${CE_VERSION}"
  fi
}

# CE 6.1's profiles as Fargate cpu/memory pairs (both valid Fargate combinations), and the
# containers' shares of the memory after setup's assign_memory_to_rabbitmq_container.
size_to_cpu_memory() {
  case "$SIZE" in
    medium) CPU=8192 MEMORY=16384 CE_PROFILE=Medium ;;
    large) CPU=16384 MEMORY=32768 CE_PROFILE=Large ;;
    *) usage_error "--size must be medium or large, not '${SIZE}'" ;;
  esac
  MEMORY_RABBITMQ=$((MEMORY * 6 / 32))
  MEMORY_MONGODB=$((MEMORY * 4 / 32))
  MEMORY_CORE=$((MEMORY * 18 / 32))
}

# Prints the stack (Stacks[0] of describe-stacks) as one JSON line, from the file or AWS.
read_stack() {
  local stack
  if [[ -n $OUTPUTS_FILE ]]; then
    stack="$(jq -c '.Stacks[0] // empty' "$OUTPUTS_FILE" 2>/dev/null)" ||
      die "${OUTPUTS_FILE} is not JSON"
    [[ -n $stack ]] || die "${OUTPUTS_FILE} holds no stack (expected describe-stacks output)"
    if [[ -n $STACK_NAME ]] && ! jq -e --arg n "$STACK_NAME" '.StackName == $n or .StackId == $n' >/dev/null <<<"$stack"; then
      die "${OUTPUTS_FILE} describes stack $(jq -r .StackName <<<"$stack"), not ${STACK_NAME}"
    fi
  else
    log "reading stack ${STACK_NAME} in ${REGION}"
    stack="$(stack_describe "$STACK_NAME")"
    [[ -n $stack ]] || die "stack ${STACK_NAME} does not exist in ${REGION}"
  fi
  printf '%s\n' "$stack"
}

# Only a stack whose last operation completed has outputs that match its resources.
check_status() { # STACK_JSON
  local name status
  name="$(jq -r '.StackName' <<<"$1")"
  status="$(jq -r '.StackStatus // "UNKNOWN"' <<<"$1")"
  if stack_is_usable "$status"; then
    log "stack ${name} is ${status}"
    return 0
  fi
  case "$status" in
    ROLLBACK_COMPLETE)
      die "stack ${name} is ROLLBACK_COMPLETE: its creation failed and was rolled back; delete it and deploy again" ;;
    *)
      die "stack ${name} is ${status}; wait until it is CREATE_COMPLETE, UPDATE_COMPLETE or UPDATE_ROLLBACK_COMPLETE" ;;
  esac
}

# The placeholder values: the stack's outputs, its region, and the variables from the
# options (which win over an output of the same name). Empty values are dropped so that
# their placeholders stay and are reported.
placeholder_values() { # STACK_JSON
  jq -c --argjson outputs "$(stack_outputs_json "$1")" \
    --arg Cpu "$CPU" --arg Memory "$MEMORY" --arg CeProfile "$CE_PROFILE" \
    --arg MemoryRabbitmq "$MEMORY_RABBITMQ" --arg MemoryMongodb "$MEMORY_MONGODB" --arg MemoryCore "$MEMORY_CORE" \
    --arg ImageCore "$IMAGE_CORE" --arg ImageUi "$IMAGE_UI" \
    --arg ImageMongodb "$IMAGE_MONGODB" --arg ImageRabbitmq "$IMAGE_RABBITMQ" \
    --arg CoreTag "$CORE_TAG" --arg UiTag "$UI_TAG" --arg CeVersion "$CE_VERSION" \
    '$outputs
     + {Region: ((.StackId // "") | split(":") | .[3] // "")}
     + ($ARGS.named | del(.outputs))
     | with_entries(select(.value != null and .value != ""))' <<<"$1"
}

# Replaces every ${Name} inside every string of the template; unknown names stay as they are.
# A container's memory is an integer in the ECS API, so a rendered "memory" string made of
# digits becomes a number (one that is not stays a string, and registration refuses it).
render() { # VALUES_JSON
  without_unset_optional "$1" | jq --argjson values "$1" \
    '# The stack output RegistryCredentialsSecretArn (when set) becomes repositoryCredentials of
     # every image outside ECR; ECR images are pulled with the execution role instead.
     def with_registry_credentials($arn):
       if $arn == null then . else
         .containerDefinitions[]? |= (if .image | test("^[0-9]{12}\\.dkr\\.ecr\\.") then .
                                     else .repositoryCredentials = {credentialsParameter: $arn} end) end;
     walk(if type == "string"
          then gsub("\\$\\{(?<name>[A-Za-z][A-Za-z0-9]*)\\}"; $values[.name] // "${\(.name)}")
          else . end)
     | .containerDefinitions[]? |= (if (.memory | type) == "string" and (.memory | test("^[0-9]+$"))
                                    then .memory |= tonumber else . end)
     | with_registry_credentials($values.RegistryCredentialsSecretArn)'
}

# The template without what names an optional output the stack does not have: such
# environment entries, containers whose secrets need one, and dependsOn on those containers.
without_unset_optional() { # VALUES_JSON
  jq --argjson values "$1" --argjson optional "$OPTIONAL_OUTPUTS" '
    def unset: [scan("\\$\\{([A-Za-z][A-Za-z0-9]*)\\}")[0]]
      | any(. as $name | ($optional | index($name)) != null and $values[$name] == null);
    [.containerDefinitions[] | select(any(.secrets[]?; .valueFrom | unset)) | .name] as $dropped
    | .containerDefinitions |= map(select(.name as $n | $dropped | index($n) | not)
        | if has("environment") then .environment |= map(select(.value | unset | not)) else . end
        | if has("dependsOn") then .dependsOn |= map(select(.containerName as $n | $dropped | index($n) | not)) else . end)
  ' "$TASK_DEFINITION_TEMPLATE"
}

# Fails naming every placeholder still present (any ${...}, well-formed or not).
check_placeholders() { # RENDERED_FILE
  local left
  left="$(jq -r '[.. | strings | scan("\\$\\{[^}]*\\}")] | unique | join(", ")' "$1")"
  [[ -z $left ]] || die "placeholders without a value: ${left} (missing stack outputs or variables)"
}

register() { # RENDERED_FILE
  log "registering task definition family $(jq -r .family "$1")"
  aws_cli ecs register-task-definition --cli-input-json "file://$1" \
    --query taskDefinition.taskDefinitionArn --output text
}

main() {
  parse_args "$@"
  require_command jq "install jq (https://jqlang.github.io/jq/)"
  WORK_DIR="$(mktemp -d)"
  trap cleanup EXIT

  local stack values rendered="${WORK_DIR}/task-definition.json"
  if [[ -z $OUTPUTS_FILE ]]; then
    require_command aws "install the AWS CLI"
    aws_setup "$REGION_ARG" "$PROFILE_ARG"
  fi
  stack="$(read_stack)"
  check_status "$stack"
  values="$(placeholder_values "$stack")"
  render "$values" >"$rendered"
  check_placeholders "$rendered"

  if $DRY_RUN; then
    cat "$rendered"
    return 0
  fi
  if [[ ${#AWS_ARGS[@]} -eq 0 ]]; then
    require_command aws "install the AWS CLI"
    aws_setup "${REGION_ARG:-$(jq -r '.Region // ""' <<<"$values")}" "$PROFILE_ARG"
  fi
  register "$rendered"
}

main "$@"
