#!/usr/bin/env bash
# Installs (from Debian's packages, when missing) and starts the services the test suite needs:
# a throwaway PostgreSQL cluster and a Redis server, both on loopback, no systemd.
# Source it (`. scripts/test-services.sh`) to get PAYFAC_TEST_DATABASE_URL and PAYFAC_TEST_REDIS_URL.
set -euo pipefail

PG_PORT="${PAYFAC_TEST_PG_PORT:-55432}"
REDIS_PORT="${PAYFAC_TEST_REDIS_PORT:-56379}"
PG_DIR="${PAYFAC_TEST_PG_DIR:-/tmp/payfac-test-pg}"

need_pkgs=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_pkgs+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need_pkgs+=(redis-server)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "installing ${need_pkgs[*]} from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

if ! "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
  if [ ! -f "$PG_DIR/PG_VERSION" ]; then
    rm -rf "$PG_DIR"; mkdir -p "$PG_DIR"; chown postgres:postgres "$PG_DIR"
    su postgres -c "$PG_BIN/initdb -D $PG_DIR -U postgres -A trust --no-sync" >/dev/null
  fi
  su postgres -c "$PG_BIN/pg_ctl -D $PG_DIR -l $PG_DIR/server.log -o '-p $PG_PORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400' -w start" >/dev/null
fi

if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  redis-server --daemonize yes --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

export PAYFAC_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
export PAYFAC_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/"
echo "PostgreSQL: $PAYFAC_TEST_DATABASE_URL  Redis: $PAYFAC_TEST_REDIS_URL" >&2

# Test harnesses create one database per test (t_<ulid>) and leave it behind for inspection; a
# local cluster that has served many runs slows down (autovacuum visits every database).
# `. scripts/test-services.sh --drop-test-dbs` drops those no session is connected to.
psql_admin() { psql -X -q -At -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres "$@"; }
leftover=$(psql_admin -c "SELECT count(*) FROM pg_database WHERE datname LIKE 't\_%'" 2>/dev/null || echo 0)
if [ "${1:-}" = "--drop-test-dbs" ]; then
  psql_admin -c "SELECT datname FROM pg_database WHERE datname LIKE 't\_%'
                 AND datname NOT IN (SELECT datname FROM pg_stat_activity WHERE datname IS NOT NULL)" |
    while read -r db; do psql_admin -c "DROP DATABASE IF EXISTS \"$db\"" 2>/dev/null || true; done
  echo "dropped leftover test databases ($leftover before)" >&2
elif [ "${leftover:-0}" -gt 300 ]; then
  echo "note: $leftover leftover test databases; '. scripts/test-services.sh --drop-test-dbs' drops them" >&2
fi
