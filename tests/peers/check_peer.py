#!/usr/bin/env python3
"""
Smoke-check an IOS-like SSH peer with paramiko (a real SSH client), the way
ztpd drives a device: PTY + interactive shell, wait for a prompt ending in
'#' or '>', then terminal length 0, configure terminal, config lines, a
rejected line, end, write memory.

    python3 check_peer.py --port N --username U --password P --record FILE \
        [--eol '\\n'] [--transcript] [--show-version] [--record-mode config|all]

Exit 0 when the record file holds exactly the accepted lines (appended after
whatever it held before) and the reject marker produced IOS's invalid-input
error.
"""

from __future__ import annotations

import argparse
import re
import sys
import time

import paramiko

PROMPT_RE = re.compile(r"[\w.\-()]+[#>]\s*$")


def read_until_prompt(chan: paramiko.Channel, timeout: float = 30.0) -> str:
    buf = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if chan.recv_ready():
            buf += chan.recv(65536).decode("utf-8", "replace")
            # a prompt is the last thing on the screen, with nothing after it
            if PROMPT_RE.search(buf.rsplit("\n", 1)[-1]):
                # give the peer a moment to prove nothing else follows
                time.sleep(0.05)
                if not chan.recv_ready():
                    return buf
        elif chan.closed or chan.exit_status_ready():
            break
        else:
            time.sleep(0.01)
    raise TimeoutError(f"no prompt; got {buf!r}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--username", default="admin")
    ap.add_argument("--password", default="admin")
    ap.add_argument("--record", required=True)
    ap.add_argument("--eol", default="\\n", help="line terminator to send (escaped), default \\n")
    ap.add_argument("--transcript", action="store_true")
    ap.add_argument("--show-version", action="store_true")
    ap.add_argument("--record-mode", choices=("config", "all"), default="config",
                    help="config: only accepted config lines are expected in the record "
                         "(fakenos peer, sshd peer with PEER_RECORD_MODE=config); "
                         "all: every line sent (sshd peer default)")
    args = ap.parse_args()
    eol = args.eol.encode().decode("unicode_escape")

    try:
        with open(args.record, encoding="utf-8") as f:
            before = f.read().splitlines()
    except FileNotFoundError:
        before = []

    t0 = time.monotonic()
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect("127.0.0.1", port=args.port, username=args.username, password=args.password,
                   look_for_keys=False, allow_agent=False, timeout=10)
    banner = client.get_transport().get_banner()
    chan = client.invoke_shell(term="vt100", width=511, height=24)
    transcript = [("<login>", read_until_prompt(chan))]

    accepted = [
        "hostname ztp-test-1",
        "interface GigabitEthernet1/0/1",
        " description uplink to core",
        " switchport mode trunk",
        "!",
        "ip domain name example.net",
    ]
    steps = ["terminal length 0", "configure terminal", *accepted[:3],
             " description ztpd-reject-me here", *accepted[3:], "end", "write memory"]
    if args.show_version:
        steps.append("show version")
    for line in steps:
        chan.send(line + eol)
        transcript.append((line, read_until_prompt(chan)))
    elapsed = time.monotonic() - t0
    chan.close()
    client.close()

    if args.transcript:
        print(f"userauth banner: {banner!r}")
        for sent, got in transcript:
            print(f"SENT {sent!r}\nGOT  {got!r}")
        print(f"elapsed {elapsed:.2f}s")

    ok = True
    reject_out = next(got for sent, got in transcript if "ztpd-reject-me" in sent)
    if "% Invalid input detected at '^' marker." not in reject_out:
        print("FAIL: reject marker did not produce the invalid-input error", file=sys.stderr)
        ok = False
    conf_out = next(got for sent, got in transcript if sent == "configure terminal")
    if "(config)#" not in conf_out:
        print("FAIL: no (config)# prompt after configure terminal", file=sys.stderr)
        ok = False
    wr_out = next(got for sent, got in transcript if sent == "write memory")
    if "[OK]" not in wr_out:
        print("FAIL: write memory did not answer [OK]", file=sys.stderr)
        ok = False
    time.sleep(0.2)
    with open(args.record, encoding="utf-8") as f:
        after = f.read().splitlines()
    new = after[len(before):]
    expected = accepted if args.record_mode == "config" else steps
    if after[: len(before)] != before or new != expected:
        print(f"FAIL: recorded {new!r}, expected {expected!r}", file=sys.stderr)
        ok = False
    print(("OK" if ok else "FAILED") + f" ({len(new)} lines recorded, {elapsed:.2f}s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
