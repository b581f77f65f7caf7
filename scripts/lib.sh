# Shared set-up for scripts/serve and scripts/test: idempotent, safe to re-run, root or not.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

APT_UPDATED=
apt_install() {  # apt_install PKG... : install the Debian packages that are missing
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ -z "$APT_UPDATED" ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

pick_python() {
  for py in python3.11 python3; do
    if command -v "$py" >/dev/null && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      echo "$py"; return 0
    fi
  done
  echo "Dockyard needs Python 3.11 or newer" >&2; return 1
}

ensure_venv() {  # ensure_venv EXTRAS : the project's virtual environment, installed in editable mode
  local extras=${1:-}
  local py; py=$(pick_python)
  if [ ! -x "$VENV/bin/python" ]; then
    "$py" -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; "$py" -m venv "$VENV"; }
  fi
  local stamp="$VENV/.installed${extras:+-$extras}"
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    "$VENV/bin/pip" install -q --disable-pip-version-check -e "$ROOT${extras:+[$extras]}"
    touch "$stamp"
  fi
}

ensure_docker() {  # a running Docker engine: Debian's docker.io, dockerd started when none answers
  if ! command -v dockerd >/dev/null 2>&1; then apt_install docker.io; fi
  if docker_ready; then return 0; fi
  if [ "$(id -u)" != 0 ]; then
    echo "No Docker engine answers at /var/run/docker.sock; start one (sudo dockerd) and retry." >&2
    return 1
  fi
  echo "starting dockerd (log: /var/log/dockyard-dockerd.log)" >&2
  nohup dockerd >/var/log/dockyard-dockerd.log 2>&1 &
  for _ in $(seq 1 120); do docker_ready && return 0; sleep 0.5; done
  echo "dockerd did not start; see /var/log/dockyard-dockerd.log" >&2
  return 1
}

docker_ready() {
  "$VENV/bin/python" - <<'PY' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(2)
try:
    s.connect("/var/run/docker.sock")
    s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
    sys.exit(0 if b" 200 " in s.recv(200) else 1)
except OSError:
    sys.exit(1)
PY
}
