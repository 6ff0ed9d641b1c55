#!/usr/bin/env bash
# Benchmark: the Rust EFS-tree Lambda against the Python custom resources users would
# otherwise run (a cfnresponse-style handler and one on crhelper, both under awslambdaric).
# Cold starts against a local Lambda Runtime API on 127.0.0.1; no AWS, no Docker.
# Not part of scripts/test.sh: numbers are reported, never asserted.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/tools.sh
source "${ROOT}/scripts/lib/tools.sh"

RUNS=20
SCALE_RUNS=10
SIZES="10,100,1000"
TREE_DIR="${TMPDIR:-/tmp}"

usage() {
  cat <<USAGE
Usage: scripts/bench.sh [--runs N] [--scale-runs N] [--sizes LIST] [--tree-dir DIR] [--help]

Builds the release bootstrap for this host, then times N cold runs per contestant of a
CloudFormation Create for the template's CE tree, then the same (--scale-runs times) for
generated trees of each size in LIST. Prints medians (min–max) of init, time-to-signal, peak RSS, the
package sizes and the ratios Python / Rust.
  --runs N        cold runs per contestant and tree (default ${RUNS})
  --scale-runs N  cold runs per contestant and size in the scaling runs (default ${SCALE_RUNS})
  --sizes LIST    comma-separated tree sizes for the scaling runs (default ${SIZES}; "" skips)
  --tree-dir DIR  where each run's fresh mount directory is made (default ${TREE_DIR});
                  a tmpfs such as /dev/shm takes the disk's flush latency out of the numbers
  --help          this text
USAGE
}

parse_args() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --runs) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; RUNS="$2"; shift 2 ;;
      --scale-runs) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; SCALE_RUNS="$2"; shift 2 ;;
      --sizes) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; SIZES="$2"; shift 2 ;;
      --tree-dir) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; TREE_DIR="$2"; shift 2 ;;
      -h|--help) usage; exit 0 ;;
      *) printf 'unknown option: %s\n' "$1" >&2; usage >&2; exit 2 ;;
    esac
  done
  [[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs expects a positive integer, got '${RUNS}'"
  [[ "$SCALE_RUNS" =~ ^[1-9][0-9]*$ ]] || die "--scale-runs expects a positive integer, got '${SCALE_RUNS}'"
  [[ -d "$TREE_DIR" ]] || die "--tree-dir ${TREE_DIR} is not a directory"
}

# Prints the path of the release bootstrap after building it for the host.
build_bootstrap() {
  log "building the release bootstrap (host target)"
  cargo build --release --locked -p ce-efs-tree --bin bootstrap >&2
  local target_dir
  target_dir="$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)"
  printf '%s/release/bootstrap\n' "$target_dir"
}

run_harness() {
  local bootstrap="$1"
  printf 'rust: %s; bootstrap binary %s bytes\n' "$(rustc --version)" "$(stat -c %s "$bootstrap")"
  python "${ROOT}/bench/harness.py" --bootstrap "$bootstrap" --runs "$RUNS" --scale-runs "$SCALE_RUNS" \
    --sizes "$SIZES" --tree-dir "$TREE_DIR"
}

main() {
  parse_args "$@"
  cd "$ROOT"
  activate_tools
  local bootstrap
  bootstrap="$(build_bootstrap)"
  run_harness "$bootstrap"
}

main "$@"
