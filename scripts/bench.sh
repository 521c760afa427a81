#!/usr/bin/env bash
# Measures the Web Service SDK's hot path, `POST /sdk/v1/validate`, on SQLite
# and on PostgreSQL, in OTP and PIN+OTP modes, and the raw cost of one PIN
# hash check. See docs/benchmarks.md. Not part of scripts/test.sh.
#
# For each database it builds nothing but release binaries, starts
# `twofold serve` on loopback with a fresh data directory (and, for
# PostgreSQL, a fresh database that is dropped afterwards), creates a service
# account with the CLI, and runs `twofold-bench` once per mode. Everything it
# started is stopped and removed on exit, also on Ctrl-C or failure.
#
# Settings (environment):
#   BENCH_USERS=200            users created per run
#   BENCH_CONCURRENCY=16       concurrent clients
#   BENCH_DURATION_SECS=20     timed phase per run
#   BENCH_MAX_REQUESTS=1000000 hard cap on timed requests per run
#   BENCH_BACKENDS="sqlite postgres"
#   BENCH_MODES="otp pin-otp"
#   BENCH_PIN_ITERATIONS=20    PIN checks timed for the PIN-hash line
#   BENCH_PG_URL               a PostgreSQL role allowed to create databases
#                              (default: $TWOFOLD_TEST_PG_URL or
#                              postgres://postgres@127.0.0.1:5432/postgres)
#   BENCH_DB_MAX_CONNECTIONS   passed as TWOFOLD_DATABASE_MAX_CONNECTIONS
#                              (default: the server's own default)
#   BENCH_LOG_LEVEL=info       the server's log level (its logs go to a file)
set -euo pipefail
cd "$(dirname "$0")/.."

USERS="${BENCH_USERS:-200}"
CONCURRENCY="${BENCH_CONCURRENCY:-16}"
DURATION="${BENCH_DURATION_SECS:-20}"
MAX_REQUESTS="${BENCH_MAX_REQUESTS:-1000000}"
BACKENDS="${BENCH_BACKENDS:-sqlite postgres}"
MODES="${BENCH_MODES:-otp pin-otp}"
PIN_ITERATIONS="${BENCH_PIN_ITERATIONS:-20}"
PG_ADMIN_URL="${BENCH_PG_URL:-${TWOFOLD_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}}"
DB_MAX_CONNECTIONS="${BENCH_DB_MAX_CONNECTIONS:-}"
LOG_LEVEL="${BENCH_LOG_LEVEL:-info}"
ACCOUNT=bench

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench.sh: %s\n' "$*" >&2; exit 1; }

for n in USERS CONCURRENCY DURATION MAX_REQUESTS PIN_ITERATIONS; do
  [[ "${!n}" =~ ^[0-9]+$ ]] || die "$n must be a whole number, not '${!n}'"
done
for b in $BACKENDS; do
  [[ "$b" == sqlite || "$b" == postgres ]] || die "unknown backend '$b' in BENCH_BACKENDS"
done
for m in $MODES; do
  [[ "$m" == otp || "$m" == pin-otp ]] || die "unknown mode '$m' in BENCH_MODES"
done

# The server and CLI get exactly the configuration set below, nothing
# inherited from the caller's shell.
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^TWOFOLD_' || true)

WORK="$(mktemp -d "${TMPDIR:-/tmp}/twofold-bench.XXXXXX")"
SERVER_PID=""
PG_DB=""

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

drop_database() {
  [ -n "$PG_DB" ] || return 0
  psql "$PG_ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 ||
    printf 'bench.sh: could not drop database %s; drop it by hand\n' "$PG_DB" >&2
  PG_DB=""
}

cleanup() {
  stop_server
  drop_database
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The admin URL with another database name (query string kept).
pg_url_for() {
  local url="$1" db="$2" base query="" rest
  base="${url%%\?*}"
  [[ "$url" == *\?* ]] && query="?${url#*\?}"
  rest="${base#*://}"
  [[ "$rest" == */* ]] && base="${base%/*}"
  printf '%s/%s%s' "$base" "$db" "$query"
}

if [[ " $BACKENDS " == *" postgres "* ]]; then
  psql "$PG_ADMIN_URL" -qAtc 'select 1' >/dev/null 2>&1 ||
    die "PostgreSQL at $PG_ADMIN_URL does not accept connections (start the cluster, e.g. by running scripts/test.sh once, set BENCH_PG_URL, or set BENCH_BACKENDS=sqlite)"
fi

log "building release binaries"
cargo build --release --quiet -p twofold -p twofold-bench
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
TWOFOLD="$(cd "$TARGET_DIR/release" && pwd)/twofold"
BENCH="$(cd "$TARGET_DIR/release" && pwd)/twofold-bench"

# Starts `twofold serve` on 127.0.0.1:<free port>; sets SERVER_PID and ADDR.
start_server() {
  local dir="$1" out="$1/serve.out" err="$1/serve.err"
  "$TWOFOLD" serve --listen 127.0.0.1:0 </dev/null >"$out" 2>"$err" &
  SERVER_PID=$!
  ADDR=""
  for _ in $(seq 1 600); do
    ADDR="$(sed -n 's|^Twofold is serving https://\([^/]*\)/.*|\1|p' "$out" | head -n 1)"
    [ -n "$ADDR" ] && return 0
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      tail -n 20 "$err" >&2
      die "twofold serve exited before announcing its address"
    fi
    sleep 0.1
  done
  tail -n 20 "$err" >&2
  die "twofold serve did not announce its address within 60 s"
}

declare -a ROWS=()
STATUS=0

# key=value from a RESULT line.
field() { sed -n "s/.* $2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }

run_backend() {
  local backend="$1" dir="$WORK/$backend"
  mkdir -p "$dir"
  export TWOFOLD_DATA_DIR="$dir/data"
  export TWOFOLD_LOG_LEVEL="$LOG_LEVEL"
  [ -n "$DB_MAX_CONNECTIONS" ] && export TWOFOLD_DATABASE_MAX_CONNECTIONS="$DB_MAX_CONNECTIONS"
  if [ "$backend" = postgres ]; then
    PG_DB="twofold_bench_$$_$(date +%s)"
    psql "$PG_ADMIN_URL" -qAtc "CREATE DATABASE \"$PG_DB\"" >/dev/null
    export TWOFOLD_DATABASE_URL="$(pg_url_for "$PG_ADMIN_URL" "$PG_DB")"
  else
    unset TWOFOLD_DATABASE_URL
  fi

  log "$backend: starting twofold serve"
  start_server "$dir"
  log "$backend: serving on https://$ADDR/ (logs in $dir/serve.err while running)"

  local secret
  secret="$("$TWOFOLD" service-account create "$ACCOUNT" </dev/null | awk 'NF { last = $0 } END { print last }')"
  [ -n "$secret" ] || die "twofold service-account create printed no secret"

  local mode out result
  for mode in $MODES; do
    log "$backend / $mode: $USERS users, concurrency $CONCURRENCY, $DURATION s"
    out="$dir/$mode.out"
    if TWOFOLD_BENCH_SECRET="$secret" "$BENCH" \
      --url "https://$ADDR" \
      --account "$ACCOUNT" \
      --ca-file "$TWOFOLD_DATA_DIR/tls/cert.pem" \
      --users "$USERS" \
      --concurrency "$CONCURRENCY" \
      --duration-secs "$DURATION" \
      --max-requests "$MAX_REQUESTS" \
      --mode "$mode" \
      --user-prefix "bench-$mode" | tee "$out"; then
      :
    else
      STATUS=1
    fi
    result="$(grep '^RESULT mode=' "$out" | tail -n 1 || true)"
    if [ -n "$result" ]; then
      ROWS+=("$(printf '%-9s %-8s %9s %8s %8s %8s %8s %9s %7s' "$backend" "$mode" \
        "$(field "$result" rps)" "$(field "$result" p50_ms)" "$(field "$result" p90_ms)" \
        "$(field "$result" p99_ms)" "$(field "$result" max_ms)" \
        "$(field "$result" requests)" "$(field "$result" failed)")")
    else
      ROWS+=("$(printf '%-9s %-8s %9s' "$backend" "$mode" "FAILED (see above)")")
      STATUS=1
    fi
  done

  log "$backend: stopping the server"
  stop_server
  if [ "$STATUS" -ne 0 ]; then
    log "$backend: last server log lines:"
    tail -n 20 "$dir/serve.err" >&2 || true
  fi
  drop_database
  unset TWOFOLD_DATABASE_URL TWOFOLD_DATA_DIR
}

for backend in $BACKENDS; do
  run_backend "$backend"
done

log "timing one production-cost PIN hash check ($PIN_ITERATIONS iterations, nothing else running)"
PIN_OUT="$("$BENCH" --pin-hash-cost --iterations "$PIN_ITERATIONS")" || STATUS=1
PIN_TEXT="$(grep -v '^RESULT' <<<"$PIN_OUT" || true)"

echo
echo "Twofold SDK validate benchmark — $(nproc) CPU(s), $USERS users, concurrency $CONCURRENCY, $DURATION s per run"
printf '%-9s %-8s %9s %8s %8s %8s %8s %9s %7s\n' database mode 'req/s' 'p50 ms' 'p90 ms' 'p99 ms' 'max ms' requests failed
for row in "${ROWS[@]}"; do
  echo "$row"
done
echo
echo "$PIN_TEXT"
if [ "$STATUS" -ne 0 ]; then
  echo
  echo "Some runs failed or had requests that were not accepted (see above)." >&2
fi
exit "$STATUS"
