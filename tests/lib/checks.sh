# shellcheck shell=bash
# One way for the shell tests to run a check and sum them up: `check DESCRIPTION COMMAND...`
# prints "ok" or "FAIL" and counts; `checks_summary NAME` prints the totals and fails if any
# check did. Test-only: the shell tests source it after scripts/lib/tools.sh.

CHECKS_PASSED=0
CHECKS_FAILED=0

check() { # DESCRIPTION COMMAND...
  local description="$1"
  shift
  if "$@"; then
    printf '  ok    %s\n' "$description"
    CHECKS_PASSED=$((CHECKS_PASSED + 1))
  else
    printf '  FAIL  %s\n' "$description"
    CHECKS_FAILED=$((CHECKS_FAILED + 1))
  fi
}

checks_summary() { # NAME
  printf '%s: %d passed, %d failed\n' "$1" "$CHECKS_PASSED" "$CHECKS_FAILED"
  ((CHECKS_FAILED == 0))
}
