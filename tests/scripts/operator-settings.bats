#!/usr/bin/env bats
# The operator settings that reach the task without a host: the core proxy and the UI's own
# certificate, rendered by scripts/register-task-definition.sh from a stack that has them
# (tests/fixtures/stack-outputs-operator-settings.json) and from one that has not (the
# default fixture), checked against botocore's ECS RegisterTaskDefinition model; and the
# ui-certificate init container's script, run here on a local folder in place of the volume.

# status, output and stderr are set by bats' run.
# shellcheck disable=SC2154
bats_require_minimum_version 1.5.0

# shellcheck source=tests/scripts/script-tools.bash
source "${BATS_TEST_DIRNAME}/script-tools.bash"

setup_file() { script_tools_setup_file; }

setup() {
  REGISTER="${ROOT}/scripts/register-task-definition.sh"
  WITH="${ROOT}/tests/fixtures/stack-outputs-operator-settings.json"
  WITHOUT="${ROOT}/tests/fixtures/stack-outputs.json"
}

render() { # OUTPUTS_FILE
  "$REGISTER" --dry-run --outputs-file "$1" 2>/dev/null
}

valid_for_botocore() {
  python -c 'import json, sys
import botocore.session
from botocore.validate import validate_parameters
model = botocore.session.get_session().get_service_model("ecs")
validate_parameters(json.load(sys.stdin), model.operation_model("RegisterTaskDefinition").input_shape)'
}

# The ui-certificate container's shell script, pointed at DIR instead of /ce/ui-certs.
init_script() { # DIR
  jq -r '.containerDefinitions[] | select(.name == "ui-certificate") | .entryPoint[2]' \
    "${ROOT}/cfn/CloudExchangeTaskDefinition.json" | sed "s|^dir=/ce/ui-certs\$|dir=$1|"
}

@test "with the settings: core and mongodb-primary get the proxy, ui waits for its certificate" {
  local rendered
  rendered="$(render "$WITH")"
  valid_for_botocore <<<"$rendered"
  jq -e '[.containerDefinitions[] | select(.name == "core" or .name == "mongodb-primary")
      | (.environment | from_entries) | [.HTTP_PROXY, .HTTPS_PROXY, .NO_PROXY]]
    == [range(2) | ["http://proxy.example.com:3128", "http://proxy.example.com:3128",
                    "localhost,127.0.0.1,169.254.169.254,169.254.170.2,.example.com"]]' <<<"$rendered"
  # Only the two containers compose gives the proxy to.
  jq -e '[.containerDefinitions[] | select(any(.environment[]?; .name | test("PROXY"))) | .name] | sort
    == ["core", "mongodb-primary"]' <<<"$rendered"
  jq -e '.containerDefinitions[] | select(.name == "ui-certificate")
    | .essential == false
      and ([.secrets[].valueFrom] == [
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:ce-ui-certificate-AbCdEf:certificate::",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:ce-ui-certificate-AbCdEf:privateKey::"])
      and (.environment // [] | length) == 0
      and .mountPoints == [{sourceVolume: "ssl-certs", containerPath: "/ce/ui-certs", readOnly: false}]' <<<"$rendered"
  jq -e '.containerDefinitions[] | select(.name == "ui") | .dependsOn
    | index({containerName: "ui-certificate", condition: "SUCCESS"}) != null' <<<"$rendered"
}

@test "without the settings: no proxy variable, no init container, nothing left unrendered" {
  local rendered
  rendered="$(render "$WITHOUT")"
  valid_for_botocore <<<"$rendered"
  jq -e '[.. | strings | select(test("PROXY|UiCertificate|\\$\\{"))] == []' <<<"$rendered"
  jq -e '[.containerDefinitions[].name] | index("ui-certificate") == null' <<<"$rendered"
  jq -e '.containerDefinitions[] | select(.name == "ui") | [.dependsOn[].containerName] == ["core"]' <<<"$rendered"
}

@test "a proxy without a UI certificate: the proxy only" {
  local rendered
  rendered="$(render <(jq '.Stacks[0].Outputs |= map(select(.OutputKey != "UiCertificateSecretArn"))' "$WITH"))"
  jq -e '([.containerDefinitions[].name] | index("ui-certificate") == null)
    and ([.containerDefinitions[] | select(.name == "core") | .environment[] | select(.name == "HTTPS_PROXY")] | length == 1)' \
    <<<"$rendered"
}

@test "the init container writes the operator's pair with the UI's names and modes, printing neither" {
  local dir="${BATS_TEST_TMPDIR}/ui-certs" cert key
  mkdir -p "$dir"
  printf 'old\n' >"${dir}/cte_cert.crt"
  cert=$'-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----'
  key=$'-----BEGIN PRIVATE KEY-----\nMIIEsecret\n-----END PRIVATE KEY-----'
  run --separate-stderr env UI_TLS_CERTIFICATE="$cert" UI_TLS_PRIVATE_KEY="$key" sh -c "$(init_script "$dir")"
  [ "$status" -eq 0 ]
  [ "$output" = "ui-certificate: wrote cte_cert.crt and cte_cert_key.key from the operator secret" ]
  [[ $output$stderr != *MIIEsecret* ]]
  [ "$(cat "${dir}/cte_cert.crt")" = "$cert" ]
  [ "$(cat "${dir}/cte_cert_key.key")" = "$key" ]
  [ "$(stat -c %a "${dir}/cte_cert.crt")" = 644 ]
  [ "$(stat -c %a "${dir}/cte_cert_key.key")" = 600 ]
  [ "$(find "$dir" -name '.*' | wc -l)" -eq 0 ]
}

@test "the init container refuses a secret without PEM and leaves the files alone" {
  local dir="${BATS_TEST_TMPDIR}/ui-certs"
  mkdir -p "$dir"
  printf 'generated\n' >"${dir}/cte_cert.crt"
  run --separate-stderr env UI_TLS_CERTIFICATE="not a certificate" \
    UI_TLS_PRIVATE_KEY=$'-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----' sh -c "$(init_script "$dir")"
  [ "$status" -eq 1 ]
  [[ $stderr == *"the secret has no PEM certificate under certificate"* ]]
  [ "$(cat "${dir}/cte_cert.crt")" = generated ]
  [ ! -e "${dir}/cte_cert_key.key" ]
  run --separate-stderr env UI_TLS_CERTIFICATE=$'-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----' \
    UI_TLS_PRIVATE_KEY="hunter2" sh -c "$(init_script "$dir")"
  [ "$status" -eq 1 ]
  [[ $stderr == *"the secret has no PEM private key under privateKey"* ]]
  [[ $stderr != *hunter2* ]]
}
