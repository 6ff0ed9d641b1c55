# shellcheck shell=bash
# The one file scripts source: every library of scripts/lib in dependency order (messages
# first: the others report through it). The libraries only define functions and variables.
# tools.sh (installs the tools) is sourced on its own by the scripts that need it.

# shellcheck source=scripts/lib/messages.sh
source "$(dirname "${BASH_SOURCE[0]}")/messages.sh"
# shellcheck source=scripts/lib/proc.sh
source "$(dirname "${BASH_SOURCE[0]}")/proc.sh"
# shellcheck source=scripts/lib/aws.sh
source "$(dirname "${BASH_SOURCE[0]}")/aws.sh"
# shellcheck source=scripts/lib/events.sh
source "$(dirname "${BASH_SOURCE[0]}")/events.sh"
