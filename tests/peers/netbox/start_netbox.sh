#!/usr/bin/env bash
# Install (if needed) and start a real NetBox 4.7 for ztpd's end-to-end tests:
# PostgreSQL + Redis + NetBox (gunicorn), all on 127.0.0.1, all state under
# STATE_DIR.
#
#   start_netbox.sh STATE_DIR
#
# Prints the contents of STATE_DIR/netbox.env on success (NETBOX_URL,
# NETBOX_TOKEN_V1, NETBOX_TOKEN_V2, ports and pids; see README.md).
# Idempotent: when everything is already up and answering it only prints the
# env file. Concurrent callers serialise on STATE_DIR/.lock (flock): the second
# waits for the first, then reuses what it started.
#
# Optional environment:
#   NETBOX_VENV         venv to use/create (default: <repo>/.venv-netbox)
#   NETBOX_PYTHON       interpreter for the venv, Python >= 3.12 (default
#                       /root/.pyenv/versions/3.12.1/bin/python3.12, else
#                       python3.12 or python3.13 on PATH)
#   NETBOX_PIP_SPEC     pip requirement (default 'netbox==4.7.*')
#   NETBOX_READY_TIMEOUT  seconds to wait for /api/status/ (default 120)
#   NETBOX_WORKERS      gunicorn workers (default 2)
#
# Must run as root (apt-get, and PostgreSQL runs as the unprivileged Debian
# user "postgres", created if missing).
set -euo pipefail

PROG=start_netbox.sh
if [ "$#" -ne 1 ]; then
    echo "usage: $0 STATE_DIR" >&2
    exit 2
fi
[ "$(id -u)" -eq 0 ] || { echo "$PROG: must run as root" >&2; exit 1; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/../../.." && pwd)
VENV=${NETBOX_VENV:-$REPO_ROOT/.venv-netbox}
BASE_PYTHON=${NETBOX_PYTHON:-/root/.pyenv/versions/3.12.1/bin/python3.12}
if [ -z "${NETBOX_PYTHON:-}" ] && [ ! -x "$BASE_PYTHON" ]; then
    BASE_PYTHON=$(command -v python3.12 || command -v python3.13 || echo "$BASE_PYTHON")
fi
PIP_SPEC=${NETBOX_PIP_SPEC:-netbox==4.7.*}
READY_TIMEOUT=${NETBOX_READY_TIMEOUT:-120}
WORKERS=${NETBOX_WORKERS:-2}
PG_OS_USER=postgres

mkdir -p "$1"
STATE=$(cd "$1" && pwd)
LOGS=$STATE/logs
mkdir -p "$LOGS"
ENV_FILE=$STATE/netbox.env
TOKENS_FILE=$STATE/auth.env
PORTS_FILE=$STATE/ports.env
TIMINGS=$STATE/timings.log
NETBOX_ROOT=$STATE/netbox-root
export NETBOX_ROOT

die() { echo "$PROG: $*" >&2; exit 1; }
log() { echo "[$PROG] $*" >&2; }

# fail STEP LOGFILE: report a failed step and the end of its log.
fail() {
    echo "$PROG: step '$1' FAILED; read $2" >&2
    if [ -f "$2" ]; then
        echo "---- last lines of $2 ----" >&2
        tail -n 30 "$2" >&2 || true
        echo "----" >&2
    fi
    exit 1
}

STEP_T0=0
step_begin() { STEP_T0=$(date +%s.%N); log "$1 ..."; }
step_end() {
    local secs
    secs=$(awk -v a="$STEP_T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    printf '%s %-12s %6ss\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" "$secs" >>"$TIMINGS"
    log "$1 done in ${secs}s"
}

# Running (a zombie left for a slow-reaping init does not count)?
alive() {
    [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
    [ "$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null)" != Z ]
}

# Is anything listening on 127.0.0.1:PORT (or 0.0.0.0:PORT)?
port_in_use() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v a="0100007F:$hex" -v b="00000000:$hex" \
        'NR > 1 && ($2 == a || $2 == b) && $4 == "0A" { f = 1 } END { exit !f }' /proc/net/tcp
}

free_port() {
    "$BASE_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# pick_port NAME: the port recorded for NAME if still free, else a new free one.
pick_port() {
    local recorded
    recorded=$(sed -n "s/^$1=//p" "$PORTS_FILE" 2>/dev/null | tail -n 1)
    if [ -n "$recorded" ] && ! port_in_use "$recorded"; then
        echo "$recorded"
    else
        free_port
    fi
}

record_port() {
    touch "$PORTS_FILE"
    sed -i "/^$1=/d" "$PORTS_FILE"
    echo "$1=$2" >>"$PORTS_FILE"
}

env_get() { sed -n "s/^$2=//p" "$1" 2>/dev/null | tail -n 1; }

api_status() {  # api_status URL TOKEN_HEADER -> HTTP code
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
        -H "Authorization: $2" -H 'Accept: application/json' "$1/api/status/" || true
}

# Exclusive lock for the rest of the script. Fd 9 must not leak into the
# daemons (they would hold the lock forever), hence the 9>&- below.
exec 9>"$STATE/.lock"
flock 9

# ---------------------------------------------------------------------------
# Fast path: everything already running and answering, started by this very
# version of the scripts (an edited script takes the full path, which rewrites
# the configuration and restarts NetBox if it changed).
SCRIPTS_SHA=$(cat "$HERE/start_netbox.sh" "$HERE/bootstrap_auth.py" | sha256sum | cut -c1-16)
if [ -s "$ENV_FILE" ] && [ "$(env_get "$ENV_FILE" NETBOX_SCRIPTS_SHA)" = "$SCRIPTS_SHA" ]; then
    url=$(env_get "$ENV_FILE" NETBOX_URL)
    tok=$(env_get "$ENV_FILE" NETBOX_TOKEN_V1)
    if alive "$(env_get "$ENV_FILE" NETBOX_PID)" && alive "$(env_get "$ENV_FILE" REDIS_PID)" \
        && alive "$(env_get "$ENV_FILE" POSTGRES_PID)" \
        && [ "$(api_status "$url" "Token $tok")" = 200 ]; then
        cat "$ENV_FILE"
        exit 0
    fi
fi
rm -f "$ENV_FILE"
echo "# run $(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$TIMINGS"

# ---------------------------------------------------------------------------
# 1. Debian packages.
pg_bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && echo "$d"
}
missing=()
pg_bindir >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || missing+=(redis-server)
# psycopg[c] (a NetBox dependency) compiles against libpq.
command -v pg_config >/dev/null || missing+=(libpq-dev)
command -v gcc >/dev/null || missing+=(gcc)
command -v curl >/dev/null || missing+=(curl)
if [ "${#missing[@]}" -gt 0 ]; then
    step_begin "apt-get install ${missing[*]}"
    # A package may try to start a system-wide service on the default port;
    # that is harmless: our instances use their own data dirs and free ports.
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } \
        </dev/null >"$LOGS/apt.log" 2>&1 9>&- || fail apt-get "$LOGS/apt.log"
    step_end apt
fi
PGBIN=$(pg_bindir) || die "PostgreSQL binaries not found under /usr/lib/postgresql/*/bin"
[ -x "$BASE_PYTHON" ] || die "$BASE_PYTHON missing (NetBox 4.7 needs Python >= 3.12; set NETBOX_PYTHON)"

# ---------------------------------------------------------------------------
# 2. PostgreSQL (runs as $PG_OS_USER, which must reach STATE).
if ! id "$PG_OS_USER" >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --no-create-home \
        --shell /usr/sbin/nologin "$PG_OS_USER"
fi
grant_search() {  # o+x on DIR and its ancestors that lack it
    local d=$1
    while [ "$d" != "/" ] && [ -n "$d" ]; do
        if [ "$(( 0$(stat -c %a "$d") & 01 ))" -eq 0 ]; then chmod o+x "$d"; fi
        d=$(dirname "$d")
    done
}
grant_search "$STATE"
PGDATA=$STATE/pg
# Unix socket directory: STATE/run unless the path gets too long for a socket.
SOCKDIR=$STATE/run
if [ "${#SOCKDIR}" -gt 80 ]; then
    SOCKDIR=/tmp/ztpd-netbox-$(printf '%s' "$STATE" | md5sum | cut -c1-10)
fi
install -d -m 0700 -o "$PG_OS_USER" "$SOCKDIR"
as_pg() { runuser -u "$PG_OS_USER" -- "$@"; }

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    step_begin "initdb"
    rm -rf "$PGDATA"
    install -d -m 0700 -o "$PG_OS_USER" "$PGDATA"
    as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 \
        </dev/null >"$LOGS/initdb.log" 2>&1 || fail initdb "$LOGS/initdb.log"
    step_end initdb
fi

pg_running() { as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }
if pg_running; then
    PG_PORT=$(sed -n 4p "$PGDATA/postmaster.pid")
    SOCKDIR=$(sed -n 5p "$PGDATA/postmaster.pid")
else
    step_begin "start postgres"
    PG_PORT=$(pick_port PG_PORT)
    touch "$LOGS/postgres.log"
    chown "$PG_OS_USER" "$LOGS/postgres.log"
    # Throwaway test database: no fsync (a clean stop still writes everything).
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$LOGS/postgres.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$SOCKDIR \
            -c unix_socket_permissions=0700 -c fsync=off -c synchronous_commit=off \
            -c full_page_writes=off -c max_connections=50" start \
        </dev/null >"$LOGS/pg_ctl.log" 2>&1 9>&- || fail "start postgres" "$LOGS/postgres.log"
    step_end postgres
fi
record_port PG_PORT "$PG_PORT"
POSTGRES_PID=$(sed -n 1p "$PGDATA/postmaster.pid")

psql_pg() { as_pg "$PGBIN/psql" -h "$SOCKDIR" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
if [ ! -s "$STATE/db_password" ]; then
    (umask 077; "$BASE_PYTHON" -c 'import secrets; print(secrets.token_hex(24))' >"$STATE/db_password")
fi
DB_PASSWORD=$(cat "$STATE/db_password")
create_db() {
    if [ "$(psql_pg -c "SELECT 1 FROM pg_roles WHERE rolname = 'netbox'")" != 1 ]; then
        psql_pg -c "CREATE ROLE netbox LOGIN PASSWORD '$DB_PASSWORD'" || return 1
    else
        psql_pg -c "ALTER ROLE netbox PASSWORD '$DB_PASSWORD'" || return 1
    fi
    if [ "$(psql_pg -c "SELECT 1 FROM pg_database WHERE datname = 'netbox'")" != 1 ]; then
        psql_pg -c "CREATE DATABASE netbox OWNER netbox ENCODING 'UTF8'" || return 1
    fi
}
create_db >"$LOGS/createdb.log" 2>&1 || fail "create database" "$LOGS/createdb.log"

# ---------------------------------------------------------------------------
# 3. Redis (no persistence, daemonised).
REDIS_PIDFILE=$STATE/redis.pid
REDIS_PID=$(cat "$REDIS_PIDFILE" 2>/dev/null || true)
REDIS_PORT=$(env_get "$PORTS_FILE" REDIS_PORT)
if alive "$REDIS_PID" && grep -q redis "/proc/$REDIS_PID/cmdline" 2>/dev/null \
    && [ -n "$REDIS_PORT" ] && [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; then
    :
else
    step_begin "start redis"
    rm -f "$REDIS_PIDFILE"
    REDIS_PORT=$(pick_port REDIS_PORT)
    mkdir -p "$STATE/redis"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
        --save '' --appendonly no --dir "$STATE/redis" \
        --daemonize yes --pidfile "$REDIS_PIDFILE" --logfile "$LOGS/redis.log" \
        </dev/null >"$LOGS/redis.stdout" 2>&1 9>&- || fail "start redis" "$LOGS/redis.log"
    for _ in $(seq 100); do
        [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break
        sleep 0.1
    done
    [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] \
        || fail "start redis" "$LOGS/redis.log"
    for _ in $(seq 50); do [ -s "$REDIS_PIDFILE" ] && break; sleep 0.1; done
    REDIS_PID=$(cat "$REDIS_PIDFILE")
    step_end redis
fi
record_port REDIS_PORT "$REDIS_PORT"

# ---------------------------------------------------------------------------
# 4. NetBox from PyPI into the project-local venv (shared by all STATE_DIRs,
#    so it has a lock of its own).
mkdir -p "$VENV"
exec 8>"$VENV/.install.lock"
flock 8
MARKER=$VENV/.ztpd-netbox-installed
if [ ! -x "$VENV/bin/netbox" ] || [ "$(cat "$MARKER" 2>/dev/null)" != "$PIP_SPEC" ]; then
    step_begin "pip install $PIP_SPEC into $VENV"
    {
        "$BASE_PYTHON" -m venv "$VENV" &&
        printf '*\n' >"$VENV/.gitignore" &&
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$PIP_SPEC"
    } </dev/null >"$LOGS/pip.log" 2>&1 8>&- 9>&- || fail "pip install" "$LOGS/pip.log"
    echo "$PIP_SPEC" >"$MARKER"
    step_end pip
fi
flock -u 8
exec 8>&-
NETBOX_VERSION=$("$VENV/bin/netbox" version 2>/dev/null) || die "$VENV/bin/netbox version failed"

# ---------------------------------------------------------------------------
# 5. Configuration: NETBOX_ROOT/conf/configuration.py (where the pip-installed
#    NetBox looks for it; see netbox/settings_utils.py).
gen_secret() {  # 60 chars from NetBox's own alphabet for SECRET_KEY
    "$BASE_PYTHON" -c 'import secrets, string
a = string.ascii_letters + string.digits + "!@#$%^&*(-_=+)"
print("".join(secrets.choice(a) for _ in range(60)))'
}
for f in secret_key token_pepper; do
    if [ ! -s "$STATE/$f" ]; then (umask 077; gen_secret >"$STATE/$f"); fi
done
mkdir -p "$NETBOX_ROOT/conf" "$NETBOX_ROOT/media" "$NETBOX_ROOT/reports" "$NETBOX_ROOT/scripts"
CONF=$NETBOX_ROOT/conf/configuration.py
NEWCONF=$CONF.new
(umask 077; "$BASE_PYTHON" - "$STATE" "$PG_PORT" "$REDIS_PORT" >"$NEWCONF" <<'PY'
import sys
state, pg_port, redis_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
read = lambda name: open(f'{state}/{name}').read().strip()
print(f'''# Generated by tests/peers/netbox/start_netbox.sh; do not edit.
ALLOWED_HOSTS = ['*']
DATABASES = {{
    'default': {{
        'ENGINE': 'django.db.backends.postgresql',
        'NAME': 'netbox',
        'USER': 'netbox',
        'PASSWORD': {read('db_password')!r},
        'HOST': '127.0.0.1',
        'PORT': {pg_port},
        'CONN_MAX_AGE': 300,
    }}
}}
REDIS = {{
    'tasks': {{'HOST': '127.0.0.1', 'PORT': {redis_port}, 'USERNAME': '', 'PASSWORD': '',
               'DATABASE': 0, 'SSL': False}},
    'caching': {{'HOST': '127.0.0.1', 'PORT': {redis_port}, 'USERNAME': '', 'PASSWORD': '',
                 'DATABASE': 1, 'SSL': False}},
}}
SECRET_KEY = {read('secret_key')!r}
API_TOKEN_PEPPERS = {{1: {read('token_pepper')!r}}}
ISOLATED_DEPLOYMENT = True
CENSUS_REPORTING_ENABLED = False
RELEASE_CHECK_URL = None
TIME_ZONE = 'UTC'
# Test runs re-create objects with fixed documentation addresses (192.0.2.x):
# allow the same IP to exist more than once in the global table.
ENFORCE_GLOBAL_UNIQUE = False
''')
PY
)
CONF_CHANGED=0
if ! cmp -s "$NEWCONF" "$CONF"; then
    mv "$NEWCONF" "$CONF"
    CONF_CHANGED=1
else
    rm -f "$NEWCONF"
fi

# ---------------------------------------------------------------------------
# 6. Database schema. The marker names the NetBox version last migrated to.
MIGRATED=$STATE/migrated
if [ "$(cat "$MIGRATED" 2>/dev/null)" != "$NETBOX_VERSION" ]; then
    step_begin "netbox migrate (NetBox $NETBOX_VERSION)"
    "$VENV/bin/netbox" migrate --no-input </dev/null >"$LOGS/migrate.log" 2>&1 9>&- \
        || fail "netbox migrate" "$LOGS/migrate.log"
    echo "$NETBOX_VERSION" >"$MIGRATED"
    step_end migrate
fi

# ---------------------------------------------------------------------------
# 7. Superuser and API tokens (v1 and v2), kept in STATE/auth.env.
step_begin "superuser and tokens"
"$VENV/bin/python" "$HERE/bootstrap_auth.py" "$TOKENS_FILE" </dev/null >"$LOGS/bootstrap_auth.log" 2>&1 9>&- \
    || fail "superuser and tokens" "$LOGS/bootstrap_auth.log"
step_end auth
TOKEN_V1=$(env_get "$TOKENS_FILE" NETBOX_TOKEN_V1)
TOKEN_V2=$(env_get "$TOKENS_FILE" NETBOX_TOKEN_V2)

# ---------------------------------------------------------------------------
# 8. NetBox under gunicorn.
NB_PIDFILE=$STATE/netbox.pid
NETBOX_PID=$(cat "$NB_PIDFILE" 2>/dev/null || true)
NETBOX_PORT=$(env_get "$PORTS_FILE" NETBOX_PORT)
if alive "$NETBOX_PID" && grep -q gunicorn "/proc/$NETBOX_PID/cmdline" 2>/dev/null; then
    if [ "$CONF_CHANGED" = 1 ] || [ -z "$NETBOX_PORT" ]; then
        log "configuration changed: restarting NetBox (pid $NETBOX_PID)"
        kill "$NETBOX_PID" 2>/dev/null || true
        for _ in $(seq 200); do alive "$NETBOX_PID" || break; sleep 0.1; done
        alive "$NETBOX_PID" && kill -9 "$NETBOX_PID" 2>/dev/null || true
        NETBOX_PID=
    fi
else
    NETBOX_PID=
fi
NB_STARTED=0
if [ -z "$NETBOX_PID" ]; then
    NB_STARTED=1
    step_begin "start netbox (gunicorn)"
    rm -f "$NB_PIDFILE"
    NETBOX_PORT=$(pick_port NETBOX_PORT)
    : >"$LOGS/netbox.log"
    "$VENV/bin/gunicorn" --bind "127.0.0.1:$NETBOX_PORT" --workers "$WORKERS" --threads 3 \
        --timeout 120 --graceful-timeout 10 --max-requests 5000 --max-requests-jitter 500 \
        --daemon --pid "$NB_PIDFILE" --error-logfile "$LOGS/netbox.log" \
        --access-logfile "$LOGS/netbox-access.log" --capture-output \
        netbox.wsgi:application </dev/null >>"$LOGS/netbox.log" 2>&1 9>&- \
        || fail "start netbox" "$LOGS/netbox.log"
    for _ in $(seq 100); do [ -s "$NB_PIDFILE" ] && break; sleep 0.1; done
    NETBOX_PID=$(cat "$NB_PIDFILE" 2>/dev/null || true)
    [ -n "$NETBOX_PID" ] || fail "start netbox" "$LOGS/netbox.log"
fi
record_port NETBOX_PORT "$NETBOX_PORT"
NETBOX_URL=http://127.0.0.1:$NETBOX_PORT

deadline=$(( $(date +%s) + READY_TIMEOUT ))
code=000
while :; do
    code=$(api_status "$NETBOX_URL" "Token $TOKEN_V1")
    [ "$code" = 200 ] && break
    alive "$NETBOX_PID" || fail "start netbox (gunicorn exited)" "$LOGS/netbox.log"
    [ "$(date +%s)" -lt "$deadline" ] \
        || fail "wait for GET $NETBOX_URL/api/status/ (last HTTP $code after ${READY_TIMEOUT}s)" "$LOGS/netbox.log"
    sleep 1
done
code2=$(api_status "$NETBOX_URL" "Bearer $TOKEN_V2")
[ "$code2" = 200 ] || fail "v2 token check (GET /api/status/ with Bearer answered HTTP $code2)" "$LOGS/netbox.log"
[ "$NB_STARTED" = 0 ] || step_end netbox

# ---------------------------------------------------------------------------
# 9. The env file.
cat >"$ENV_FILE.tmp" <<EOF
NETBOX_URL=$NETBOX_URL
NETBOX_VERSION=$NETBOX_VERSION
# header: "Authorization: Token \$NETBOX_TOKEN_V1"
NETBOX_TOKEN_V1=$TOKEN_V1
# header: "Authorization: Bearer \$NETBOX_TOKEN_V2"
NETBOX_TOKEN_V2=$TOKEN_V2
NETBOX_USER=$(env_get "$TOKENS_FILE" NETBOX_USER)
NETBOX_PASSWORD=$(env_get "$TOKENS_FILE" NETBOX_PASSWORD)
NETBOX_PORT=$NETBOX_PORT
NETBOX_PID=$NETBOX_PID
REDIS_PORT=$REDIS_PORT
REDIS_PID=$REDIS_PID
POSTGRES_PORT=$PG_PORT
POSTGRES_PID=$POSTGRES_PID
NETBOX_STATE_DIR=$STATE
NETBOX_LOG=$LOGS/netbox.log
NETBOX_SCRIPTS_SHA=$SCRIPTS_SHA
EOF
chmod 600 "$ENV_FILE.tmp"
mv "$ENV_FILE.tmp" "$ENV_FILE"
cat "$ENV_FILE"
