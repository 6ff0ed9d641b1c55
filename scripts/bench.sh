#!/usr/bin/env bash
# Benchmark: the Rust EFS-tree Lambda against the Python custom resources users would
# otherwise run (a cfnresponse-style handler and one on crhelper, both under awslambdaric).
# Cold starts against a local Lambda Runtime API on 127.0.0.1; no AWS, no Docker. Trees are
# built on the EFS latency model (efs-latency/: FUSE, a delay per server operation, counts), or
# on a plain folder with --latency-ms none. Needs root (FUSE mounts, chown).
# Not part of scripts/test.sh: numbers are reported, never asserted.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/tools.sh
source "${ROOT}/scripts/lib/tools.sh"

RUNS=10
SCALE_RUNS=3
SIZES="10,100,1000"
TREE_DIR=""
LATENCY_MS=1
CACHE_SECS=3
SEED=false
RUNS_SEED=3
SIZES_GIVEN=false

usage() {
  cat <<USAGE
Usage: scripts/bench.sh [--latency-ms N|none] [--cache-secs S] [--runs N] [--scale-runs N]
                        [--sizes LIST] [--tree-dir DIR] [--seed] [--help]

Builds the release bootstrap and the EFS latency model for this host, then times N cold runs per
contestant of a CloudFormation Create for the template's CE tree on an empty file system and
of an unchanged Update, then the same (--scale-runs times) for generated trees of each size
in LIST, and draws bench/results/scaling.svg. Prints medians (min–max) of init,
time-to-signal, peak RSS, server operations (per entry), package sizes and the ratios
Python / Rust.
  --latency-ms N  delay per operation reaching the EFS latency model (default ${LATENCY_MS});
                  "none" builds the trees directly in --tree-dir instead
  --cache-secs S  the latency model's attribute cache (default ${CACHE_SECS}; 0 is like actimeo=0)
  --runs N        cold runs per contestant and request (default ${RUNS})
  --scale-runs N  cold runs per contestant and size in the scaling runs (default ${SCALE_RUNS})
  --sizes LIST    comma-separated tree sizes for the scaling runs (default ${SIZES}; "" skips)
  --tree-dir DIR  where each run's backing folder is made (default /dev/shm behind the
                  latency model, so that only its latency counts, else \$TMPDIR or /tmp)
  --seed          instead: the seed-plugins seeder against cp -R on a tree shaped like the
                  plugins repository (bench/seed_bench.py; --latency-ms, --cache-secs and
                  --runs apply, --sizes defaults to 1000,5000,20000); draws
                  bench/results/seeding.svg. cp -R takes minutes per run at 1 ms.
  --help          this text
USAGE
}

parse_args() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --runs) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; RUNS="$2"; RUNS_SEED="$2"; shift 2 ;;
      --scale-runs) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; SCALE_RUNS="$2"; shift 2 ;;
      --sizes) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; SIZES="$2"; SIZES_GIVEN=true; shift 2 ;;
      --tree-dir) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; TREE_DIR="$2"; shift 2 ;;
      --latency-ms) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; LATENCY_MS="$2"; shift 2 ;;
      --cache-secs) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; CACHE_SECS="$2"; shift 2 ;;
      --seed) SEED=true; shift ;;
      -h|--help) usage; exit 0 ;;
      *) usage_error "unknown option: $1" ;;
    esac
  done
  [[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs expects a positive integer, got '${RUNS}'"
  [[ "$SCALE_RUNS" =~ ^[1-9][0-9]*$ ]] || die "--scale-runs expects a positive integer, got '${SCALE_RUNS}'"
  [[ -z "$TREE_DIR" || -d "$TREE_DIR" ]] || die "--tree-dir ${TREE_DIR} is not a directory"
  [[ "$LATENCY_MS" == none || "$LATENCY_MS" =~ ^[0-9]+([.][0-9]+)?$ ]] \
    || die "--latency-ms expects a number of milliseconds or 'none', got '${LATENCY_MS}'"
  [[ "$CACHE_SECS" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--cache-secs expects a number of seconds, got '${CACHE_SECS}'"
}

# Prints the release directory after building the bootstrap and the latency model for the host.
build_binaries() {
  log "building the release bootstrap and efs-latency (host target)"
  cargo build --release --locked -p ce-efs-tree --bin bootstrap >&2
  cargo build --release --locked -p efs-latency >&2
  local target_dir
  target_dir="$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)"
  printf '%s/release\n' "$target_dir"
}

run_harness() {
  local release="$1"
  printf 'rust: %s; bootstrap binary %s bytes\n' "$(rustc --version)" "$(stat -c %s "${release}/bootstrap")"
  python -m bench.harness --bootstrap "${release}/bootstrap" --efs-latency "${release}/efs-latency" \
    --latency-ms "$LATENCY_MS" --cache-secs "$CACHE_SECS" --runs "$RUNS" --scale-runs "$SCALE_RUNS" \
    --sizes "$SIZES" ${TREE_DIR:+--tree-dir "$TREE_DIR"}
}

# The seeder benchmark needs only the EFS latency model.
run_seed_bench() {
  local target_dir sizes="$SIZES"
  [[ "$LATENCY_MS" != none ]] || die "--seed measures on the EFS latency model; give --latency-ms N"
  [[ "$SIZES_GIVEN" == true ]] || sizes="1000,5000,20000"
  log "building efs-latency (host target)"
  cargo build --release --locked -p efs-latency >&2
  target_dir="$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)"
  python -m bench.seed_bench --efs-latency "${target_dir}/release/efs-latency" --latency-ms "$LATENCY_MS" \
    --cache-secs "$CACHE_SECS" --runs "$RUNS_SEED" --sizes "$sizes" ${TREE_DIR:+--tree-dir "$TREE_DIR"}
}

main() {
  parse_args "$@"
  cd "$ROOT"
  activate_tools
  if [[ "$SEED" == true ]]; then
    run_seed_bench
    return
  fi
  local release
  release="$(build_binaries)"
  run_harness "$release"
}

main "$@"
