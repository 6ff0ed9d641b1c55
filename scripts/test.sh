#!/usr/bin/env bash
# Every test and check of the project, in one command; .ci/run calls it.
# Installs what it needs on a fresh machine (scripts/lib/tools.sh, which also links the
# build directory and venv to a per-user cache, so a second clone rebuilds little).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/tools.sh
source "${ROOT}/scripts/lib/tools.sh"

STEPS=(script_units seeder_tests rust_format rust_lint rust_tests op_budget efs_access_point shell_lint python_lint docs lambda_invoke templates local_aws_tests script_tests end_to_end ce_runtime task_pod)
# Steps outside the default run (too long for it); run them with --only.
EXTRA_STEPS=(gap_patches)
ONLY=()

usage() {
  cat <<USAGE
Usage: scripts/test.sh [--only STEP]... [--list] [--help]

Runs every check in order and reports each step; exits non-zero if any step failed.
  --only STEP   run only this step (repeatable); see --list
  --list        print the step names (those marked "extra" run only with --only)
  --help        this text
USAGE
}

parse_args() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --only) ONLY+=("$(option_value "$@")"); shift 2 ;;
      --list) printf '%s\n' "${STEPS[@]}"; printf '%s (extra)\n' "${EXTRA_STEPS[@]}"; exit 0 ;;
      -h|--help) usage; exit 0 ;;
      *) usage_error "unknown option: $1" ;;
    esac
  done
  local step
  for step in "${ONLY[@]}"; do
    [[ " ${STEPS[*]} ${EXTRA_STEPS[*]} " == *" ${step} "* ]] || { printf 'unknown step: %s\n' "$step" >&2; exit 2; }
  done
  [[ ${#ONLY[@]} -eq 0 ]] || STEPS=("${ONLY[@]}")
}

rust_format() { cargo fmt --all -- --check; }
rust_lint() { cargo clippy --workspace --all-targets --locked -- -D warnings; }
rust_tests() { cargo test --workspace --locked; }
# The tree function's server operations on the EFS latency model stay within bench/op-budget.toml
# (and a budget one operation short is caught).
op_budget() {
  # Two calls: a target filter such as --example applies to every -p of the same call, so one
  # call would build no efs-latency binary on a fresh clone.
  cargo build --locked -p efs-latency --bins
  cargo build --locked -p ce-efs-tree --example apply_tree
  # Steps run inside `if`, where set -e is off: collect each check's status.
  local status=0
  python -m bench.budget --efs-latency target/debug/efs-latency --apply target/debug/examples/apply_tree || status=1
  # The seed-plugins seeder's operations per file (bench/seed-op-budget.toml).
  python -m bench.seed_budget --efs-latency target/debug/efs-latency || status=1
  return "$status"
}
# The EFS latency model as an access point: identity forced, new files owned by it, no way out
# of its root directory.
efs_access_point() { tests/runtime/efs-access-point.sh; }
shell_lint() { shellcheck -x scripts/*.sh scripts/lib/*.sh local_aws/*.sh standin_images/*.sh tests/*/*.sh tests/*/*.bash tests/*/*.bats; }
# Python: ruff's lint and format check over the whole repository (config in pyproject.toml).
python_lint() { ruff check . && ruff format --check .; }
# Every relative link and #anchor in the Markdown resolves; the self-test plants broken ones.
docs() { python -m tests.docs.check_links check && python -m tests.docs.check_links self-test; }
lambda_invoke() { tests/runtime/lambda-invoke.sh; }
templates() { tests/template/check-cfn.sh; }
# One fast test per gap of moto the local AWS closes (local_aws/gaps.py).
local_aws_tests() { python -m pytest -q tests/local_aws; }
# Each gap's test fails with that gap's patch left out (and passes with it): the claim of
# gaps.py, proven one gap at a time in fresh processes (a few minutes; extra step).
gap_patches() { python -m tests.local_aws.gap_patches --jobs 2; }
# The bats files in parallel, one job per file (each owns its servers, ports and temporary
# folders; tests within a file keep their order). Files tagged `# bats file_tags=aws` start an
# AWS endpoint on 127.0.0.1 (moto, or the local AWS with a deployed stack) and run in
# script_tests; the rest need no server and run first, in script_units.
BATS_JOBS="${BATS_JOBS:-4}"
run_bats() { # FILTER
  bats --jobs "$BATS_JOBS" --no-parallelize-within-files --timing --filter-tags "$1" tests/scripts/*.bats
}
script_units() { run_bats '!aws'; }
# The bats tests that need a server.
script_tests() { run_bats aws; }
# The seed-plugins seeder (data/env/ce-seed.py) as uid 1001 on local folders; no server.
seeder_tests() { python -m pytest -q tests/seeder; }
end_to_end() { tests/e2e/e2e-local.sh; }
# The deployed tree as each container sees it, and its TLS material served by a real
# RabbitMQ and openssl; one tree, deployed on the local AWS by the first script.
# (Its tree is left in SHARED_TREE for task_pod when that step runs too.)
SHARED_TREE=""
ce_runtime() {
  local tree status=0
  tree="$(mktemp -d)"
  tests/runtime/container-view.sh --keep-tree "$tree" || status=1
  if [[ -f ${tree}/task-definition.json ]]; then
    tests/runtime/tls-endpoints.sh --tree "$tree" || status=1
  fi
  if [[ " ${STEPS[*]} " == *" task_pod "* && -f ${tree}/task-definition.json ]]; then
    SHARED_TREE="$tree"
  else
    rm -rf "$tree"
  fi
  return "$status"
}
# The rendered task definition run as a pod with the stand-in images on that tree (ECS's rules
# as plain functions first), then the faults that must stop it naming the container, the
# re-seed over read-only git files, and scripts/probe-images.sh with a planted image.
task_pod() {
  local status=0 tree=()
  [[ -z $SHARED_TREE ]] || tree=(--tree "$SHARED_TREE")
  python -m pytest -q tests/runtime/test_task_pod.py || status=1
  tests/runtime/task-pod.sh "${tree[@]}" || status=1
  [[ -z $SHARED_TREE ]] || rm -rf "$SHARED_TREE"
  return "$status"
}

main() {
  parse_args "$@"
  cd "$ROOT"
  activate_tools
  export CARGO_TERM_COLOR=never
  local step passed=0 failed=0 failures=() started elapsed
  for step in "${STEPS[@]}"; do
    log "step ${step}"
    started=$SECONDS
    if "$step"; then
      passed=$((passed + 1))
      elapsed=$((SECONDS - started))
      log "step ${step}: ok (${elapsed}s)"
    else
      failed=$((failed + 1))
      failures+=("$step")
      elapsed=$((SECONDS - started))
      log "step ${step}: FAILED (${elapsed}s)"
    fi
  done
  [[ $failed -eq 0 ]] || log "failed steps: ${failures[*]}"
  printf 'steps: %d passed, %d failed\n' "$passed" "$failed"
  [[ $failed -eq 0 ]]
}

main "$@"
