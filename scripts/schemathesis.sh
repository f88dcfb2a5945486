#!/usr/bin/env bash
# Fuzzes the whole OpenAPI document of a real `payfac` with schemathesis, every check on, twice:
# once with an operator key, once with a merchant's secret key. Each run gets its own `payfac
# serve` on the embedded default (SQLite, CodePay sandbox), on a free loopback port, in a
# throwaway data directory, with a rate limit far above what schemathesis sends. Fails when
# either run reports a failure. See docs/api.md, "OpenAPI".
#
#   bash scripts/schemathesis.sh                    # builds target/debug/payfac first
#   PAYFAC_BIN=/path/to/payfac bash scripts/schemathesis.sh
#   bash scripts/schemathesis.sh --seed 1 -n 300    # extra arguments go to `schemathesis run`
#
# Needs python3 with venv, curl and openssl. Schemathesis is installed with pip into a virtualenv
# under target/ when missing (SCHEMATHESIS_VENV and SCHEMATHESIS_VERSION say where and which);
# the logs of both runs are kept in target/schemathesis/ (SCHEMATHESIS_OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
VENV=${SCHEMATHESIS_VENV:-$TARGET_DIR/schemathesis-venv}
# Pinned: checks and their defaults change between releases (scripts/schemathesis.toml is
# written for this one).
VERSION=${SCHEMATHESIS_VERSION:-4.32.5}
OUT=${SCHEMATHESIS_OUT:-$TARGET_DIR/schemathesis}

if [ ! -x "$VENV/bin/schemathesis" ] || ! "$VENV/bin/schemathesis" --version | grep -q "version $VERSION\$"; then
  echo "== installing schemathesis $VERSION into $VENV" >&2
  # A venv moved or copied from elsewhere has scripts pointing at its old path: start afresh.
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION"
fi

BIN=${PAYFAC_BIN:-}
if [ -z "$BIN" ]; then
  echo "== cargo build -p server --bin payfac" >&2
  cargo build --quiet -p server --bin payfac
  BIN=$TARGET_DIR/debug/payfac
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/payfac-schemathesis.XXXXXX")
PID=
stop_payfac() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  PID=
}
cleanup() {
  stop_payfac
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts a fresh payfac in $WORK/$1 and sets BASE, OP_KEY and PID.
start_payfac() {
  local dir=$WORK/$1 port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  BASE=http://127.0.0.1:$port
  OP_KEY=op_$(openssl rand -hex 24)
  mkdir -p "$dir"
  echo "== starting $BIN on $BASE (data in $dir)" >&2
  # Nothing of the caller's environment: the embedded default, plus a rate limit no
  # schemathesis worker reaches and the operator key this script uses.
  env -i PATH="$PATH" HOME="$dir" \
    PAYFAC_LISTEN="127.0.0.1:$port" \
    PAYFAC_DATA_DIR="$dir/data" \
    PAYFAC_PUBLIC_URL="$BASE" \
    PAYFAC_BOOTSTRAP_OPERATOR_KEY="$OP_KEY" \
    PAYFAC_RATE_LIMIT_PER_SECOND=1000000 \
    PAYFAC_LOG_LEVEL="${PAYFAC_LOG_LEVEL:-warn}" \
    "$BIN" serve >"$dir/payfac.log" 2>&1 &
  PID=$!
  for _ in $(seq 300); do
    curl -fsS "$BASE/healthz" >/dev/null 2>&1 && return 0
    if ! kill -0 "$PID" 2>/dev/null; then
      cat "$dir/payfac.log" >&2
      echo "payfac exited" >&2
      exit 1
    fi
    sleep 0.2
  done
  cat "$dir/payfac.log" >&2
  echo "payfac did not answer /healthz within 60 s" >&2
  exit 1
}

# `api METHOD PATH KEY BODY FIELD`: the FIELD of the JSON answer (fails on a non-2xx).
api() {
  curl -fsS -X "$1" "$BASE$2" -H "Authorization: Bearer $3" -H 'content-type: application/json' \
    -d "$4" | python3 -c "import json, sys; print(json.load(sys.stdin)['$5'])"
}

mkdir -p "$OUT"
status=0
# `run LABEL KEY CONFIG [schemathesis args…]`
run() {
  local label=$1 key=$2 config=$3 start=$SECONDS rc=0
  shift 3
  echo "== schemathesis ($label key) over $BASE/openapi.json" >&2
  # From the work dir: whatever schemathesis or hypothesis keep on disk stays in the throwaway.
  (cd "$WORK" && SCHEMATHESIS_HOOKS="$ROOT/scripts/schemathesis_hooks.py" \
    "$VENV/bin/schemathesis" --config-file "$config" \
    run "$BASE/openapi.json" \
    --checks all \
    --header "Authorization: Bearer $key" \
    --generation-database none \
    --no-color \
    "$@") 2>&1 | tee "$OUT/$label.log" || rc=1
  local cases
  cases=$(grep -E '^ +[0-9]+ generated' "$OUT/$label.log" | xargs || true)
  echo "== $label run: $((SECONDS - start)) s, $cases (log: $OUT/$label.log)" >&2
  if [ "$rc" -ne 0 ]; then
    status=1
    echo "== payfac's log:" >&2
    tail -n 50 "$WORK/$label/payfac.log" >&2
  fi
}

# A server per run: the operator run suspends merchants and revokes keys it finds, the merchant
# run gets a merchant and a key of its own.
start_payfac operator
run operator "$OP_KEY" "$ROOT/scripts/schemathesis.toml" "$@"
stop_payfac

start_payfac merchant
MER=$(api POST /v1/merchants "$OP_KEY" '{"name":"Schemathesis Shop","default_currency":"USD"}' id)
SK=$(api POST "/v1/merchants/$MER/api-keys" "$OP_KEY" '{"label":"schemathesis"}' secret)
# A merchant key names no merchant but its own in `/v1/merchants/{id}/stores` (any other is a
# 404): the merchant run pins that `id`, so its store and terminal routes are fuzzed past the
# lookup.
MERCHANT_CONFIG=$WORK/merchant.toml
{
  cat "$ROOT/scripts/schemathesis.toml"
  printf '\n[[operations]]\ninclude-path = "/v1/merchants/{id}/stores"\n'
  printf 'parameters = { "path.id" = "%s" }\n' "$MER"
} >"$MERCHANT_CONFIG"
run merchant "$SK" "$MERCHANT_CONFIG" "$@"
stop_payfac

if [ "$status" -ne 0 ]; then
  echo "== schemathesis reported failures (logs in $OUT)" >&2
fi
exit "$status"
