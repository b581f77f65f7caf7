# A throw-away PostgreSQL cluster for the test suite; sourced by scripts/test.
PG_PORT=${DOCKYARD_TEST_PG_PORT:-55432}
PG_DIR=${DOCKYARD_TEST_PG_DIR:-/tmp/dockyard-test-pg}

pg_bin() { ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1; }

run_as_postgres() {
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else sudo -u postgres bash -c "$*"; fi
}

start_test_postgres() {
  local bin; bin=$(pg_bin)
  if [ -n "${DOCKYARD_TEST_PG_URL:-}" ]; then return 0; fi
  export DOCKYARD_TEST_PG_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/postgres"
  # a cluster that already answers (another run's, or one started by hand) is shared, not wiped
  if "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then return 0; fi
  as_root rm -rf "$PG_DIR"
  as_root mkdir -p "$PG_DIR"
  as_root chown postgres:postgres "$PG_DIR"
  run_as_postgres "$bin/initdb -D $PG_DIR/data -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null"
  run_as_postgres "$bin/pg_ctl -D $PG_DIR/data -l $PG_DIR/log -w -o \"-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300\" start >/dev/null"
  STARTED_TEST_PG=1
}

stop_test_postgres() {
  if [ -n "${STARTED_TEST_PG:-}" ]; then
    run_as_postgres "$(pg_bin)/pg_ctl -D $PG_DIR/data -m immediate stop >/dev/null" || true
  fi
}
