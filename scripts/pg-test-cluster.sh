#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the PostgreSQL store tests (IQP_TEST_DATABASE_URL).
#
#   scripts/pg-test-cluster.sh start DIR   creates DIR (empty or new), starts a cluster in it on a
#                                          free port of 127.0.0.1, prints its postgres:// URL
#   scripts/pg-test-cluster.sh stop DIR    stops that cluster and removes DIR
#
# Durability is off (fsync, synchronous_commit): the cluster lives for one test run. The binaries
# come from IQP_PG_BIN, else the newest /usr/lib/postgresql/*/bin, else initdb on PATH. initdb
# refuses to run as root, so as root the cluster runs as the postgres user, which owns DIR.
set -euo pipefail

die() { echo "pg-test-cluster: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: $0 start|stop DIR"
cmd=$1
dir=$2

# The server binaries' directory, or a clear failure.
find_bindir() {
  bindir=${IQP_PG_BIN:-}
  if [ -z "$bindir" ]; then
    newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    if [ -n "$newest" ] && [ -x "$newest/initdb" ]; then
      bindir=$newest
    elif command -v initdb >/dev/null 2>&1; then
      bindir=$(dirname "$(command -v initdb)")
    fi
  fi
  [ -n "$bindir" ] && [ -x "$bindir/initdb" ] && [ -x "$bindir/pg_ctl" ] ||
    die "no PostgreSQL server binaries (initdb, pg_ctl) found; install PostgreSQL (Debian: postgresql-15) or set IQP_PG_BIN"
}

# Runs a PostgreSQL binary as the cluster's owner.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case $cmd in
  start)
    find_bindir
    if [ "$(id -u)" -eq 0 ]; then
      id postgres >/dev/null 2>&1 || die "running as root, and there is no postgres user to own the cluster"
    fi
    mkdir -p "$dir"
    [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
    dir=$(cd "$dir" && pwd)
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    chmod 700 "$dir"
    # UTF-8, and where initdb can (PostgreSQL 15+ built with ICU), a default collation that is
    # not byte order, as most production databases have: the tests then show that the stores'
    # own COLLATE "C" is what gives SQLite's order, not the test cluster's locale.
    locale=(--no-locale)
    if "$bindir/initdb" --help | grep -q -- --locale-provider && "$bindir/pg_config" --configure 2>/dev/null | grep -q -- --with-icu; then
      locale=(--locale=C.UTF-8 --locale-provider=icu --icu-locale=en-US)
    fi
    as_owner "$bindir/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 "${locale[@]}" --no-sync >"$dir/initdb.log" 2>&1 ||
      die "initdb failed: $(tail -5 "$dir/initdb.log")"
    # A port nothing listens on now; if another process takes it before the server does, try another.
    for _ in 1 2 3 4 5; do
      port=$((20000 + RANDOM % 40000))
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
      if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null; then
        echo "postgres://postgres@127.0.0.1:$port/postgres"
        exit 0
      fi
    done
    die "the server did not start: $(tail -5 "$dir/server.log" 2>/dev/null)"
    ;;
  stop)
    [ -d "$dir" ] || exit 0
    if [ -f "$dir/data/postmaster.pid" ]; then
      find_bindir
      as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || echo "pg-test-cluster: stopping the server in $dir failed" >&2
    fi
    rm -rf "$dir"
    ;;
  *)
    die "usage: $0 start|stop DIR"
    ;;
esac
