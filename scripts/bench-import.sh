#!/usr/bin/env bash
# Times `twofold import csv` of a generated file of users (100,000 by
# default), on SQLite and PostgreSQL: every row a new user with a display
# name, email, phone with extension, mobile, language, method and groups,
# each written in its own transaction with its audit row, as an
# administrator's import does. Then the same file again (every row
# unchanged: read and compared only). The progress bar is drawn when the
# import runs on a terminal; here its output goes to a file. See
# docs/benchmarks.md. Not part of scripts/test.sh.
#
# Settings (environment):
#   BENCH_IMPORT_USERS=100000
#   BENCH_IMPORT_BACKENDS="sqlite postgres"
#   BENCH_PG_URL                  a PostgreSQL role allowed to create databases
#   BENCH_LOG_LEVEL=info
set -euo pipefail
cd "$(dirname "$0")/.."

USERS="${BENCH_IMPORT_USERS:-100000}"
BACKENDS="${BENCH_IMPORT_BACKENDS:-sqlite postgres}"

# shellcheck source-path=SCRIPTDIR/..
source scripts/bench-common.sh

require_whole_numbers USERS
((USERS >= 1 && USERS <= 1000000)) || die "BENCH_IMPORT_USERS must be 1 to 1000000, not $USERS"
check_backends BENCH_IMPORT_BACKENDS

bench_init twofold-bench-import
require_postgres BENCH_IMPORT_BACKENDS
build_release

csv="$WORK/users.csv"
log "writing $USERS users to $csv"
{
  echo "username,display_name,email,phone,mobile,language,method,groups"
  for ((i = 1; i <= USERS; i++)); do
    printf 'user%06d,User %d,user%06d@example.org,+31 20 %03d %04dx%d,+31 6 %08d,nl,oath_token,staff;vpn\n' \
      "$i" "$i" "$i" $((i % 900 + 100)) $((i % 10000)) $((i % 900 + 100)) $((10000000 + i))
  done
} >"$csv"

seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }

for backend in $BACKENDS; do
  backend_begin "$backend" "$WORK/$backend" bench_import
  log "$backend: importing $USERS users"
  start=$(date +%s%N)
  "$TWOFOLD" import csv "$csv" >"$WORK/$backend/import.out" 2>"$WORK/$backend/import.err" ||
    { tail -n 20 "$WORK/$backend/import.err" >&2; die "import failed on $backend"; }
  end=$(date +%s%N)
  first=$(seconds "$start" "$end")
  grep -q "^$USERS added" "$WORK/$backend/import.out" ||
    { tail -n 5 "$WORK/$backend/import.out" >&2; die "not every user was added on $backend"; }
  start=$(date +%s%N)
  "$TWOFOLD" import csv "$csv" >"$WORK/$backend/again.out" 2>"$WORK/$backend/again.err"
  end=$(date +%s%N)
  again=$(seconds "$start" "$end")
  grep -q "^$USERS unchanged" "$WORK/$backend/again.out" ||
    die "the second import changed something on $backend"
  size=""
  if [ "$backend" = sqlite ]; then
    size=" db_bytes=$(du -cb "$TWOFOLD_DATA_DIR"/twofold.db* | tail -n 1 | cut -f1)"
  fi
  printf 'RESULT backend=%s users=%d import_s=%s users_per_s=%s unchanged_s=%s%s\n' \
    "$backend" "$USERS" "$first" "$(awk -v n="$USERS" -v s="$first" 'BEGIN { printf "%.0f", n / s }')" \
    "$again" "$size"
  backend_end
done
