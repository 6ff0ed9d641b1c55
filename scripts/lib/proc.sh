# shellcheck shell=bash
# Waiting for things the scripts and tests start: a free port to bind, and a bounded poll.
# Sourced through scripts/lib/init.sh.

# Prints a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Runs COMMAND every INTERVAL seconds until it succeeds (status 0) or SECONDS have passed
# (status 1). The command runs once more at the deadline, so a slow machine is not failed
# by a poll that just missed.
wait_until() { # SECONDS INTERVAL COMMAND...
  local deadline=$((SECONDS + $1)) interval="$2"
  shift 2
  until "$@"; do
    ((SECONDS < deadline)) || { "$@"; return; }
    sleep "$interval"
  done
}
