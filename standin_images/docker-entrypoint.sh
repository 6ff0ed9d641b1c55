#!/bin/bash
# STAND-IN for the docker-entrypoint.sh of Cloud Exchange's rabbitmq and mongo images, in the
# stand-in images standin_images/build.sh builds from Debian packages. It is not Docker
# Library's script: it accepts the two commands our task definition hands it and runs the
# stand-in server for each; anything else is executed as given.
#   docker-entrypoint.sh rabbitmq-server   Debian's real RabbitMQ (3.10), with the task's
#                                          RABBITMQ_CONFIG_FILE (our custom.conf)
#   docker-entrypoint.sh mongod ARGS...    a TLS listener on 27017 standing in for mongod: it
#                                          reads --tlsCertificateKeyFile and --tlsCAFile from ARGS
set -euo pipefail
case "${1:-}" in
  rabbitmq-server)
    # 3.10 knows none of the 4.x feature flags the task definition lists for CE's 4.2.
    unset RABBITMQ_FEATURE_FLAGS
    export RABBITMQ_LOGS=- RABBITMQ_MNESIA_BASE="${RABBITMQ_MNESIA_BASE:-/var/lib/rabbitmq/mnesia}"
    echo "stand-in docker-entrypoint.sh: starting Debian's rabbitmq-server with ${RABBITMQ_CONFIG_FILE:-its defaults}" >&2
    exec /usr/lib/rabbitmq/bin/rabbitmq-server
    ;;
  mongod)
    shift
    echo "stand-in docker-entrypoint.sh: starting the mongod stand-in (a TLS listener, not MongoDB)" >&2
    exec python3 /opt/standin/mongod.py "$@"
    ;;
  *) exec "$@" ;;
esac
