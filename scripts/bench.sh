#!/usr/bin/env bash
# Measures the Web Service SDK's hot path, `POST /sdk/v1/validate`, against
# what the machine can do at all, in ONE run, and says which goals it meets.
# See docs/benchmarks.md. Not part of scripts/test.sh.
#
#   1. the ceiling: GET /healthz with wrk over 16 keep-alive TLS connections
#      (no database, nothing to check): the most requests/s this server can
#      answer on this machine; wrk is installed when missing (root);
#   2. on SQLite and on PostgreSQL: OTP-only validation at 16 and at 64
#      clients, and PIN+OTP at 16 clients, each with req/s, its share of the
#      ceiling, p50/p90/p99/max, the load generator's and the server's CPU;
#   3. the argon2 bound: production-cost PIN checks per second with one on
#      every core at once, measured with nothing else running; PIN+OTP
#      against it;
#   4. the goals, PASS or MISS each;
#   5. unless BENCH_SCALE=0: scripts/bench-scale.sh (1,000 vs 1,000,000
#      users, size per user, the server's memory; several minutes more).
#
# For each database it starts `twofold serve` on loopback with a fresh data
# directory (and, for PostgreSQL, a fresh database that is dropped
# afterwards), creates a service account with the CLI, and runs
# `twofold-bench` once per row. Everything it started is stopped and removed
# on exit, also on Ctrl-C or failure.
#
# Settings (environment):
#   BENCH_USERS=200            users created per run
#   BENCH_OTP_CLIENTS="16 64"  concurrent clients of the OTP runs
#   BENCH_PIN_CLIENTS="16"     concurrent clients of the PIN+OTP runs ("" skips)
#   BENCH_DURATION_SECS=20     timed phase per run
#   BENCH_CEILING_SECS=15      the wrk run on /healthz
#   BENCH_MAX_REQUESTS=1000000 hard cap on timed requests per run
#   BENCH_BACKENDS="sqlite postgres"
#   BENCH_PIN_ITERATIONS=20    PIN checks timed for the argon2 bound
#   BENCH_SCALE=1              then run scripts/bench-scale.sh (0: don't)
#   BENCH_SKIP_BUILD=0         1: use target/release as it is (no cargo build)
#   BENCH_PG_URL               a PostgreSQL role allowed to create databases
#                              (default: $TWOFOLD_TEST_PG_URL or
#                              postgres://postgres@127.0.0.1:5432/postgres)
#   BENCH_DB_MAX_CONNECTIONS   passed as TWOFOLD_DATABASE_MAX_CONNECTIONS
#                              (default: the server's own default)
#   BENCH_LOG_LEVEL=info       the server's log level (its logs go to a file)
set -euo pipefail
cd "$(dirname "$0")/.."

USERS="${BENCH_USERS:-200}"
OTP_CLIENTS="${BENCH_OTP_CLIENTS:-16 64}"
PIN_CLIENTS="${BENCH_PIN_CLIENTS-16}"
DURATION="${BENCH_DURATION_SECS:-20}"
CEILING_SECS="${BENCH_CEILING_SECS:-15}"
MAX_REQUESTS="${BENCH_MAX_REQUESTS:-1000000}"
BACKENDS="${BENCH_BACKENDS:-sqlite postgres}"
PIN_ITERATIONS="${BENCH_PIN_ITERATIONS:-20}"
SCALE="${BENCH_SCALE:-1}"
ACCOUNT=bench

# Goals (the performance issue).
GOAL_CEILING_PCT=10   # OTP at the most clients: at least this % of the ceiling
GOAL_P99_MS=10
GOAL_MAX_MS=100
GOAL_ARGON_PCT=80     # PIN+OTP: at least this % of the argon2 bound

# BENCH_PG_URL, BENCH_DB_MAX_CONNECTIONS, BENCH_LOG_LEVEL; log, die, the
# servers, the database, the work directory and its cleanup.
# shellcheck source-path=SCRIPTDIR/..
source scripts/bench-common.sh

require_whole_numbers USERS DURATION CEILING_SECS MAX_REQUESTS PIN_ITERATIONS SCALE
check_backends BENCH_BACKENDS
for c in $OTP_CLIENTS $PIN_CLIENTS; do
  if ! [[ "$c" =~ ^[0-9]+$ ]] || ((c < 1 || c > USERS)); then
    die "client counts must be 1 to BENCH_USERS ($USERS), not '$c'"
  fi
done

bench_init twofold-bench
require_postgres BENCH_BACKENDS
ensure_wrk
build_release

# The most OTP clients: the goals are read at that row.
TOP_CLIENTS=0
for c in $OTP_CLIENTS; do ((c > TOP_CLIENTS)) && TOP_CLIENTS=$c; done

declare -a ROWS=()
declare -A RPS=() P99=() MAX=()
CEILING=""
CEILING_LINE=""
STATUS=0

run_backend() {
  local backend="$1"
  local dir="$WORK/$backend"
  backend_begin "$backend" "$dir" twofold_bench

  log "$backend: starting twofold serve"
  start_server "$dir"
  log "$backend: serving on https://$ADDR/ (logs in $dir/serve.err while running)"

  if [ -z "$CEILING" ]; then
    log "ceiling: wrk -t2 -c16 -d${CEILING_SECS}s https://$ADDR/healthz"
    if CEILING_LINE="$(healthz_ceiling "$ADDR" "$CEILING_SECS" 2>"$WORK/wrk.out")"; then
      CEILING="$(field "$CEILING_LINE" rps)"
    else
      cat "$WORK/wrk.out" >&2
      STATUS=1
      CEILING="?"
    fi
  fi

  # twofold-bench sets its users up through the SDK (user, HOTP token, method,
  # PIN) before it validates, so the account is an admin one with just that.
  local secret
  secret="$("$TWOFOLD" service-account create "$ACCOUNT" --role admin \
    --perm add_users,manage_oath_tokens,change_method,reset_pin --scope all </dev/null | awk 'NF { last = $0 } END { print last }')"
  [ -n "$secret" ] || die "twofold service-account create printed no secret"

  local run mode clients out result key
  for run in $(for c in $OTP_CLIENTS; do echo "otp:$c"; done; for c in $PIN_CLIENTS; do echo "pin-otp:$c"; done); do
    mode="${run%%:*}"
    clients="${run#*:}"
    log "$backend / $mode: $USERS users, $clients clients, $DURATION s"
    out="$dir/$mode-$clients.out"
    if TWOFOLD_BENCH_SECRET="$secret" "$BENCH" \
      --url "https://$ADDR" \
      --account "$ACCOUNT" \
      --ca-file "$TWOFOLD_DATA_DIR/tls/cert.pem" \
      --users "$USERS" \
      --concurrency "$clients" \
      --duration-secs "$DURATION" \
      --max-requests "$MAX_REQUESTS" \
      --mode "$mode" \
      --server-pid "$SERVER_PID" \
      --user-prefix "bench-$mode-c$clients" | tee "$out"; then
      :
    else
      STATUS=1
    fi
    result="$(grep '^RESULT mode=' "$out" | tail -n 1 || true)"
    key="$backend/$mode/$clients"
    if [ -n "$result" ]; then
      RPS[$key]="$(field "$result" rps)"
      P99[$key]="$(field "$result" p99_ms)"
      MAX[$key]="$(field "$result" max_ms)"
      ROWS+=("$(printf '%-9s %-8s %7s %9s %7s %8s %8s %8s %8s %9s %6s %6s %6s' "$backend" "$mode" "$clients" \
        "${RPS[$key]}" "$(pct "${RPS[$key]}" "$CEILING")" "$(field "$result" p50_ms)" "$(field "$result" p90_ms)" \
        "${P99[$key]}" "${MAX[$key]}" "$(field "$result" requests)" "$(field "$result" failed)" \
        "$(field "$result" client_cpu_pct)" "$(field "$result" server_cpu_pct)")")
    else
      ROWS+=("$(printf '%-9s %-8s %7s %9s' "$backend" "$mode" "$clients" "FAILED (see above)")")
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
PIN_RESULT="$(grep '^RESULT pin_hash' <<<"$PIN_OUT" || true)"
BOUND="$(field "$PIN_RESULT" bound_per_s)"

echo
echo "Twofold SDK validate benchmark — $(nproc) CPU(s), $(uptime | sed 's/.*load average: /load average before the summary: /')"
echo "$USERS users per run, $DURATION s per run; the load generator, the server and the database share the machine"
echo
if [ -n "$CEILING_LINE" ]; then
  printf 'ceiling: GET /healthz, wrk 16 keep-alive TLS connections, %s s: %s req/s (p50 %s ms, p99 %s ms, max %s ms)\n' \
    "$CEILING_SECS" "$CEILING" "$(field "$CEILING_LINE" p50_ms)" "$(field "$CEILING_LINE" p99_ms)" "$(field "$CEILING_LINE" max_ms)"
else
  echo "ceiling: not measured (wrk failed, see above)"
fi
echo "$PIN_TEXT"
echo
printf '%-9s %-8s %7s %9s %7s %8s %8s %8s %8s %9s %6s %6s %6s\n' database mode clients 'req/s' '%ceil' \
  'p50 ms' 'p90 ms' 'p99 ms' 'max ms' requests failed 'gen%' 'srv%'
for row in "${ROWS[@]}"; do
  echo "$row"
done

echo
printf '%-52s %10s %10s  %s\n' goal measured target ''
goal_row() { # description measured unit op target
  printf '%-52s %10s %10s  %s\n' "$1" "$2$3" "$([ "$4" = ge ] && echo '>=' || echo '<=') $5$3" "$(verdict "$4" "$2" "$5")"
  [ "$(verdict "$4" "$2" "$5")" = PASS ] || GOALS_MISSED=1
}
GOALS_MISSED=0
for backend in $BACKENDS; do
  key="$backend/otp/$TOP_CLIENTS"
  [ -n "${RPS[$key]:-}" ] || { echo "$backend otp $TOP_CLIENTS clients: no result"; GOALS_MISSED=1; continue; }
  goal_row "$backend OTP, $TOP_CLIENTS clients: req/s of the ceiling" "$(pct "${RPS[$key]}" "$CEILING")" " %" ge "$GOAL_CEILING_PCT"
  goal_row "$backend OTP, $TOP_CLIENTS clients: p99" "${P99[$key]}" " ms" le "$GOAL_P99_MS"
  goal_row "$backend OTP, $TOP_CLIENTS clients: max" "${MAX[$key]}" " ms" le "$GOAL_MAX_MS"
done
for backend in $BACKENDS; do
  for c in $PIN_CLIENTS; do
    key="$backend/pin-otp/$c"
    [ -n "${RPS[$key]:-}" ] || continue
    goal_row "$backend PIN+OTP, $c clients: req/s of the argon2 bound" "$(pct "${RPS[$key]}" "$BOUND")" " %" ge "$GOAL_ARGON_PCT"
  done
done
if [ "$GOALS_MISSED" -eq 0 ]; then echo "every goal met"; else echo "some goals missed (MISS above)"; fi
echo "(%ceil: req/s over the /healthz ceiling; gen%: the load generator's CPU over the timed phase, in % of one core;"
echo " srv%: the server's, the same way; $(nproc) cores = $(($(nproc) * 100)) %.)"

if [ "$STATUS" -ne 0 ]; then
  echo
  echo "Some runs failed or had requests that were not accepted (see above)." >&2
fi

if [ "$SCALE" -ne 0 ]; then
  echo
  log "scale: scripts/bench-scale.sh (BENCH_SCALE=0 skips it)"
  stop_servers
  BENCH_SKIP_BUILD=1 BENCH_SCALE_BACKENDS="$BACKENDS" scripts/bench-scale.sh || STATUS=1
else
  echo
  echo "Scale (1,000 vs 1,000,000 users, bytes per user, server memory): ./scripts/bench-scale.sh"
fi
exit "$STATUS"
