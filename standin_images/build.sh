#!/usr/bin/env bash
# Builds the STAND-IN images for Cloud Exchange's four images from Debian packages, in two
# cached stages: a base image, one Debian root file system holding every role's packages
# (mmdebstrap, then podman import; tagged with a hash of the suite and package list), and on it
# one layer with our stand-in scripts, users and /opt/netskope trees
# (standin_images/customize.sh, run in a container, then podman commit), which is
# committed once per role with that role's user, entry point and working directory (tagged with
# a hash of the base tag, this script and every file of standin_images/). An unchanged recipe
# builds nothing; a changed script rebuilds only the layer (seconds).
# Prints one CONTAINER=REF line per container of the task definition, for run-local.sh --image.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/init.sh
source "${ROOT}/scripts/lib/init.sh"

RECIPE_DIR="${ROOT}/standin_images"
SUITE="bookworm"
MIRROR="${STANDIN_MIRROR:-http://deb.debian.org/debian}"
# Every role's packages in one root file system: rabbitmq-stats (rabbitmq-server), core and
# seed-plugins (python3, python3-pika, git), ui (nginx), mongodb-primary (python3, openssl).
PACKAGES="bash,coreutils,procps,python3,python3-pika,git,openssl,ca-certificates,rabbitmq-server,nginx,passwd"
REPO="localhost/ce-standin"

usage() {
  cat <<USAGE
Usage: standin_images/build.sh [--help]

Builds (once per recipe) and prints the stand-in images, one CONTAINER=REF line each:
mongodb-primary, rabbitmq-stats, seed-plugins, core, ui-certificate, ui. Needs root, podman,
mmdebstrap and the Debian mirror (STANDIN_MIRROR, default ${MIRROR}).
USAGE
}

base_tag() { printf '%s\n' "$SUITE" "$PACKAGES" | sha256sum | cut -c1-12; }

recipe_hash() { # BASE_TAG
  {
    printf '%s\n' "$1"
    cat "${BASH_SOURCE[0]}"
    find "$RECIPE_DIR" -type f ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum | sed "s#${RECIPE_DIR}/##"
  } | sha256sum | cut -c1-12
}

# role user entrypoint(JSON) cmd(JSON) workdir [env]
commit_role() {
  local base="$1" role="$2" user="$3" entrypoint="$4" cmd="$5" workdir="$6" tag="$7" container
  shift 7
  container="$(podman create "$base" true)"
  local changes=(--change "USER=${user}" --change "ENTRYPOINT=${entrypoint}" --change "CMD=${cmd}"
    --change "WORKDIR=${workdir}" --change "LABEL=ce.stand-in=${role}")
  local env
  for env in "$@"; do changes+=(--change "ENV=${env}"); done
  podman commit -q "${changes[@]}" "$container" "${REPO}-${role}:${tag}" >/dev/null
  podman rm -f "$container" >/dev/null
}

# The Debian root file system with every role's packages, imported as BASE (minutes, once).
build_base() { # BASE
  local work
  work="$(mktemp -d)"
  log "building the stand-in base image $1 (mmdebstrap ${SUITE}, once per package list)"
  if ! mmdebstrap --quiet --variant=apt --include="$PACKAGES" "$SUITE" "${work}/rootfs.tar" "$MIRROR" \
    >"${work}/mmdebstrap.log" 2>&1; then
    cat "${work}/mmdebstrap.log" >&2
    rm -rf "$work"
    die "mmdebstrap failed"
  fi
  podman import -q "${work}/rootfs.tar" "$1" >/dev/null
  rm -rf "$work"
}

# Our stand-in layer on BASE, then one image per role (seconds).
build() { # BASE TAG
  local base="$1" tag="$2" layer="${REPO}-layer:$2" container
  log "building the stand-in images ${REPO}-*:${tag} on ${base}"
  container="$(podman create --user 0 --network none --volume "${RECIPE_DIR}:/recipe:ro" "$base" \
    /bin/bash /recipe/customize.sh)"
  if ! podman start --attach "$container" >&2; then
    podman rm -f "$container" >/dev/null
    die "the stand-in layer failed to build (standin_images/customize.sh)"
  fi
  podman commit -q "$container" "$layer" >/dev/null
  podman rm -f "$container" >/dev/null
  commit_role "$layer" rabbitmq "1001:1001" '["docker-entrypoint.sh"]' '["rabbitmq-server"]' /var/lib/rabbitmq "$tag" \
    HOME=/var/lib/rabbitmq PATH=/usr/lib/rabbitmq/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  commit_role "$layer" mongodb "mongodb" '["docker-entrypoint.sh"]' '["mongod"]' / "$tag"
  commit_role "$layer" core "1001:1001" '[]' '["/opt/start.sh"]' /opt "$tag" HOME=/home/ce
  commit_role "$layer" ui "1001:1001" '[]' '["./start.sh"]' /opt/ui "$tag" HOME=/home/ce
  podman rmi "$layer" >/dev/null 2>&1 || true
  prune "$base" "$tag"
}

# Removes the stand-in images of earlier recipes (only ours: the ${REPO}-* names).
prune() { # BASE TAG
  local image
  while IFS= read -r image; do
    [[ $image == "$1" || $image == *":$2" ]] || podman rmi "$image" >/dev/null 2>&1 || true
  done < <(podman images --format '{{.Repository}}:{{.Tag}}' | grep "^${REPO}-" || true)
}

main() {
  case "${1:-}" in
    -h | --help) usage; exit 0 ;;
    "") ;;
    *) usage_error "unknown option: $1" ;;
  esac
  [[ $(id -u) -eq 0 ]] || die "run as root (mmdebstrap, podman import)"
  export CONTAINERS_CONF="${CONTAINERS_CONF:-${ROOT}/scripts/lib/containers.conf}"
  local base tag role
  base="${REPO}-base:$(base_tag)"
  tag="$(recipe_hash "$base")"
  for role in rabbitmq mongodb core ui; do
    if ! podman image exists "${REPO}-${role}:${tag}"; then
      podman image exists "$base" || build_base "$base"
      build "$base" "$tag"
      break
    fi
  done
  printf '%s\n' "mongodb-primary=${REPO}-mongodb:${tag}" "rabbitmq-stats=${REPO}-rabbitmq:${tag}" \
    "seed-plugins=${REPO}-core:${tag}" "core=${REPO}-core:${tag}" \
    "ui-certificate=${REPO}-ui:${tag}" "ui=${REPO}-ui:${tag}"
}

main "$@"
