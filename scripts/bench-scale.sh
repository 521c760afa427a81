#!/usr/bin/env bash
# Validation at 1,000 and at 1,000,000 users, on SQLite and PostgreSQL: does
# the p99 hold, what does a user cost on disk, how much memory does the
# server take? See docs/benchmarks.md ("Scale"). Not part of scripts/test.sh;
# run by scripts/bench.sh unless BENCH_SCALE=0.
#
# For each database, with a fresh data directory (PostgreSQL: a fresh
# database, dropped afterwards):
#   1. `twofold-bench seed` writes BENCH_SCALE_SMALL users (scale-0000000 …)
#      straight through the store: each with an HOTP token sealed with the
#      server's sealing key and method oath_token:oath (bench-only: their
#      seeds derive from a public key); PostgreSQL is ANALYZEd afterwards;
#   2. `twofold serve` starts; `twofold-bench --seeded` drives
#      POST /sdk/v1/validate with BENCH_SCALE_CLIENTS clients for
#      BENCH_SCALE_DURATION_SECS seconds over all of them (a sample of
#      BENCH_SCALE_SAMPLE when there are more); the server's VmRSS/VmHWM are
#      read from /proc/PID/status after the run; the server stops and the
#      database's size without the audit table is measured;
#   3. the seed is topped up to BENCH_SCALE_LARGE users and step 2 runs again
#      on a fresh server process, over a random sample of BENCH_SCALE_SAMPLE
#      users spread over the whole range (one per equal slice).
#
# Settings (environment):
#   BENCH_SCALE_SMALL=1000
#   BENCH_SCALE_LARGE=1000000
#   BENCH_SCALE_SAMPLE=5000          users driven per run (at most the users)
#   BENCH_SCALE_CLIENTS=16
#   BENCH_SCALE_DURATION_SECS=20
#   BENCH_SCALE_BACKENDS="sqlite postgres"
#   BENCH_PG_URL, BENCH_DB_MAX_CONNECTIONS, BENCH_LOG_LEVEL as for bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SMALL="${BENCH_SCALE_SMALL:-1000}"
LARGE="${BENCH_SCALE_LARGE:-1000000}"
SAMPLE="${BENCH_SCALE_SAMPLE:-5000}"
CLIENTS="${BENCH_SCALE_CLIENTS:-16}"
DURATION="${BENCH_SCALE_DURATION_SECS:-20}"
BACKENDS="${BENCH_SCALE_BACKENDS:-sqlite postgres}"
PREFIX=scale
ACCOUNT=bench-scale

# Goals (the performance issue).
GOAL_P99_RATIO=1.5          # p99 at LARGE over p99 at SMALL
GOAL_BYTES_PER_USER=1024
GOAL_RSS_MIB=150

# shellcheck source-path=SCRIPTDIR/..
source scripts/bench-common.sh

require_whole_numbers SMALL LARGE SAMPLE CLIENTS DURATION
((SMALL >= 1 && LARGE > SMALL && LARGE <= 10000000)) || die "need 1 <= BENCH_SCALE_SMALL < BENCH_SCALE_LARGE <= 10000000"
((CLIENTS >= 1 && CLIENTS <= SAMPLE && CLIENTS <= SMALL)) || die "BENCH_SCALE_CLIENTS must be 1 to the sample and to BENCH_SCALE_SMALL"
check_backends BENCH_SCALE_BACKENDS

bench_init twofold-bench-scale
require_postgres BENCH_SCALE_BACKENDS
command -v sqlite3 >/dev/null 2>&1 || [[ " $BACKENDS " != *" sqlite "* ]] ||
  die "sqlite3 (the CLI) is needed to measure the SQLite file; apt-get install -y sqlite3"
build_release

declare -a ROWS=()
declare -A P99=() BYTES=() HWM=()
STATUS=0

seed() { # first count
  local out="$WORK/seed-$1.out"
  "$BENCH" seed --database-url "$(database_url)" --data-dir "$TWOFOLD_DATA_DIR" \
    --first "$1" --users "$2" --prefix "$PREFIX" | tee "$out" >&2 || die "seeding failed"
  field "$(grep '^RESULT seed' "$out")" users_per_s
}

# One timed run over the first $1 seeded users; appends a row.
measure() {
  local backend="$1" users="$2" seeded_rate="$3" dir="$WORK/$1" out result rss hwm bytes sample key
  sample=$((users < SAMPLE ? users : SAMPLE))
  start_server "$dir" "$users"
  log "$backend / $users users: $CLIENTS clients over $sample of them, $DURATION s"
  out="$dir/run-$users.out"
  if TWOFOLD_BENCH_SECRET="$SECRET" "$BENCH" \
    --url "https://$ADDR" --account "$ACCOUNT" --ca-file "$TWOFOLD_DATA_DIR/tls/cert.pem" \
    --seeded "$users" --sample "$sample" --user-prefix "$PREFIX" --database-url "$(database_url)" \
    --concurrency "$CLIENTS" --duration-secs "$DURATION" --mode otp --server-pid "$SERVER_PID" | tee "$out"; then
    :
  else
    STATUS=1
  fi
  rss=$(proc_status_kib "$SERVER_PID" VmRSS)
  hwm=$(proc_status_kib "$SERVER_PID" VmHWM)
  stop_servers
  bytes=$(bytes_without_audit "$backend")
  result="$(grep '^RESULT mode=' "$out" | tail -n 1 || true)"
  key="$backend/$users"
  P99[$key]="$(field "$result" p99_ms)"
  BYTES[$key]="$bytes"
  HWM[$key]="$hwm"
  ROWS+=("$(printf '%-9s %9s %7s %9s %8s %8s %8s %8s %9s %10s %9s %9s %11s' "$backend" "$users" "$sample" \
    "$(field "$result" rps)" "$(field "$result" p50_ms)" "$(field "$result" p90_ms)" "${P99[$key]:-?}" \
    "$(field "$result" max_ms)" "$(field "$result" failed)" "$bytes" \
    "$(awk -v b="$bytes" -v u="$users" 'BEGIN { printf "%.0f", b / u }')" \
    "$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')/$(awk -v k="$hwm" 'BEGIN { printf "%.1f", k / 1024 }')" \
    "$seeded_rate")")
}

for backend in $BACKENDS; do
  backend_begin "$backend" "$WORK/$backend" twofold_scale
  log "$backend: seeding $SMALL users"
  rate="$(seed 0 "$SMALL")"
  [ "$backend" = postgres ] && psql "$TWOFOLD_DATABASE_URL" -qAtc 'ANALYZE' >/dev/null
  SECRET="$("$TWOFOLD" service-account create "$ACCOUNT" --role validate </dev/null | awk 'NF { last = $0 } END { print last }')"
  [ -n "$SECRET" ] || die "twofold service-account create printed no secret"
  measure "$backend" "$SMALL" "$rate"
  log "$backend: seeding $((LARGE - SMALL)) more users"
  rate="$(seed "$SMALL" "$((LARGE - SMALL))")"
  [ "$backend" = postgres ] && psql "$TWOFOLD_DATABASE_URL" -qAtc 'ANALYZE' >/dev/null
  measure "$backend" "$LARGE" "$rate"
  backend_end
done

echo
echo "Twofold scale benchmark — $(nproc) CPU(s), $CLIENTS clients, $DURATION s per run, OTP validate over seeded users"
printf '%-9s %9s %7s %9s %8s %8s %8s %8s %9s %10s %9s %9s %11s\n' database users driven 'req/s' 'p50 ms' 'p90 ms' \
  'p99 ms' 'max ms' failed 'db bytes' 'B/user' 'RSS/HWM' 'seeded/s'
for row in "${ROWS[@]}"; do
  echo "$row"
done
echo "(db bytes: without the audit table — SQLite: file after wal_checkpoint(TRUNCATE) minus dbstat's audit pages;"
echo " PostgreSQL: pg_total_relation_size of every other table. RSS/HWM: the server's VmRSS/VmHWM in MiB after the run.)"

echo
printf '%-52s %12s %12s  %s\n' goal measured target ''
for backend in $BACKENDS; do
  small="$backend/$SMALL" large="$backend/$LARGE"
  ratio="$(awk -v a="${P99[$large]:-0}" -v b="${P99[$small]:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }')"
  printf '%-52s %12s %12s  %s\n' "$backend p99 at $LARGE over p99 at $SMALL users" "${ratio}x" "<= ${GOAL_P99_RATIO}x" \
    "$(verdict le "$ratio" "$GOAL_P99_RATIO")"
  per="$(awk -v b="${BYTES[$large]}" -v u="$LARGE" 'BEGIN { printf "%.0f", b / u }')"
  printf '%-52s %12s %12s  %s\n' "$backend bytes per user at $LARGE (no audit)" "$per B" "<= $GOAL_BYTES_PER_USER B" \
    "$(verdict le "$per" "$GOAL_BYTES_PER_USER")"
  inc="$(awk -v a="${BYTES[$large]}" -v b="${BYTES[$small]}" -v n="$((LARGE - SMALL))" 'BEGIN { printf "%.0f", (a - b) / n }')"
  printf '%-52s %12s %12s  %s\n' "$backend   (each user added from $SMALL to $LARGE)" "$inc B" "" ""
  hwm="$(awk -v k="${HWM[$large]}" 'BEGIN { printf "%.1f", k / 1024 }')"
  printf '%-52s %12s %12s  %s\n' "$backend server peak RSS (VmHWM) at $LARGE users" "$hwm MiB" "<= $GOAL_RSS_MIB MiB" \
    "$(verdict le "$hwm" "$GOAL_RSS_MIB")"
done
exit "$STATUS"
