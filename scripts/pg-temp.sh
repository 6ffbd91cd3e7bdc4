#!/usr/bin/env bash
# A throwaway PostgreSQL for tests and benchmarks: a new data directory under /tmp, a free port
# on 127.0.0.1, trust auth, one database `redux_idb_sync`.
#
#   eval "$(scripts/pg-temp.sh start)"   # exports REDUX_IDB_SYNC_PG_URL and PG_TEMP_DIR
#   ... REDUX_IDB_SYNC_PG_URL is postgresql://postgres@127.0.0.1:<port>/redux_idb_sync
#   scripts/pg-temp.sh stop              # stops it and deletes $PG_TEMP_DIR (or the dir given)
#
# PostgreSQL refuses to run as root: as root this runs initdb/pg_ctl as the `postgres` user.
# Each start is independent (its own directory and port), so several can run side by side.
# The data directory is throwaway, so durability is off (fsync, full_page_writes): set
# PG_TEMP_DURABLE=1 to keep PostgreSQL's defaults. `start` prints only the export lines on stdout.
set -euo pipefail

find_bin() {
  local name=$1
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return; fi
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin/"$name" 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$found" ] || { echo "pg-temp: $name not found (install PostgreSQL)" >&2; exit 1; }
  echo "$found"
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  local initdb pg_ctl dir port
  initdb=$(find_bin initdb)
  pg_ctl=$(readlink -f "$(find_bin pg_ctl)")
  dir=$(mktemp -d /tmp/ris-pg-XXXXXX)
  chmod 755 "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  as_pg "$initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; exit 1; }
  local options="-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200"
  if [ "${PG_TEMP_DURABLE:-0}" != 1 ]; then
    options="$options -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
  fi
  as_pg "$pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$options" -w -t 60 start >/dev/null ||
    { cat "$dir/server.log" >&2; rm -rf "$dir"; exit 1; }
  if ! as_pg "$(dirname "$pg_ctl")/psql" -h 127.0.0.1 -p "$port" -U postgres -q -c 'CREATE DATABASE redux_idb_sync' >/dev/null; then
    stop "$dir"
    exit 1
  fi
  echo "export PG_TEMP_DIR=$dir"
  echo "export REDUX_IDB_SYNC_PG_URL=postgresql://postgres@127.0.0.1:$port/redux_idb_sync"
  echo "pg-temp: PostgreSQL on 127.0.0.1:$port, data in $dir" >&2
}

stop() {
  local dir=${1:-${PG_TEMP_DIR:-}}
  [ -n "$dir" ] || { echo "pg-temp: stop needs PG_TEMP_DIR or a directory" >&2; exit 1; }
  case "$dir" in /tmp/ris-pg-*) ;; *) echo "pg-temp: $dir is not a pg-temp directory" >&2; exit 1 ;; esac
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_pg "$(find_bin pg_ctl)" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 start|stop [dir]" >&2; exit 2 ;;
esac
