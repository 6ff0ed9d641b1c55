#!/usr/bin/env bats
# CE 6.1's UI is nginx and reaches the management server at host.docker.internal on
# CE_MANAGEMENT_PORT (compose: extra_hosts host-gateway). The UI image cannot be pulled here,
# so this runs Debian's nginx, as uid 1001, on a proxy to that host and port the way an
# nginx configuration names an upstream literally, and checks what the deployment relies on:
# an unresolvable name stops nginx before it serves anything; the answer the template's
# private zone gives (its A record) and the port the task definition gives the ui container
# let nginx start and answer a management request at once with 502 (connection refused).

# status and output are set by bats' run.
# shellcheck disable=SC2154
bats_require_minimum_version 1.5.0

# shellcheck source=tests/scripts/script-tools.bash
source "${BATS_TEST_DIRNAME}/script-tools.bash"

setup_file() { script_tools_setup_file; }

setup() {
  # uid 1001 must reach this folder (bats' own is root's only).
  WORK="$(mktemp -d /tmp/ce-ui-upstream.XXXXXX)"
  chmod 0755 "$WORK"
  chown 1001:1001 "$WORK"
  PORT="$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
}

teardown() {
  if [[ -s ${WORK}/nginx.pid ]]; then
    kill -TERM "$(<"${WORK}/nginx.pid")" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}

# The address the template's host.docker.internal zone answers (its A record).
zone_answer() {
  python - "${ROOT}/cfn/CloudExchangeTemplate.yaml" <<'PY'
import sys
from cfnlint.decode import decode
template, errors = decode(sys.argv[1])
assert not errors, errors
for resource in template["Resources"].values():
    props = resource.get("Properties", {})
    if resource["Type"] == "AWS::Route53::RecordSet" and props.get("Name", "").rstrip(".") == "host.docker.internal":
        print(props["ResourceRecords"][0])
        break
else:
    sys.exit("the template has no record for host.docker.internal")
PY
}

# The ui container's CE_MANAGEMENT_PORT in the task definition.
management_port() {
  jq -er '.containerDefinitions[] | select(.name == "ui") | .environment[]
          | select(.name == "CE_MANAGEMENT_PORT") | .value' "${ROOT}/cfn/CloudExchangeTaskDefinition.json"
}

# An nginx configuration in $WORK proxying /management/ to https://HOST:PORT.
write_config() { # HOST PORT
  cat >"${WORK}/nginx.conf" <<EOF
daemon off;
pid ${WORK}/nginx.pid;
error_log ${WORK}/error.log;
events {}
http {
  access_log off;
  client_body_temp_path ${WORK};
  proxy_temp_path ${WORK};
  fastcgi_temp_path ${WORK};
  uwsgi_temp_path ${WORK};
  scgi_temp_path ${WORK};
  server {
    listen 127.0.0.1:${PORT};
    location /management/ { proxy_pass https://$1:$2/; }
  }
}
EOF
  chown 1001:1001 "${WORK}/nginx.conf"
}

as_ce() {
  setpriv --reuid 1001 --regid 1001 --clear-groups -- "$@"
}

@test "nginx refuses to start when the upstream's host does not resolve (why the zone exists)" {
  write_config host.docker.internal.invalid "$(management_port)"
  run as_ce nginx -t -p "$WORK" -c "${WORK}/nginx.conf"
  [ "$status" -ne 0 ]
  [[ $output == *"host not found in upstream"* ]]
}

@test "with the zone's answer and the task definition's port, nginx starts and a management call gets 502 at once" {
  local address port
  address="$(zone_answer)"
  port="$(management_port)"
  [ "$address" = 127.0.0.1 ]
  write_config "$address" "$port"
  as_ce nginx -p "$WORK" -c "${WORK}/nginx.conf" &
  local tries=0
  until curl -s -o /dev/null "http://127.0.0.1:${PORT}/"; do
    tries=$((tries + 1))
    [[ $tries -lt 50 ]] || { cat "${WORK}/error.log" >&2; return 1; }
    sleep 0.1
  done
  # Refused, not silently dropped: curl's bound (5 s) is far above a refusal's few ms.
  run curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:${PORT}/management/status"
  [ "$status" -eq 0 ]
  [ "$output" = 502 ]
  grep -q "Connection refused" "${WORK}/error.log"
}
