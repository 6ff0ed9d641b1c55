# shellcheck shell=bash
# What deploy.sh, create-service.sh and register-task-definition.sh share: one way to call
# the AWS CLI (region and profile resolved once, passed on every call), and reading a stack.
# Sourced through scripts/lib/init.sh (after messages.sh); defines functions and AWS_ARGS.
#
# The AWS CLI honours AWS_ENDPOINT_URL (botocore >= 1.31), which is how demo.sh points these
# scripts at the local AWS; nothing here needs to know about it.

AWS_ARGS=()
REGION=""
PROFILE=""

# Fails with one line naming the missing command and how to get it.
require_command() { # NAME HINT
  command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH: $2"
}

# Sets REGION and AWS_ARGS from --region/--profile, falling back to AWS_REGION,
# AWS_DEFAULT_REGION and the profile's configured region. The region is needed up front
# (bucket names, the commands these scripts print), so it is resolved here, once.
aws_setup() { # REGION PROFILE
  REGION="$1"
  PROFILE="$2"
  if [[ -z $REGION ]]; then
    REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
  fi
  if [[ -z $REGION && -n $PROFILE ]]; then
    REGION="$(aws configure get region --profile "$PROFILE" 2>/dev/null || true)"
  elif [[ -z $REGION ]]; then
    REGION="$(aws configure get region 2>/dev/null || true)"
  fi
  [[ -n $REGION ]] || die "no AWS region: pass --region (or set one with 'aws configure')"
  AWS_ARGS=(--region "$REGION")
  [[ -z $PROFILE ]] || AWS_ARGS+=(--profile "$PROFILE")
}

aws_cli() { aws "${AWS_ARGS[@]}" "$@"; }

# --timeout values: minutes, or seconds with an "s" suffix ("20", "90s").
is_duration() { [[ $1 =~ ^[1-9][0-9]*s?$ ]]; }
duration_seconds() { if [[ $1 == *s ]]; then printf '%s\n' "${1%s}"; else printf '%s\n' "$(($1 * 60))"; fi; }
duration_text() { if [[ $1 == *s ]]; then printf '%s seconds\n' "${1%s}"; else printf '%s minutes\n' "$1"; fi; }

# The same options as a string, for commands printed for the user to run.
aws_args_text() { printf ' %q' "${AWS_ARGS[@]}"; }

# Prints the caller's identity as JSON, or fails with one line on what to do.
aws_identity() {
  local out err reason
  err="$(mktemp)"
  if ! out="$(aws_cli sts get-caller-identity --output json 2>"$err")"; then
    reason="$(grep -v '^[[:space:]]*$' "$err" | tail -n 1)"
    rm -f "$err"
    die "aws sts get-caller-identity failed (${reason}): set up credentials with 'aws configure' or 'aws sso login', or pass --profile"
  fi
  rm -f "$err"
  jq -c . <<<"$out"
}

# Prints Stacks[0] of describe-stacks as one JSON line, or nothing when the stack does
# not exist; any other error (credentials, throttling) stops the script.
stack_describe() { # NAME_OR_ID
  local out err
  err="$(mktemp)"
  if out="$(aws_cli cloudformation describe-stacks --stack-name "$1" --output json 2>"$err")"; then
    rm -f "$err"
    jq -c '.Stacks[0]' <<<"$out"
    return 0
  fi
  if grep -q 'does not exist' "$err"; then
    rm -f "$err"
    return 0
  fi
  cat "$err" >&2
  rm -f "$err"
  die "cannot read stack $1"
}

# Reads one output from a describe-stacks Stacks[0] JSON; prints nothing when absent.
stack_output() { # STACK_JSON KEY
  jq -r --arg key "$2" '.Outputs // [] | map(select(.OutputKey == $key)) | .[0].OutputValue // empty' <<<"$1"
}

# The ECS service the stack names (output ServiceName, parameter EcsServiceName; its alarms
# watch it): cloud-exchange for a stack deployed before it had the output.
stack_service_name() { # STACK_JSON
  local name
  name="$(stack_output "$1" ServiceName)"
  printf '%s\n' "${name:-cloud-exchange}"
}

# The stack's outputs as one JSON object {OutputKey: OutputValue} ({} when it has none).
stack_outputs_json() { # STACK_JSON
  jq -c '(.Outputs // []) | map({(.OutputKey): .OutputValue}) | add // {}' <<<"$1"
}

# The tag create-service.sh puts on a cluster it creates (value: the stack's name), so that
# scripts/destroy.sh deletes only a cluster of its own.
# shellcheck disable=SC2034 # read by create-service.sh and destroy.sh
CLUSTER_CREATED_BY_TAG="cloud-exchange:created-by"

# Refuses (usage_error) a --service or --cluster that ECS would refuse: letters, digits,
# hyphens and underscores, up to 255 (CreateService's and CreateCluster's rules).
check_service_names() { # SERVICE CLUSTER (CLUSTER may be empty: the stack's default)
  [[ $1 =~ ^[A-Za-z][A-Za-z0-9_-]{0,254}$ ]] || usage_error "--service is not a valid service name: $1"
  [[ -z $2 || $2 =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$ ]] || usage_error "--cluster is not a valid cluster name: $2"
}

# True for the statuses whose outputs describe a working stack: a create or update that
# completed, an update that rolled back to the previous version, an import that completed.
stack_is_usable() { # STATUS
  case "$1" in
    CREATE_COMPLETE | UPDATE_COMPLETE | UPDATE_ROLLBACK_COMPLETE | IMPORT_COMPLETE | IMPORT_ROLLBACK_COMPLETE) return 0 ;;
    *) return 1 ;;
  esac
}

# The resources of a stack whose deletion failed, one JSON line each with CloudFormation's
# reason: those whose latest event (describe-stack-events lists newest first) is
# DELETE_FAILED. Events, not describe-stack-resources: they carry the reason.
stack_failed_deletions() { # STACK_NAME_OR_ID
  aws_cli cloudformation describe-stack-events --stack-name "$1" --output json |
    jq -c '[.StackEvents[] | select(.ResourceType != "AWS::CloudFormation::Stack")]
      | reduce .[] as $e ({}; if has($e.LogicalResourceId) then . else .[$e.LogicalResourceId] = $e end)
      | .[] | select(.ResourceStatus == "DELETE_FAILED")
      | {LogicalResourceId, ResourceType, PhysicalResourceId, ResourceStatusReason}'
}
