#!/usr/bin/env bats
# The shell the task runs, taken from where it is deployed: the environment loader and the
# MongoDB scripts the template seeds on EFS (EfsTree.Files) and the seed-plugins container's
# command (cfn/CloudExchangeTaskDefinition.json). The seeded files are copied, with the
# template's modes and owner 1001:1001, into a tree of their own with their /ce/... paths
# pointed at it, and run as uid/gid 1001 as the access points run them (root's override would
# hide permission faults), with fakes for the images' programs (docker-entrypoint.sh, mongod,
# mongosh) that act like the servers they stand for. Checks: what the loader exports and that
# it stays silent; that no password reaches a command line; that SIGTERM reaches mongod;
# MongoDB's first start (root made on our own localhost-only mongod, recovery of a start cut
# short, the helper never on a temporary server, mongosh's HOME off the data directory); that
# the seed command runs.

# status and output are set by bats' run.
# shellcheck disable=SC2154
bats_require_minimum_version 1.5.0

# shellcheck source=tests/scripts/script-tools.bash
source "${BATS_TEST_DIRNAME}/script-tools.bash"

setup_file() {
  script_tools_setup_file
  # The seeded scripts as the template declares them, below their EFS paths, and their modes.
  python - "${ROOT}/cfn/CloudExchangeTemplate.yaml" "${BATS_FILE_TMPDIR}/seeded" <<'PY'
import sys
from pathlib import Path
from cfnlint.decode import decode
template, errors = decode(sys.argv[1])
assert not errors, errors
for entry in template["Resources"]["EfsTree"]["Properties"]["Files"]:
    if isinstance(entry, dict) and entry.get("Path", "").endswith((".sh", ".py")):
        target = Path(sys.argv[2], entry["Path"])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(entry["Content"])
        Path(f"{target}.mode").write_text(entry["Mode"])
PY
}

setup() {
  # Outside bats' own temporary folder, which only root may enter: uid 1001 runs this tree.
  WORK="$(mktemp -d /tmp/ce-seeded.XXXXXX)"
  chmod 0755 "$WORK"
  CE="${WORK}/ce"
  mkdir -p "${CE}/env" "${CE}/database-init" "${WORK}/bin" "${WORK}/state" "${WORK}/db"
  chmod 0740 "${WORK}/db"
  seed_file data/env/ce-env.sh "${CE}/env/ce-env.sh"
  local name
  for name in mongo-common.sh mongo-start.sh mongo-init.sh mongo-autocompact.sh; do
    seed_file "data/database-init/${name}" "${CE}/database-init/${name}"
  done
  chown -R 1001:1001 "$WORK"
}

teardown() {
  # The process group of a mongo-start.sh the test left running (see start_mongo).
  if [[ -s ${WORK}/pgid ]]; then
    kill -TERM -- "-$(<"${WORK}/pgid")" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}

# Copies the seeded file at PATH to DEST with the template's mode, /ce/ pointed at $CE.
seed_file() { # PATH DEST
  sed "s#/ce/#${CE}/#g" "${BATS_FILE_TMPDIR}/seeded/$1" >"$2"
  chmod "$(<"${BATS_FILE_TMPDIR}/seeded/$1.mode")" "$2"
  [[ -s $2 ]]
}

# Runs a command as the access points' uid/gid 1001, without supplementary groups.
as_ce() {
  setpriv --reuid 1001 --regid 1001 --clear-groups -- "$@"
}

# True when the environment the last shell printed holds LINE exactly.
has_line() { # LINE
  grep -qxF -- "$1" "${BATS_TEST_TMPDIR}/env" || { printf 'no line %s\n' "$1" >&2; return 1; }
}

# Fakes of the images' programs on PATH. They log their command lines to $FAKE_LOG and share
# which server listens in $FAKE_STATE/server: temp-ours (mongo-start.sh's temporary mongod),
# temp-image (the official entry point's temporary one, which it runs only for a data
# directory without WiredTiger files) or auth (the final mongod). mongosh fails when nothing
# listens; on the final server, logging in as a user that does not exist fails, as in
# MongoDB. $FAKE_STATE/root exists once the root user does.
fake_programs() {
  write_fake mongod <<'EOF'
#!/bin/bash
printf 'mongod %s\n' "$*" >>"${FAKE_LOG}"
[[ -z ${FAKE_MONGOD_FAIL:-} ]] || exit 1
touch "${CE_MONGO_DBPATH}/WiredTiger"
echo temp-ours >"${FAKE_STATE}/server"
trap 'rm -f "${FAKE_STATE}/server"; printf "temporary mongod got TERM\n" >>"${FAKE_LOG}"; exit 0' TERM
while :; do sleep 0.1; done
EOF
  write_fake docker-entrypoint.sh <<'EOF'
#!/bin/bash
printf '%s\n' "docker-entrypoint.sh $*" >>"${FAKE_LOG}"
if [[ ! -e ${CE_MONGO_DBPATH}/WiredTiger ]]; then
  echo temp-image >"${FAKE_STATE}/server"
  touch "${CE_MONGO_DBPATH}/WiredTiger"
  sleep 1
  touch "${FAKE_STATE}/root"
fi
echo auth >"${FAKE_STATE}/server"
trap 'rm -f "${FAKE_STATE}/server"; printf "mongod got TERM\n" >>"${FAKE_LOG}"; exit 0' TERM
while :; do sleep 0.1; done
EOF
  write_fake mongosh <<'EOF'
#!/bin/bash
server="$(cat "${FAKE_STATE}/server" 2>/dev/null || true)"
js="" prev=""
for arg in "$@"; do
  [[ $prev != --eval ]] || js=$arg
  prev=$arg
done
printf 'mongosh server=%s HOME=%s %s\n' "${server:-none}" "$HOME" "$(printf '%s' "$*" | tr '\n' ' ')" >>"${FAKE_LOG}"
case $server in
  temp-*)
    [[ $js != *'role: "root"'* ]] || touch "${FAKE_STATE}/root"
    exit 0 ;;
  auth)
    if [[ $js == *'.auth('* && ! -e ${FAKE_STATE}/root ]]; then
      echo 'MongoServerError: Authentication failed.' >&2
      exit 1
    fi
    exit 0 ;;
  *) exit 1 ;;
esac
EOF
  export FAKE_LOG="${WORK}/state/argv" FAKE_STATE="${WORK}/state" PATH="${WORK}/bin:${PATH}"
  export CE_MONGO_DBPATH="${WORK}/db" CE_MONGO_READY="${WORK}/state/ready"
  touch "$FAKE_LOG"
  chown -R 1001:1001 "${WORK}/state"
}

# Writes standard input to the fake program NAME in $WORK/bin (never anywhere else).
write_fake() { # NAME
  [[ -d ${WORK}/bin ]] || return 1
  cat >"${WORK}/bin/$1"
  chmod 0755 "${WORK}/bin/$1"
}

# Starts mongo-start.sh as uid 1001 in a process group of its own (teardown ends it).
start_mongo() { # [MONGOD ARGUMENT...]
  setsid setpriv --reuid 1001 --regid 1001 --clear-groups -- env MAINTENANCE_PASSWORD=Secret0Value \
    MONGO_INIT_WAIT_SECONDS=20 "${CE}/database-init/mongo-start.sh" "$@" >"${WORK}/log" 2>&1 &
  MONGO_PID=$!
  echo "$MONGO_PID" >"${WORK}/pgid"
}

# Waits (10 s at most) until the container's log holds TEXT.
wait_for_log() { # TEXT
  local tries=0
  until grep -qF -- "$1" "${WORK}/log"; do
    tries=$((tries + 1))
    [[ $tries -lt 100 ]] || { cat "${WORK}/log" "$FAKE_LOG" >&2; return 1; }
    sleep 0.1
  done
}

# Fails when the helper's JavaScript (the application user, autoCompact) reached a temporary
# server, or when mongosh ran with a HOME other than /tmp (the image's is /data/db).
helper_only_on_final_server() {
  if grep -E '^mongosh server=temp-' "$FAKE_LOG" | grep -E 'MONGODB_USERNAME|autoCompact'; then
    echo 'the helper talked to a temporary mongod' >&2
    return 1
  fi
  if grep '^mongosh ' "$FAKE_LOG" | grep -v '^mongosh server=[a-z-]* HOME=/tmp '; then
    echo 'mongosh ran with a HOME other than /tmp' >&2
    return 1
  fi
}

@test "ce-env.sh derives CE's variables from MAINTENANCE_PASSWORD in sh and bash, silently" {
  local password='p@ss:w/rd é+%~' shell expected
  expected="$(python -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$password")"
  for shell in sh bash; do
    # Sourced twice: the second time must change nothing.
    as_ce env -i PATH="$PATH" MAINTENANCE_PASSWORD="$password" "$shell" -c \
      "set -eu; . '${CE}/env/ce-env.sh' >'${WORK}/out' 2>&1; . '${CE}/env/ce-env.sh' >>'${WORK}/out' 2>&1; env" \
      >"${BATS_TEST_TMPDIR}/env"
    [ ! -s "${WORK}/out" ]
    # The form CE's setup stores and load_env.sh exports: wrapped in single quotes.
    has_line "MAINTENANCE_PASSWORD='${password}'"
    has_line "CE_SSL_CERTIFICATE_PASSWORD="
    has_line "MAINTENANCE_PASSWORD_ESCAPED=${expected}"
    for name in RABBITMQ_DEFAULT_PASS MONGO_INITDB_ROOT_PASSWORD MONGODB_PASSWORD; do
      has_line "${name}=${password}"
    done
    has_line "MONGO_CONNECTION_STRING=mongodb://cteadmin:${expected}@localhost:27017/cte?tls=true&tlsCAFile=/opt/certs/mongodb_rabbitmq_certs/tls_cert_ca.crt&tlsCertificateKeyFile=/opt/certs/mongodb_rabbitmq_certs/tls_cert_key.pem"
    has_line "RABBITMQ_CONNECTION_STRING=amqps://user:${expected}@localhost"
  done
}

@test "ce-env.sh exports no credential without MAINTENANCE_PASSWORD (the ui container), and an empty CE_SSL_CERTIFICATE_PASSWORD" {
  run --separate-stderr as_ce env -i PATH="$PATH" JWT_SECRET=j sh -c "set -eu; . '${CE}/env/ce-env.sh'; env"
  [ "$status" -eq 0 ]
  [ -z "$stderr" ]
  local credentials
  credentials="$(grep -E 'PASS|CONNECTION_STRING' <<<"$output" || true)"
  [ "$credentials" = "CE_SSL_CERTIFICATE_PASSWORD=" ]
  [[ $output == *"JWT_SECRET=j"* ]]
  # An injected one is kept as it is.
  run --separate-stderr as_ce env -i PATH="$PATH" CE_SSL_CERTIFICATE_PASSWORD=k sh -c "set -eu; . '${CE}/env/ce-env.sh'; env"
  [[ $output == *"CE_SSL_CERTIFICATE_PASSWORD=k"* ]]
}

@test "mongo-start.sh keeps passwords off command lines, forwards SIGTERM to mongod and exits with its status" {
  fake_programs
  start_mongo --quiet
  wait_for_log autoCompact
  [ -f "$CE_MONGO_READY" ]
  kill -TERM "$MONGO_PID"
  local code=0
  wait "$MONGO_PID" || code=$?
  [ "$code" -eq 0 ]
  grep -qx 'mongod got TERM' "$FAKE_LOG"
  grep -q -- '^docker-entrypoint.sh mongod --auth --tlsMode preferTLS .*--tlsDisabledProtocols TLS1_0,TLS1_1 .* --quiet$' "$FAKE_LOG"
  [ "$(grep -c '^mongosh .*--tls ' "$FAKE_LOG")" -ge 3 ]
  run ! grep -q Secret0Value "$FAKE_LOG" "${WORK}/log"
  helper_only_on_final_server
}

@test "mongo-start.sh first start: root is made on its own localhost-only mongod before the image's entry point runs" {
  fake_programs
  start_mongo
  wait_for_log autoCompact
  [ -e "${CE_MONGO_DBPATH}/.ce-root-user-ready" ]
  [ -e "${FAKE_STATE}/root" ]
  # The temporary server: localhost only, no --auth, stopped before the entry point starts.
  grep -q -- "^mongod --dbpath ${CE_MONGO_DBPATH} --bind_ip 127.0.0.1 --port 27017 --tlsMode preferTLS " "$FAKE_LOG"
  run ! grep -q -- '^mongod .*--auth' "$FAKE_LOG"
  [ "$(grep -n 'temporary mongod got TERM' "$FAKE_LOG" | cut -d: -f1)" -lt \
    "$(grep -n '^docker-entrypoint.sh' "$FAKE_LOG" | cut -d: -f1)" ]
  # The image's entry point found WiredTiger files, so it ran no temporary server of its own.
  run ! grep -q 'server=temp-image' "$FAKE_LOG"
  helper_only_on_final_server
}

@test "mongo-start.sh recovers a first start cut short after WiredTiger files exist but before root" {
  fake_programs
  touch "${CE_MONGO_DBPATH}/WiredTiger"
  start_mongo
  wait_for_log autoCompact
  [ -f "$CE_MONGO_READY" ]
  [ -e "${FAKE_STATE}/root" ]
  [ -e "${CE_MONGO_DBPATH}/.ce-root-user-ready" ]
  helper_only_on_final_server
}

@test "mongo-start.sh with its marker runs no temporary mongod" {
  fake_programs
  touch "${CE_MONGO_DBPATH}/WiredTiger" "${CE_MONGO_DBPATH}/.ce-root-user-ready" "${FAKE_STATE}/root"
  start_mongo
  wait_for_log autoCompact
  run ! grep -q '^mongod ' "$FAKE_LOG"
  helper_only_on_final_server
}

@test "mongo-start.sh writes no marker and stops when its temporary mongod dies or the data directory lost its files" {
  fake_programs
  run as_ce env MAINTENANCE_PASSWORD=x FAKE_MONGOD_FAIL=1 "${CE}/database-init/mongo-start.sh"
  [ "$status" -eq 1 ]
  [[ $output == *"temporary mongod exited"* ]]
  [ ! -e "${CE_MONGO_DBPATH}/.ce-root-user-ready" ]
  run ! grep -q '^docker-entrypoint.sh' "$FAKE_LOG"
  # A marker without WiredTiger files: the image's entry point would initialise it itself.
  touch "${CE_MONGO_DBPATH}/.ce-root-user-ready"
  run as_ce env MAINTENANCE_PASSWORD=x "${CE}/database-init/mongo-start.sh"
  [ "$status" -eq 1 ]
  [[ $output == *"refusing to let the image's entry point initialise it"* ]]
  run ! grep -q '^docker-entrypoint.sh' "$FAKE_LOG"
}

@test "mongo-start.sh refuses to start without MAINTENANCE_PASSWORD" {
  fake_programs
  run as_ce env -u MAINTENANCE_PASSWORD "${CE}/database-init/mongo-start.sh"
  [ "$status" -eq 1 ]
  [[ $output == *"MAINTENANCE_PASSWORD is not set"* ]]
  [ ! -s "$FAKE_LOG" ]
}

@test "mongo-autocompact.sh puts only a number and a boolean into its JavaScript" {
  fake_programs
  run as_ce env MONGO_INITDB_ROOT_PASSWORD=x MONGODB_AUTOCOMPACT_FREE_SPACE_TARGET_MB='1; db.dropDatabase()' \
    "${CE}/database-init/mongo-autocompact.sh"
  [ "$status" -eq 2 ]
  [[ $output == *"must be a number of MB"* ]]
  run as_ce env MONGO_INITDB_ROOT_PASSWORD=x MONGODB_AUTOCOMPACT_RUN_ONCE=maybe "${CE}/database-init/mongo-autocompact.sh"
  [ "$status" -eq 2 ]
  run as_ce env MONGO_INITDB_ROOT_PASSWORD=x MONGODB_AUTOCOMPACT_ENABLED=false "${CE}/database-init/mongo-autocompact.sh"
  [ "$status" -eq 0 ]
  [[ $output == *"autoCompact stays off"* ]]
  [ ! -s "$FAKE_LOG" ]
}

@test "seed-plugins runs the task definition's command as uid 1001: re-seeds over 0444 packs, never custom_plugins" {
  # The seeder's own tests are tests/seeder/; this runs the container's command as written.
  local work image efs arg
  local -a command=()
  work="$(mktemp -d)"
  chmod 0755 "$work"
  image="${work}/image" efs="${work}/efs"
  mkdir -p "${image}/plugins/netskope" "${image}/plugins/custom_plugins" "${image}/repos/Default/.git/objects/pack" \
    "${efs}/plugins/custom_plugins" "${efs}/repos" "${work}/env"
  cp "${BATS_FILE_TMPDIR}/seeded/data/env/ce-seed.py" "${work}/env/"
  chmod -R a+rX "$work"
  echo v1 >"${image}/plugins/netskope/main.py"
  echo image >"${image}/plugins/custom_plugins/x.py"
  echo pack1 >"${image}/repos/Default/.git/objects/pack/pack-1.pack"
  chmod 0444 "${image}/repos/Default/.git/objects/pack/pack-1.pack"
  echo mine >"${efs}/plugins/custom_plugins/mine.py"
  chown -R 1001:1001 "$efs"
  while IFS= read -r arg; do
    arg="${arg//\/opt\/netskope\//${image}/}" arg="${arg//\/ce\/seed\//${efs}/}"
    command+=("${arg//\/ce\/env\//${work}/env/}")
  done < <(jq -r '.containerDefinitions[] | select(.name == "seed-plugins") | .entryPoint[]' \
    "${ROOT}/cfn/CloudExchangeTaskDefinition.json")

  run setpriv --reuid 1001 --regid 1001 --clear-groups -- env -i PATH=/usr/bin:/bin CE_SEED_IMAGE=core:1 "${command[@]}"
  [ "$status" -eq 0 ]
  [ "$(cat "${efs}/plugins/netskope/main.py")" = v1 ]
  [ "$(cat "${efs}/repos/.ce-seeded-from")" = core:1 ]
  [ ! -e "${efs}/plugins/custom_plugins/x.py" ]

  # A new image id with new pack content under the same read-only name (issue 15, item 1).
  chmod 0644 "${image}/repos/Default/.git/objects/pack/pack-1.pack"
  echo pack2 >"${image}/repos/Default/.git/objects/pack/pack-1.pack"
  chmod 0444 "${image}/repos/Default/.git/objects/pack/pack-1.pack"
  echo v2 >"${image}/plugins/netskope/main.py"
  run setpriv --reuid 1001 --regid 1001 --clear-groups -- env -i PATH=/usr/bin:/bin CE_SEED_IMAGE=core:2 "${command[@]}"
  [ "$status" -eq 0 ]
  [ "$(cat "${efs}/repos/Default/.git/objects/pack/pack-1.pack")" = pack2 ]
  [ "$(stat -c %a "${efs}/repos/Default/.git/objects/pack/pack-1.pack")" = 444 ]
  [ "$(cat "${efs}/plugins/netskope/main.py")" = v2 ]
  [ "$(cat "${efs}/plugins/custom_plugins/mine.py")" = mine ]
  rm -rf "$work"
}
