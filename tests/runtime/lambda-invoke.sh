#!/usr/bin/env bash
# Runs the EFS-tree function in the real Lambda runtime loop (cargo-lambda's emulator) and
# checks what it tells CloudFormation: each fixture event gets a fresh pre-signed PUT URL
# on a local signature-checking S3 server (sigcheck-s3 serve), is invoked with
# `cargo lambda invoke --data-file`, and its response object is read back and checked,
# together with the tree on disk. Everything binds 127.0.0.1 and is stopped on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/lib/tools.sh
source "${ROOT}/scripts/lib/tools.sh"
# shellcheck source=tests/lib/checks.sh
source "${ROOT}/tests/lib/checks.sh"

FIXTURES="${ROOT}/tests/fixtures/events"
STARTUP_TIMEOUT=300 # seconds for the emulator to come up (it may have to compile)
WORK=""
PIDS=()
EFS=""
SIGCHECK_S3=""
S3_ROOT=""
S3_ENDPOINT=""
INVOKE_PORT=""
CREATED_ID=""

usage() {
  cat <<USAGE
Usage: tests/runtime/lambda-invoke.sh [--help]

Invokes the function through 'cargo lambda watch' with the events in
tests/fixtures/events (Create, Update, Delete, an invalid Create and the Delete that
follows it), delivering responses to a local S3 server that verifies pre-signed URLs,
and checks every response and the directory tree. Exits non-zero if any check fails.
Needs root for the chown checks (as in CI). Prints the time each invocation took.
USAGE
}

parse_args() {
  case "${1:-}" in
    "") ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option: $1" ;;
  esac
}

cleanup() {
  local status=$? pid
  if [[ $status -ne 0 && -f "${WORK}/watch.log" ]]; then
    printf '%s\n' "--- last lines of the emulator and function log ---" >&2
    tail -n 40 "${WORK}/watch.log" >&2
  fi
  for pid in "${PIDS[@]}"; do
    # Each background job leads its own process group (setsid): end the whole group.
    kill -TERM -- "-${pid}" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  [[ -z "$WORK" ]] || rm -rf "$WORK"
}

build() {
  log "building the function and sigcheck-s3"
  cargo build --quiet -p sigcheck-s3 -p ce-efs-tree --bin sigcheck-s3 --bin bootstrap
  SIGCHECK_S3="${ROOT}/target/debug/sigcheck-s3"
}

start_s3() {
  S3_ROOT="${WORK}/s3"
  mkdir -p "$S3_ROOT"
  setsid "$SIGCHECK_S3" serve --root "$S3_ROOT" >"${WORK}/s3.out" 2>"${WORK}/s3.err" &
  PIDS+=("$!")
  local waited=0
  until [[ -s "${WORK}/s3.out" ]]; do
    ((waited++ < 100)) || die "sigcheck-s3 serve did not start: $(cat "${WORK}/s3.err")"
    sleep 0.1
  done
  S3_ENDPOINT="$(head -n1 "${WORK}/s3.out")"
  log "S3 server at ${S3_ENDPOINT}"
}

start_emulator() {
  EFS="${WORK}/efs"
  mkdir -p "$EFS"
  INVOKE_PORT="$(free_port)"
  (
    cd "$ROOT"
    exec setsid cargo lambda watch --quiet --ignore-changes --timeout 60 \
      --invoke-address 127.0.0.1 --invoke-port "$INVOKE_PORT" \
      --env-var "EFS_MOUNT_PATH=${EFS}" \
      --env-var AWS_LAMBDA_LOG_FORMAT=JSON --env-var AWS_LAMBDA_LOG_LEVEL=INFO \
      -p ce-efs-tree --bin bootstrap
  ) >"${WORK}/watch.log" 2>&1 &
  PIDS+=("$!")
  local started=$SECONDS
  # A plain TCP connect: any HTTP request to the emulator would invoke the function.
  until (: <"/dev/tcp/127.0.0.1/${INVOKE_PORT}") 2>/dev/null; do
    ((SECONDS - started < STARTUP_TIMEOUT)) || die "emulator did not start: $(tail -n 20 "${WORK}/watch.log")"
    sleep 0.2
  done
  log "cargo lambda watch on 127.0.0.1:${INVOKE_PORT}, EFS_MOUNT_PATH=${EFS}"
}

# invoke FIXTURE PHYSICAL_ID: renders a fresh ResponseURL (and the PhysicalResourceId,
# if the event has one) into the fixture, invokes it, and prints the response object.
invoke() {
  local fixture="$1" physical_id="$2" request_id key url event started elapsed_ms
  request_id="$(jq -er .RequestId "${FIXTURES}/${fixture}")"
  key="$("$SIGCHECK_S3" key "$request_id")"
  url="$("$SIGCHECK_S3" presign --v4 --endpoint "$S3_ENDPOINT" --key "$key" --ttl 300)"
  event="${WORK}/${fixture}"
  jq --arg url "$url" --arg id "$physical_id" \
    '.ResponseURL = $url | if has("PhysicalResourceId") then .PhysicalResourceId = $id else . end' \
    "${FIXTURES}/${fixture}" >"$event"
  started="$(date +%s%N)"
  cargo lambda invoke --invoke-address 127.0.0.1 --invoke-port "$INVOKE_PORT" \
    --data-file "$event" bootstrap >"${WORK}/${fixture}.invoke" 2>&1 ||
    die "invoke ${fixture} failed: $(cat "${WORK}/${fixture}.invoke")"
  elapsed_ms=$((($(date +%s%N) - started) / 1000000))
  log "${fixture}: answered in ${elapsed_ms} ms (invoke to response stored)"
  local object
  object="${S3_ROOT}/$("$SIGCHECK_S3" bucket)/${key}"
  [[ -f "$object" ]] || die "${fixture}: no response object was stored"
  cat "$object"
}

field_is() { # field_is JSON FILTER EXPECTED
  [[ "$(jq -r "$2" <<<"$1")" == "$3" ]]
}

not_in_log() { # not_in_log TEXT
  ! grep -qF "$1" "${WORK}/watch.log"
}

mode_owner_is() { # mode_owner_is PATH MODE UID:GID
  [[ "$(stat -c '%a %u:%g' "$1")" == "$2 $3" ]]
}

check_create() {
  log "Create"
  local response
  response="$(invoke create.json "")"
  check "Create answers SUCCESS" field_is "$response" .Status SUCCESS
  check "Create id is deterministic" field_is "$response" '.PhysicalResourceId | test("^ce-efs-tree-[0-9a-f]{16}$")' true
  check "Create reports 7 directories created" field_is "$response" .Data.DirectoriesCreated 7
  check "Create reports 8 files written (custom.conf, 3 keys, 3 certificates, 1 PEM)" field_is "$response" .Data.FilesWritten 8
  check "Create reports the root" field_is "$response" .Data.Root "$EFS"
  check "data/mongo-data is 750 1001:1001" mode_owner_is "${EFS}/data/mongo-data" 750 1001:1001
  check "data is 755 0:0" mode_owner_is "${EFS}/data" 755 0:0
  check "custom.conf is 640 1001:1001" mode_owner_is "${EFS}/data/rabbitmq/custom.conf" 640 1001:1001
  check "custom.conf is seeded" grep -qx 'consumer_timeout = 86400000' "${EFS}/data/rabbitmq/custom.conf"
  check_certificates "$response" Created
  CREATED_ID="$(jq -r .PhysicalResourceId <<<"$response")"
}

# check_certificates RESPONSE STATUS: the Data of the three certificates, the chain, modes.
check_certificates() {
  local response="$1" status="$2" tls="${EFS}/data/ssl_certs/mongodb_rabbitmq_certs" name
  for name in InternalCa InternalTls Ui; do
    check "${name} is ${status}" field_is "$response" ".Data.${name}Status" "$status"
    check "${name}NotAfter is RFC 3339 UTC" field_is "$response" \
      ".Data.${name}NotAfter | test(\"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$\")" true
  done
  check "the internal certificate verifies against the CA" \
    chain_verifies "${tls}/tls_cert_ca.crt" "${tls}/tls_cert.crt"
  check "the CA key is 600 0:0 outside the certificates' folder" mode_owner_is "${EFS}/ca/tls_cert_ca.key" 600 0:0
  check "the internal key is 600 1001:1001" mode_owner_is "${tls}/tls_cert_key.key" 600 1001:1001
  check "the MongoDB PEM is 600 1001:1001" mode_owner_is "${tls}/tls_cert_key.pem" 600 1001:1001
  check "the UI key is 600 1001:1001" mode_owner_is "${EFS}/data/ssl_certs/cte_cert_key.key" 600 1001:1001
  check "no response holds a key" not_in_text "$response" 'PRIVATE KEY'
}

chain_verifies() { # chain_verifies CA_FILE CERT_FILE
  openssl verify -CAfile "$1" "$2" >/dev/null
}

not_in_text() { # not_in_text TEXT NEEDLE
  [[ "$1" != *"$2"* ]]
}

check_update() {
  log "Update (after an operator edited custom.conf)"
  printf 'edited by an operator\n' >"${EFS}/data/rabbitmq/custom.conf"
  local response
  response="$(invoke update.json "$CREATED_ID")"
  check "Update answers SUCCESS" field_is "$response" .Status SUCCESS
  check "Update echoes the id" field_is "$response" .PhysicalResourceId "$CREATED_ID"
  check "Update creates only data/logs" field_is "$response" .Data.DirectoriesCreated 1
  check "Update writes no file" field_is "$response" .Data.FilesWritten 0
  check "data/logs is 750 1001:1001" mode_owner_is "${EFS}/data/logs" 750 1001:1001
  check "the edited custom.conf is kept" grep -qx 'edited by an operator' "${EFS}/data/rabbitmq/custom.conf"
  check_certificates "$response" Unchanged
}

check_invalid_create() {
  log "Create with invalid properties, then the Delete of its rollback"
  local response failed_id
  response="$(invoke create-invalid-properties.json "")"
  check "invalid Create answers FAILED" field_is "$response" .Status FAILED
  check "the Reason names the entry" field_is "$response" '.Reason | contains("Directories[1].Mode")' true
  check "FAILED still carries an id" field_is "$response" '.PhysicalResourceId | startswith("ce-efs-tree-")' true
  check "nothing of the invalid tree was written" test ! -e "${EFS}/rejected"
  failed_id="$(jq -r .PhysicalResourceId <<<"$response")"
  response="$(invoke delete-after-failed-create.json "$failed_id")"
  check "Delete after a failed Create answers SUCCESS" field_is "$response" .Status SUCCESS
  check "that Delete echoes the failed Create's id" field_is "$response" .PhysicalResourceId "$failed_id"
}

check_delete() {
  log "Delete"
  local response
  response="$(invoke delete.json "$CREATED_ID")"
  check "Delete answers SUCCESS" field_is "$response" .Status SUCCESS
  check "Delete echoes the id" field_is "$response" .PhysicalResourceId "$CREATED_ID"
  check "Delete retains the tree" test -f "${EFS}/data/rabbitmq/custom.conf"
}

# The RequestType of every "response delivered" log line of the function, in order.
delivered_types() {
  jq -Rr 'fromjson? | select(.fields.message == "response delivered") | .span.RequestType' \
    "${WORK}/watch.log" | paste -sd' ' -
}

check_logs() {
  log "function logs"
  check "one delivery per invocation, logged within its RequestType span" \
    test "$(delivered_types)" == "Create Update Create Delete Delete"
  check "log lines carry RequestType, RequestId and LogicalResourceId" test "$(jq -Rr 'fromjson?
    | select(.span.RequestId == "6f7c2a10-1b2c-4d3e-8f4a-5b6c7d8e9f01")
    | [.span.RequestType, .span.LogicalResourceId] | join(" ")' "${WORK}/watch.log" | sort -u)" == "Create EfsTree"
  check "no log line holds a signature" not_in_log 'X-Amz-Signature'
  check "no log line holds a private key" not_in_log 'PRIVATE KEY'
}

main() {
  parse_args "$@"
  [[ $(id -u) -eq 0 ]] || die "run as root: the checks chown to 1001 as CloudFormation's Lambda would"
  activate_tools
  cd "$ROOT"
  WORK="$(mktemp -d)"
  trap cleanup EXIT
  build
  start_s3
  start_emulator
  check_create
  check_update
  check_invalid_create
  check_delete
  check_logs
  checks_summary lambda-invoke
}

main "$@"
