#!/usr/bin/env bash
# Installs what ivrgate needs, safe to run again: Debian packages (only those missing), a virtual
# environment in .venv, pjsua2-python by its pinned sha256, then ivrgate itself (editable).
# Usage: scripts/bootstrap.sh [run|test]    ("test" adds the test peers and the dev tools)
set -euo pipefail
profile=${1:-run}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

py=${IVRGATE_PYTHON:-python3}
say() { echo "[bootstrap] $*" >&2; }

# -- Debian packages -----------------------------------------------------------------------------
need_debs=()
want() { # want <command-or-path> <debian package>
  if [[ $1 == /* ]]; then [[ -e $1 ]] || need_debs+=("$2"); else command -v "$1" >/dev/null 2>&1 || need_debs+=("$2"); fi
}
"$py" -c 'import venv, ensurepip' 2>/dev/null || need_debs+=(python3-venv)
if [[ $profile == test ]]; then
  want sipp sip-tester                 # SIP peer for the call tests
  want baresip baresip-core            # an independent SIP callee for the interop test (docs/sip.md)
  want kamailio kamailio               # a PBX that checks From against the auth user (caller-ID modes)
  want ffmpeg ffmpeg                   # the pydub path for containers libsndfile cannot read
  want flite flite                     # optional better English TTS engine
  want /usr/bin/chromium chromium      # the GUI's browser tests (Playwright drives Debian's Chromium)
  want node nodejs                     # the SMSC test peer (tests/peers, npm package smpp)
  want npm npm                         # installs the peer's pinned package (npm ci, by the test fixture)
  [[ -n ${IVRGATE_TEST_DATABASE_URL:-} ]] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
    || need_debs+=(postgresql)         # the store tests run against PostgreSQL as well as SQLite
fi
if ((${#need_debs[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    say "missing Debian packages: ${need_debs[*]} (run as root or install them with apt-get)"; exit 1
  fi
  say "apt-get install ${need_debs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq "${need_debs[@]}" >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    apt-get install -y -qq "${need_debs[@]}" >/dev/null
  fi
fi

# -- Python ----------------------------------------------------------------------------------------
[[ -x .venv/bin/python ]] || { say "creating .venv"; "$py" -m venv .venv; }
stamp=.venv/.ivrgate-$profile
sum=$(cat pyproject.toml requirements/*.txt scripts/bootstrap.sh | sha256sum | cut -c1-16)
if [[ ! -f $stamp || $(cat "$stamp") != "$sum" ]]; then
  say "installing Python packages ($profile)"
  pip=(.venv/bin/python -m pip -q --disable-pip-version-check)
  "${pip[@]}" install --no-deps --require-hashes -r requirements/pjsua2.txt
  if [[ $profile == test ]]; then "${pip[@]}" install -e ".[dev]"; else "${pip[@]}" install -e .; fi
  echo "$sum" >"$stamp"
fi
