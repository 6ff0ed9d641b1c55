# shellcheck shell=bash
# What every bats file of tests/scripts/ starts with: ROOT, the project's tools (venv first on
# PATH; installed on a fresh machine) and both exported for the tests. Sourced at the top of a
# file; call script_tools_setup_file from its setup_file.

# shellcheck source=scripts/lib/tools.sh
source "${BATS_TEST_DIRNAME}/../../scripts/lib/tools.sh"

script_tools_setup_file() {
  ROOT="$(cd "${BATS_TEST_DIRNAME}/../.." && pwd)"
  activate_tools
  export ROOT PATH
}
