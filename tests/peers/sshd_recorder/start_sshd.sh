#!/usr/bin/env bash
# Start OpenSSH's sshd (Debian package openssh-server) as a test peer on
# 127.0.0.1:PORT whose every session runs record_shell.py (ForceCommand).
#
#   start_sshd.sh PORT WORKDIR USER PASSWORD RECORDFILE
#
# Optional environment:
#   PEER_HOSTNAME     prompt name (default sshd-router)
#   PEER_RECORD_MODE  all (default) | config   (see record_shell.py)
#   READY_TIMEOUT     seconds to wait for the listener (default 10)
#   PEER_PYTHON       interpreter for record_shell.py (default /usr/bin/python3;
#                     must be executable by USER; stdlib only)
#
# Must run as root (sshd needs it for password auth and privilege
# separation). It:
#   * creates /run/sshd (privilege-separation dir) if missing;
#   * creates system user USER (home /var/lib/USER, shell /bin/sh, GECOS
#     "ztpd test peer") if it does not exist, and sets its password with
#     chpasswd. sshd with UsePAM no checks passwords against /etc/shadow, so
#     a real local account is needed. An existing user WITHOUT that GECOS
#     marker is refused, so this never changes a real account's password;
#   * generates WORKDIR/ssh_host_ed25519_key once (reused on later runs);
#   * copies record_shell.py into WORKDIR and writes WORKDIR/sshd_config;
#   * creates RECORDFILE (owned by USER, mode 0666) and gives "search"
#     permission (o+x) on WORKDIR and the RECORDFILE's parent directories
#     that lack it, because the ForceCommand runs as USER;
#   * stops an sshd it started earlier from the same WORKDIR (pid file);
#   * starts `/usr/sbin/sshd -D -f WORKDIR/sshd_config -E WORKDIR/sshd.log`
#     detached (setsid, stdio to WORKDIR/sshd.stdout) and prints
#     `READY PORT` once 127.0.0.1:PORT is listening, then exits 0.
# Stop it with stop_sshd.sh WORKDIR (or kill "$(cat WORKDIR/sshd.pid)").
set -euo pipefail

if [ "$#" -ne 5 ]; then
    echo "usage: $0 PORT WORKDIR USER PASSWORD RECORDFILE" >&2
    exit 2
fi
PORT=$1
WORKDIR=$2
PEER_USER=$3
PEER_PASSWORD=$4
RECORDFILE=$5
PEER_HOSTNAME=${PEER_HOSTNAME:-sshd-router}
PEER_RECORD_MODE=${PEER_RECORD_MODE:-all}
READY_TIMEOUT=${READY_TIMEOUT:-10}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MARKER="ztpd test peer"
SSHD=/usr/sbin/sshd
# The ForceCommand runs as USER, so use the system interpreter (a pyenv/venv
# python under /root would not be reachable). Override with PEER_PYTHON.
PYTHON=${PEER_PYTHON:-/usr/bin/python3}

die() { echo "start_sshd.sh: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
[ -x "$SSHD" ] || die "$SSHD missing: apt-get install -y openssh-server"
[ -x "$PYTHON" ] || die "$PYTHON missing: apt-get install -y python3"
case "$PORT" in ''|*[!0-9]*) die "PORT must be a number" ;; esac
case "$PEER_USER" in root|'') die "refusing USER '$PEER_USER'" ;; esac
case "$PEER_RECORD_MODE" in all|config) ;; *) die "PEER_RECORD_MODE must be all or config" ;; esac

mkdir -p "$WORKDIR"
WORKDIR=$(cd "$WORKDIR" && pwd)
mkdir -p "$(dirname "$RECORDFILE")"
RECORDFILE=$(cd "$(dirname "$RECORDFILE")" && pwd)/$(basename "$RECORDFILE")

# Privilege separation directory.
install -d -m 0755 -o root -g root /run/sshd

# Dedicated local account.
if getent passwd "$PEER_USER" >/dev/null; then
    gecos=$(getent passwd "$PEER_USER" | cut -d: -f5)
    [ "$gecos" = "$MARKER" ] || die "user $PEER_USER exists and was not created by this script; pick another name"
else
    useradd --system --create-home --home-dir "/var/lib/$PEER_USER" \
        --shell /bin/sh --comment "$MARKER" "$PEER_USER"
fi
printf '%s:%s\n' "$PEER_USER" "$PEER_PASSWORD" | chpasswd

# Stop a previous instance started from this WORKDIR.
PIDFILE=$WORKDIR/sshd.pid
if [ -s "$PIDFILE" ]; then
    oldpid=$(cat "$PIDFILE")
    if kill -0 "$oldpid" 2>/dev/null && grep -q sshd "/proc/$oldpid/cmdline" 2>/dev/null; then
        kill "$oldpid"
        for _ in $(seq 50); do kill -0 "$oldpid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$PIDFILE"
fi

# Host key (kept across runs so known_hosts entries stay valid).
if [ ! -s "$WORKDIR/ssh_host_ed25519_key" ]; then
    rm -f "$WORKDIR/ssh_host_ed25519_key" "$WORKDIR/ssh_host_ed25519_key.pub"
    ssh-keygen -q -t ed25519 -N '' -C "ztpd-test-peer" -f "$WORKDIR/ssh_host_ed25519_key"
fi
chmod 0600 "$WORKDIR/ssh_host_ed25519_key"

# The ForceCommand runs as PEER_USER: it must reach the script and the record file.
install -m 0755 "$HERE/record_shell.py" "$WORKDIR/record_shell.py"
touch "$RECORDFILE"
chown "$PEER_USER" "$RECORDFILE"
chmod 0666 "$RECORDFILE"
grant_search() {  # o+x on DIR and its ancestors that lack it
    local d=$1
    while [ "$d" != "/" ] && [ -n "$d" ]; do
        if [ "$(( 0$(stat -c %a "$d") & 01 ))" -eq 0 ]; then chmod o+x "$d"; fi
        d=$(dirname "$d")
    done
}
grant_search "$WORKDIR"
grant_search "$(dirname "$RECORDFILE")"

q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
FORCE="$(q "$PYTHON") $(q "$WORKDIR/record_shell.py") --record $(q "$RECORDFILE") --hostname $(q "$PEER_HOSTNAME") --record-mode $PEER_RECORD_MODE"

cat >"$WORKDIR/sshd_config" <<EOF
# Generated by tests/peers/sshd_recorder/start_sshd.sh; do not edit.
ListenAddress 127.0.0.1
Port $PORT
AddressFamily inet
HostKey $WORKDIR/ssh_host_ed25519_key
PidFile $PIDFILE
LogLevel VERBOSE
SyslogFacility AUTH
UsePAM no
PasswordAuthentication yes
PermitEmptyPasswords no
KbdInteractiveAuthentication no
PubkeyAuthentication no
AuthorizedKeysFile none
PermitRootLogin no
AllowUsers $PEER_USER
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
Banner none
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PermitTunnel no
PermitUserEnvironment no
LoginGraceTime 30
MaxAuthTries 6
MaxStartups 50:30:100
ClientAliveInterval 0
ForceCommand $FORCE
EOF

"$SSHD" -t -f "$WORKDIR/sshd_config" || die "sshd -t rejected $WORKDIR/sshd_config"

hexport=$(printf '%04X' "$PORT")
# Inodes of sockets listening on 127.0.0.1:PORT (or 0.0.0.0:PORT).
listen_inodes() {
    awk -v a="0100007F:$hexport" -v b="00000000:$hexport" \
        'NR > 1 && ($2 == a || $2 == b) && $4 == "0A" { print $10 }' /proc/net/tcp
}
[ -z "$(listen_inodes)" ] || die "127.0.0.1:$PORT is already in use"

: >"$WORKDIR/sshd.log"
setsid "$SSHD" -D -f "$WORKDIR/sshd_config" -E "$WORKDIR/sshd.log" \
    </dev/null >"$WORKDIR/sshd.stdout" 2>&1 &
SSHD_PID=$!
echo "$SSHD_PID" >"$WORKDIR/sshd.bgpid"

deadline=$(( $(date +%s) + READY_TIMEOUT ))
while :; do
    if ! kill -0 "$SSHD_PID" 2>/dev/null; then
        echo "start_sshd.sh: sshd exited; log follows" >&2
        cat "$WORKDIR/sshd.log" "$WORKDIR/sshd.stdout" >&2 || true
        exit 1
    fi
    # Ready when a listening socket on the port is one of sshd's own fds.
    ready=0
    for inode in $(listen_inodes); do
        if ls -l "/proc/$SSHD_PID/fd" 2>/dev/null | grep -q "socket:\[$inode\]"; then ready=1; fi
    done
    [ "$ready" -eq 1 ] && break
    if [ "$(date +%s)" -ge "$deadline" ]; then
        kill "$SSHD_PID" 2>/dev/null || true
        die "sshd not listening on 127.0.0.1:$PORT after ${READY_TIMEOUT}s; see $WORKDIR/sshd.log"
    fi
    sleep 0.05
done
# sshd writes its PidFile right after it starts listening; make sure it exists.
[ -s "$PIDFILE" ] || echo "$SSHD_PID" >"$PIDFILE"
echo "READY $PORT"
