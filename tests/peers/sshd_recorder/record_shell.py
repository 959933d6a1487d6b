#!/usr/bin/env python3
"""
Minimal IOS-like CLI used as OpenSSH sshd's ForceCommand (see start_sshd.sh).

sshd runs it inside the session's PTY. The kernel's tty line discipline does
the echo (ECHO is on by default) and turns our "\\n" into "\\r\\n" (ONLCR),
so the session looks like a device that echoes input. This program never
echoes itself.

    python3 record_shell.py --record FILE [--hostname sshd-router]
                            [--record-mode all|config]

Record file: one line per line received, exactly as received minus the
trailing CR/LF, UTF-8, appended and flushed as each line arrives.
  --record-mode all    (default) every line read from the session, in order:
                       exec commands, configure terminal, config lines,
                       rejected lines, end, write memory, empty lines.
  --record-mode config only lines accepted in config mode (same contents as
                       the fakenos peer's record file): no exec commands, no
                       "end", no rejected lines, no empty lines.

Answers:
  configure terminal | conf t   -> "Enter configuration commands, ..." and
                                   prompt H(config)#
  end (config mode)             -> prompt H#
  write memory | write | wr     -> "Building configuration...", "[OK]"
  terminal length 0 / width N   -> nothing
  show version                  -> short IOS XE show version
  username X ... (config mode)  -> adds local user X (recorded like any config line)
  no username X (config mode)   -> IOS XE's "[confirm]" question; the next line
                                   confirms and user X is removed (the line is
                                   recorded, the confirmation is not)
  show running-config | include ^username X
                                -> "username X privilege 15 ..." while X exists; the
                                   login user exists from the start
  exit | logout (exec mode)     -> session ends
  any line containing ztpd-reject-me     -> caret line +
                                   "% Invalid input detected at '^' marker."
  any line containing ztpd-incomplete-me -> "% Incomplete command."
  any line containing ztpd-ambiguous-me  -> '% Ambiguous command:  "<line>"'
  other config-mode lines       -> accepted silently (including "exit", "!")
  other exec-mode lines         -> "% Invalid input detected at '^' marker."
"""

from __future__ import annotations

import argparse
import os
import sys

REJECT_MARKER = "ztpd-reject-me"
INCOMPLETE_MARKER = "ztpd-incomplete-me"
AMBIGUOUS_MARKER = "ztpd-ambiguous-me"

SHOW_VERSION = """Cisco IOS XE Software, Version 17.09.04a
Cisco IOS Software [Cupertino], Catalyst L3 Switch Software (CAT9K_IOSXE), Version 17.9.4a, RELEASE SOFTWARE (fc3)
Technical Support: http://www.cisco.com/techsupport
Copyright (c) 1986-2023 by Cisco Systems, Inc.

{host} uptime is 1 hour, 2 minutes
System image file is "flash:packages.conf"

cisco C9300-48P (X86) processor with 1331521K/6147K bytes of memory.
Processor board ID FOC2101B001

Model Number                       : C9300-48P
System Serial Number               : FOC2101B001

Configuration register is 0x102
"""


class Shell:
    def __init__(self, record: str, hostname: str, record_mode: str) -> None:
        self.record_path = record
        self.hostname = hostname
        self.record_mode = record_mode
        self.config = False
        import getpass
        self.users = {getpass.getuser()}
        self.confirming: str | None = None

    @property
    def prompt(self) -> str:
        return f"{self.hostname}(config)#" if self.config else f"{self.hostname}#"

    def record(self, line: str) -> None:
        with open(self.record_path, "a", encoding="utf-8", errors="surrogateescape") as f:
            f.write(line + "\n")
            f.flush()

    def out(self, text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    def marker_error(self, line: str) -> str | None:
        if REJECT_MARKER in line:
            column = len(self.prompt) + line.index(REJECT_MARKER)
            return " " * column + "^\n% Invalid input detected at '^' marker.\n\n"
        if INCOMPLETE_MARKER in line:
            return "% Incomplete command.\n\n"
        if AMBIGUOUS_MARKER in line:
            return f'% Ambiguous command:  "{line.strip()}"\n'
        return None

    def handle(self, line: str) -> bool | None:
        """Process one line; return False to end the session, None to print no prompt
        (a question waits for its answer)."""
        if self.confirming is not None:
            self.users.discard(self.confirming)
            self.confirming = None
            return True
        if self.record_mode == "all":
            self.record(line)
        cmd = " ".join(line.split())
        if not cmd:
            return True
        err = self.marker_error(line)
        if err is not None:
            self.out(err)
            return True
        if self.config:
            words = cmd.split()
            if cmd == "end":
                self.config = False
                return True
            if self.record_mode == "config":
                self.record(line)
            if words[:1] == ["username"] and len(words) > 1:
                self.users.add(words[1])
            if words[:2] == ["no", "username"] and len(words) > 2:
                self.confirming = words[2]
                self.out("This operation will remove all username related configurations with same name.Do you want to continue? [confirm]")
                return None
            return True
        if cmd in ("configure terminal", "conf t", "config t", "configure t"):
            self.out("Enter configuration commands, one per line.  End with CNTL/Z.\n")
            self.config = True
        elif cmd in ("write memory", "write", "wr", "wr mem", "copy running-config startup-config"):
            self.out("Building configuration...\n[OK]\n")
        elif cmd.startswith("terminal length ") or cmd.startswith("terminal width ") or cmd == "enable":
            pass
        elif cmd.startswith("show running-config | include ^username "):
            wanted = cmd.rsplit(" ", 1)[-1]
            for user in sorted(self.users):
                if user == wanted:
                    self.out(f"username {user} privilege 15 secret 9 $9$recorder\n")
        elif cmd in ("show version", "sh ver"):
            self.out(SHOW_VERSION.format(host=self.hostname))
        elif cmd in ("exit", "logout", "quit"):
            return False
        else:
            column = len(self.prompt) + (len(line) - len(line.lstrip()))
            self.out(" " * column + "^\n% Invalid input detected at '^' marker.\n\n")
        return True

    def run(self) -> int:
        stdin = sys.stdin.buffer
        self.out(self.prompt)
        while True:
            raw = stdin.readline()
            if not raw:  # EOF: client closed the channel or sent ^D
                return 0
            line = raw.rstrip(b"\r\n").decode("utf-8", errors="surrogateescape")
            handled = self.handle(line)
            if handled is False:
                return 0
            if handled:
                self.out(self.prompt)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--record", default=os.environ.get("RECORD_FILE"),
                    help="file to append lines to (default: $RECORD_FILE)")
    ap.add_argument("--hostname", default="sshd-router")
    ap.add_argument("--record-mode", choices=("all", "config"), default="all")
    args = ap.parse_args()
    if not args.record:
        print("record_shell.py: --record FILE (or $RECORD_FILE) is required", file=sys.stderr)
        return 2
    try:
        return Shell(args.record, args.hostname, args.record_mode).run()
    except (BrokenPipeError, KeyboardInterrupt):
        return 0


if __name__ == "__main__":
    sys.exit(main())
