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
ACCOUNT=bench-push
PREFIX=bench-push

# BENCH_PG_URL, BENCH_DB_MAX_CONNECTIONS, BENCH_LOG_LEVEL; log, die, the
# servers, the database, the work directory and its cleanup.
# shellcheck source-path=SCRIPTDIR/..
source scripts/bench-common.sh

require_whole_numbers ROUND_TRIPS CONCURRENCY USERS WAIT_SECS SETTLE_MS
((USERS >= 1 && USERS <= 10000)) || die "BENCH_PUSH_USERS must be 1 to 10000, not $USERS"
((CONCURRENCY >= 1 && CONCURRENCY <= USERS)) ||
  die "BENCH_PUSH_CONCURRENCY must be 1 to BENCH_PUSH_USERS ($USERS), not $CONCURRENCY"
check_backends BENCH_PUSH_BACKENDS

bench_init twofold-bench-push
require_postgres BENCH_PUSH_BACKENDS
build_release

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

run_backend() {
  local backend="$1"
  local dir="$WORK/$backend" nodes sdk_addr device_addr
  backend_begin "$backend" "$dir" twofold_bench_push

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
  backend_end
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
