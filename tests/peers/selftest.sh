#!/usr/bin/env bash
# End-to-end self-test of the peers in this folder with a real SSH client
# (paramiko, via check_peer.py). Needs root for the sshd peer.
#
#   tests/peers/selftest.sh            # venv at /tmp/peervenv (created if missing)
#   PEER_VENV=/path/venv tests/peers/selftest.sh
#
# Prints "N passed, N failed" at the end; exit status 0 only if all passed.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VENV=${PEER_VENV:-/tmp/peervenv}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import fakenos, paramiko' 2>/dev/null; then
    python3 -m venv "$VENV" && "$VENV/bin/pip" install -q -r "$HERE/requirements.txt" || exit 1
fi
PY=$VENV/bin/python
TMP=$(mktemp -d)
passed=0
failed=0
FN_PID=
cleanup() {
    [ -n "$FN_PID" ] && kill "$FN_PID" 2>/dev/null
    bash "$HERE/sshd_recorder/stop_sshd.sh" "$TMP/sshd" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
check() {  # NAME CMD...
    local name=$1; shift
    if "$@" >"$TMP/out" 2>&1; then
        passed=$((passed + 1)); echo "ok   $name"
    else
        failed=$((failed + 1)); echo "FAIL $name"; sed 's/^/     /' "$TMP/out"
    fi
}
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# fakenos peer
"$PY" "$HERE/fakenos_iosxe.py" --port 0 --username admin --password admin \
    --record "$TMP/fakenos.rec" --hostname router >"$TMP/fakenos.out" 2>"$TMP/fakenos.err" &
FN_PID=$!
for _ in $(seq 300); do grep -q '^READY ' "$TMP/fakenos.out" && break; sleep 0.05; done
FN_PORT=$(awk '/^READY /{print $2}' "$TMP/fakenos.out")
if [ -n "$FN_PORT" ]; then
    for eol in '\n' '\r' '\r\n'; do
        check "fakenos eol=$eol" "$PY" "$HERE/check_peer.py" --port "$FN_PORT" --username admin \
            --password admin --record "$TMP/fakenos.rec" --eol "$eol"
    done
    kill "$FN_PID"; wait "$FN_PID"; rc=$?; FN_PID=
    check "fakenos exits 0 on SIGTERM" test "$rc" -eq 0
else
    failed=$((failed + 1)); echo "FAIL fakenos did not print READY"; cat "$TMP/fakenos.err"
fi

# sshd peer
if [ "$(id -u)" -eq 0 ] && [ -x /usr/sbin/sshd ]; then
    SSHD_PORT=$(free_port)
    if bash "$HERE/sshd_recorder/start_sshd.sh" "$SSHD_PORT" "$TMP/sshd" ztpdpeer 'peer pw' "$TMP/sshd.rec" >"$TMP/sshd.out" 2>&1 \
        && grep -q "^READY $SSHD_PORT$" "$TMP/sshd.out"; then
        check "sshd record-mode=all" "$PY" "$HERE/check_peer.py" --port "$SSHD_PORT" --username ztpdpeer \
            --password 'peer pw' --record "$TMP/sshd.rec" --record-mode all
        PEER_RECORD_MODE=config bash "$HERE/sshd_recorder/start_sshd.sh" "$SSHD_PORT" "$TMP/sshd" ztpdpeer 'peer pw' "$TMP/sshd2.rec" >/dev/null
        for eol in '\n' '\r\n'; do
            check "sshd record-mode=config eol=$eol" "$PY" "$HERE/check_peer.py" --port "$SSHD_PORT" \
                --username ztpdpeer --password 'peer pw' --record "$TMP/sshd2.rec" --eol "$eol"
        done
    else
        failed=$((failed + 1)); echo "FAIL start_sshd.sh"; cat "$TMP/sshd.out"
    fi
else
    echo "skip sshd peer (needs root and /usr/sbin/sshd)"
fi

# cli stand-in
cat >"$TMP/ztp.py" <<'EOF'
import re
from cli import cli, configurep, executep
out = cli("show version | include System Serial Number")
assert re.search(r"System Serial Number\s+: SN123$", out.strip()), out
executep("show version")
configurep(["hostname sw1", "interface Vlan1", " ip address dhcp"])
EOF
check "cli stand-in" env PYTHONPATH="$HERE/cli_standin" ZTP_SERIAL=SN123 ZTP_CLI_RECORD="$TMP/cli.jsonl" python3 "$TMP/ztp.py"
check "cli stand-in record" "$PY" -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert rows == [
    {"fn": "cli", "command": "show version | include System Serial Number"},
    {"fn": "executep", "command": "show version"},
    {"fn": "configurep", "lines": ["hostname sw1", "interface Vlan1", " ip address dhcp"]},
], rows' "$TMP/cli.jsonl"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
