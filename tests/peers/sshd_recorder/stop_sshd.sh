#!/usr/bin/env bash
# Stop the sshd that start_sshd.sh started from WORKDIR (by its pid file).
#   stop_sshd.sh WORKDIR
# Leaves WORKDIR, the host key, the system user and the record file alone.
set -euo pipefail
[ "$#" -eq 1 ] || { echo "usage: $0 WORKDIR" >&2; exit 2; }
PIDFILE=$1/sshd.pid
[ -s "$PIDFILE" ] || exit 0
pid=$(cat "$PIDFILE")
if kill -0 "$pid" 2>/dev/null && grep -q sshd "/proc/$pid/cmdline" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
fi
rm -f "$PIDFILE"
