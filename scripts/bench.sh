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
ACCOUNT=bench

# BENCH_PG_URL, BENCH_DB_MAX_CONNECTIONS, BENCH_LOG_LEVEL; log, die, the
# servers, the database, the work directory and its cleanup.
# shellcheck source-path=SCRIPTDIR/..
source scripts/bench-common.sh

require_whole_numbers USERS CONCURRENCY DURATION MAX_REQUESTS PIN_ITERATIONS
check_backends BENCH_BACKENDS
for m in $MODES; do
  [[ "$m" == otp || "$m" == pin-otp ]] || die "unknown mode '$m' in BENCH_MODES"
done

bench_init twofold-bench
require_postgres BENCH_BACKENDS
build_release

declare -a ROWS=()
STATUS=0

run_backend() {
  local backend="$1"
  local dir="$WORK/$backend"
  backend_begin "$backend" "$dir" twofold_bench

  log "$backend: starting twofold serve"
  start_server "$dir"
  log "$backend: serving on https://$ADDR/ (logs in $dir/serve.err while running)"

  # twofold-bench sets its users up through the SDK (user, HOTP token, method,
  # PIN) before it validates, so the account is an admin one with just that.
  local secret
  secret="$("$TWOFOLD" service-account create "$ACCOUNT" --role admin \
    --perm add_users,manage_oath_tokens,change_method,reset_pin --scope all </dev/null | awk 'NF { last = $0 } END { print last }')"
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
  stop_servers
  if [ "$STATUS" -ne 0 ]; then
    log "$backend: last server log lines:"
    tail -n 20 "$dir/serve.err" >&2 || true
  fi
  backend_end
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
