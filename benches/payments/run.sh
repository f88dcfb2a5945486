#!/usr/bin/env bash
# payfac payment benchmark: MPM create and CPM approve through the tenant API, against a SEPARATE
# CodePay simulator process, on PostgreSQL+Redis and on SQLite. Loopback only; every phase is bounded
# (≤ 30 s); everything started here is stopped on exit (the PostgreSQL database is dropped).
#
# Usage: benches/payments/run.sh            (from anywhere; needs root for `. scripts/test-services.sh`)
# Needs: target/release/payfac (built with `cargo build --release -p server` when missing), openssl,
#        wrk (`apt-get install -y wrk`), python3 with `cryptography` (pre-signing simulator requests).
# Knobs (env):
#   BENCH_BACKENDS="postgres sqlite"  BENCH_SWEEP="4 16 64" (MPM concurrency probes, peak = best req/s)
#   BENCH_PROBE_SECONDS=5  BENCH_SECONDS=15 (each measured phase, capped at 30)  BENCH_SIM_REQUESTS=3000
#   BENCH_PAYFAC_BIN=path (default target/release/payfac)
#   BENCH_PERF=1 (perf record payfac for 10 s in each of BENCH_PERF_PHASES, default "mpm-peak cpm-peak";
#   the recording costs CPU, so take CPU figures from a run without it)  BENCH_OUT=DIR
#
# Per backend: fresh simulator + payfac, onboard one merchant, idle RSS, MPM concurrency sweep → peak,
# then MPM at peak and half, CPM (approve auth codes, pre-minted: they are single use) at peak and half,
# then the simulator ALONE with pre-signed requests at the same concurrencies (its own latency, to
# subtract). Reported per phase: req/s, p50/p99 (wrk), payfac CPU ms per request (utime+stime of the
# payfac process from /proc/PID/stat over the phase plus a 2 s drain, so background jobs and CPM
# notification intake are included) and as a multiple of this run's `openssl speed rsa2048` sign
# time, simulator CPU ms per request, payfac's mean server time and upstream time per request
# (Prometheus sums), payfac's own time per create (request time minus its waits on the database and
# CodePay, measured in the process: p50/p99/mean from the payfac_http_own_seconds histogram between
# the phase's two scrapes), PostgreSQL transactions per request (pg_stat_database,
# the bench database only), VmRSS at the end of the phase and VmHWM during it
# (reset per phase through /proc/PID/clear_refs). Raw files and results.jsonl are kept in BENCH_OUT.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BACKENDS=${BENCH_BACKENDS:-"postgres sqlite"}
SWEEP=${BENCH_SWEEP:-"4 16 64"}
PROBE_SECONDS=${BENCH_PROBE_SECONDS:-5}
SECONDS_PER_PHASE=${BENCH_SECONDS:-15}
[ "$SECONDS_PER_PHASE" -le 30 ] || SECONDS_PER_PHASE=30
SIM_REQUESTS=${BENCH_SIM_REQUESTS:-3000}
PERF_PHASES=${BENCH_PERF_PHASES:-"mpm-peak cpm-peak"}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/payfac-bench.XXXXXX)}
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
CLK=$(getconf CLK_TCK)
MERCHANT_NO=100000000000777
APP_ID=wzbe7c400000000001
log() { echo "[bench $(date +%T)] $*" >&2; }

for tool in openssl wrk python3 curl; do
  command -v $tool >/dev/null || { echo "missing $tool (apt-get install -y wrk curl openssl)" >&2; exit 1; }
done
python3 -c 'import cryptography' 2>/dev/null || { echo "python3 needs cryptography (pip install cryptography)" >&2; exit 1; }

BIN=${BENCH_PAYFAC_BIN:-"$ROOT/target/release/payfac"}
if [ ! -x "$BIN" ]; then
  log "building the release binary (a few minutes)"
  (cd "$ROOT" && cargo build --release -p server)
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- processes we start, stopped on exit -----------------------------------------------------
PIDS=()
DB_NAME=""
cleanup() {
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  done
  if [ -n "$DB_NAME" ]; then
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

wait_http() { # url seconds pid
  for _ in $(seq $(($2 * 10))); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { echo "process $3 exited; see the logs in $OUT" >&2; return 1; }
    sleep 0.1
  done
  echo "timed out waiting for $1" >&2; return 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# PostgreSQL transactions (commits + rollbacks) of the bench database so far; 0 on SQLite.
db_xacts() {
  if [ "$BACKEND" = postgres ]; then
    psql "$PG_ADMIN" -Atc "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$DB_NAME'"
  else echo 0; fi
}

# --- keys ------------------------------------------------------------------------------------
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$OUT/app.key" 2>/dev/null
openssl pkey -in "$OUT/app.key" -pubout -out "$OUT/app.pub"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$OUT/gateway.key" 2>/dev/null
openssl pkey -in "$OUT/gateway.key" -pubout -out "$OUT/gateway.pub"
chmod 600 "$OUT/app.key" "$OUT/gateway.key"

# --- the hard floor of this run: one RSA-2048 signature, as OpenSSL measures it -------------------
# Every CPU figure is also reported as a multiple of it (payfac signs once per upstream call).
openssl speed -seconds 3 rsa2048 >"$OUT/openssl-speed.txt" 2>&1
SIGN_MS=$(awk '/^rsa 2048 bits/ {printf "%.4f", $4 * 1000}' "$OUT/openssl-speed.txt")
log "openssl speed rsa2048: sign $SIGN_MS ms"

# --- one measured wrk phase ----------------------------------------------------------------------
# phase NAME CONC SECONDS MODE [CODES]: drives payfac, records one line of results.jsonl.
phase() {
  local name=$1 conc=$2 secs=$3 mode=$4 codes=${5:-}
  local threads=$((conc < 2 ? 1 : 2)) tag="$BACKEND-$name"
  curl -fsS "$PAYFAC/metrics" >"$OUT/$tag.metrics0"
  echo 5 >"/proc/$PAYFAC_PID/clear_refs" 2>/dev/null || true # resets VmHWM to the current RSS
  local c0 s0 x0
  c0=$(cpu_ticks "$PAYFAC_PID"); s0=$(cpu_ticks "$SIM_PID"); x0=$(db_xacts)
  if [ "${BENCH_PERF:-0}" = 1 ] && [[ " $PERF_PHASES " == *" $name "* ]] && [ ! -e "$OUT/perf-$tag.data" ]; then
    perf record -F 499 -g -p "$PAYFAC_PID" -o "$OUT/perf-$tag.data" -- sleep 10 >/dev/null 2>&1 &
  fi
  BENCH_KEY=$SK BENCH_MODE=$mode BENCH_RUN="${name//-/}$RANDOM" BENCH_CODES=$codes BENCH_THREADS=$threads \
    wrk -t "$threads" -c "$conc" -d "${secs}s" --latency --timeout 10s -s "$HERE/payments.lua" "$PAYFAC" \
    >"$OUT/$tag.wrk" 2>&1
  cp "/proc/$PAYFAC_PID/status" "$OUT/$tag.status"
  sleep 2 # let notifications and the jobs the phase enqueued run: their CPU belongs to the payments
  local c1 s1 x1
  c1=$(cpu_ticks "$PAYFAC_PID"); s1=$(cpu_ticks "$SIM_PID"); x1=$(db_xacts)
  curl -fsS "$PAYFAC/metrics" >"$OUT/$tag.metrics1"
  python3 "$HERE/helper.py" record --backend "$BACKEND" --phase "$name" --conc "$conc" --wrk "$OUT/$tag.wrk" \
    --cpu-ticks $((c1 - c0)) --sim-cpu-ticks $((s1 - s0)) --clk "$CLK" --status "$OUT/$tag.status" \
    --metrics-before "$OUT/$tag.metrics0" --metrics-after "$OUT/$tag.metrics1" --db-xacts $((x1 - x0)) \
    --sign-ms "$SIGN_MS" |
    tee -a "$RESULTS" >&2
}

# sim_phase NAME CONC MODE BODIES: the simulator alone, same concurrency, pre-signed requests.
sim_phase() {
  local name=$1 conc=$2 bodies=$4 threads=$(($2 < 2 ? 1 : 2)) tag="$BACKEND-$1"
  local s0 s1
  s0=$(cpu_ticks "$SIM_PID")
  BENCH_BODIES=$bodies BENCH_THREADS=$threads \
    wrk -t "$threads" -c "$conc" -d "${BENCH_SIM_SECONDS:-8}s" --latency --timeout 10s -s "$HERE/sim.lua" "$SIM" \
    >"$OUT/$tag.wrk" 2>&1
  s1=$(cpu_ticks "$SIM_PID")
  python3 "$HERE/helper.py" record --backend "$BACKEND" --phase "$name" --conc "$conc" --wrk "$OUT/$tag.wrk" \
    --sim-cpu-ticks $((s1 - s0)) --clk "$CLK" --sign-ms "$SIGN_MS" | tee -a "$RESULTS" >&2
}

for BACKEND in $BACKENDS; do
  log "=== backend $BACKEND ==="
  SIM_PORT=$(free_port); PAYFAC_PORT=$(free_port)
  SIM="http://127.0.0.1:$SIM_PORT"; PAYFAC="http://127.0.0.1:$PAYFAC_PORT"

  "$BIN" sim --listen "127.0.0.1:$SIM_PORT" --time-scale 1 --gateway-private-key "$OUT/gateway.key" \
    --app-id "$APP_ID" --app-public-key "$OUT/app.pub" --merchant-no "$MERCHANT_NO" \
    >"$OUT/$BACKEND-sim.log" 2>&1 &
  SIM_PID=$!; PIDS+=("$SIM_PID")
  wait_http "$SIM/sim/clock" 20 "$SIM_PID"

  env_db=()
  if [ "$BACKEND" = postgres ]; then
    # shellcheck disable=SC1091
    . "$ROOT/scripts/test-services.sh"
    PG_ADMIN=$PAYFAC_TEST_DATABASE_URL
    DB_NAME="bench_$(date +%s)_$RANDOM"
    psql "$PG_ADMIN" -qc "CREATE DATABASE $DB_NAME" >/dev/null
    env_db=(PAYFAC_DATABASE_URL="${PG_ADMIN%/*}/$DB_NAME" PAYFAC_REDIS_URL="$PAYFAC_TEST_REDIS_URL")
  else
    mkdir -p "$OUT/sqlite-data"
    env_db=(PAYFAC_DATA_DIR="$OUT/sqlite-data")
  fi
  OP_KEY="op_bench$(openssl rand -hex 16)"
  env -u PAYFAC_TEST_DATABASE_URL -u PAYFAC_TEST_REDIS_URL "${env_db[@]}" \
    PAYFAC_MASTER_KEY="$(openssl rand -base64 32)" PAYFAC_SANDBOX=false \
    PAYFAC_CODEPAY_BASE_URL="$SIM" PAYFAC_CODEPAY_APP_ID="$APP_ID" \
    PAYFAC_CODEPAY_PRIVATE_KEY_FILE="$OUT/app.key" PAYFAC_CODEPAY_GATEWAY_PUBLIC_KEY_FILE="$OUT/gateway.pub" \
    PAYFAC_BOOTSTRAP_OPERATOR_KEY="$OP_KEY" PAYFAC_RATE_LIMIT_PER_SECOND=1000000 PAYFAC_LOG_LEVEL=warn \
    PAYFAC_PUBLIC_URL="$PAYFAC" \
    "$BIN" serve --listen "127.0.0.1:$PAYFAC_PORT" >"$OUT/$BACKEND-payfac.log" 2>&1 &
  PAYFAC_PID=$!; PIDS+=("$PAYFAC_PID")
  wait_http "$PAYFAC/healthz" 60 "$PAYFAC_PID"

  MER=$(curl -fsS "$PAYFAC/v1/merchants" -H "Authorization: Bearer $OP_KEY" -H 'Content-Type: application/json' \
    -d "{\"name\":\"Bench\",\"default_currency\":\"USD\",\"max_amount\":100000000,\"codepay\":{\"merchant_no\":\"$MERCHANT_NO\"}}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  SK=$(curl -fsS -X POST "$PAYFAC/v1/merchants/$MER/api-keys" -H "Authorization: Bearer $OP_KEY" \
    -H 'Content-Type: application/json' -d '{"label":"bench"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
  sleep 3
  cp "/proc/$PAYFAC_PID/status" "$OUT/$BACKEND-idle.status"
  echo "{\"backend\":\"$BACKEND\",\"phase\":\"idle\",\"rss_mb\":$(awk '/VmRSS/{printf "%.1f", $2/1024}' "$OUT/$BACKEND-idle.status")}" |
    tee -a "$OUT/idle.jsonl" >&2

  # Peak: the probe with the most req/s; a larger concurrency must win by > 5 % (else it only queues).
  best_rps=0; PEAK=0
  for c in $SWEEP; do
    phase "mpm-probe-c$c" "$c" "$PROBE_SECONDS" mpm
    rps=$(tail -n 1 "$RESULTS" | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["rps"]))')
    if [ "$rps" -gt $((best_rps * 105 / 100)) ]; then best_rps=$rps; PEAK=$c; fi
  done
  HALF=$((PEAK / 2 > 0 ? PEAK / 2 : 1))
  log "peak concurrency $PEAK ($best_rps req/s), half $HALF"
  cp "/proc/$PAYFAC_PID/status" "$OUT/$BACKEND-after-probes.status"

  phase mpm-peak "$PEAK" "$SECONDS_PER_PHASE" mpm
  phase mpm-half "$HALF" "$SECONDS_PER_PHASE" mpm

  # CPM codes: the MPM peak rate with 50 % headroom per phase; a thread that runs out stops and is
  # reported (pool_exhausted_threads), never reuses a code.
  ncodes=$((best_rps * SECONDS_PER_PHASE * 3 / 2 + 100))
  log "minting $((2 * ncodes)) auth codes"
  python3 "$HERE/helper.py" mint "$SIM" "$ncodes" "$OUT/$BACKEND-codes-peak.txt"
  python3 "$HERE/helper.py" mint "$SIM" "$ncodes" "$OUT/$BACKEND-codes-half.txt"
  phase cpm-peak "$PEAK" "$SECONDS_PER_PHASE" cpm "$OUT/$BACKEND-codes-peak.txt"
  phase cpm-half "$HALF" "$SECONDS_PER_PHASE" cpm "$OUT/$BACKEND-codes-half.txt"

  # The simulator alone at the same concurrencies: what payfac's latency includes of it.
  log "simulator alone"
  for mode in mpm cpm; do
    for level in peak half; do
      c=$PEAK; [ $level = half ] && c=$HALF
      if [ $mode = cpm ]; then
        python3 "$HERE/helper.py" mint "$SIM" "$SIM_REQUESTS" "$OUT/$BACKEND-simcodes.txt"
      fi
      codes=(); [ $mode = cpm ] && codes=("$OUT/$BACKEND-simcodes.txt")
      python3 "$HERE/helper.py" presign $mode "$SIM_REQUESTS" "$OUT/app.key" "$APP_ID" "$MERCHANT_NO" \
        "$OUT/$BACKEND-bodies.txt" "${codes[@]}"
      sim_phase "sim-$mode-$level" "$c" $mode "$OUT/$BACKEND-bodies.txt"
    done
  done

  grep -ci 'error\|panic' "$OUT/$BACKEND-payfac.log" | xargs -I{} echo "payfac log: {} error/panic lines" >&2 || true
  stop_pid "$PAYFAC_PID"; stop_pid "$SIM_PID"
  if [ "$BACKEND" = postgres ]; then
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null; DB_NAME=""
  fi
done

for data in "$OUT"/perf-*.data; do
  [ -e "$data" ] || continue
  top="${data%.data}-top.txt"
  { perf report -i "$data" --no-children -g none --sort dso --stdio 2>/dev/null | grep '%' | head -n 6
    echo
    perf report -i "$data" --no-children -g none --sort symbol --stdio 2>/dev/null | grep '%' | head -n 40
    echo
    python3 "$HERE/perf_classify.py" "$data"
  } >"$top" || true
  echo "profile: $top"
done
echo
echo "openssl speed -seconds 3 rsa2048 of this run: sign $SIGN_MS ms"
echo "Idle RSS:"; cat "$OUT/idle.jsonl"
echo
python3 "$HERE/helper.py" report "$RESULTS"
echo
echo "raw files: $OUT"
