#!/usr/bin/env bash
# The EFS latency model's access-point mode (efs-latency --as-uid/--as-gid), as EFS enforces an
# access point: every operation is made as its uid/gid whatever the caller's identity (a
# caller's root gets no override), new files are owned by it, and a symbolic link swapped into
# a path the kernel has cached never leads the server out of the root directory. Also checks
# that the counts the benchmark reads still come out. Needs root and /dev/fuse.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/lib/init.sh
source "${ROOT}/scripts/lib/init.sh"

usage() {
  cat <<USAGE
Usage: tests/runtime/efs-access-point.sh [--efs-latency BINARY]

Mounts BINARY (default: target/debug/efs-latency, built first) as an access point for uid/gid
1001 and checks identity, ownership and confinement. Exits 1 on the first failed check.
USAGE
}

EFS_LATENCY=""
WORK=""
MNT=""
failures=0

fail() { printf 'not ok - %s\n' "$*" >&2; failures=$((failures + 1)); }
pass() { printf 'ok - %s\n' "$*"; }

cleanup() {
  if [[ -n $MNT ]] && mountpoint -q "$MNT"; then fusermount3 -u "$MNT" || true; fi
  if [[ -n $WORK ]]; then rm -rf "$WORK"; fi
}

as_user() { setpriv --reuid "$1" --regid "$1" --clear-groups -- "${@:2}"; }

owner_of() { stat -c '%u:%g' "$1"; }

mount_ap() {
  local ready
  "$EFS_LATENCY" --latency-ms 0 --cache-secs 60 --stats "${WORK}/stats.json" \
    --as-uid 1001 --as-gid 1001 "${WORK}/efs/ap" "$MNT" >"${WORK}/standin.out" 2>&1 &
  for _ in $(seq 100); do
    ready="$(head -n1 "${WORK}/standin.out" 2>/dev/null || true)"
    [[ $ready == ready ]] && return 0
    sleep 0.05
  done
  cat "${WORK}/standin.out" >&2
  die "efs-latency did not mount"
}

check_identity() {
  touch "${MNT}/by-root"
  if [[ $(owner_of "${WORK}/efs/ap/by-root") == 1001:1001 ]]; then
    pass "a file the caller's root creates is owned by the access point's uid/gid"
  else
    fail "root's file is owned by $(owner_of "${WORK}/efs/ap/by-root"), not 1001:1001"
  fi
  if as_user 999 mkdir "${MNT}/by-999" 2>/dev/null \
    && [[ $(owner_of "${WORK}/efs/ap/by-999") == 1001:1001 ]]; then
    pass "another user (999) reaches the mount (allow_other) and creates as 1001:1001"
  else
    fail "user 999 could not create through the mount as 1001:1001"
  fi
  if cat "${MNT}/root-only" >/dev/null 2>&1; then
    fail "the caller's root read a file mode 0600 owned by root: the access point's identity was not forced"
  else
    pass "the caller's root gets no override: a 0600 root-owned file stays unreadable"
  fi
  if chown 0:0 "${MNT}/by-root" 2>/dev/null; then
    fail "chown to root succeeded through the access point"
  else
    pass "chown to another owner is refused (EPERM), as for the access point's user"
  fi
}

check_confinement() {
  mkdir "${MNT}/d"
  printf 'inside\n' >"${MNT}/d/f"
  # The kernel now holds d and d/f (entry timeout 60 s). Swap d for a link to a folder
  # outside the root, holding a file the access point's user may write.
  mv "${WORK}/efs/ap/d" "${WORK}/efs/ap/d.old"
  ln -s "${WORK}/outside" "${WORK}/efs/ap/d"
  (printf 'escaped\n' >"${MNT}/d/f") 2>/dev/null || true
  if [[ $(cat "${WORK}/outside/f") == untouched ]]; then
    pass "a link swapped into a cached path does not lead the server out of the root"
  else
    fail "the server followed a swapped-in link out of the root and wrote ${WORK}/outside/f"
  fi
  if chmod 0777 "${MNT}/d/f" 2>/dev/null; then
    fail "chmod went through a swapped-in link"
  fi
  [[ $(stat -c %a "${WORK}/outside/f") == 644 ]] || fail "chmod changed a file outside the root"
}

check_counts() {
  fusermount3 -u "$MNT"
  wait
  if jq -e '.total > 0 and .ops.create > 0 and .ops.mkdir > 0' "${WORK}/stats.json" >/dev/null; then
    pass "the operation counts are written (to a file opened before the identity is taken)"
  else
    fail "no counts in stats.json: $(cat "${WORK}/stats.json" 2>/dev/null)"
  fi
}

main() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --efs-latency) EFS_LATENCY="$(option_value "$@")"; shift 2 ;;
      -h|--help) usage; exit 0 ;;
      *) usage_error "unknown option: $1" ;;
    esac
  done
  if [[ -z $EFS_LATENCY ]]; then
    (cd "$ROOT" && cargo build --locked -q -p efs-latency --bins)
    EFS_LATENCY="${ROOT}/target/debug/efs-latency"
  fi
  [[ $(id -u) -eq 0 ]] || die "needs root (FUSE mounts and setuid)"
  WORK="$(mktemp -d)"
  trap cleanup EXIT
  chmod 0755 "$WORK"
  MNT="${WORK}/mnt"
  mkdir -p "${WORK}/efs/ap" "$MNT" "${WORK}/outside"
  chown 1001:1001 "${WORK}/efs/ap" "${WORK}/outside"
  printf 'secret\n' >"${WORK}/efs/ap/root-only"
  chmod 0600 "${WORK}/efs/ap/root-only"
  printf 'untouched\n' >"${WORK}/outside/f"
  chown 1001:1001 "${WORK}/outside/f"
  chmod 0644 "${WORK}/outside/f"
  mount_ap
  check_identity
  check_confinement
  check_counts
  [[ $failures -eq 0 ]] || { printf '%d check(s) failed\n' "$failures" >&2; exit 1; }
  printf 'all access-point checks passed\n'
}

main "$@"
