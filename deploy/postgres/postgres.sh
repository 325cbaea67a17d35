#!/usr/bin/env bash
# A private PostgreSQL cluster for development and tests (no Docker, no system service).
#
#   postgres.sh start    install Debian's postgresql if missing, initdb once, start, create role+db
#   postgres.sh stop     stop it (exit 0 if not running)
#   postgres.sh status   exit 0 running, 3 stopped
#   postgres.sh url      print the SQLAlchemy URL
#
# Cluster: ${TICKETFLOW_RUN_DIR:-<repo>/var}/postgres-${PG_PORT:-55432}/ (data/, postgres.log, socket).
# Listens on 127.0.0.1 only, trust authentication: a dev/test cluster, not a production one.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
RUN_DIR=${TICKETFLOW_RUN_DIR:-$REPO/var}
PG_PORT=${PG_PORT:-55432}
PG_USER=ticketflow
PG_PASSWORD=ticketflow
PG_DB=ticketflow
PG_OS_USER=postgres
START_TIMEOUT=${PG_START_TIMEOUT:-60}

die() { echo "postgres.sh: $*" >&2; exit 1; }
log() { echo "postgres.sh: $*" >&2; }

[[ "$PG_PORT" =~ ^[0-9]+$ ]] && (( PG_PORT > 0 && PG_PORT < 65536 )) || die "PG_PORT='$PG_PORT' is not a port"

mkdir -p "$RUN_DIR"
RUN_DIR=$(cd "$RUN_DIR" && pwd)
PG_RUN=$RUN_DIR/postgres-$PG_PORT
PGDATA_DIR=$PG_RUN/data
PG_LOG=$PG_RUN/postgres.log
URL="postgresql+asyncpg://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB"

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# Newest real server binaries (not the /usr/local/bin wrappers).
find_bindir() {
  local c
  c=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | while read -r d; do
        [[ -x "$d/pg_ctl" && -x "$d/initdb" && -x "$d/postgres" ]] && echo "$d"; done | tail -1)
  [[ -n "$c" ]] && echo "$c"
}

ensure_installed() {
  if BIN=$(find_bindir); then return 0; fi
  (( EUID == 0 )) || die "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin and not root: \
install them with: sudo apt-get install -y postgresql"
  log "PostgreSQL not installed: apt-get install -y postgresql ..."
  local out
  if ! out=$( (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql) 2>&1 ); then
    printf '%s\n' "$out" | tail -30 >&2
    die "apt-get install postgresql failed"
  fi
  BIN=$(find_bindir) || die "apt-get installed postgresql but no /usr/lib/postgresql/*/bin/pg_ctl was found"
  # Debian's package creates and starts a system cluster on 5432; we do not use it, and
  # leave it as Debian set it up.
}

# Run a command as the postgres OS user (postgres refuses to run as root), from a directory it can enter.
as_pg() {
  if [[ "$(id -un)" == "$PG_OS_USER" ]]; then
    (cd / && "$@")
  else
    (cd / && runuser -u "$PG_OS_USER" -- "$@")
  fi
}

# The postgres OS user must be able to reach $PG_RUN: add o+x (search only, not read) on parents lacking it.
ensure_traversable() {
  id "$PG_OS_USER" >/dev/null 2>&1 || die "OS user '$PG_OS_USER' does not exist (it comes with Debian's postgresql package)"
  mkdir -p "$PG_RUN"
  if [[ "$(id -un)" != "$PG_OS_USER" ]]; then
    chown "$PG_OS_USER:$PG_OS_USER" "$PG_RUN"
    chmod 0750 "$PG_RUN"
  fi
  if ! as_pg test -w "$PG_RUN"; then
    local d=$PG_RUN
    local -a parents=()
    while d=$(dirname "$d"); [[ "$d" != / ]]; do parents=("$d" "${parents[@]}"); done
    for d in "${parents[@]}"; do   # top-down, so each test sees its parents already fixed
      if ! as_pg test -x "$d"; then
        log "chmod o+x $d (so the '$PG_OS_USER' user can reach $PG_RUN)"
        chmod o+x "$d"
      fi
    done
    as_pg test -w "$PG_RUN" || die "user '$PG_OS_USER' cannot write $PG_RUN; set TICKETFLOW_RUN_DIR to a folder it can reach"
  fi
}

# Unix sockets have a ~107 byte path limit: use the run folder when short enough, else TCP only.
socket_dir() {
  if (( ${#PG_RUN} + 20 < 100 )); then echo "$PG_RUN"; else echo ""; fi
}

pg_running() {
  [[ -n "${BIN:-}" && -f "$PGDATA_DIR/PG_VERSION" ]] || return 1
  as_pg "$BIN/pg_ctl" status -D "$PGDATA_DIR" >/dev/null 2>&1
}

tail_log() {
  if [[ -s "$PG_LOG" ]]; then
    echo "----- last 30 lines of $PG_LOG -----" >&2
    tail -n 30 "$PG_LOG" >&2
    echo "-----" >&2
  fi
}

init_cluster() {
  [[ -f "$PGDATA_DIR/PG_VERSION" ]] && return 0
  log "initdb $PGDATA_DIR"
  rm -rf "$PGDATA_DIR"
  local out
  if ! out=$(as_pg "$BIN/initdb" -D "$PGDATA_DIR" -U postgres -E UTF8 --locale=C.UTF-8 \
               --auth-local=trust --auth-host=trust 2>&1); then
    printf '%s\n' "$out" >&2
    rm -rf "$PGDATA_DIR"
    die "initdb failed"
  fi
  # The role and database exist before the server first listens: a client that connects as soon as
  # the port opens (a worker waiting for its database) must never meet "role does not exist".
  if ! out=$(printf "CREATE ROLE %s LOGIN CREATEDB PASSWORD '%s'\nCREATE DATABASE %s OWNER %s\n" \
               "$PG_USER" "$PG_PASSWORD" "$PG_DB" "$PG_USER" | as_pg "$BIN/postgres" --single -D "$PGDATA_DIR" postgres 2>&1); then
    printf '%s\n' "$out" >&2
    rm -rf "$PGDATA_DIR"
    die "creating role/database '$PG_DB' in the new cluster failed"
  fi
}

write_conf() {
  # Rewritten on every start so PG_PORT / paths stay in step; postgresql.conf includes it.
  local conf=$PGDATA_DIR/ticketflow.conf
  as_pg tee "$conf" >/dev/null <<EOF
# generated by deploy/postgres/postgres.sh: overwritten on every start
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$(socket_dir)'
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
EOF
  grep -q "^include_if_exists = 'ticketflow.conf'" "$PGDATA_DIR/postgresql.conf" \
    || echo "include_if_exists = 'ticketflow.conf'" | as_pg tee -a "$PGDATA_DIR/postgresql.conf" >/dev/null
}

psql_admin() {
  "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres "$@"
}

ensure_role_db() {
  if [[ "$(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER'")" != 1 ]]; then
    psql_admin -c "CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD'"
  fi
  if [[ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != 1 ]]; then
    psql_admin -c "CREATE DATABASE $PG_DB OWNER $PG_USER"
  fi
}

cmd_start() {
  BIN=$(find_bindir) || BIN=
  if pg_running && port_open "$PG_PORT"; then
    echo "postgres already running on 127.0.0.1:$PG_PORT"
    echo "$URL"
    return 0
  fi
  if port_open "$PG_PORT"; then
    die "port 127.0.0.1:$PG_PORT is already in use by another process; set PG_PORT or stop that process"
  fi
  ensure_installed
  ensure_traversable
  init_cluster
  write_conf
  [[ -f "$PG_LOG" ]] && mv -f "$PG_LOG" "$PG_LOG.1"
  as_pg touch "$PG_LOG"
  if ! as_pg "$BIN/pg_ctl" start -D "$PGDATA_DIR" -l "$PG_LOG" -w -t "$START_TIMEOUT" >/dev/null 2>&1; then
    log "postgres failed to start on 127.0.0.1:$PG_PORT (data $PGDATA_DIR)"
    tail_log
    exit 1
  fi
  if ! ensure_role_db; then
    tail_log
    die "postgres started but creating role/database '$PG_DB' failed"
  fi
  echo "postgres up on 127.0.0.1:$PG_PORT ($("$BIN/postgres" --version))"
  echo "$URL"
}

cmd_stop() {
  BIN=$(find_bindir) || BIN=
  if pg_running; then
    as_pg "$BIN/pg_ctl" stop -D "$PGDATA_DIR" -m fast -w -t 60 >/dev/null
    echo "postgres on 127.0.0.1:$PG_PORT stopped"
  else
    echo "postgres on 127.0.0.1:$PG_PORT not running"
  fi
}

cmd_status() {
  BIN=$(find_bindir) || BIN=
  if pg_running && port_open "$PG_PORT"; then
    echo "postgres running on 127.0.0.1:$PG_PORT (data $PGDATA_DIR)"
    return 0
  fi
  echo "postgres stopped (port $PG_PORT)"
  return 3
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  url) echo "$URL" ;;
  *) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
