# Shared set-up for scripts/demo, scripts/test, scripts/check and scripts/lock (sourced, not run).
# Creates .venv and installs exactly what uv.lock pins, every file checked against its sha256
# (`--require-hashes`): a fresh clone resolves nothing by itself. Debian packages named to
# ensure_apt are installed when run as root, otherwise printed as the exact apt line.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${CARWASH_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}
# uv reads and writes the lock. It is the one tool installed by version rather than from the lock
# (it is what reads the lock); bump it here and in CONTRIBUTING.md together.
UV_VERSION=0.13.9
# The extras every script installs: one environment serves the demo, the checks and the tests,
# so switching between them never reinstalls.
LOCKED_EXTRAS=all

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian packages: ${missing[*]}"
    # Only refresh the package lists when an install needs them (saves ~20 s otherwise).
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "Missing Debian packages. Run as root, or install them with:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    return 1
  fi
}

# The pinned uv, in its own small virtual environment (never in .venv, which it rebuilds).
ensure_uv() {
  local tools="$ROOT/.venv-tools"
  UV="$tools/bin/uv"
  if [ ! -x "$UV" ] || [ "$("$UV" --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
    log "installing uv $UV_VERSION (reads and writes uv.lock)"
    "$PY" -m venv "$tools"
    "$tools/bin/python" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
  fi
  export UV
}

# Fail, saying what to do, when uv.lock is damaged or no longer matches pyproject.toml.
check_lock() {
  ensure_uv
  local out
  if ! out=$(cd "$ROOT" && "$UV" lock --check --quiet 2>&1); then
    printf '%s\n' "$out" >&2
    echo "error: uv.lock does not match pyproject.toml (or is damaged): run scripts/lock," \
      "then commit uv.lock with the change." >&2
    return 1
  fi
}

# The lock's packages for EXTRAS (comma-separated) as a requirements file with hashes.
export_lock() {  # EXTRAS OUT
  local args=() extra
  IFS=, read -ra extras <<<"$1"
  for extra in "${extras[@]}"; do args+=(--extra "$extra"); done
  (cd "$ROOT" && "$UV" export --frozen --quiet --format requirements-txt --no-emit-project \
    --no-header --group build "${args[@]}" -o "$2")
}

ensure_venv() {
  local extras=${1:-$LOCKED_EXTRAS}
  [ "$extras" = all ] || extras=$LOCKED_EXTRAS  # one environment for every script (see above)
  check_lock
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment in $VENV"
    "$PY" -m venv "$VENV"
  fi
  # Re-sync only when the lock changed since the last install.
  local stamp="$VENV/.carwash-locked"
  local want
  want="$(sha256sum "$ROOT/uv.lock" | cut -d' ' -f1) $extras"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    local reqs="$VENV/locked-requirements.txt"
    export_lock "$extras" "$reqs"
    log "installing $(grep -c '^[A-Za-z0-9]' "$reqs") packages pinned by uv.lock," \
      "each checked against its sha256 (--require-hashes)"
    # sync, not install: the environment becomes exactly the lock (strays are removed). Wheels
    # only (--no-build): a file whose hash does not match is refused, never replaced by a build
    # from source.
    "$UV" pip sync --quiet --python "$VENV/bin/python" --require-hashes --no-build "$reqs"
    log "installing carwash-fleet (editable, no dependencies: they came from the lock)"
    "$UV" pip install --quiet --python "$VENV/bin/python" --no-deps --no-build-isolation -e "$ROOT"
    echo "$want" >"$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}
