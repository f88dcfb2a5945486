#!/usr/bin/env bash
# payfac books benchmark: closing a business day of 100,000 payments for 1,000 merchants on PostgreSQL,
# and what the close costs the API while it runs. Loopback only; every phase is bounded; everything
# started here is stopped on exit and the PostgreSQL database is dropped.
#
# Usage: benches/books/run.sh              (from anywhere; needs root for `. scripts/test-services.sh`
#                                          and /proc/PID/clear_refs)
# Needs: target/release/payfac (built with `cargo build --release -p server` when missing), openssl, wrk,
#        curl, psql, python3 (stdlib only).
# Knobs (env):
#   BENCH_MERCHANTS=1000  BENCH_PAYMENTS=100000 (per business day)  BENCH_SEED=1 (the seed's RNG)
#   BENCH_CONC=8 (wrk connections of the API load)  BENCH_SECONDS=20 (each API phase, capped at 60)
#   BENCH_CLOSE_TIMEOUT=600 (one close, seconds)  BENCH_MAX_DAYS=6 (extra days closed under load)
#   BENCH_DURING_DAYS=K (that many extra days, whatever the close time: each close then has one more
#   closed day of history behind it than the one before)
#   BENCH_HISTORY_DAYS=H (after the first close, H ≤ 30 more days are seeded and closed one at a time,
#   each alone and measured like the first: how a close grows with the closed days behind it)
#   BENCH_PAYFAC_BIN=path (default target/release/payfac)  BENCH_OUT=DIR (raw files, results.jsonl)
#   BENCH_PERF=1 (perf record payfac and the database backends during the close: perf-close.txt)
#   BENCH_LOG_STATEMENTS=1 (log_min_duration_statement = 0 for the bench database: the statements of
#   the close are between 'books-bench-close-start' and '-end' in the PostgreSQL cluster's server.log)
#   BENCH_KEEP_DB=1 (keep the database of a run that ends normally, for EXPLAIN; merchants.json is in
#   BENCH_OUT, so `helper.py seed` can add another day to it)
#
# What it does:
#  1. A fresh database; a separate `payfac sim` and `payfac serve` (PostgreSQL + Redis), as the
#     payment bench starts them. BENCH_MERCHANTS merchants are onboarded through the API, each with
#     a price list (PUT /v1/merchants/{id}/pricing, then backdated so it is in force on the seeded days).
#  2. Real payments through the API (CPM, both wallets, partial refunds) and a check that their
#     stored fee snapshots, journals, entries and fee returns are exactly what the seed's rules
#     (helper.py `rows_of`) generate; then the seed: BENCH_PAYMENTS succeeded payments of one business
#     day D0 (40 days ago), skewed over the merchants, 5 % partially refunded, a few adjustments,
#     written with COPY as the engine would have written them. VACUUM ANALYZE of the seeded tables
#     (what autovacuum does to a table after a day of inserts).
#  3. close: POST /v1/settlements/run {"date": D0} (operator key), timed; payfac's VmHWM over it
#     (reset through /proc/PID/clear_refs first), payfac's and the database backends' CPU. Then
#     `helper.py verify`: each statement's totals = independent sums over payments, payment_fees
#     and refunds; each CSV hashes to its digest and adds up.
#  4. API: wrk MPM create (benches/payments/payments.lua) at BENCH_CONC for BENCH_SECONDS alone, then
#     while closes run, then alone again. To make the close overlap the whole phase, K more days
#     (D0+1 … D0+K, each like D0) are seeded beforehand, K = ceil((BENCH_SECONDS + 3) / close time
#     of step 3) capped at BENCH_MAX_DAYS; during the phase they are closed one after another, oldest
#     first (each run closes only its own day), starting 1 s before wrk; wrk stops after BENCH_SECONDS
#     or when the last close ends (SIGINT: wrk still reports), so a close runs throughout the measured
#     phase. Slowdown = 1 − during / mean(alone).
#  5. `openssl speed -seconds 3 rsa2048` (the machine's speed during this run) and `uptime`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MERCHANTS=${BENCH_MERCHANTS:-1000}
PAYMENTS=${BENCH_PAYMENTS:-100000}
SEED=${BENCH_SEED:-1}
CONC=${BENCH_CONC:-8}
SECS=${BENCH_SECONDS:-20}
[ "$SECS" -le 60 ] || SECS=60
CLOSE_TIMEOUT=${BENCH_CLOSE_TIMEOUT:-600}
MAX_DAYS=${BENCH_MAX_DAYS:-6}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/payfac-books-bench.XXXXXX)}
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
rm -f "$OUT/during-closes.txt" "$OUT/during-closes.done"
CLK=$(getconf CLK_TCK)
MERCHANT_NO=100000000000777
APP_ID=wzbe7c400000000001
log() { echo "[books $(date +%T)] $*" >&2; }

for tool in openssl wrk python3 curl psql; do
  command -v $tool >/dev/null || { echo "missing $tool (apt-get install -y wrk curl openssl postgresql-client)" >&2; exit 1; }
done

BIN=${BENCH_PAYFAC_BIN:-"$ROOT/target/release/payfac"}
if [ ! -x "$BIN" ]; then
  log "building the release binary (a few minutes)"
  (cd "$ROOT" && cargo build --release -p server)
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- processes we start, stopped on exit -----------------------------------------------------
PIDS=()
DB_NAME=""
PG_ADMIN=""
cleanup() {
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  done
  if [ -n "$DB_NAME" ]; then
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

wait_http() { # url seconds pid
  for _ in $(seq $(($2 * 10))); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { echo "process $3 exited; see the logs in $OUT" >&2; return 1; }
    sleep 0.1
  done
  echo "timed out waiting for $1" >&2; return 1
}

now() { date +%s.%N; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# "pid ticks" of every backend connected to the bench database.
pg_ticks() {
  psql "$PG_ADMIN" -Atc "SELECT pid FROM pg_stat_activity WHERE datname = '$DB_NAME'" |
    while read -r pid; do [ -r "/proc/$pid/stat" ] && echo "$pid $(cpu_ticks "$pid")"; done || true
}
# CPU seconds the database backends used between two pg_ticks snapshots (a backend that appeared in
# between counts from 0).
pg_cpu_s() {
  python3 - "$1" "$2" "$CLK" <<'EOF'
import sys
before = dict(l.split() for l in open(sys.argv[1]) if l.strip())
after = dict(l.split() for l in open(sys.argv[2]) if l.strip())
print(round(sum(int(t) - int(before.get(p, 0)) for p, t in after.items()) / int(sys.argv[3]), 2))
EOF
}
status_mb() { awk -v f="$2:" '$1 == f {printf "%.1f", $2 / 1024}' "$1"; }
load1() { cut -d' ' -f1 /proc/loadavg; }

# --- keys, simulator, database, payfac ---------------------------------------------------------
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$OUT/app.key" 2>/dev/null
openssl pkey -in "$OUT/app.key" -pubout -out "$OUT/app.pub"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$OUT/gateway.key" 2>/dev/null
openssl pkey -in "$OUT/gateway.key" -pubout -out "$OUT/gateway.pub"
chmod 600 "$OUT/app.key" "$OUT/gateway.key"

log "uptime: $(uptime)"
SIM_PORT=$(free_port); PAYFAC_PORT=$(free_port)
SIM="http://127.0.0.1:$SIM_PORT"; PAYFAC="http://127.0.0.1:$PAYFAC_PORT"
"$BIN" sim --listen "127.0.0.1:$SIM_PORT" --time-scale 1 --gateway-private-key "$OUT/gateway.key" \
  --app-id "$APP_ID" --app-public-key "$OUT/app.pub" --merchant-no "$MERCHANT_NO" >"$OUT/sim.log" 2>&1 &
SIM_PID=$!; PIDS+=("$SIM_PID")
wait_http "$SIM/sim/clock" 20 "$SIM_PID"

# shellcheck disable=SC1091
. "$ROOT/scripts/test-services.sh"
PG_ADMIN=$PAYFAC_TEST_DATABASE_URL
DB_NAME="books_bench_$(date +%s)_$RANDOM"
psql "$PG_ADMIN" -qc "CREATE DATABASE $DB_NAME" >/dev/null
if [ "${BENCH_LOG_STATEMENTS:-0}" = 1 ]; then # every statement's duration in the cluster's server.log
  psql "$PG_ADMIN" -qc "ALTER DATABASE $DB_NAME SET log_min_duration_statement = 0" >/dev/null
fi
DB="${PG_ADMIN%/*}/$DB_NAME"

OP_KEY="op_bench$(openssl rand -hex 16)"
env -u PAYFAC_TEST_DATABASE_URL -u PAYFAC_TEST_REDIS_URL \
  PAYFAC_DATABASE_URL="$DB" PAYFAC_REDIS_URL="$PAYFAC_TEST_REDIS_URL" \
  PAYFAC_MASTER_KEY="$(openssl rand -base64 32)" PAYFAC_SANDBOX=false \
  PAYFAC_CODEPAY_BASE_URL="$SIM" PAYFAC_CODEPAY_APP_ID="$APP_ID" \
  PAYFAC_CODEPAY_PRIVATE_KEY_FILE="$OUT/app.key" PAYFAC_CODEPAY_GATEWAY_PUBLIC_KEY_FILE="$OUT/gateway.pub" \
  PAYFAC_BOOTSTRAP_OPERATOR_KEY="$OP_KEY" PAYFAC_RATE_LIMIT_PER_SECOND=1000000 PAYFAC_LOG_LEVEL=warn \
  PAYFAC_PUBLIC_URL="$PAYFAC" \
  "$BIN" serve --listen "127.0.0.1:$PAYFAC_PORT" >"$OUT/payfac.log" 2>&1 &
PAYFAC_PID=$!; PIDS+=("$PAYFAC_PID")
wait_http "$PAYFAC/healthz" 60 "$PAYFAC_PID"

# --- merchants, real payments, the seed ----------------------------------------------------------
log "onboarding $MERCHANTS merchants with price lists"
python3 "$HERE/helper.py" onboard "$PAYFAC" "$OP_KEY" "$MERCHANTS" "$MERCHANT_NO" "$OUT/merchants.json"
# The API sets a price list effective now; the seeded days are in the past, so backdate version 1
# (bench-only) to before them: the fee of a seeded payment is then the one the engine would charge.
psql "$DB" -qc "UPDATE pricing_versions SET effective_at = effective_at - CAST(100 AS BIGINT) * 86400000" >/dev/null
LOAD_MER=$(curl -fsS "$PAYFAC/v1/merchants" -H "Authorization: Bearer $OP_KEY" -H 'Content-Type: application/json' \
  -d "{\"name\":\"Load\",\"default_currency\":\"USD\",\"max_amount\":100000000,\"codepay\":{\"merchant_no\":\"$MERCHANT_NO\"}}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
SK=$(curl -fsS -X POST "$PAYFAC/v1/merchants/$LOAD_MER/api-keys" -H "Authorization: Bearer $OP_KEY" \
  -H 'Content-Type: application/json' -d '{"label":"bench"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')

log "real payments through the API"
python3 "$HERE/helper.py" real "$PAYFAC" "$OP_KEY" "$SIM" "$OUT/merchants.json" "$OUT/real.json"
python3 "$HERE/helper.py" check-real "$DB" "$OUT/merchants.json" "$OUT/real.json"

day() { date -u -d "$1 days ago" +%F; }
D0=$(day 40)
seed_day() { # date seed
  local t0; t0=$(now)
  python3 "$HERE/helper.py" seed "$DB" "$OUT/merchants.json" "$1" "$PAYMENTS" "$2" "$MERCHANT_NO"
  # the seeded tables only: an ANALYZE of the still empty settlements table would make PostgreSQL
  # plan the foreign-key checks of the first close as sequential scans of it (see docs/benchmarks.md)
  psql "$DB" -qc "VACUUM ANALYZE payments, payment_fees, refunds, ledger_journals, ledger_entries" >/dev/null
  log "seeded $1: $PAYMENTS payments in $(python3 -c "print(round($(now) - $t0, 1))") s"
}
seed_day "$D0" "$SEED"
psql "$DB" -Atc "SELECT 'rows: payments ' || (SELECT count(*) FROM payments) || ', refunds ' ||
  (SELECT count(*) FROM refunds) || ', journals ' || (SELECT count(*) FROM ledger_journals) || ', entries ' ||
  (SELECT count(*) FROM ledger_entries) || ', database ' || pg_size_pretty(pg_database_size(current_database()))" >&2

# --- close ---------------------------------------------------------------------------------------
close_day() { # date out-file: POST /v1/settlements/run, bounded
  curl -fsS --max-time "$CLOSE_TIMEOUT" "$PAYFAC/v1/settlements/run" -H "Authorization: Bearer $OP_KEY" \
    -H 'Content-Type: application/json' -H "Idempotency-Key: close-$1-$RANDOM$RANDOM" \
    -d "{\"date\":\"$1\"}" >"$2"
}
# measured_close DATE PHASE: one timed close with payfac's VmHWM over it (reset first), payfac's and
# the database backends' CPU, one line of results.jsonl, then the independent check of its statements.
measured_close() {
  local d=$1 phase=$2 c0 c1 t0 t1 perf_pid=""
  log "closing $d ($phase)"
  echo 5 >"/proc/$PAYFAC_PID/clear_refs" # resets VmHWM to the current RSS
  cp "/proc/$PAYFAC_PID/status" "$OUT/$phase.status0"
  pg_ticks >"$OUT/$phase.pg0"; c0=$(cpu_ticks "$PAYFAC_PID")
  if [ "${BENCH_PERF:-0}" = 1 ] && [ "$phase" = close ]; then # payfac and every database backend of the bench
    perf record -F 499 -g -p "$(cut -d' ' -f1 "$OUT/$phase.pg0" | paste -sd, -),$PAYFAC_PID" -o "$OUT/perf-close.data" \
      >/dev/null 2>&1 &
    perf_pid=$!; sleep 0.5
  fi
  psql "$DB" -qc "SELECT 'books-bench-close-start'" >/dev/null
  t0=$(now)
  close_day "$d" "$OUT/close-$d.json"
  t1=$(now)
  psql "$DB" -qc "SELECT 'books-bench-close-end'" >/dev/null; c1=$(cpu_ticks "$PAYFAC_PID"); pg_ticks >"$OUT/$phase.pg1"
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid"; wait "$perf_pid" || true
    perf report -i "$OUT/perf-close.data" --no-children --sort comm,dso,symbol --stdio 2>/dev/null | grep -v '^#' |
      grep '%' | head -n 60 >"$OUT/perf-close.txt" || true
  fi
  cp "/proc/$PAYFAC_PID/status" "$OUT/$phase.status1"
  CLOSE_S=$(python3 -c "print(round($t1 - $t0, 2))")
  python3 - "$OUT/close-$d.json" <<EOF | tee -a "$RESULTS" >&2
import json, sys
body = json.load(open(sys.argv[1]))
print(json.dumps({"phase": "$phase", "date": "$d", "seconds": $CLOSE_S, "statements": len(body["statements"]),
                  "payfac_cpu_s": round(($c1 - $c0) / $CLK, 2), "pg_cpu_s": $(pg_cpu_s "$OUT/$phase.pg0" "$OUT/$phase.pg1"),
                  "rss_before_mb": $(status_mb "$OUT/$phase.status0" VmRSS), "rss_mb": $(status_mb "$OUT/$phase.status1" VmRSS),
                  "hwm_mb": $(status_mb "$OUT/$phase.status1" VmHWM), "load1": $(load1)}))
EOF
  python3 "$HERE/helper.py" verify "$DB" "$d"
}
sleep 2
measured_close "$D0" close
FIRST_CLOSE_S=$CLOSE_S

# --- optional: closes with more and more closed days behind them, each alone --------------------------
HISTORY=${BENCH_HISTORY_DAYS:-0}
[ "$HISTORY" -le 30 ] || HISTORY=30
for k in $(seq "$HISTORY"); do
  d=$(day $((40 - k)))
  seed_day "$d" $((SEED + 100 + k))
  measured_close "$d" "close-history-$k"
done

# --- the API alone and while closes run ----------------------------------------------------------
DAYS=${BENCH_DURING_DAYS:-$(python3 -c "import math; print(max(1, min($MAX_DAYS, math.ceil(($SECS + 3) / max($FIRST_CLOSE_S, 0.1)))))")}
DURING=()
for k in $(seq "$DAYS"); do
  d=$(day $((40 - HISTORY - k)))
  seed_day "$d" $((SEED + k))
  DURING+=("$d")
done

api_phase() { # name [stop-file]: wrk for $SECS s, or until stop-file appears (then SIGINT: wrk still reports)
  local tag=$1 stop=${2:-} c0 c1 x wrk_pid
  echo 5 >"/proc/$PAYFAC_PID/clear_refs"
  pg_ticks >"$OUT/$tag.pg0"; c0=$(cpu_ticks "$PAYFAC_PID")
  BENCH_KEY=$SK BENCH_MODE=mpm BENCH_RUN="${tag//-/}$RANDOM" BENCH_THREADS=2 \
    wrk -t 2 -c "$CONC" -d "${SECS}s" --latency --timeout 10s -s "$ROOT/benches/payments/payments.lua" "$PAYFAC" \
    >"$OUT/$tag.wrk" 2>&1 &
  wrk_pid=$!
  sleep 1 # wrk's SIGINT handler is in place by then
  while kill -0 "$wrk_pid" 2>/dev/null; do
    if [ -n "$stop" ] && [ -e "$stop" ]; then kill -INT "$wrk_pid" 2>/dev/null || true; break; fi
    sleep 0.05
  done
  wait "$wrk_pid" || true # the RESULT line below says whether wrk reported
  c1=$(cpu_ticks "$PAYFAC_PID"); pg_ticks >"$OUT/$tag.pg1"
  cp "/proc/$PAYFAC_PID/status" "$OUT/$tag.status"
  x=$(grep '^RESULT ' "$OUT/$tag.wrk" | sed 's/^RESULT //')
  [ -n "$x" ] || { echo "wrk gave no RESULT line: $OUT/$tag.wrk" >&2; exit 1; }
  python3 -c "
import json
r = json.loads('''$x''')
r.update(phase='$tag', conc=$CONC, payfac_cpu_s=round(($c1 - $c0) / $CLK, 2), pg_cpu_s=$(pg_cpu_s "$OUT/$tag.pg0" "$OUT/$tag.pg1"),
         rss_mb=$(status_mb "$OUT/$tag.status" VmRSS), hwm_mb=$(status_mb "$OUT/$tag.status" VmHWM), load1=$(load1))
print(json.dumps(r))" | tee -a "$RESULTS" >&2
}

sleep 2
log "API alone ($CONC connections, $SECS s)"
api_phase api-alone-1
sleep 2
log "API while closing ${DURING[*]}"
# The closes run one after another from 1 s before wrk starts; wrk stops after $SECS s or when the
# last close ends, whichever comes first, so closes run throughout the measured phase.
( for d in "${DURING[@]}"; do
    s=$(now); close_day "$d" "$OUT/close-$d.json"; echo "$d $s $(now)" >>"$OUT/during-closes.txt"
  done
  touch "$OUT/during-closes.done" ) &
LOOP_PID=$!; PIDS+=("$LOOP_PID")
sleep 1
api_phase api-during-close "$OUT/during-closes.done"
if [ -e "$OUT/during-closes.done" ]; then CUT=True; else CUT=False; fi
wait "$LOOP_PID"
python3 -c "
import json
closes = [l.split() for l in open('$OUT/during-closes.txt')]
print(json.dumps({'phase': 'closes-under-load', 'wrk_stopped_by_last_close': $CUT,
                  'closes': [{'date': d, 'seconds': round(float(b) - float(a), 2)} for d, a, b in closes]}))" |
  tee -a "$RESULTS" >&2
sleep 2
log "API alone again"
api_phase api-alone-2
for d in "${DURING[@]}"; do python3 "$HERE/helper.py" verify "$DB" "$d"; done

grep -ci 'error\|panic' "$OUT/payfac.log" | xargs -I{} echo "payfac log: {} error/panic lines" >&2 || true
log "uptime: $(uptime)"
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
stop "$PAYFAC_PID"; stop "$SIM_PID"
if [ "${BENCH_KEEP_DB:-0}" = 1 ]; then
  log "kept the database: $DB (drop it with: psql $PG_ADMIN -c 'DROP DATABASE $DB_NAME')"
else
  psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null
fi
DB_NAME=""

openssl speed -seconds 3 rsa2048 >"$OUT/openssl.txt" 2>/dev/null || true
SIGN_MS=$(awk '/^rsa 2048 bits/ {print $4 * 1000}' "$OUT/openssl.txt" | head -n 1)

echo
python3 "$HERE/helper.py" report "$RESULTS"
python3 - "$RESULTS" <<'EOF'
import json, sys
rows = {r["phase"]: r for r in map(json.loads, open(sys.argv[1]))}
alone = [rows[p]["rps"] for p in ("api-alone-1", "api-alone-2") if p in rows]
during = rows.get("api-during-close")
if alone and during:
    mean = sum(alone) / len(alone)
    print(f"\nAPI slowdown while closing: {100 * (1 - during['rps'] / mean):.1f} % "
          f"({during['rps']:.0f} req/s over {during['seconds']:.1f} s of closes vs {mean:.0f} alone)")
EOF
echo "openssl speed rsa2048 sign: ${SIGN_MS:-?} ms"
echo "raw files: $OUT"
