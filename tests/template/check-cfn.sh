#!/usr/bin/env bash
# Checks cfn/ offline: cfn-lint (no error, no warning), checkov (no failed check; skips
# only inline with a reason), the task definition rendered from the fixture stack validated
# against botocore's ECS RegisterTaskDefinition model, and the consistency checks of
# tests/template/check_cfn.py, the values AWS's APIs constrain
# (tests/template/check_api_constraints.py) and the kinds of faults real AWS refuses or
# ignores (tests/template/check_fault_classes.py).
# Then proves each check can fail: cfn-lint and checkov on a broken copy of the template,
# and the self-tests of both Python checks (one planted fault per check).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/lib/tools.sh
source "${ROOT}/scripts/lib/tools.sh"

TEMPLATE="${ROOT}/cfn/CloudExchangeTemplate.yaml"
FIXTURE="${ROOT}/tests/fixtures/stack-outputs.json"
WORK_DIR=""
RENDERED=""

usage() {
  cat <<'USAGE'
Usage: tests/template/check-cfn.sh [--help]

Lints, scans and cross-checks cfn/CloudExchangeTemplate.yaml and
cfn/CloudExchangeTaskDefinition.json without AWS; exits non-zero if any check fails or if
a check does not catch the fault planted for it.
USAGE
}

cleanup() { [[ -z $WORK_DIR ]] || rm -rf "$WORK_DIR"; }

lint_template() { # TEMPLATE [CFN_LINT_OPTION...]
  cfn-lint --non-zero-exit-code warning "${@:2}" -- "$1"
}

# Both tools must reject the broken template FILE (in a directory of its own): cfn-lint
# with rule LINT_RULE, checkov with check CHECK_ID. WHAT names the planted faults.
rejected_by_both() { # FILE LINT_RULE CHECK_ID WHAT [CFN_LINT_OPTION...]
  local file="$1" rule="$2" check="$3" what="$4" out
  shift 4
  if out="$(lint_template "$file" "$@" 2>&1)" || [[ $out != *"$rule"* ]]; then
    printf '%s\n' "$out" >&2
    log "cfn-lint did not reject ${what} (${rule})"
    return 1
  fi
  if ! out="$(scan_template "$(dirname "$file")" 2>&1)" && [[ $out == *"$check"* ]]; then
    return 0
  fi
  printf '%s\n' "$out" >&2
  log "checkov did not report ${what} (${check})"
  return 1
}

scan_template() { # DIRECTORY
  checkov -d "$1" --framework cloudformation --compact --quiet --skip-download
}

cfn_lint() { lint_template "$TEMPLATE"; }

checkov_scan() { scan_template "${ROOT}/cfn"; }

render_task_definition() {
  "${ROOT}/scripts/register-task-definition.sh" --dry-run --outputs-file "$FIXTURE" >"$RENDERED"
}

check_consistency() {
  (cd "$ROOT" && python -m tests.template.check_cfn check --rendered "$RENDERED")
}

# A copy of the template with one lint fault (MemorySize below Lambda's minimum) and one
# security fault (an unencrypted file system); both tools must reject it.
broken_template_rejected() {
  local dir="${WORK_DIR}/broken"
  mkdir -p "$dir"
  python - "$TEMPLATE" "${dir}/CloudExchangeTemplate.yaml" <<'PY'
import sys
text = open(sys.argv[1]).read()
for good, bad in (("MemorySize: 128", "MemorySize: 1"), ("Encrypted: true", "Encrypted: false")):
    assert text.count(good) == 1, f"cannot plant the fault: {good!r} is not in the template once"
    text = text.replace(good, bad)
open(sys.argv[2], "w").write(text)
PY
  rejected_by_both "${dir}/CloudExchangeTemplate.yaml" E3034 CKV_AWS_42 "MemorySize: 1 and the unencrypted file system"
}

self_test() {
  (cd "$ROOT" && python -m tests.template.check_cfn self-test --rendered "$RENDERED")
}

# The template as CloudFormation resolves it for each variant of tests/template/cfn_variants.py (load
# balancer and operator settings off, then all on): conditions evaluated, so both tools see
# the resources each side really creates. W2001 (parameter not used) is expected there: some
# parameters only feed conditions.
variants_lint_and_scan() {
  local dir="${WORK_DIR}/variants"
  (cd "$ROOT" && python -m tests.template.cfn_variants write "$dir") || return 1
  cfn-lint --non-zero-exit-code warning --ignore-checks W2001 -- "$dir"/*.json || return 1
  scan_template "$dir"
}

# The load-balancer variant with one lint fault (a health check every second, below ELB's
# minimum of 5) and one security fault (a listener policy that allows TLS 1.0); both tools
# must reject it.
broken_variant_rejected() {
  local dir="${WORK_DIR}/broken-variant"
  mkdir -p "$dir"
  jq '.Resources.TargetGroup.Properties.HealthCheckIntervalSeconds = 1
      | .Resources.HttpsListener.Properties.SslPolicy = "ELBSecurityPolicy-2016-08"' \
    "${WORK_DIR}/variants/load-balancer.json" >"${dir}/load-balancer.json" || return 1
  rejected_by_both "${dir}/load-balancer.json" E3034 CKV_AWS_103 \
    "HealthCheckIntervalSeconds: 1 and the TLS 1.0 listener policy in the load-balancer variant" --ignore-checks W2001
}

# The operator features (load balancer, rules, alarms, ECS Exec, UI certificate secret) on
# both variants, then one planted fault per check.
operate_checks() { (cd "$ROOT" && python -m tests.template.check_operate check); }

operate_self_test() { (cd "$ROOT" && python -m tests.template.check_operate self-test); }

# Values the AWS APIs would refuse although cfn-lint passes them (botocore's models).
api_constraints() { (cd "$ROOT" && python -m tests.template.check_api_constraints check); }

api_constraints_self_test() { (cd "$ROOT" && python -m tests.template.check_api_constraints self-test); }

# Kinds of faults real AWS refuses or silently ignores (tests/template/check_fault_classes.py).
fault_classes() { (cd "$ROOT" && python -m tests.template.check_fault_classes check); }

fault_classes_self_test() { (cd "$ROOT" && python -m tests.template.check_fault_classes self-test); }

main() {
  case "${1:-}" in
    "") ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument: $1" ;;
  esac
  activate_tools
  WORK_DIR="$(mktemp -d)"
  trap cleanup EXIT
  RENDERED="${WORK_DIR}/task-definition.json"

  local step failed=()
  for step in cfn_lint checkov_scan render_task_definition check_consistency \
    broken_template_rejected self_test api_constraints api_constraints_self_test \
    variants_lint_and_scan broken_variant_rejected operate_checks operate_self_test \
    fault_classes fault_classes_self_test; do
    log "check-cfn: ${step}"
    if ! "$step"; then
      failed+=("$step")
      # Everything after rendering needs the rendered file.
      [[ $step != render_task_definition ]] || break
    fi
  done
  if [[ ${#failed[@]} -gt 0 ]]; then
    log "check-cfn FAILED: ${failed[*]}"
    exit 1
  fi
  log "check-cfn: all checks passed"
}

main "$@"
