# shellcheck shell=bash
# shellcheck disable=SC2034 # WORK, ADDR, TWOFOLD, BENCH, SERVER_PID are for the sourcing script.
# What the bench-*.sh scripts share. Sourced by them (after
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
#   build_release                 builds the release binaries (BENCH_SKIP_BUILD=1:
#                                 uses them as they are); sets TWOFOLD, BENCH
#   backend_begin BACKEND DIR DB_PREFIX
#                                 exports the server and CLI configuration for
#                                 BACKEND (data directory DIR/data; for postgres a
#                                 fresh database DB_PREFIX_<pid>_<time>)
#   start_server DIR [NAME]       starts `twofold serve` (node NAME); sets ADDR
#                                 and SERVER_PID
#   stop_servers                  stops every server started
#   backend_end                   drops the database, unsets what backend_begin set
#   field LINE KEY                KEY's value in a RESULT line
#   database_url                  the URL the server of the current backend uses
#   ensure_wrk                    installs Debian's wrk when missing (root only)
#   healthz_ceiling ADDR SECS     wrk on GET /healthz, 16 keep-alive TLS
#                                 connections; prints a RESULT line
#   proc_status_kib PID FIELD     VmRSS, VmHWM … of PID, in KiB
#   bytes_without_audit BACKEND   the database's size without the audit table
#                                 (see the function), for the current backend
#   pct A B                       100 × A / B, one decimal
#   verdict OP MEASURED TARGET    PASS or MISS (OP: ge or le)

# Settings both scripts take (environment). Read at sourcing, before
# bench_init clears TWOFOLD_*, so TWOFOLD_TEST_PG_URL still counts.
PG_ADMIN_URL="${BENCH_PG_URL:-${TWOFOLD_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}}"
DB_MAX_CONNECTIONS="${BENCH_DB_MAX_CONNECTIONS:-}"
LOG_LEVEL="${BENCH_LOG_LEVEL:-info}"

# The calling script's name, for its messages.
BENCH_SCRIPT="${0##*/}"

WORK=""
SERVER_PIDS=()
SERVER_PID=""
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
  local target_dir="${CARGO_TARGET_DIR:-target}"
  if [ "${BENCH_SKIP_BUILD:-0}" = 1 ] && [ -x "$target_dir/release/twofold" ] && [ -x "$target_dir/release/twofold-bench" ]; then
    log "BENCH_SKIP_BUILD=1: using the release binaries in $target_dir/release as they are"
  else
    log "building release binaries"
    cargo build --release --quiet -p twofold -p twofold-bench
  fi
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
  SERVER_PID="$pid"
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

# The database URL the server and the CLI of the current backend use
# (backend_begin): the PostgreSQL one, or SQLite's default file.
database_url() {
  if [ -n "${TWOFOLD_DATABASE_URL:-}" ]; then
    printf '%s' "$TWOFOLD_DATABASE_URL"
  else
    printf 'sqlite://%s/twofold.db' "$TWOFOLD_DATA_DIR"
  fi
}

ensure_wrk() {
  command -v wrk >/dev/null 2>&1 && return 0
  [ "$(id -u)" -eq 0 ] || die "wrk is missing; install it (apt-get install -y wrk) or run as root"
  log "installing wrk (apt-get install -y wrk)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >/dev/null 2>&1 ||
    { apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >/dev/null 2>&1; } ||
    die "could not install wrk"
}

# wrk's "1.23ms" / "456.00us" / "1.02s" in milliseconds.
wrk_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n = n / 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n = n * 60000; else if (v ~ /s$/) n = n * 1000
    printf "%.2f", n }'
}

# The most a request can cost: GET /healthz (no database, no JSON body
# parsed) from wrk over 16 keep-alive TLS connections on 2 threads.
healthz_ceiling() {
  local addr="$1" secs="$2" out rps p50 p99 max
  out="$(wrk -t2 -c16 -d"${secs}s" --latency "https://$addr/healthz" 2>&1)" || { printf '%s\n' "$out" >&2; return 1; }
  printf '%s\n' "$out" >&2
  rps="$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")"
  p50="$(wrk_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")"
  p99="$(wrk_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")"
  max="$(wrk_ms "$(awk '$1 == "Latency" && NF >= 4 { print $4; exit }' <<<"$out")")"
  [ -n "$rps" ] || return 1
  printf 'RESULT ceiling rps=%s p50_ms=%s p99_ms=%s max_ms=%s\n' "$rps" "$p50" "$p99" "$max"
}

proc_status_kib() {
  awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}

# What the users take on disk, without the audit log:
#   SQLite: the file after PRAGMA wal_checkpoint(TRUNCATE) (so the WAL is
#   empty and everything is in the main file; free pages included), minus the
#   pages of audit_events and its two indexes as dbstat counts them. Run with
#   the server stopped.
#   PostgreSQL: pg_total_relation_size (heap, indexes, TOAST) of every table
#   of the schema but audit_events, _sqlx_migrations included.
bytes_without_audit() {
  local backend="$1" db total audit
  if [ "$backend" = sqlite ]; then
    db="$TWOFOLD_DATA_DIR/twofold.db"
    sqlite3 "$db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
    total=$(($(stat -c %s "$db") + $(stat -c %s "$db-wal" 2>/dev/null || echo 0)))
    audit="$(sqlite3 "$db" "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN ('audit_events', 'audit_events_by_subject', 'audit_events_by_time')")"
    echo $((total - audit))
  else
    psql "$TWOFOLD_DATABASE_URL" -qAtc "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND n.nspname = current_schema() AND c.relname <> 'audit_events'"
  fi
}

pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.1f", 100 * a / b; else print "?" }'; }

verdict() {
  awk -v op="$1" -v m="$2" -v t="$3" 'BEGIN {
    if (m == "" || m == "?") { print "MISS"; exit }
    ok = (op == "ge") ? (m + 0 >= t + 0) : (m + 0 <= t + 0)
    print ok ? "PASS" : "MISS" }'
}
