#!/usr/bin/env bash
# Runs every test of the workspace, on SQLite and PostgreSQL.
#
# Installs the Debian packages the tests need when they are missing (quietly,
# idempotently), makes sure the local PostgreSQL cluster is running, then runs
# formatting and lint checks and the whole test suite. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian packages the test suite talks to or drives.
PACKAGES=(
  postgresql
  postgresql-client
  ca-certificates
  chromium
  chromium-driver
  fonts-dejavu-core
  oathtool
  # schemathesis (PyPI) checks the OpenAPI document; it runs in a venv.
  python3
  python3-venv
  # A real SMTP server (aiosmtpd, run by the harness on a loopback port)
  # receives the welcome mail.
  python3-aiosmtpd
  # Directories for sign-in with directory credentials: a real OpenLDAP
  # and a real FreeRADIUS, each started by the harness in a temp dir on a
  # loopback port (see DAEMONS below).
  slapd
  ldap-utils
  freeradius
  freeradius-utils
  # Forward-auth (passed sessions): a real nginx (auth_request) and a real
  # Caddy (forward_auth) in front of a small site, each started by the
  # harness in a temp dir on a loopback port.
  nginx
  caddy
)

# Packages whose Debian install would start a system service the tests do
# not use (the harness runs its own instances): installed with services
# kept from starting.
DAEMONS=(slapd freeradius nginx caddy)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root apt-get update -qq >/dev/null
  quiet_daemons=0
  for p in "${missing[@]}"; do
    for d in "${DAEMONS[@]}"; do [ "$p" = "$d" ] && quiet_daemons=1; done
  done
  if [ "$quiet_daemons" -eq 1 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    # invoke-rc.d's policy hook: 101 = "do not start services now".
    as_root sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
    trap 'as_root rm -f /usr/sbin/policy-rc.d' EXIT
  else
    # Someone else's policy is in place: leave it as it is.
    quiet_daemons=0
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ "$quiet_daemons" -eq 1 ]; then
    as_root rm -f /usr/sbin/policy-rc.d
    trap - EXIT
  fi
fi

# PostgreSQL: the store suite runs on it as well as on SQLite.
export TWOFOLD_TEST_PG_URL="${TWOFOLD_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
pg_host=127.0.0.1
pg_port=5432
if ! pg_isready -q -h "$pg_host" -p "$pg_port"; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$version" ]; then
    echo "PostgreSQL is installed but has no cluster in /etc/postgresql" >&2
    exit 1
  fi
  log "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 30); do
    pg_isready -q -h "$pg_host" -p "$pg_port" && break
    sleep 1
  done
fi
if ! psql "$TWOFOLD_TEST_PG_URL" -qAtc 'select 1' >/dev/null 2>&1; then
  echo "PostgreSQL at $TWOFOLD_TEST_PG_URL does not accept connections (the tests need trust or password auth for that URL)" >&2
  exit 1
fi

# schemathesis, for the OpenAPI conformance test: the versions pinned in
# crates/twofold/tests/openapi/requirements.txt, in a venv under the target
# directory (where the test looks), made again whenever the pins change.
st_requirements=crates/twofold/tests/openapi/requirements.txt
target_dir=${CARGO_TARGET_DIR:-target}
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
st_venv="$target_dir/schemathesis"
if ! cmp -s "$st_requirements" "$st_venv/requirements.txt" || ! "$st_venv/bin/st" --version >/dev/null 2>&1; then
  log "installing schemathesis into $st_venv"
  rm -rf "$st_venv"
  python3 -m venv "$st_venv"
  "$st_venv/bin/pip" install --quiet --disable-pip-version-check -r "$st_requirements"
  cp "$st_requirements" "$st_venv/requirements.txt"
fi
export TWOFOLD_SCHEMATHESIS="$st_venv/bin/st"

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-targets --locked --no-fail-fast
else
  cargo test --workspace --all-targets --locked --no-fail-fast
fi
