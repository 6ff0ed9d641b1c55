#!/usr/bin/env bash
# The containers' view of the deployed tree: deploys the stack on the local AWS, where the
# real Lambda builds CE's tree on the EFS folder (tests/e2e/deployed-tree.sh),
# renders the task definition from the stack's outputs, then follows every container's
# mount points through their access points to that folder and checks what each container
# will find there (tests/runtime/container_view.py: directories, write access as the access point's
# user, the files entry points and RabbitMQ's custom.conf name, private key modes, the CA
# key's place). Then plants one fault per check on copies and fails unless each is caught.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/lib/tools.sh
source "${ROOT}/scripts/lib/tools.sh"
# shellcheck source=scripts/lib/init.sh
source "${ROOT}/scripts/lib/init.sh"
# shellcheck source=local_aws/local-aws.sh
source "${ROOT}/local_aws/local-aws.sh"
# shellcheck source=tests/e2e/deployed-tree.sh
source "${ROOT}/tests/e2e/deployed-tree.sh"

TREE=""
KEEP_TREE=""
WORK=""

usage() {
  cat <<'USAGE'
Usage: tests/runtime/container-view.sh [--tree DIR | --keep-tree DIR] [--help]

Checks the EFS tree the Lambda builds as each container of the rendered task definition
will see it, then proves each check catches a planted fault. Must run as root (the Lambda
chowns the tree; the probes switch to the access points' uids).

  --tree DIR       use a tree tests/e2e/deployed-tree.sh built in DIR (default: deploy one now)
  --keep-tree DIR  deploy one into DIR (empty or new) and leave it there, for
                   tests/runtime/tls-endpoints.sh --tree DIR
USAGE
}

cleanup() {
  local_aws_stop
  [[ -z $WORK ]] || rm -rf "$WORK"
}

main() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -h | --help) usage; exit 0 ;;
      --tree) TREE="$(option_value "$@")"; shift 2 ;;
      --keep-tree)
        KEEP_TREE="$(option_value "$@")"
        [[ ! -e $KEEP_TREE || -z "$(ls -A "$KEEP_TREE")" ]] || usage_error "--keep-tree needs a new or empty directory"
        shift 2
        ;;
      *) usage_error "unknown option: $1" ;;
    esac
  done
  [[ $(id -u) -eq 0 ]] || die "run as root: the Lambda chowns the tree, the probes switch uids"
  cd "$ROOT"
  activate_tools
  trap cleanup EXIT
  if [[ -n $KEEP_TREE ]]; then
    deployed_tree_use "" "$KEEP_TREE"
  else
    [[ -n $TREE ]] || WORK="$(mktemp -d)"
    deployed_tree_use "$TREE" "${WORK}/tree"
  fi
  TREE="$DEPLOYED_TREE"
  local status=0
  log "container view: checks"
  python -m tests.runtime.container_view check --tree "$TREE" || status=1
  log "container view: planted faults"
  python -m tests.runtime.container_view self-test --tree "$TREE" || status=1
  return "$status"
}

main "$@"
