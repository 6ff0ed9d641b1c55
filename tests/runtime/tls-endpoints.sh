#!/usr/bin/env bash
# The TLS material the Lambda generates, put to work by real servers that read it the way
# the containers will: each container's EFS mounts are bind-mounted (read-only where the
# task definition says so) under a folder of its own, so every path is the container's own
# path with a prefix, and the servers run as the access points' uid/gid.
#
# - RabbitMQ (Debian's 3.10) runs as rabbitmq-stats does: the seeded custom.conf (listeners
#   and certificate paths rewritten, printed), the container's environment from the rendered
#   task definition, the environment loader ce-env.sh sourced with a test
#   MAINTENANCE_PASSWORD, and its data on the rabbitmq-data access point's directory. Core's
#   RABBITMQ_CONNECTION_STRING, derived by the same loader, then opens an AMQPS session
#   verified against the generated CA (pika); a different CA fails verification; plain AMQP
#   is refused; the management API's TLS verifies too. The same node started without
#   `listeners.tcp = none` must make the plain-AMQP check fail (the planted fault).
# - The UI's self-signed certificate serves TLS 1.3 with `openssl s_server`, verified by
#   `openssl s_client -verify_return_error` against itself and refused against the CA.
# - MongoDB is not in Debian: its combined PEM is checked with openssl (certificate then
#   key, the key matches, the chain verifies for its host names, server and client use) and
#   served by `openssl s_server` to a client that verifies it as mongod's; each PEM check
#   must fail on a planted copy (key first, another key, another CA).
# Every wait is bounded; stops every process it started and removes its mounts. Exits
# non-zero on any failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/lib/tools.sh
source "${ROOT}/scripts/lib/tools.sh"
# shellcheck source=tests/lib/checks.sh
source "${ROOT}/tests/lib/checks.sh"
# shellcheck source=scripts/lib/init.sh
source "${ROOT}/scripts/lib/init.sh"
# shellcheck source=local_aws/local-aws.sh
source "${ROOT}/local_aws/local-aws.sh"
# shellcheck source=tests/e2e/deployed-tree.sh
source "${ROOT}/tests/e2e/deployed-tree.sh"

START_SECONDS=120 # for a server to listen
STOP_SECONDS=30   # for a server to end after SIGTERM, before SIGKILL
CLIENT_SECONDS=30 # for an openssl client to finish its handshake
RABBITMQ_SERVER=/usr/lib/rabbitmq/bin/rabbitmq-server
# Where the containers find what this test uses (the task definition's entry points and
# custom.conf name them; tests/runtime/container_view.py checks that they exist and are readable).
ENV_LOADER=/ce/env/ce-env.sh
RABBITMQ_CONF=/ce/rabbitmq-conf/custom.conf
MONGODB_PEM=/ce/tls/tls_cert_key.pem
MONGODB_CA=/ce/tls/tls_cert_ca.crt
UI_CERT=/tmp/ssl_certs/cte_cert.crt
UI_KEY=/tmp/ssl_certs/cte_cert_key.key

TREE=""
WORK=""
MOUNTED=()
GROUPS_STARTED=()
# Set by container_root: the folder holding a container's view, and its access point user.
VIEW=""
VIEW_USER=()
declare -A VIEW_USERS=() # container -> "uid:gid" of the views already mounted
# Set by start_group: the process group it started last.
STARTED=""
# Set by serve_tls.
SERVED_PORT=""
# Set by start_rabbitmq.
AMQPS_PORT=""
MANAGEMENT_PORT=""
PLAIN_PORT=""
RABBITMQ_GROUP=""
EPMD_GROUP=""
RABBITMQ_NODE=""

usage() {
  cat <<'USAGE'
Usage: tests/runtime/tls-endpoints.sh [--tree DIR] [--help]

Runs RabbitMQ and openssl servers on the certificates and configuration the EFS-tree Lambda
generated, as the containers see them, and checks what their clients get. Must run as root
(bind mounts, and the servers run as the access points' uid). Installs rabbitmq-server
(Debian) when it is missing.

  --tree DIR  use a tree tests/e2e/deployed-tree.sh built in DIR (default: deploy one now)
USAGE
}

# ------------------------------------------------------------------ processes and mounts

# Starts COMMAND in a process group of its own (so all it forks can be stopped together),
# output to LOG; sets STARTED to the group's id.
start_group() { # LOG COMMAND...
  local log="$1"
  shift
  setsid "$@" >"$log" 2>&1 &
  STARTED=$!
  GROUPS_STARTED+=("$STARTED")
}

# SIGTERM to the group, SIGKILL after STOP_SECONDS if its leader still runs.
stop_group() { # GROUP
  local waited=0
  kill -TERM -- "-$1" 2>/dev/null || return 0
  while kill -0 "$1" 2>/dev/null && ((waited < STOP_SECONDS * 10)); do
    sleep 0.1
    waited=$((waited + 1))
  done
  kill -KILL -- "-$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

cleanup() {
  local group index
  for group in "${GROUPS_STARTED[@]}"; do
    stop_group "$group"
  done
  for ((index = ${#MOUNTED[@]} - 1; index >= 0; index--)); do
    umount "${MOUNTED[index]}" 2>/dev/null || umount -l "${MOUNTED[index]}" 2>/dev/null || true
  done
  local_aws_stop
  [[ -n $WORK ]] || return 0
  # Never remove through a bind mount that is still there (it has the same device number as
  # the folder, so rm --one-file-system would not stop): that would reach into the tree.
  if grep -qF " ${WORK}/" /proc/self/mounts; then
    warn "mounts remain under ${WORK}; left in place"
  else
    rm -rf "$WORK"
  fi
}

# Bind-mounts every EFS mount of CONTAINER at WORK/view/CONTAINER/<containerPath>, outer
# mounts first, read-only where the task definition says so. Sets VIEW to that folder and
# VIEW_USER to setpriv's arguments for the access points' uid/gid (all of the container's
# access points must share it, or no single process can act as the container).
container_root() { # CONTAINER
  local path host mode uid gid users=()
  VIEW="${WORK}/view/$1"
  if [[ -n ${VIEW_USERS[$1]:-} ]]; then
    VIEW_USER=(--reuid "${VIEW_USERS[$1]%:*}" --regid "${VIEW_USERS[$1]#*:}" --clear-groups)
    return 0
  fi
  while IFS=$'\t' read -r path host mode uid gid; do
    mkdir -p "${VIEW}${path}"
    mount --bind "$host" "${VIEW}${path}"
    MOUNTED+=("${VIEW}${path}")
    [[ $mode == rw ]] || mount -o remount,bind,ro "${VIEW}${path}"
    users+=("${uid}:${gid}")
  done < <(python -m tests.runtime.container_view mounts --tree "$TREE" --container "$1")
  [[ ${#users[@]} -gt 0 ]] || die "$1 has no EFS mount"
  [[ $(printf '%s\n' "${users[@]}" | sort -u | wc -l) -eq 1 ]] ||
    die "$1's access points have different users (${users[*]}); one process cannot act as all of them"
  VIEW_USERS[$1]="${users[0]}"
  VIEW_USER=(--reuid "${users[0]%:*}" --regid "${users[0]#*:}" --clear-groups)
}

as_view_user() { # COMMAND...
  setpriv "${VIEW_USER[@]}" -- "$@"
}

port_open() { (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

port_open_or_gone() { # PORT GROUP
  port_open "$1" || ! kill -0 "$2" 2>/dev/null
}

# True once something accepts TCP connections on the port; false if GROUP's leader ended
# or START_SECONDS passed.
listening() { # PORT GROUP
  wait_until "$START_SECONDS" 0.2 port_open_or_gone "$1" "$2" && port_open "$1"
}

# ------------------------------------------------------------------ setup

# Debian's rabbitmq-server, installed without recommends. Where no policy-rc.d keeps
# package scripts from starting services (a CI machine), one is put in place for the
# install only, so no system RabbitMQ is left running.
ensure_rabbitmq() {
  [[ -x $RABBITMQ_SERVER ]] && return 0
  command -v apt-get >/dev/null 2>&1 || die "rabbitmq-server is missing; install it with your package manager"
  log "installing rabbitmq-server (apt-get, once)"
  local policy=/usr/sbin/policy-rc.d placed=false
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    placed=true
  fi
  local status=0
  timeout 600 apt-get update -qq >/dev/null &&
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends \
      rabbitmq-server >/dev/null || status=$?
  [[ $placed == false ]] || rm -f "$policy"
  [[ $status -eq 0 && -x $RABBITMQ_SERVER ]] || die "installing rabbitmq-server failed"
}

setup() {
  [[ $(id -u) -eq 0 ]] || die "run as root: bind mounts, and servers run as the access points' uid"
  cd "$ROOT"
  activate_tools
  ensure_rabbitmq
  WORK="$(mktemp -d)"
  chmod 0711 "$WORK" # the servers, not root, walk down to their views
  deployed_tree_use "$TREE" "${WORK}/tree"
  TREE="$DEPLOYED_TREE"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=a different CA" \
    -keyout "${WORK}/other-ca.key" -out "${WORK}/other-ca.crt" 2>/dev/null
}

# ------------------------------------------------------------------ RabbitMQ

# A test MAINTENANCE_PASSWORD with characters a URI must escape, so the loader's encoding
# is exercised too.
test_password() {
  printf 'p@ss:w/rd%%+%s' "$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
}

# The container's environment (rendered task definition) plus VARS, as a file of exports
# the server's shell sources: no value appears on a command line.
env_file() { # CONTAINER FILE [NAME=VALUE...]
  local container="$1" file="$2" line
  shift 2
  : >"$file"
  chmod 0600 "$file"
  while IFS= read -r line; do
    [[ -z $line ]] || printf 'export %s=%q\n' "${line%%=*}" "${line#*=}" >>"$file"
  done < <(python -m tests.runtime.rabbitmq_tls env --task-definition "${TREE}/task-definition.json" --container "$container"
    printf '%s\n' "$@")
}

# Starts a node as rabbitmq-stats would start: its view, its user, its environment, the
# environment loader sourced first; EXTRA is passed to `rabbitmq_tls conf`. Sets the
# *_PORT variables and RABBITMQ_GROUP.
start_rabbitmq() { # NAME PASSWORD [EXTRA...]
  local name="$1" password="$2" dir="${WORK}/$1" epmd_port dist_port
  shift 2
  container_root rabbitmq-stats
  mkdir -p "${dir}/home" "${dir}/log"
  AMQPS_PORT="$(free_port)"
  MANAGEMENT_PORT="$(free_port)"
  PLAIN_PORT="$(free_port)"
  dist_port="$(free_port)"
  epmd_port="$(free_port)"
  log "RabbitMQ ${name}: custom.conf as the container has it, with these changes:"
  python -m tests.runtime.rabbitmq_tls conf --source "${VIEW}${RABBITMQ_CONF}" --target "${dir}/rabbitmq.conf" \
    --root "$VIEW" --amqps-port "$AMQPS_PORT" --management-port "$MANAGEMENT_PORT" "$@" >&2
  printf '[rabbitmq_management].\n' >"${dir}/enabled_plugins"
  RABBITMQ_NODE="ce-tls-${name}-$$@localhost"
  env_file rabbitmq-stats "${dir}/env" "MAINTENANCE_PASSWORD=${password}" \
    "RABBITMQ_NODENAME=${RABBITMQ_NODE}" "RABBITMQ_CONFIG_FILE=${dir}/rabbitmq.conf" \
    "RABBITMQ_ADVANCED_CONFIG_FILE=${dir}/advanced.config" "RABBITMQ_CONF_ENV_FILE=${dir}/rabbitmq-env.conf" \
    "RABBITMQ_ENABLED_PLUGINS_FILE=${dir}/enabled_plugins" "RABBITMQ_MNESIA_BASE=${VIEW}/var/lib/rabbitmq/mnesia" \
    "RABBITMQ_LOG_BASE=${dir}/log" "RABBITMQ_LOGS=-" "RABBITMQ_DIST_PORT=${dist_port}" \
    "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1" "RABBITMQ_NODE_PORT=${PLAIN_PORT}" \
    "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}" \
    "ERL_EPMD_ADDRESS=127.0.0.1" "ERL_EPMD_PORT=${epmd_port}" "HOME=${dir}/home"
  chown -R "${VIEW_USER[1]}:${VIEW_USER[3]}" "$dir"
  # The node's own epmd, so none outlives the test.
  start_group "${dir}/epmd.log" setpriv "${VIEW_USER[@]}" -- env -i PATH=/usr/bin:/bin \
    ERL_EPMD_ADDRESS=127.0.0.1 epmd -port "$epmd_port"
  EPMD_GROUP=$STARTED
  listening "$epmd_port" "$EPMD_GROUP" || die "epmd did not start: $(cat "${dir}/epmd.log")"
  # shellcheck disable=SC2016 # expanded by the node's shell
  start_group "${dir}/node.log" setpriv "${VIEW_USER[@]}" -- env -i PATH=/usr/bin:/bin LANG=C.UTF-8 \
    bash -c 'set -a; . "$1"; set +a; . "$2" && exec "$3"' rabbitmq-stats "${dir}/env" "${VIEW}${ENV_LOADER}" \
    "$RABBITMQ_SERVER"
  RABBITMQ_GROUP=$STARTED
  if ! listening "$AMQPS_PORT" "$RABBITMQ_GROUP"; then
    tail -n 40 "${dir}/node.log" >&2
    die "RabbitMQ ${name} did not listen on 127.0.0.1:${AMQPS_PORT} within ${START_SECONDS}s"
  fi
  log "RabbitMQ ${name} listens for AMQPS on 127.0.0.1:${AMQPS_PORT}"
}

# Stops the node and its epmd, and removes the node's files from the rabbitmq-data folder.
stop_rabbitmq() {
  stop_group "$RABBITMQ_GROUP"
  stop_group "$EPMD_GROUP"
  rm -rf "${WORK}/view/rabbitmq-stats/var/lib/rabbitmq/mnesia/${RABBITMQ_NODE}"*
}

# Core's RABBITMQ_CONNECTION_STRING and CA file, derived by the environment loader in
# core's view (container_root core first) with the same MAINTENANCE_PASSWORD; printed as
# two lines (URL, CA path in the container).
core_rabbitmq_client() { # PASSWORD
  env_file core "${WORK}/core.env" "MAINTENANCE_PASSWORD=$1"
  # shellcheck disable=SC2016 # expanded by the inner shell
  env -i PATH=/usr/bin:/bin bash -c 'set -a; . "$1"; set +a; . "$2" &&
    printf "%s\n%s\n" "$RABBITMQ_CONNECTION_STRING" "$CE_TLS_CA_FILE"' core "${WORK}/core.env" "${VIEW}${ENV_LOADER}"
}

# The URL holds a password: it reaches Python in the environment, not on a command line.
amqps_session() { # URL CAFILE
  RABBITMQ_CONNECTION_STRING="$1" python -m tests.runtime.rabbitmq_tls amqps --port "$AMQPS_PORT" --cafile "$2"
}

log_holds() { # FILE TEXT
  grep -qF -- "$2" "$1" || { printf '      no line with %s in %s\n' "$2" "$1"; return 1; }
}

management_tls_verifies() { # CAFILE
  timeout "$CLIENT_SECONDS" openssl s_client -connect "127.0.0.1:${MANAGEMENT_PORT}" -servername localhost -verify_hostname localhost \
    -CAfile "$1" -verify_return_error </dev/null >"${WORK}/management.out" 2>&1 &&
    grep -q '^Verification: OK' "${WORK}/management.out"
}

test_rabbitmq() {
  local password client url cafile ram
  password="$(test_password)"
  start_rabbitmq node "$password"
  ram="$(jq -r '.containerDefinitions[] | select(.name == "rabbitmq-stats") | .environment[]
    | select(.name == "RABBITMQ_RAM_RESOURCES") | .value' "${TREE}/task-definition.json")"
  check "\$(RABBITMQ_RAM_RESOURCES) in custom.conf resolved from the task definition (disk free limit ${ram}MB)" \
    log_holds "${WORK}/node/node.log" "Disk free limit set to ${ram}MB"
  container_root core
  client="$(core_rabbitmq_client "$password")"
  url="${client%%$'\n'*}"
  cafile="${VIEW}${client#*$'\n'}"
  check "core's connection string opens an AMQPS session verified against the generated CA" \
    amqps_session "$url" "$cafile"
  check "a CA that did not sign the broker's certificate fails verification" \
    python -m tests.runtime.rabbitmq_tls refused-by-verification --port "$AMQPS_PORT" --cafile "${WORK}/other-ca.crt"
  check "plain AMQP is refused (listeners.tcp = none)" python -m tests.runtime.rabbitmq_tls plain --port "$PLAIN_PORT"
  check "the management API's TLS verifies against the generated CA for localhost" management_tls_verifies "$cafile"
  stop_rabbitmq
}

plain_accepted() {
  ! python -m tests.runtime.rabbitmq_tls plain --port "$PLAIN_PORT"
}

test_plain_fault() {
  start_rabbitmq planted "$(test_password)" --plant-plain-listener
  check "planted fault caught: without listeners.tcp = none, the plain AMQP check fails" plain_accepted
  stop_rabbitmq
}

# ------------------------------------------------------------------ UI and MongoDB

# An `openssl s_server` on CERT and KEY as the view's user; sets SERVED_PORT and STARTED.
serve_tls() { # NAME CERT KEY
  SERVED_PORT="$(free_port)"
  start_group "${WORK}/$1-server.log" setpriv "${VIEW_USER[@]}" -- openssl s_server -quiet \
    -accept "127.0.0.1:${SERVED_PORT}" -cert "$2" -key "$3"
  listening "$SERVED_PORT" "$STARTED" || die "openssl s_server ($1) did not start: $(cat "${WORK}/$1-server.log")"
}

# s_client's verdict on the server at PORT for HOST against CAFILE; EXPECT is "TLSv1.3" to
# also demand that protocol.
handshake_verifies() { # PORT HOST CAFILE [EXPECT]
  local out="${WORK}/s_client.out"
  timeout "$CLIENT_SECONDS" openssl s_client -connect "127.0.0.1:$1" -servername "$2" -verify_hostname "$2" -CAfile "$3" \
    -verify_return_error </dev/null >"$out" 2>&1 || return 1
  grep -q '^Verification: OK' "$out" || return 1
  [[ -z ${4:-} ]] || grep -q "^New, ${4}," "$out"
}

handshake_refused() { # PORT HOST CAFILE
  ! handshake_verifies "$@"
}

test_ui() {
  container_root ui
  serve_tls ui "${VIEW}${UI_CERT}" "${VIEW}${UI_KEY}"
  check "UI certificate: TLS 1.3 handshake verified against itself (self-signed) for localhost" \
    handshake_verifies "$SERVED_PORT" localhost "${VIEW}${UI_CERT}" TLSv1.3
  check "UI certificate: refused when verified against a different CA" \
    handshake_refused "$SERVED_PORT" localhost "${WORK}/other-ca.crt"
  stop_group "$STARTED"
}

# Only the PEM headers are read, never the key.
pem_order_is_certificate_then_key() { # PEM
  local blocks want='^CERTIFICATE,([A-Z]+ )?PRIVATE KEY,$'
  blocks="$(sed -n 's/^-----BEGIN \(.*\)-----$/\1/p' "$1" | tr '\n' ',')"
  [[ $blocks =~ $want ]] || { printf '      PEM blocks: %s\n' "$blocks"; return 1; }
}

key_matches_certificate() { # PEM
  [[ "$(as_view_user openssl x509 -in "$1" -noout -pubkey)" == "$(as_view_user openssl pkey -in "$1" -pubout)" ]]
}

chain_verifies() { # PEM CA PURPOSE HOST...
  local pem="$1" ca="$2" purpose="$3" host
  shift 3
  for host in "$@"; do
    if [[ $host =~ ^[0-9.]+$ ]]; then
      as_view_user openssl verify -CAfile "$ca" -purpose "$purpose" -verify_ip "$host" "$pem" >/dev/null || return 1
    else
      as_view_user openssl verify -CAfile "$ca" -purpose "$purpose" -verify_hostname "$host" "$pem" >/dev/null || return 1
    fi
  done
}

test_mongodb_pem() {
  local pem ca
  container_root mongodb-primary
  pem="${VIEW}${MONGODB_PEM}"
  ca="${VIEW}${MONGODB_CA}"
  check "MongoDB PEM holds the certificate, then its private key" pem_order_is_certificate_then_key "$pem"
  check "MongoDB PEM's key matches its certificate" key_matches_certificate "$pem"
  check "MongoDB PEM verifies against the CA as a server for mongodb-primary, localhost, 127.0.0.1" \
    chain_verifies "$pem" "$ca" sslserver mongodb-primary localhost 127.0.0.1
  check "MongoDB PEM verifies as a client certificate (core presents it to mongod)" \
    chain_verifies "$pem" "$ca" sslclient localhost
  serve_tls mongodb "$pem" "$pem"
  check "served as mongod serves it, the PEM verifies against the CA for mongodb-primary (TLS 1.3)" \
    handshake_verifies "$SERVED_PORT" mongodb-primary "$ca" TLSv1.3
  stop_group "$STARTED"
}

# Expected to fail: what the check says about the planted fault goes nowhere.
fails() { ! "$@" >/dev/null 2>&1; }

# Each PEM check must fail on a planted copy: the key first, another key, another CA.
test_mongodb_pem_faults() {
  local pem planted="${WORK}/planted-pem" cert_block key_block
  container_root mongodb-primary
  pem="${VIEW}${MONGODB_PEM}"
  cert_block='/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p'
  key_block='/-----BEGIN [A-Z ]*PRIVATE KEY-----/,/-----END [A-Z ]*PRIVATE KEY-----/p'
  mkdir -m 0700 "$planted"
  (
    umask 077
    { sed -n "$key_block" "$pem"; sed -n "$cert_block" "$pem"; } >"${planted}/key-first.pem"
    { sed -n "$cert_block" "$pem"; cat "${WORK}/other-ca.key"; } >"${planted}/foreign-key.pem"
  )
  chown -R "${VIEW_USER[1]}:${VIEW_USER[3]}" "$planted"
  check "planted fault caught: a PEM with its key first fails the order check" \
    fails pem_order_is_certificate_then_key "${planted}/key-first.pem"
  check "planted fault caught: a PEM with another key fails the key match" \
    fails key_matches_certificate "${planted}/foreign-key.pem"
  check "planted fault caught: against a different CA the chain check fails" \
    fails chain_verifies "$pem" "${WORK}/other-ca.crt" sslserver mongodb-primary
}

main() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -h | --help) usage; exit 0 ;;
      --tree) TREE="$(option_value "$@")"; shift 2 ;;
      *) usage_error "unknown option: $1" ;;
    esac
  done
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  setup
  test_rabbitmq
  test_plain_fault
  test_ui
  test_mongodb_pem
  test_mongodb_pem_faults
  checks_summary tls-endpoints
}

main "$@"
