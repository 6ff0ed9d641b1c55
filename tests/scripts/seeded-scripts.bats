#!/usr/bin/env bats
# The shell the task runs, taken from where it is deployed: the environment loader and the
# MongoDB scripts the template seeds on EFS (EfsTree.Files) and the seed-plugins container's
# command (cfn/CloudExchangeTaskDefinition.json). Each runs here with fakes for the
# images' programs (docker-entrypoint.sh, mongosh), its /ce/... paths pointed at a
# temporary folder. Checks: what the loader exports and that it stays silent; that no
# password reaches a command line; that SIGTERM reaches mongod; that the seed command runs.

# status and output are set by bats' run.
# shellcheck disable=SC2154
bats_require_minimum_version 1.5.0

setup_file() {
  ROOT="$(cd "${BATS_TEST_DIRNAME}/../.." && pwd)"
  # shellcheck source=scripts/lib/tools.sh
  source "${ROOT}/scripts/lib/tools.sh"
  activate_tools
  export ROOT PATH
  # The seeded scripts as the template declares them, below their EFS paths.
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
PY
}

setup() {
  CE="${BATS_TEST_TMPDIR}/ce"
  mkdir -p "${CE}/env" "${CE}/database-init" "${BATS_TEST_TMPDIR}/bin"
  seed_file data/env/ce-env.sh "${CE}/env/ce-env.sh"
  local name
  for name in mongo-common.sh mongo-start.sh mongo-init.sh mongo-autocompact.sh; do
    seed_file "data/database-init/${name}" "${CE}/database-init/${name}"
  done
  chmod 0755 "${CE}"/database-init/*.sh
}

# Copies the seeded file at PATH to DEST, with /ce/ pointed at $CE.
seed_file() { # PATH DEST
  sed "s#/ce/#${CE}/#g" "${BATS_FILE_TMPDIR}/seeded/$1" >"$2"
  [[ -s $2 ]]
}

# True when the environment the last shell printed holds LINE exactly.
has_line() { # LINE
  grep -qxF -- "$1" "${BATS_TEST_TMPDIR}/env" || { printf 'no line %s\n' "$1" >&2; return 1; }
}

# Fake programs on PATH that log their command lines to $BATS_TEST_TMPDIR/argv.
fake_programs() {
  cat >"${BATS_TEST_TMPDIR}/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/bash
printf '%s\n' "docker-entrypoint.sh $*" >>"${FAKE_LOG}"
trap 'printf "mongod got TERM\n" >>"${FAKE_LOG}"; exit 0' TERM
while :; do sleep 0.1; done
EOF
  cat >"${BATS_TEST_TMPDIR}/bin/mongosh" <<'EOF'
#!/bin/bash
printf '%s\n' "mongosh $*" >>"${FAKE_LOG}"
EOF
  chmod 0755 "${BATS_TEST_TMPDIR}"/bin/*
  export FAKE_LOG="${BATS_TEST_TMPDIR}/argv" PATH="${BATS_TEST_TMPDIR}/bin:${PATH}"
}

@test "ce-env.sh derives CE's variables from MAINTENANCE_PASSWORD in sh and bash, silently" {
  local password='p@ss:w/rd é+%~' shell expected
  expected="$(python -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$password")"
  for shell in sh bash; do
    env -i PATH="$PATH" MAINTENANCE_PASSWORD="$password" \
      "$shell" -c "set -eu; . '${CE}/env/ce-env.sh' >'${BATS_TEST_TMPDIR}/out' 2>&1; env" >"${BATS_TEST_TMPDIR}/env"
    [ ! -s "${BATS_TEST_TMPDIR}/out" ]
    has_line "MAINTENANCE_PASSWORD_ESCAPED=${expected}"
    for name in RABBITMQ_DEFAULT_PASS MONGO_INITDB_ROOT_PASSWORD MONGODB_PASSWORD; do
      has_line "${name}=${password}"
    done
    has_line "MONGO_CONNECTION_STRING=mongodb://cteadmin:${expected}@localhost:27017/cte?tls=true&tlsCAFile=/opt/certs/mongodb_rabbitmq_certs/tls_cert_ca.crt&tlsCertificateKeyFile=/opt/certs/mongodb_rabbitmq_certs/tls_cert_key.pem"
    has_line "RABBITMQ_CONNECTION_STRING=amqps://user:${expected}@localhost"
  done
}

@test "ce-env.sh exports no credential without MAINTENANCE_PASSWORD (the ui container)" {
  run --separate-stderr env -i PATH="$PATH" JWT_SECRET=j sh -c "set -eu; . '${CE}/env/ce-env.sh'; env"
  [ "$status" -eq 0 ]
  [ -z "$stderr" ]
  [[ $output != *PASS* && $output != *CONNECTION_STRING* ]]
  [[ $output == *"JWT_SECRET=j"* ]]
}

@test "mongo-start.sh keeps passwords off command lines, forwards SIGTERM to mongod and exits with its status" {
  fake_programs
  MAINTENANCE_PASSWORD=Secret0Value CE_MONGO_READY="${BATS_TEST_TMPDIR}/ready" \
    "${CE}/database-init/mongo-start.sh" --quiet >"${BATS_TEST_TMPDIR}/log" 2>&1 &
  local pid=$! tries=0
  until grep -q 'autoCompact' "${BATS_TEST_TMPDIR}/log"; do
    tries=$((tries + 1))
    [[ $tries -lt 100 ]] || { cat "${BATS_TEST_TMPDIR}/log" >&2; return 1; }
    sleep 0.1
  done
  [ -f "${BATS_TEST_TMPDIR}/ready" ]
  kill -TERM "$pid"
  local code=0
  wait "$pid" || code=$?
  [ "$code" -eq 0 ]
  grep -qx 'mongod got TERM' "$FAKE_LOG"
  grep -q -- '--tlsMode preferTLS .*--tlsDisabledProtocols TLS1_0,TLS1_1 .* --quiet$' "$FAKE_LOG"
  [ "$(grep -c '^mongosh .*--tls ' "$FAKE_LOG")" -ge 3 ]
  run ! grep -q Secret0Value "$FAKE_LOG" "${BATS_TEST_TMPDIR}/log"
}

@test "mongo-start.sh refuses to start without MAINTENANCE_PASSWORD" {
  fake_programs
  run env -u MAINTENANCE_PASSWORD "${CE}/database-init/mongo-start.sh"
  [ "$status" -eq 1 ]
  [[ $output == *"MAINTENANCE_PASSWORD is not set"* ]]
  [ ! -e "$FAKE_LOG" ]
}

@test "mongo-autocompact.sh puts only a number and a boolean into its JavaScript" {
  fake_programs
  run env MONGO_INITDB_ROOT_PASSWORD=x MONGODB_AUTOCOMPACT_FREE_SPACE_TARGET_MB='1; db.dropDatabase()' \
    "${CE}/database-init/mongo-autocompact.sh"
  [ "$status" -eq 2 ]
  [[ $output == *"must be a number of MB"* ]]
  run env MONGO_INITDB_ROOT_PASSWORD=x MONGODB_AUTOCOMPACT_RUN_ONCE=maybe "${CE}/database-init/mongo-autocompact.sh"
  [ "$status" -eq 2 ]
  run env MONGO_INITDB_ROOT_PASSWORD=x MONGODB_AUTOCOMPACT_ENABLED=false "${CE}/database-init/mongo-autocompact.sh"
  [ "$status" -eq 0 ]
  [[ $output == *"autoCompact stays off"* ]]
  [ ! -e "$FAKE_LOG" ]
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
