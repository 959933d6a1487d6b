#!/usr/bin/env bash
# Stop the NetBox (gunicorn), Redis and PostgreSQL that start_netbox.sh started
# from STATE_DIR. Data (database, secrets, tokens, venv) is kept, so the next
# start_netbox.sh STATE_DIR comes back without migrating again.
#
#   stop_netbox.sh STATE_DIR
set -euo pipefail

PROG=stop_netbox.sh
if [ "$#" -ne 1 ]; then
    echo "usage: $0 STATE_DIR" >&2
    exit 2
fi
[ -d "$1" ] || { echo "$PROG: $1: no such directory (nothing to stop)"; exit 0; }
STATE=$(cd "$1" && pwd)
PG_OS_USER=postgres

exec 9>"$STATE/.lock"
flock 9
rm -f "$STATE/netbox.env"

# Running (a zombie left for a slow-reaping init does not count)?
alive() {
    [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
    [ "$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null)" != Z ]
}

# stop_pid NAME PIDFILE CMDLINE_WORD SIGNAL: SIGNAL, wait up to 20 s, then KILL.
stop_pid() {
    local pid
    pid=$(cat "$2" 2>/dev/null || true)
    if alive "$pid" && grep -q "$3" "/proc/$pid/cmdline" 2>/dev/null; then
        kill "-$4" "$pid" 2>/dev/null || true
        for _ in $(seq 200); do alive "$pid" || break; sleep 0.1; done
        if alive "$pid"; then
            echo "$PROG: $1 (pid $pid) ignored SIG$4; sending SIGKILL" >&2
            kill -9 "$pid" 2>/dev/null || true
        fi
        echo "stopped $1 (pid $pid)"
    else
        echo "$1 not running"
    fi
    rm -f "$2"
}

# gunicorn: QUIT = quick shutdown (TERM would wait for graceful worker exit).
stop_pid netbox "$STATE/netbox.pid" gunicorn QUIT
stop_pid redis "$STATE/redis.pid" redis TERM

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -s "$STATE/pg/postmaster.pid" ] && [ -n "$PGBIN" ] \
    && runuser -u "$PG_OS_USER" -- "$PGBIN/pg_ctl" -D "$STATE/pg" status >/dev/null 2>&1; then
    runuser -u "$PG_OS_USER" -- "$PGBIN/pg_ctl" -D "$STATE/pg" -m fast -w -t 60 stop 9>&- >/dev/null
    echo "stopped postgres"
else
    echo "postgres not running"
fi
