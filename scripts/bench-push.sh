#!/usr/bin/env bash
# Measures the mobile app's push round trip: an SDK caller starts a sign-in
# (`POST /sdk/v1/authenticate`) for a `mobile_app` user, the user's device,
# already long-polling `GET /mobile/v1/requests?wait=`, receives it and
# approves it with the number, and the caller's long-poll
# `GET /sdk/v1/authenticate/{id}?wait=` returns `accepted`. See
# docs/benchmarks.md. Not part of scripts/test.sh.
#
# It builds release binaries, then runs twice:
#   sqlite    one `twofold serve` (SDK caller and devices on the same node);
#   postgres  two `twofold serve` processes sharing one fresh database and
#             one data directory: the SDK caller talks to node A, the
#             devices to node B, so every request and every answer crosses
#             nodes (PostgreSQL LISTEN/NOTIFY).
# For each it starts everything on loopback with a fresh data directory (and
# a fresh PostgreSQL database, dropped afterwards), prepares with the CLI (a
# `validate` service account; users set to `mobile_app`; one activation code
# each, pointing at the devices' node), and runs `twofold-bench push`, which
# activates one device per user and times the round trips. Everything it
# started is stopped and removed on exit, also on Ctrl-C or failure.
#
# Settings (environment):
#   BENCH_PUSH_ROUND_TRIPS=1000   timed round trips per run
#   BENCH_PUSH_CONCURRENCY=8      round trips in flight (one user each)
#   BENCH_PUSH_USERS=16           users, one device each (at least the concurrency)
#   BENCH_PUSH_WAIT_SECS=30       ?wait= of both long-polls
#   BENCH_PUSH_SETTLE_MS=20       pause between the device's poll and the start
#   BENCH_PUSH_BACKENDS="sqlite postgres"
#   BENCH_PG_URL                  a PostgreSQL role allowed to create databases
#                                 (default: $TWOFOLD_TEST_PG_URL or
#                                 postgres://postgres@127.0.0.1:5432/postgres)
#   BENCH_DB_MAX_CONNECTIONS      passed as TWOFOLD_DATABASE_MAX_CONNECTIONS
#                                 (default: the server's own default)
#   BENCH_LOG_LEVEL=info          the servers' log level (their logs go to files)
set -euo pipefail
cd "$(dirname "$0")/.."

ROUND_TRIPS="${BENCH_PUSH_ROUND_TRIPS:-1000}"
CONCURRENCY="${BENCH_PUSH_CONCURRENCY:-8}"
USERS="${BENCH_PUSH_USERS:-16}"
WAIT_SECS="${BENCH_PUSH_WAIT_SECS:-30}"
SETTLE_MS="${BENCH_PUSH_SETTLE_MS:-20}"
BACKENDS="${BENCH_PUSH_BACKENDS:-sqlite postgres}"
PG_ADMIN_URL="${BENCH_PG_URL:-${TWOFOLD_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}}"
DB_MAX_CONNECTIONS="${BENCH_DB_MAX_CONNECTIONS:-}"
LOG_LEVEL="${BENCH_LOG_LEVEL:-info}"
ACCOUNT=bench-push
PREFIX=bench-push

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench-push.sh: %s\n' "$*" >&2; exit 1; }

for n in ROUND_TRIPS CONCURRENCY USERS WAIT_SECS SETTLE_MS; do
  [[ "${!n}" =~ ^[0-9]+$ ]] || die "$n must be a whole number, not '${!n}'"
done
((USERS >= 1 && USERS <= 10000)) || die "BENCH_PUSH_USERS must be 1 to 10000, not $USERS"
((CONCURRENCY >= 1 && CONCURRENCY <= USERS)) ||
  die "BENCH_PUSH_CONCURRENCY must be 1 to BENCH_PUSH_USERS ($USERS), not $CONCURRENCY"
for b in $BACKENDS; do
  [[ "$b" == sqlite || "$b" == postgres ]] || die "unknown backend '$b' in BENCH_PUSH_BACKENDS"
done

# The servers and the CLI get exactly the configuration set below, nothing
# inherited from the caller's shell.
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^TWOFOLD_' || true)

WORK="$(mktemp -d "${TMPDIR:-/tmp}/twofold-bench-push.XXXXXX")"
SERVER_PIDS=()
PG_DB=""

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
    printf 'bench-push.sh: could not drop database %s; drop it by hand\n' "$PG_DB" >&2
  PG_DB=""
}

cleanup() {
  stop_servers
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
    die "PostgreSQL at $PG_ADMIN_URL does not accept connections (start the cluster, e.g. by running scripts/test.sh once, set BENCH_PG_URL, or set BENCH_PUSH_BACKENDS=sqlite)"
fi

log "building release binaries"
cargo build --release --quiet -p twofold -p twofold-bench
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
TWOFOLD="$(cd "$TARGET_DIR/release" && pwd)/twofold"
BENCH="$(cd "$TARGET_DIR/release" && pwd)/twofold-bench"

# Starts `twofold serve` on 127.0.0.1:<free port> as node NAME; adds its pid
# to SERVER_PIDS and sets ADDR.
start_server() {
  local dir="$1" name="$2" out="$1/serve-$2.out" err="$1/serve-$2.err" pid
  "$TWOFOLD" serve --listen 127.0.0.1:0 </dev/null >"$out" 2>"$err" &
  pid=$!
  SERVER_PIDS+=("$pid")
  ADDR=""
  for _ in $(seq 1 600); do
    ADDR="$(sed -n 's|^Twofold is serving https://\([^/]*\)/.*|\1|p' "$out" | head -n 1)"
    [ -n "$ADDR" ] && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$err" >&2
      die "twofold serve ($name) exited before announcing its address"
    fi
    sleep 0.1
  done
  tail -n 20 "$err" >&2
  die "twofold serve ($name) did not announce its address within 60 s"
}

# The CLI with its warnings (users without a password, ...) in $CLI_ERR,
# shown only when it fails.
cli() {
  "$TWOFOLD" "$@" </dev/null 2>>"$CLI_ERR" || {
    tail -n 5 "$CLI_ERR" >&2
    die "twofold $* failed"
  }
}

# USERS users on mobile_app, one activation code each for the devices' node;
# writes `USERNAME CODE` lines to $1.
prepare_users() {
  local codes="$1" device_addr="$2" i name json code
  (umask 077 && : >"$codes")
  for ((i = 0; i < USERS; i++)); do
    name="$(printf '%s-%05d' "$PREFIX" "$i")"
    cli user add "$name" >/dev/null
    cli user set "$name" --method mobile_app >/dev/null
    json="$(TWOFOLD_PUBLIC_URL="https://$device_addr" cli device activation-code "$name" --json)"
    code="$(sed -n 's/^ *"code": *"\([0-9]*\)".*/\1/p' <<<"$json")"
    [ -n "$code" ] || die "twofold device activation-code $name printed no code"
    printf '%s %s\n' "$name" "$code" >>"$codes"
  done
}

declare -a ROWS=()
STATUS=0

# key=value from a RESULT line.
field() { sed -n "s/.* $2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }

run_backend() {
  local backend="$1" dir="$WORK/$backend" nodes sdk_addr device_addr
  mkdir -p "$dir"
  export TWOFOLD_DATA_DIR="$dir/data"
  export TWOFOLD_LOG_LEVEL="$LOG_LEVEL"
  [ -n "$DB_MAX_CONNECTIONS" ] && export TWOFOLD_DATABASE_MAX_CONNECTIONS="$DB_MAX_CONNECTIONS"
  if [ "$backend" = postgres ]; then
    PG_DB="twofold_bench_push_$$_$(date +%s)"
    psql "$PG_ADMIN_URL" -qAtc "CREATE DATABASE \"$PG_DB\"" >/dev/null
    export TWOFOLD_DATABASE_URL="$(pg_url_for "$PG_ADMIN_URL" "$PG_DB")"
  else
    unset TWOFOLD_DATABASE_URL
  fi

  # Node A first: it creates the schema, the sealing key and the TLS
  # certificate; node B (PostgreSQL only) shares all three.
  log "$backend: starting twofold serve (node A)"
  start_server "$dir" a
  sdk_addr="$ADDR"
  device_addr="$ADDR"
  nodes=1
  if [ "$backend" = postgres ]; then
    log "$backend: starting twofold serve (node B, same database and data directory)"
    start_server "$dir" b
    device_addr="$ADDR"
    nodes=2
  fi
  log "$backend: SDK caller on https://$sdk_addr/, devices on https://$device_addr/ (logs in $dir while running)"

  CLI_ERR="$dir/cli.err"
  local secret
  secret="$(cli service-account create "$ACCOUNT" --role validate | awk 'NF { last = $0 } END { print last }')"
  [ -n "$secret" ] || die "twofold service-account create printed no secret"

  log "$backend: preparing $USERS users on mobile_app with activation codes (CLI, not timed)"
  local codes="$dir/activation-codes.txt"
  prepare_users "$codes" "$device_addr"

  log "$backend: $ROUND_TRIPS round trips, concurrency $CONCURRENCY"
  local out="$dir/push.out" result
  if TWOFOLD_BENCH_SECRET="$secret" "$BENCH" push \
    --url "https://$sdk_addr" \
    --device-url "https://$device_addr" \
    --account "$ACCOUNT" \
    --ca-file "$TWOFOLD_DATA_DIR/tls/cert.pem" \
    --activation-codes "$codes" \
    --round-trips "$ROUND_TRIPS" \
    --concurrency "$CONCURRENCY" \
    --wait-secs "$WAIT_SECS" \
    --poll-settle-ms "$SETTLE_MS" | tee "$out"; then
    :
  else
    STATUS=1
  fi
  result="$(grep '^RESULT mode=push' "$out" | tail -n 1 || true)"
  if [ -n "$result" ]; then
    ROWS+=("$(printf '%-9s %5s %7s | %7s %7s %7s %8s | %7s %7s %7s %8s | %6s %6s' "$backend" "$nodes" \
      "$(field "$result" rps)" \
      "$(field "$result" recv_p50_ms)" "$(field "$result" recv_p90_ms)" \
      "$(field "$result" recv_p99_ms)" "$(field "$result" recv_max_ms)" \
      "$(field "$result" rel_p50_ms)" "$(field "$result" rel_p90_ms)" \
      "$(field "$result" rel_p99_ms)" "$(field "$result" rel_max_ms)" \
      "$(field "$result" round_trips)" "$(field "$result" failed)")")
  else
    ROWS+=("$(printf '%-9s %5s %7s' "$backend" "$nodes" "FAILED (see above)")")
    STATUS=1
  fi

  log "$backend: stopping the server(s)"
  stop_servers
  if [ "$STATUS" -ne 0 ]; then
    local f
    for f in "$dir"/serve-*.err; do
      log "$backend: last lines of $(basename "$f"):"
      tail -n 20 "$f" >&2 || true
    done
  fi
  drop_database
  unset TWOFOLD_DATABASE_URL TWOFOLD_DATA_DIR
}

for backend in $BACKENDS; do
  run_backend "$backend"
done

echo
echo "Twofold mobile app push round trip — $(nproc) CPU(s), $USERS users, concurrency $CONCURRENCY, $ROUND_TRIPS round trips per run, wait $WAIT_SECS s, settle $SETTLE_MS ms"
echo "(milliseconds from the caller's POST /sdk/v1/authenticate: 'received' = the device's long-poll has the request, 'released' = the caller's long-poll answered accepted)"
printf '%-9s %5s %7s | %7s %7s %7s %8s | %7s %7s %7s %8s | %6s %6s\n' database nodes 'rt/s' \
  'recv50' 'recv90' 'recv99' 'recvmax' 'rel50' 'rel90' 'rel99' 'relmax' 'trips' failed
for row in "${ROWS[@]}"; do
  echo "$row"
done
if [ "$STATUS" -ne 0 ]; then
  echo
  echo "Some runs failed or had round trips that were not accepted (see above)." >&2
fi
exit "$STATUS"
