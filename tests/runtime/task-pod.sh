#!/usr/bin/env bash
# The task as Fargate runs it: the template's real task definition, rendered from the deployed
# stack's outputs, run by scripts/run-local.sh as one pod with the stand-in images
# (standin_images/build.sh) on the tree the real Lambda built, EFS volumes through the
# access points' forced uid/gid. Then the faults that must stop the task, each naming the right
# container, and the re-seed of the plugins over the read-only git files the first seed left.
#
# Test-only override: health checks at most 1 s apart (--health-interval-cap 1), so the task is
# healthy in seconds instead of the definition's 15-30 s intervals; start periods, timeouts and
# retries are the definition's.
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
WORK=""
POD="ce-task-pod-$$"
RESEED="must-pass"
IMAGES=()
failures=0

usage() {
  cat <<USAGE
Usage: tests/runtime/task-pod.sh [--tree DIR] [--reseed-known-to-fail]

  --tree DIR               a tree tests/e2e/deployed-tree.sh built (default: deploy one now)
  --reseed-known-to-fail   the re-seed over read-only git files must FAIL (the seeder still has
                           the fault; proves the case catches it); without it, it must pass
Needs root, podman, mmdebstrap and the Debian mirror (first build of the stand-in images).
USAGE
}

fail() { printf 'not ok - %s\n' "$*" >&2; failures=$((failures + 1)); }
pass() { printf 'ok - %s\n' "$*"; }

cleanup() {
  "${ROOT}/scripts/run-local.sh" down --task-definition "${TREE}/task-definition.json" --name "$POD" >/dev/null 2>&1 || true
  local_aws_stop
  if [[ -n $WORK ]]; then rm -rf "$WORK"; fi
}

run_local() { # COMMAND DEFINITION [ARGS...]
  "${ROOT}/scripts/run-local.sh" "$1" --task-definition "$2" --name "$POD" "${@:3}"
}

up() { # DEFINITION OUT
  local image args=()
  for image in "${IMAGES[@]}"; do args+=(--image "$image"); done
  local status=0
  run_local up "$1" --efs "${TREE}/efs" --access-points "${TREE}/access-points.json" \
    --secrets "${TREE}/secrets.json" "${args[@]}" --timeout 150 --health-interval-cap 1 >"$2" 2>"${2}.log" || status=$?
  return "$status"
}

# The rendered definition with one jq change applied.
planted() { # NAME JQ
  jq "$2" "${TREE}/task-definition.json" >"${WORK}/$1.json"
  printf '%s\n' "${WORK}/$1.json"
}

check_healthy() {
  local started=$SECONDS status=0
  up "${TREE}/task-definition.json" "${WORK}/up.out" || status=$?
  if [[ $status -eq 0 ]]; then
    pass "the rendered task definition runs to RUNNING, every essential container healthy ($((SECONDS - started))s)"
  else
    fail "up exited ${status}: $(cat "${WORK}/up.out")"
    tail -n 40 "${WORK}/up.out.log" >&2
    dump_logs
  fi
  run_local status "${TREE}/task-definition.json" | tee "${WORK}/status.out"
  if grep -Eq '^core +running +HEALTHY' "${WORK}/status.out"; then
    pass "status shows core running and HEALTHY"
  else
    fail "status does not show core running and HEALTHY"
  fi
  if podman exec "${POD}-ui" bash -c 'exec 3<>/dev/tcp/127.0.0.1/8000' 2>/dev/null; then
    pass "containers share one loopback: ui reaches core on 127.0.0.1:8000"
  else
    fail "ui cannot reach core on 127.0.0.1:8000"
  fi
  # The file list is made here, before grep starts, so grep's own command line is not in it.
  local secret leaked="" files=(/proc/[0-9]*/cmdline "$(run_local_state)"/*)
  while IFS= read -r secret; do
    if grep -lqsaF -- "$secret" "${files[@]}"; then leaked=yes; fi
  done < <(jq -r '.[]' "${TREE}/secrets.json")
  if [[ -n $leaked ]]; then
    fail "a secret's value is on a command line or in run-local's state"
  else
    pass "no secret value on any command line nor in run-local's state"
  fi
  run_local down "${TREE}/task-definition.json"
  if podman pod exists "$POD" || grep -q " ${POD}" /proc/mounts; then
    fail "down left the pod or an EFS latency model mount behind"
  else
    pass "down removed the pod and the EFS latency model mounts"
  fi
}

# The task must stop (exit 1) with a stoppedReason matching REASON; with CONTAINER and LOG, that
# container's output must match LOG too (the cause, not only the effect).
check_stops() { # CASE DEFINITION REASON [CONTAINER LOG]
  local status=0
  up "$2" "${WORK}/$1.out" || status=$?
  if [[ $status -eq 1 ]] && grep -Eq "$3" "${WORK}/$1.out"; then
    pass "$1: the task stops: $(cat "${WORK}/$1.out")"
  else
    fail "$1: expected exit 1 and a stoppedReason matching /$3/, got exit ${status}: $(cat "${WORK}/$1.out")"
    tail -n 20 "${WORK}/$1.out.log" >&2
  fi
  if [[ $# -ge 5 ]]; then
    podman logs "${POD}-$4" >"${WORK}/$1.logs" 2>&1 || true
    if grep -Eq "$5" "${WORK}/$1.logs"; then
      pass "$1: $4 says why (/$5/)"
    else
      fail "$1: the output of $4 does not match /$5/"
    fi
  fi
  run_local down "$2" >/dev/null 2>&1
}

# A new core image on a tree seeded by the previous one: seed-plugins copies over the files the
# first seed left, git's read-only pack files among them, as the access point's uid 1001.
check_reseed() {
  local definition status=0
  definition="$(planted reseed '(.containerDefinitions[] | select(.name == "seed-plugins") | .environment) |=
    map(if .name == "CE_SEED_IMAGE" then .value += "-next" else . end)')"
  if ! find "${TREE}/efs" -path '*objects/pack/*.pack' ! -perm -u+w | grep -q .; then
    fail "reseed: the first seed left no read-only git pack file on the tree (nothing to prove)"
  fi
  up "$definition" "${WORK}/reseed.out" || status=$?
  podman logs "${POD}-seed-plugins" >"${WORK}/reseed.logs" 2>&1 || true
  run_local down "$definition" >/dev/null 2>&1
  if [[ $RESEED == must-pass ]]; then
    if [[ $status -eq 0 ]]; then
      pass "reseed: a new core image re-seeds over read-only git files as uid 1001"
    else
      fail "reseed: seeding over read-only git files failed: $(cat "${WORK}/reseed.out")"
    fi
  elif [[ $status -eq 1 ]] && grep -q 'seed-plugins SUCCESS' "${WORK}/reseed.out" \
    && grep -Eq 'objects/pack/[^ ]*: Permission denied' "${WORK}/reseed.logs"; then
    pass "reseed (known fault): stops as expected: $(cat "${WORK}/reseed.out")"
  else
    fail "reseed was expected to fail (--reseed-known-to-fail) but exited ${status}: drop the flag"
  fi
}

# scripts/probe-images.sh on the stand-in images: every assumption holds. Then on a planted ui
# image whose nginx proxies to the compose service name "core" (resolved at start; a task has
# only localhost): that row must not hold and the probe must exit 1.
check_probe() {
  local probe=() image planted container status=0
  for image in "${IMAGES[@]}"; do
    case "${image%%=*}" in
      mongodb-primary) probe+=(--image "mongodb=${image#*=}") ;;
      rabbitmq-stats) probe+=(--image "rabbitmq=${image#*=}") ;;
      core | ui) probe+=(--image "$image") ;;
    esac
  done
  "${ROOT}/scripts/probe-images.sh" "${probe[@]}" >"${WORK}/probe.out" 2>&1 || status=$?
  if [[ $status -eq 0 ]] && ! grep -q 'does not hold' "${WORK}/probe.out"; then
    pass "probe-images.sh: every assumption holds on the stand-in images"
  else
    fail "probe-images.sh on the stand-ins exited ${status}: $(grep 'does not hold' "${WORK}/probe.out")"
  fi
  planted="localhost/ce-standin-planted:${POD}"
  container="$(podman create --user 0 --entrypoint /bin/sh "${probe[-1]#*=}" -c \
    'printf "server { listen 3001; location / { proxy_pass http://core:8000; } }\n" >/etc/nginx/conf.d/ce.conf')"
  podman start --attach "$container" >/dev/null
  podman commit -q "$container" "$planted" >/dev/null
  podman rm -f "$container" >/dev/null
  status=0
  "${ROOT}/scripts/probe-images.sh" "${probe[@]}" --image "ui=${planted}" >"${WORK}/probe-planted.out" 2>&1 || status=$?
  podman rmi -f "$planted" >/dev/null 2>&1 || true
  if [[ $status -eq 1 ]] && grep -Eq '^ui .*upstream hosts.*does not hold.*core' "${WORK}/probe-planted.out"; then
    pass "probe-images.sh: a planted ui image proxying to host core does not hold (exit 1)"
  else
    fail "probe-images.sh missed the planted upstream host (exit ${status}): $(grep upstream "${WORK}/probe-planted.out")"
  fi
}

# Where run-local.sh keeps what it made for the pod (scripts/lib/task_pod/pod.py).
run_local_state() { printf '/run/ce-run-local/%s\n' "$POD"; }

dump_logs() {
  local name
  for name in $(podman ps -a --filter "pod=${POD}" --format '{{.Names}}'); do
    printf -- '--- %s\n' "$name" >&2
    podman logs --tail 15 "$name" >&2 || true
  done
}

main() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --tree) TREE="$(option_value "$@")"; shift 2 ;;
      --reseed-known-to-fail) RESEED="must-fail"; shift ;;
      -h | --help) usage; exit 0 ;;
      *) usage_error "unknown option: $1" ;;
    esac
  done
  [[ $(id -u) -eq 0 ]] || die "run as root (FUSE mounts, podman, the Lambda's chowns)"
  cd "$ROOT"
  activate_tools
  export CONTAINERS_CONF="${ROOT}/scripts/lib/containers.conf"
  WORK="$(mktemp -d)"
  trap cleanup EXIT
  deployed_tree_use "$TREE" "${WORK}/tree"
  TREE="$DEPLOYED_TREE"
  [[ -f ${TREE}/access-points.json && -f ${TREE}/secrets.json ]] || die "${TREE} has no access-points.json or secrets.json"
  mapfile -t IMAGES < <("${ROOT}/standin_images/build.sh")
  [[ ${#IMAGES[@]} -gt 0 ]] || die "no stand-in images"
  local started=$SECONDS
  check_probe
  check_healthy
  check_reseed
  check_stops "never-healthy" "$(planted never-healthy '(.containerDefinitions[] | select(.name == "mongodb-primary") | .healthCheck) |=
    (.command = ["CMD", "/bin/false"] | .startPeriod = 0 | .retries = 2)')" \
    'health checks: mongodb-primary is UNHEALTHY'
  check_stops "init-fails" "$(planted init-fails '(.containerDefinitions[] | select(.name == "seed-plugins") | .entryPoint) =
    ["/bin/bash", "-c", "echo planted failure >&2; exit 3"]')" \
    'core cannot start: its dependency seed-plugins SUCCESS .*code 3'
  check_stops "read-only-mount" "$(planted read-only-mount '(.containerDefinitions[] | select(.name == "seed-plugins")
    | .mountPoints[] | select(.containerPath == "/ce/seed/plugins") | .readOnly) = true
    | (.containerDefinitions[] | select(.name == "seed-plugins") | .environment) |=
    map(if .name == "CE_SEED_IMAGE" then .value += "-other" else . end)')" \
    'core cannot start: its dependency seed-plugins SUCCESS .*code [1-9]' seed-plugins 'Read-only file system'
  log "task pod: $((SECONDS - started))s for the run and the fault cases"
  [[ $failures -eq 0 ]] || { printf '%d check(s) failed\n' "$failures" >&2; exit 1; }
  printf 'all task-pod checks passed\n'
}

main "$@"
