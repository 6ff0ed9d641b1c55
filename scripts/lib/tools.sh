# shellcheck shell=bash
# Installs, on a fresh machine, what the project's scripts need: Debian packages (jq, bats,
# the shell linter, curl, openssl, fuse3, GNU parallel) and a Python venv under .venv with
# requirements-dev.txt, every version fixed by requirements-dev.lock (pip freeze) so pip never
# backtracks on a new machine.
# Sourced by demo.sh, test.sh and bench.sh; every step is skipped when already done.

TOOLS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${TOOLS_ROOT}/.venv"
CACHE_DIR="${XDG_CACHE_HOME:-${HOME}/.cache}/ce-fargate"

# shellcheck source=scripts/lib/init.sh
source "${TOOLS_ROOT}/scripts/lib/init.sh"

ensure_debian_packages() {
  local missing=() pkg
  for pkg in jq shellcheck bats curl openssl; do
    command -v "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  # fuse3 brings fusermount3, which mounts the EFS latency model (efs-latency/) without libfuse.
  command -v fusermount3 >/dev/null 2>&1 || missing+=(fuse3)
  # The task as a pod (scripts/run-local.sh, tests/runtime/task-pod.sh): podman with runc (crun
  # refuses the hybrid cgroups of some CI machines), uidmap for its storage, mmdebstrap for the
  # stand-in images (standin_images/build.sh).
  for pkg in podman runc mmdebstrap; do
    command -v "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  command -v newuidmap >/dev/null 2>&1 || missing+=(uidmap)
  # GNU parallel runs the bats files side by side (bats --jobs); moreutils has another
  # command of the same name.
  parallel --version 2>/dev/null | grep -q 'GNU parallel' || missing+=(parallel)
  [[ ${#missing[@]} -eq 0 ]] && return 0
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]}; install them with your package manager"
  log "installing ${missing[*]} (apt-get)"
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The venv is rebuilt only when requirements-dev.txt changes (its hash is stamped inside).
ensure_venv() {
  local stamp="${VENV}/.requirements.sha256" want
  want="$(cat "${TOOLS_ROOT}/requirements-dev.txt" "${TOOLS_ROOT}/requirements-dev.lock" | sha256sum | cut -d' ' -f1)"
  if [[ -x "${VENV}/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  log "installing Python tools into .venv (first run only)"
  # Built at its resolved path, so its scripts' #! lines outlive the clone that linked it.
  local real
  real="$(readlink -f "$VENV")"
  python3 -m venv "$real"
  "${real}/bin/pip" install -q --disable-pip-version-check \
    -r "${TOOLS_ROOT}/requirements-dev.txt" -c "${TOOLS_ROOT}/requirements-dev.lock"
  printf '%s\n' "$want" >"$stamp"
}

# A fresh clone on a machine that already built the project (CI clones anew for every run)
# links its build directory and venv to a per-user cache, so only changed crates rebuild.
# A link keeps every relative path (cfn/ refers to ../target/lambda/...) working.
link_to_cache() {
  local name="$1"
  [[ -e "${TOOLS_ROOT}/${name}" || -L "${TOOLS_ROOT}/${name}" ]] && return 0
  mkdir -p "${CACHE_DIR}/${name#.}"
  ln -s "${CACHE_DIR}/${name#.}" "${TOOLS_ROOT}/${name}"
}

# cargo-lambda and zig come from PyPI; put the venv first on PATH so scripts find them.
activate_tools() {
  link_to_cache target
  link_to_cache .venv
  ensure_debian_packages
  ensure_venv
  export PATH="${VENV}/bin:${PATH}"
}
