# shellcheck shell=bash
# How every script speaks: progress and problems on stderr, so stdout carries only results
# (an ARN, rendered JSON). Sourced by scripts/lib/tools.sh and scripts/lib/aws.sh.

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
# Bad command-line input: the problem, then the calling script's usage(), exit 2.
usage_error() { printf 'error: %s\n\n' "$1" >&2; usage >&2; exit 2; }
