# shellcheck shell=bash
# How every script speaks and reads its options: progress and problems on stderr, so stdout
# carries only results (an ARN, rendered JSON). Sourced through scripts/lib/init.sh.

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
# Bad command-line input: the problem, then the calling script's usage(), exit 2.
usage_error() { printf 'error: %s\n\n' "$1" >&2; usage >&2; exit 2; }

# Prints the value of option $1, given as $2; refuses a missing or empty one, or another
# option in its place. Use as VAR="$(option_value "$@")"; shift 2 (set -e ends the script
# with status 2 when it refuses).
option_value() { # OPTION VALUE...
  [[ $# -ge 2 && -n $2 && $2 != --* ]] || usage_error "$1 needs a value"
  printf '%s\n' "$2"
}
