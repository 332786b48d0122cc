#!/usr/bin/env bash
# Throwaway PostgreSQL cluster on a local port for the store tests.
#   scripts/pg-test-cluster.sh start DIR PORT   -> prints the database URL
#   scripts/pg-test-cluster.sh stop DIR         (keeps the data: `start` again resumes it)
# The database fault test and scripts/soak.sh stop and start a cluster under
# traffic; `start` on an existing DIR only restarts the server.
# Installs Debian's postgresql package when no server binaries are found.
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?cluster dir}
find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
bin=$(find_bin)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "installing postgresql from Debian packages..." >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  else
    sudo apt-get update -qq >&2 && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  fi
  bin=$(find_bin)
fi
# initdb refuses to run as root: run the cluster as the postgres user then.
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case "$cmd" in
  start)
    port=${3:?port}
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    fresh=0
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      fresh=1
      as_owner "$bin/initdb" -D "$dir/data" -U xiaoer --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >&2 \
      || { cat "$dir/server.log" >&2; exit 1; }
    [ "$fresh" = 1 ] && as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U xiaoer xiaoer_test >&2
    echo "postgres://xiaoer@127.0.0.1:$port/xiaoer_test"
    ;;
  stop)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast stop >&2 || true
    ;;
  *) echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
