#!/usr/bin/env python3
"""
Run ONE fakenos SSH device that impersonates Cisco IOS XE for ztpd's tests.

fakenos (PyPI package ``fakenos``, pinned in requirements.txt) provides the
SSH server (paramiko) and the CLI shell; we did not write either. This script
only wires it up:

* the platform is ``fakenos_iosxe_platform.py`` beside this file, a fakenos
  NOS plugin file that extends the built-in ``cisco_ios`` platform, loaded
  through fakenos's own plugin mechanism (``Nos(filename=...)`` passed to
  ``FakeNOS(plugins=[...])``);
* fakenos's CMDShell dispatches by exact command text only, so to accept
  *any* line in config mode this script subclasses CMDShell (the shell plugin
  class) with one hook: a line that matches no command valid at the current
  prompt is passed to the platform's ``_catch_all_`` command, if the platform
  defines one for that prompt. The subclass is put in this FakeNOS instance's
  own shell-plugin table (``FakeNOS.shell_plugins``, a per-instance copy);
  nothing in the fakenos package is patched.

Usage:
    python3 fakenos_iosxe.py --port 0 --username admin --password admin
        --record /tmp/rec.txt --hostname router

Prints ``READY <port>`` (flushed) once the port is listening; runs until
SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time

from fakenos import FakeNOS
from fakenos.core.nos import Nos
from fakenos.plugins.shell.cmd_shell import CMDShell

HERE = os.path.dirname(os.path.abspath(__file__))
PLATFORM_FILE = os.path.join(HERE, "fakenos_iosxe_platform.py")
CATCH_ALL = "_catch_all_"

log = logging.getLogger("fakenos_iosxe")


class CatchAllCMDShell(CMDShell):
    """CMDShell plus a platform-defined catch-all command.

    Lines are passed raw (only the trailing CR/LF removed by cmd.Cmd), so
    leading indentation of config lines survives.
    """

    def onecmd(self, line: str) -> bool:  # type: ignore[override]
        catch_all = self.commands.get(CATCH_ALL)
        if (
            line.strip()
            and catch_all is not None
            and self._check_prompt(catch_all.get("prompt"))
            and not self._is_command_here(line.strip())
        ):
            return self._run_catch_all(catch_all, line)
        return super().onecmd(line)

    def _is_command_here(self, text: str) -> bool:
        cmd_data = self.commands.get(text)
        if cmd_data is None or (text.startswith("_") and text.endswith("_")):
            return False
        if cmd_data.get("alias"):
            cmd_data = {**self.commands.get(cmd_data["alias"], {}), **cmd_data}
        return self._check_prompt(cmd_data.get("prompt"))

    def _run_catch_all(self, cmd_data: dict, line: str) -> bool:
        # Same calling convention fakenos uses for callable outputs.
        try:
            ret = cmd_data["output"]
            if callable(ret):
                ret = ret(
                    self.nos.device,
                    base_prompt=self.base_prompt,
                    current_prompt=self.prompt,
                    command=line,
                )
            if isinstance(ret, dict):
                if "new_prompt" in ret:
                    self.prompt = ret["new_prompt"].format(base_prompt=self.base_prompt)
                ret = ret.get("output")
        except Exception:  # pylint: disable=broad-except
            log.exception("catch-all handler failed for %r", line)
            ret = "% Internal error in test peer"
        if ret is True or not self.is_running.is_set():
            return True
        if ret is not None:
            self.writeline(ret)
        return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_inodes(port: int) -> set:
    """Inodes of TCP sockets in LISTEN on 127.0.0.1:port or 0.0.0.0:port."""
    wanted = {f"0100007F:{port:04X}", f"00000000:{port:04X}"}
    inodes = set()
    with open("/proc/net/tcp", encoding="ascii") as f:
        for row in f.readlines()[1:]:
            cols = row.split()
            if cols[1] in wanted and cols[3] == "0A":
                inodes.add(cols[9])
    return inodes


def we_are_listening(port: int) -> bool:
    """True once one of OUR sockets listens on the port. Checked via /proc
    rather than a probe connection (which fakenos would log as a failed SSH
    handshake), and by socket ownership because fakenos binds with
    SO_REUSEPORT, so another process may hold the same port."""
    mine = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            mine.add(target[len("socket:["):-1])
    return bool(listening_inodes(port) & mine)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = pick a free one)")
    ap.add_argument("--username", default="admin")
    ap.add_argument("--password", default="admin")
    ap.add_argument("--record", required=True, help="file that accepted config-mode lines are appended to")
    ap.add_argument("--hostname", default="router", help="prompt name")
    ap.add_argument("--user-exec", action="store_true", help="start at 'H>' (needs 'enable') instead of 'H#'")
    ap.add_argument("--intro", default="", help="text printed before the first prompt (default: none)")
    ap.add_argument("--banner", default="", help="SSH userauth banner text (default: empty)")
    ap.add_argument("--host-key", default=None, help="RSA private key (PEM); default: fakenos's built-in key")
    ap.add_argument("--log-level", default="WARNING")
    args = ap.parse_args()

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    port = args.port or free_port()
    if listening_inodes(port):
        # fakenos sets SO_REUSEPORT, so binding would "succeed" next to
        # another fakenos on the same port; refuse instead.
        print(f"ERROR 127.0.0.1:{port} is already in use", file=sys.stderr, flush=True)
        return 1
    # Create the record file up front so "no lines recorded" is an empty file.
    open(args.record, "a", encoding="utf-8").close()

    nos = Nos(filename=PLATFORM_FILE)
    nos.device.record_path = os.path.abspath(args.record)
    nos.device.users.add(args.username)
    if args.user_exec:
        nos.initial_prompt = "{base_prompt}>"

    server_conf: dict = {"address": "127.0.0.1", "timeout": 1, "ssh_banner": args.banner}
    if args.host_key:
        server_conf["ssh_key_file"] = args.host_key
    inventory = {
        "hosts": {
            args.hostname: {
                "port": port,
                "username": args.username,
                "password": args.password,
                "server": {"plugin": "ParamikoSshServer", "configuration": server_conf},
                "shell": {"plugin": "CMDShell", "configuration": {"intro": args.intro}},
                "nos": {"plugin": nos.name},
            }
        }
    }
    net = FakeNOS(inventory=inventory, plugins=[nos])
    net.shell_plugins["CMDShell"] = CatchAllCMDShell

    stop = threading.Event()

    def on_signal(signum, _frame):
        log.info("signal %s: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    try:
        net.start()
    except OSError as e:
        print(f"ERROR cannot listen on 127.0.0.1:{port}: {e}", file=sys.stderr, flush=True)
        return 1

    deadline = time.monotonic() + 10
    while not we_are_listening(port):
        if time.monotonic() > deadline:
            print(f"ERROR port {port} never reached LISTEN", file=sys.stderr, flush=True)
            os._exit(1)
        time.sleep(0.02)
    print(f"READY {port}", flush=True)

    while not stop.wait(0.5):
        pass

    # fakenos joins its threads with bounded timeouts; don't let a stuck
    # session keep the process alive after a SIGTERM.
    stopper = threading.Thread(target=net.stop, daemon=True)
    stopper.start()
    stopper.join(timeout=5)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
