#!/usr/bin/env bash
# For an operator who can pull Cloud Exchange's images: checks every assumption the task
# definition and the scripts we seed make about them. Inspects each image (user, entry point,
# working directory, environment), then runs one short command in it (no network, nothing
# written, removed at once) that looks for the tools and paths we call and reads what it can
# of the image's own configuration. Prints one row per assumption: holds, does not hold, or
# could not tell; exits 1 when one does not hold.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/init.sh
source "${ROOT}/scripts/lib/init.sh"

# Cloud Exchange 6.1.0's images, as scripts/register-task-definition.sh names them.
declare -A IMAGE=(
  [core]="docker.io/netskopetechnicalalliances/cloudexchange:core6-6.1.0"
  [ui]="docker.io/netskopetechnicalalliances/cloudexchange:ui6-6.1.0"
  [mongodb]="docker.io/netskopetechnicalalliances/cloudexchange:mongo6-6.1.0-8.0.18"
  [rabbitmq]="docker.io/netskopetechnicalalliances/cloudexchange:rabbitmq6-6.1.0-4.2.2"
)
ROLES=(mongodb rabbitmq core ui)
# The access points' PosixUser (cfn/CloudExchangeTemplate.yaml): every EFS file is made as it.
AP_UID=1001
RUNTIME=""
ROWS=()
BROKEN=0

usage() {
  cat <<USAGE
Usage: scripts/probe-images.sh [--image ROLE=REF]... [--help]

  --image ROLE=REF   probe REF as ROLE (core, ui, mongodb, rabbitmq); default: CE 6.1.0's
                     images (pull them first: podman pull REF / docker pull REF)

Prints ROLE | ASSUMPTION | RESULT | DETAIL, RESULT being holds, does not hold or could not
tell; exits 1 when an assumption does not hold, 2 on a usage error. Uses podman or docker.
USAGE
}

row() { # ROLE ASSUMPTION RESULT DETAIL
  ROWS+=("$(printf '%-9s| %-58s| %-15s| %s' "$1" "$2" "$3" "$4")")
  [[ $3 != "does not hold" ]] || BROKEN=1
}

# The command run inside each image: one line per probe, "NAME|RESULT|DETAIL". POSIX sh only:
# it must run in any image that has /bin/sh, and it writes nothing.
# shellcheck disable=SC2016 # expanded inside the container
IN_IMAGE='
p() { printf "%s|%s|%s\n" "$1" "$2" "$3"; }
tool() { if command -v "$1" >/dev/null 2>&1; then p "tool $1" holds "$(command -v "$1")"; else p "tool $1" "does not hold" "not on PATH ($PATH)"; fi; }
path() { if [ -e "$1" ]; then p "path $1" holds "$(ls -ld "$1" 2>/dev/null | cut -c1-10)"; else p "path $1" "does not hold" "absent"; fi; }
for t in $TOOLS; do tool "$t"; done
for f in $PATHS; do path "$f"; done
for f in $WRITABLE; do
  if [ -w "$f" ]; then p "writable as the task user: $f" holds "$(ls -ld "$f" 2>/dev/null | cut -c1-10)"; else p "writable as the task user: $f" "does not hold" "$(ls -ld "$f" 2>&1 | cut -c1-60)"; fi
done
p "uid" info "$(id -u):$(id -g) ($(id -un 2>/dev/null || echo ?))"
if [ -n "${NAMED_USER:-}" ]; then
  if id "$NAMED_USER" >/dev/null 2>&1; then p "user $NAMED_USER exists" holds "$(id "$NAMED_USER")"; else p "user $NAMED_USER exists" "does not hold" "no such user in /etc/passwd"; fi
fi
if [ -n "${UPSTREAMS:-}" ]; then
  hosts=$(grep -rhE "proxy_pass[[:space:]]" /etc/nginx /opt --include="*.conf" --include="*.sh" --include="*.template" --include="default" 2>/dev/null \
    | grep -vE "^[[:space:]]*#" | grep -oE "proxy_pass[[:space:]]+[^;[:space:]]+" \
    | sed -E "s/^proxy_pass[[:space:]]+//; s#^https?://##; s#[:/].*\$##" | sort -u | tr "\n" " ")
  if [ -z "$hosts" ]; then p "upstream hosts resolvable in a task" "could not tell" "no proxy_pass under /etc/nginx or /opt"
  else
    other=$(printf "%s\n" $hosts | grep -vE "^(localhost|127\.0\.0\.1|\\$.*)$" | tr "\n" " ")
    if [ -z "$other" ]; then p "upstream hosts resolvable in a task" holds "proxy_pass to: $hosts(\$VAR: from the environment)"
    elif grep -rqE "^[[:space:]]*resolver[[:space:]]" /etc/nginx 2>/dev/null; then p "upstream hosts resolvable in a task" "could not tell" "names $other with a resolver: looked up when used, not at start"
    else p "upstream hosts resolvable in a task" "does not hold" "names $other: nginx resolves it at start, and a Fargate task has only localhost"
    fi
  fi
fi
if [ -n "${ENV_READ:-}" ]; then
  found=""; missing=""
  for v in $ENV_READ; do
    if grep -rqs --include="*.py" --include="*.js" --include="*.sh" --include="*.conf" "$v" /opt /usr/share/nginx /etc/nginx 2>/dev/null; then found="$found $v"; else missing="$missing $v"; fi
  done
  if [ -z "$missing" ]; then p "reads the environment we set" holds "$found"
  else p "reads the environment we set" "could not tell" "not found in the image files:$missing"
  fi
fi
'

probe_role() { # ROLE
  local role="$1" image="${IMAGE[$1]}" user="" tools paths writable="" named="" upstreams="" env_read="" inspect
  case "$role" in
    mongodb)
      user=mongodb; named=mongodb
      tools="bash docker-entrypoint.sh mongosh test touch rm dirname"
      paths="/data/db"
      writable="/tmp" ;;
    rabbitmq)
      user="${AP_UID}:${AP_UID}"
      tools="bash docker-entrypoint.sh rabbitmq-diagnostics rm printf"
      paths="/var/lib/rabbitmq"
      writable="/var/lib/rabbitmq" ;;
    core)
      tools="bash cp mv printf python3"
      paths="/opt/start.sh /opt/netskope/plugins /opt/netskope/repos"
      env_read="MONGO_CONNECTION_STRING RABBITMQ_CONNECTION_STRING" ;;
    ui)
      tools="bash"
      paths="./start.sh"
      upstreams=yes
      env_read="CE_API_URL CE_API_PORT" ;;
  esac
  if ! inspect="$("$RUNTIME" image inspect "$image" 2>/dev/null)"; then
    row "$role" "image $image is present" "could not tell" "not pulled: ${RUNTIME} pull ${image}"
    return 0
  fi
  local config
  config="$(jq -c '.[0].Config // .[0].ContainerConfig' <<<"$inspect")"
  row "$role" "image user" info "$(jq -r '.User // "" | if . == "" then "(root)" else . end' <<<"$config")"
  row "$role" "image entry point / command" info "$(jq -c '[.Entrypoint, .Cmd]' <<<"$config")"
  row "$role" "image working directory" info "$(jq -r '.WorkingDir // "" | if . == "" then "/" else . end' <<<"$config")"
  row "$role" "image environment (names)" info "$(jq -r '[.Env // [] | .[] | split("=")[0]] | join(" ")' <<<"$config")"
  # As the task runs it: mongodb-primary and rabbitmq-stats with the task definition's user,
  # core, seed-plugins and ui with the image's own.
  local run=("$RUNTIME" run --rm --network none --entrypoint /bin/sh)
  [[ -z $user ]] || run+=(--user "$user")
  local out
  if ! out="$("${run[@]}" -e "TOOLS=${tools}" -e "PATHS=${paths}" -e "WRITABLE=${writable}" -e "NAMED_USER=${named}" \
    -e "UPSTREAMS=${upstreams}" -e "ENV_READ=${env_read}" "$image" -c "$IN_IMAGE" 2>&1)"; then
    row "$role" "runs /bin/sh" "could not tell" "$(tail -n1 <<<"$out")"
    return 0
  fi
  local name result detail
  while IFS='|' read -r name result detail; do
    [[ -n $name ]] || continue
    if [[ $name == uid ]]; then
      local uid="${detail%%:*}"
      if [[ $role == mongodb ]]; then
        row "$role" "runs as the task's user (mongodb); EFS forces uid ${AP_UID}" info "$detail"
      elif [[ $uid == "$AP_UID" ]]; then
        row "$role" "runs as the access points' uid ${AP_UID}" holds "$detail"
      else
        row "$role" "runs as the access points' uid ${AP_UID}" "does not hold" "$detail (files it makes on EFS are still ${AP_UID}'s)"
      fi
      continue
    fi
    row "$role" "$name" "$result" "$detail"
  done <<<"$out"
}

main() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --image)
        local spec role
        spec="$(option_value "$@")"
        role="${spec%%=*}"
        [[ $spec == *=* && -n ${IMAGE[$role]+x} ]] || usage_error "--image expects ROLE=REF with ROLE one of ${ROLES[*]}: ${spec}"
        IMAGE[$role]="${spec#*=}"
        shift 2
        ;;
      -h | --help) usage; exit 0 ;;
      *) usage_error "unknown option: $1" ;;
    esac
  done
  if command -v podman >/dev/null 2>&1; then RUNTIME=podman; elif command -v docker >/dev/null 2>&1; then RUNTIME=docker; else die "needs podman or docker"; fi
  local role
  for role in "${ROLES[@]}"; do probe_role "$role"; done
  printf '%-9s| %-58s| %-15s| %s\n' ROLE ASSUMPTION RESULT DETAIL
  printf '%s\n' "${ROWS[@]}"
  if [[ $BROKEN -ne 0 ]]; then
    printf 'at least one assumption does not hold: the task definition would fail with these images\n' >&2
    exit 1
  fi
}

main "$@"
