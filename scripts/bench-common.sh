# shellcheck shell=bash
# shellcheck disable=SC2034 # WORK, ADDR, TWOFOLD and BENCH are for the sourcing script.
# What scripts/bench.sh and scripts/bench-push.sh share. Sourced by them (after
# `cd` to the repository root, with `set -euo pipefail`), never run on its own.
# Sourcing only reads the settings both scripts take and defines functions; the
# script calls them:
#
#   require_whole_numbers VAR...  dies unless each variable holds a whole number
#   check_backends SETTING        dies on a word of $BACKENDS other than sqlite
#                                 and postgres (SETTING names the variable)
#   bench_init PREFIX             clears inherited TWOFOLD_* variables, makes the
#                                 work directory $WORK (${TMPDIR:-/tmp}/PREFIX.XXXXXX)
#                                 and sets the trap that cleans up on exit
#   require_postgres SETTING      dies unless PostgreSQL answers at
#                                 $PG_ADMIN_URL, when $BACKENDS has postgres
#   build_release                 builds the release binaries; sets TWOFOLD, BENCH
#   backend_begin BACKEND DIR DB_PREFIX
#                                 exports the server and CLI configuration for
#                                 BACKEND (data directory DIR/data; for postgres a
#                                 fresh database DB_PREFIX_<pid>_<time>)
#   start_server DIR [NAME]       starts `twofold serve` (node NAME); sets ADDR
#   stop_servers                  stops every server started
#   backend_end                   drops the database, unsets what backend_begin set
#   field LINE KEY                KEY's value in a RESULT line

# Settings both scripts take (environment). Read at sourcing, before
# bench_init clears TWOFOLD_*, so TWOFOLD_TEST_PG_URL still counts.
PG_ADMIN_URL="${BENCH_PG_URL:-${TWOFOLD_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}}"
DB_MAX_CONNECTIONS="${BENCH_DB_MAX_CONNECTIONS:-}"
LOG_LEVEL="${BENCH_LOG_LEVEL:-info}"

# The calling script's name, for its messages.
BENCH_SCRIPT="${0##*/}"

WORK=""
SERVER_PIDS=()
PG_DB=""

log() { printf '==> %s\n' "$*" >&2; }
die() { printf '%s: %s\n' "$BENCH_SCRIPT" "$*" >&2; exit 1; }

require_whole_numbers() {
  local n
  for n in "$@"; do
    [[ "${!n}" =~ ^[0-9]+$ ]] || die "$n must be a whole number, not '${!n}'"
  done
}

check_backends() {
  local setting="$1" b
  for b in $BACKENDS; do
    [[ "$b" == sqlite || "$b" == postgres ]] || die "unknown backend '$b' in $setting"
  done
}

stop_servers() {
  local pid
  for pid in "${SERVER_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${SERVER_PIDS[@]}"; do
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  SERVER_PIDS=()
}

drop_database() {
  [ -n "$PG_DB" ] || return 0
  psql "$PG_ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 ||
    printf '%s: could not drop database %s; drop it by hand\n' "$BENCH_SCRIPT" "$PG_DB" >&2
  PG_DB=""
}

# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
  stop_servers
  drop_database
  [ -z "$WORK" ] || rm -rf "$WORK"
}

bench_init() {
  # The servers and the CLI get exactly the configuration the script sets,
  # nothing inherited from the caller's shell.
  local var
  while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^TWOFOLD_' || true)

  WORK="$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")"
  trap cleanup EXIT
  trap 'exit 130' INT TERM
}

# The admin URL with another database name (query string kept).
pg_url_for() {
  local url="$1" db="$2" base query="" rest
  base="${url%%\?*}"
  [[ "$url" == *\?* ]] && query="?${url#*\?}"
  rest="${base#*://}"
  [[ "$rest" == */* ]] && base="${base%/*}"
  printf '%s/%s%s' "$base" "$db" "$query"
}

require_postgres() {
  [[ " $BACKENDS " == *" postgres "* ]] || return 0
  psql "$PG_ADMIN_URL" -qAtc 'select 1' >/dev/null 2>&1 ||
    die "PostgreSQL at $PG_ADMIN_URL does not accept connections (start the cluster, e.g. by running scripts/test.sh once, set BENCH_PG_URL, or set $1=sqlite)"
}

build_release() {
  log "building release binaries"
  cargo build --release --quiet -p twofold -p twofold-bench
  local target_dir="${CARGO_TARGET_DIR:-target}"
  TWOFOLD="$(cd "$target_dir/release" && pwd)/twofold"
  BENCH="$(cd "$target_dir/release" && pwd)/twofold-bench"
}

backend_begin() {
  local backend="$1" dir="$2" db_prefix="$3" url
  mkdir -p "$dir"
  export TWOFOLD_DATA_DIR="$dir/data"
  export TWOFOLD_LOG_LEVEL="$LOG_LEVEL"
  if [ -n "$DB_MAX_CONNECTIONS" ]; then
    export TWOFOLD_DATABASE_MAX_CONNECTIONS="$DB_MAX_CONNECTIONS"
  fi
  if [ "$backend" = postgres ]; then
    PG_DB="${db_prefix}_$$_$(date +%s)"
    psql "$PG_ADMIN_URL" -qAtc "CREATE DATABASE \"$PG_DB\"" >/dev/null
    url="$(pg_url_for "$PG_ADMIN_URL" "$PG_DB")"
    export TWOFOLD_DATABASE_URL="$url"
  else
    unset TWOFOLD_DATABASE_URL
  fi
}

backend_end() {
  drop_database
  unset TWOFOLD_DATABASE_URL TWOFOLD_DATA_DIR
}

# Starts `twofold serve` on 127.0.0.1:<free port>; adds its pid to SERVER_PIDS
# and sets ADDR. Its output goes to DIR/serve-NAME.out and DIR/serve-NAME.err,
# or, without NAME, to DIR/serve.out and DIR/serve.err.
start_server() {
  local dir="$1" name="${2:-}" out err label="" pid
  out="$dir/serve${name:+-$name}.out"
  err="$dir/serve${name:+-$name}.err"
  [ -z "$name" ] || label=" ($name)"
  "$TWOFOLD" serve --listen 127.0.0.1:0 </dev/null >"$out" 2>"$err" &
  pid=$!
  SERVER_PIDS+=("$pid")
  ADDR=""
  for _ in $(seq 1 600); do
    ADDR="$(sed -n 's|^Twofold is serving https://\([^/]*\)/.*|\1|p' "$out" | head -n 1)"
    [ -n "$ADDR" ] && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$err" >&2
      die "twofold serve$label exited before announcing its address"
    fi
    sleep 0.1
  done
  tail -n 20 "$err" >&2
  die "twofold serve$label did not announce its address within 60 s"
}

# key=value from a RESULT line.
field() { sed -n "s/.* $2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }
