# shellcheck shell=bash
# The deployed CE tree, for tests that look at it the way the containers will: deploy.sh
# creates the stack on the local AWS (local_aws/), whose EfsTree custom resource is
# answered by the real Lambda binary on the EFS folder (a local folder that plays EFS); then the stack's
# outputs are saved and the task definition is rendered from them by the real
# register-task-definition.sh --dry-run. The local AWS is stopped before returning.
# Sourced only (tests/runtime/container-view.sh, tests/runtime/tls-endpoints.sh); needs log/die
# (scripts/lib/tools.sh) and local-aws.sh, and root (the Lambda chowns the tree).
#
# deployed_tree DIR leaves in DIR:
#   efs/                   the EFS folder, as the Lambda built it
#   template.json          the template as JSON (long-form intrinsics)
#   outputs.json           describe-stacks of the deployed stack
#   access-points.json     describe-access-points of the stack's file system
#   secrets.json           each secret the outputs name -> its SecretString (for run-local.sh)
#   task-definition.json   the task definition rendered from those outputs

DEPLOYED_TREE_STACK="ce-view"
DEPLOYED_TREE=""

# The template as JSON (cfn-lint's parser understands the short intrinsic tags).
deployed_tree_template_json() { # TEMPLATE
  python -c 'import json, sys
from cfnlint.decode import decode
template, errors = decode(sys.argv[1])
if errors:
    sys.exit(f"cannot parse {sys.argv[1]}: {errors}")
json.dump(template, sys.stdout)' "$1"
}

deployed_tree() { # DIR
  local dir="$1" root zip network
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  mkdir -p "${dir}/efs"
  deployed_tree_template_json "${root}/cfn/CloudExchangeTemplate.yaml" >"${dir}/template.json"
  zip="$(local_aws_build_lambda "$root")"
  local_aws_start "$(free_port)" "${dir}/efs" "${dir}/local-aws.log"
  network="$(local_aws_network)"
  log "deploying ${DEPLOYED_TREE_STACK} on the local AWS; the Lambda builds the tree in ${dir}/efs"
  if ! DEPLOY_POLL_SECONDS=1 "${root}/scripts/deploy.sh" --stack-name "$DEPLOYED_TREE_STACK" \
    --vpc-id "${network% *}" --subnets "${network#* }" --ui-cidr 10.42.0.0/16 \
    --lambda-zip "$zip" --timeout 5 >"${dir}/deploy.log" 2>&1; then
    cat "${dir}/deploy.log" >&2
    local_aws_stop
    die "deploy.sh failed on the local AWS"
  fi
  aws cloudformation describe-stacks --stack-name "$DEPLOYED_TREE_STACK" --output json >"${dir}/outputs.json"
  deployed_tree_task_inputs "$dir"
  local_aws_stop
  "${root}/scripts/register-task-definition.sh" --dry-run --outputs-file "${dir}/outputs.json" \
    >"${dir}/task-definition.json" || die "register-task-definition.sh --dry-run failed"
}

# What scripts/run-local.sh needs besides the task definition, while the local AWS runs: the
# file system's access points as describe-access-points prints them, and each secret the stack
# outputs name with its SecretString (test values, in the test's own folder).
deployed_tree_task_inputs() { # DIR
  local dir="$1" fs_id arn
  fs_id="$(jq -r '.Stacks[0].Outputs[] | select(.OutputKey == "FileSystemId") | .OutputValue' "${dir}/outputs.json")"
  aws efs describe-access-points --file-system-id "$fs_id" --output json >"${dir}/access-points.json"
  (umask 077 && printf '{}' >"${dir}/secrets.json")
  while IFS= read -r arn; do
    aws secretsmanager get-secret-value --secret-id "$arn" --output json \
      | jq --arg arn "$arn" --slurpfile have "${dir}/secrets.json" '$have[0] + {($arn): .SecretString}' \
        >"${dir}/secrets.next"
    mv -f "${dir}/secrets.next" "${dir}/secrets.json"
  done < <(jq -r '.Stacks[0].Outputs[] | select(.OutputKey | endswith("SecretArn")) | .OutputValue' "${dir}/outputs.json")
}

# The tree a test works on, in DEPLOYED_TREE: GIVEN when the caller named one (it must hold
# what deployed_tree leaves), else one deployed now into NEW_DIR.
# shellcheck disable=SC2034 # DEPLOYED_TREE is read by the tests that source this file
deployed_tree_use() { # GIVEN NEW_DIR
  if [[ -n $1 ]]; then
    [[ -f $1/task-definition.json && -d $1/efs ]] || die "$1 holds no tree built by tests/e2e/deployed-tree.sh"
    DEPLOYED_TREE="$(cd "$1" && pwd)"
  else
    deployed_tree "$2"
    DEPLOYED_TREE="$2"
  fi
}
