"""
Stand-in for the ``cli`` module of Cisco IOS XE's guestshell, for running a
served ZTP script off-box:

    PYTHONPATH=tests/peers/cli_standin ZTP_CLI_RECORD=/tmp/cli.jsonl \
        ZTP_SERIAL=FOC2101B001 ZTP_MODEL=C9300-48P python3 script.py

Signatures and behaviour follow the on-box module (IOS XE guestshell /
PnP ``cli`` module):

    cli(command) -> str        exec or config commands; a batch is separated
                               by " ;" ("configure terminal ; hostname x");
                               config commands give "".
    clip(command) -> None      cli() and print the output (errors printed).
    execute(command) -> str    ONE exec command; ";" or newline inside, or a
                               bare "configure", raises CLICommandError; a
                               syntax error raises CLISyntaxError.
    executep(command) -> None  execute() and print the output.
    configure(configuration) -> list[ConfigResult]
                               a list of lines or a newline-separated string;
                               raises CLIConfigurationError if any line fails
                               (its .failed lists the failures).
    configurep(configuration) -> None
                               configure() and print "Line N SUCCESS: cmd".

Device facts come from the environment:
    ZTP_SERIAL (default FOC2101B001), ZTP_MODEL (default C9300-48P),
    ZTP_HOSTNAME (default Switch), ZTP_VERSION (default 17.09.04a).

Recording: when ZTP_CLI_RECORD names a file, each public call appends ONE
JSON object on its own line (UTF-8, flushed):
    {"fn": "configure" | "configurep", "lines": ["hostname x", ...]}
    {"fn": "cli" | "clip" | "execute" | "executep", "command": "show version"}
The *p variants record themselves only (not the inner call they make).

Test hooks, matching the SSH test peers: a config line containing
"ztpd-reject-me" fails (ConfigResult.success False, notes
"% Invalid input detected at '^' marker."); an exec command containing it
raises CLISyntaxError. Exec commands this stand-in does not know return "".

Output piping: "| include|inc|i RE", "| exclude|exc|e RE", "| begin|beg|b RE",
"| section|sec RE" (section treated like include) are applied to known
outputs.
"""

from __future__ import annotations

import json
import os
import re
from collections import namedtuple

import errors

__all__ = [
    "cli", "clip", "configure", "configurep", "execute", "executep",
    "CLIError", "CLICommandError", "CLISyntaxError", "CLITimeoutError",
    "CLIConfigurationError", "ConfigResult",
]

REJECT_MARKER = "ztpd-reject-me"
INVALID_INPUT = "% Invalid input detected at '^' marker."
_CONFIG_BANNER = "Enter configuration commands, one per line.  End with CNTL/Z."
_BARE_CONFIGURE = re.compile(r"^conf(i(g(u(r(e)?)?)?)?)?$")

MAX_WAIT_TIME = None  # present on the device; unused here


# ---------------------------------------------------------------- exceptions

class CLIError(Exception):
    """Base class: a CLI could not be run."""


class CLICommandError(CLIError):
    """A single command could not be run."""

    def __init__(self, command, message, *args):
        self.command = command
        self.message = '{}: There was a problem running the command: "{}"'.format(message, command)
        super().__init__(self.message, *args)


class CLISyntaxError(CLICommandError):
    """The command has a syntax error."""

    def __init__(self, command, *args):
        super().__init__(command, "SyntaxError", *args)


class CLITimeoutError(CLICommandError):
    """The command took too long (never raised by the stand-in)."""

    def __init__(self, command, output, *args):
        self.output = output
        super().__init__(command, "TimeoutError", *args)


class CLIConfigurationError(CLIError):
    """Some lines of a configure() call failed; .failed lists them."""

    def __init__(self, commands, *args):
        self.commands = commands
        self.failed = [c for c in commands if not c.success]
        self.message = ("ConfigError: There was a problem with {} commands while "
                        "configuring the device.".format(len(self.failed)))
        super().__init__(self.message, *args)


class ConfigResult(namedtuple("ConfigResult", "success command line output notes")):
    """Result of one configuration line."""

    def __str__(self):
        state = "SUCCESS" if self.success else "FAILURE"
        notes = " ({})".format(self.notes) if self.notes else ""
        return "Line {} {}: {}{}{}".format(self.line, state, self.command, notes, self.output)


# ---------------------------------------------------------------- helpers

def _record(obj):
    path = os.environ.get("ZTP_CLI_RECORD")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(obj) + "\n")
        f.flush()


def _facts():
    return {
        "serial": os.environ.get("ZTP_SERIAL", "FOC2101B001"),
        "model": os.environ.get("ZTP_MODEL", "C9300-48P"),
        "hostname": os.environ.get("ZTP_HOSTNAME", "Switch"),
        "version": os.environ.get("ZTP_VERSION", "17.09.04a"),
    }


def _show_version():
    f = _facts()
    return "\n".join([
        "Cisco IOS XE Software, Version {version}",
        "Cisco IOS Software [Cupertino], Catalyst L3 Switch Software (CAT9K_IOSXE), "
        "Version {version}, RELEASE SOFTWARE (fc3)",
        "Technical Support: http://www.cisco.com/techsupport",
        "Copyright (c) 1986-2023 by Cisco Systems, Inc.",
        "",
        "ROM: IOS-XE ROMMON",
        "BOOTLDR: System Bootstrap, Version 17.9.1r, RELEASE SOFTWARE (P)",
        "",
        "{hostname} uptime is 5 minutes",
        "System returned to ROM by power-on",
        'System image file is "flash:packages.conf"',
        "Last reload reason: PowerOn",
        "",
        "cisco {model} (X86) processor with 1331521K/6147K bytes of memory.",
        "Processor board ID {serial}",
        "2048K bytes of non-volatile configuration memory.",
        "8388608K bytes of physical memory.",
        "",
        "{label_mac:<35}: 00:11:22:33:44:55",
        "{label_model:<35}: {model}",
        "{label_serial:<35}: {serial}",
        "",
        "Switch Ports Model              SW Version        SW Image              Mode",
        "------ ----- -----              ----------        ----------            ----",
        "*    1 52    {model:<18} {version:<17} CAT9K_IOSXE           INSTALL",
        "",
        "Configuration register is 0x102",
    ]).format(label_mac="Base Ethernet MAC Address", label_model="Model Number",
              label_serial="System Serial Number", **f)


def _show_inventory():
    f = _facts()
    return "\n".join([
        'NAME: "c93xx Stack", DESCR: "c93xx Stack"',
        "PID: {model:<18}, VID: V02  , SN: {serial}",
        "",
        'NAME: "Switch 1", DESCR: "{model}"',
        "PID: {model:<18}, VID: V02  , SN: {serial}",
    ]).format(**f)


_PIPE = re.compile(r"\s+\|\s+(include|inc|i|exclude|exc|e|begin|beg|b|section|sec)\s+(.*)$")


def _apply_pipe(text, kind, pattern):
    lines = text.split("\n")
    rx = re.compile(pattern)
    if kind in ("include", "inc", "i", "section", "sec"):
        lines = [ln for ln in lines if rx.search(ln)]
    elif kind in ("exclude", "exc", "e"):
        lines = [ln for ln in lines if not rx.search(ln)]
    else:  # begin
        for i, ln in enumerate(lines):
            if rx.search(ln):
                lines = lines[i:]
                break
        else:
            lines = []
    return "\n".join(lines)


def _exec_one(command):
    """Output of one exec command; raises CLISyntaxError on the marker."""
    if REJECT_MARKER in command:
        raise CLISyntaxError(command)
    pipe = _PIPE.search(command)
    base = command[: pipe.start()] if pipe else command
    base = " ".join(base.split())
    if base in ("show version", "sh ver", "show ver"):
        text = _show_version()
    elif base in ("show inventory", "sh inv", "show inv"):
        text = _show_inventory()
    elif base in ("write memory", "write", "wr", "wr mem", "copy running-config startup-config"):
        text = "Building configuration...\n[OK]"
    else:
        text = ""
    if pipe and text:
        text = _apply_pipe(text, pipe.group(1), pipe.group(2))
    return text


def _valid(command):
    return not any(_BARE_CONFIGURE.match(c.strip()) for c in command.split(";"))


def _config_lines(configuration):
    if isinstance(configuration, (bytes, bytearray)):
        configuration = configuration.decode("utf-8")
    if not isinstance(configuration, str):
        configuration = "\n".join(configuration)
    return configuration.splitlines()


def _configure(lines):
    results = []
    for n, line in enumerate(lines, start=1):
        if REJECT_MARKER in line:
            results.append(ConfigResult(False, line, n, "", INVALID_INPUT))
        else:
            results.append(ConfigResult(True, line, n, "", ""))
    if not all(r.success for r in results):
        raise CLIConfigurationError(results)
    return results


def _execute(command):
    command = command.strip("\n")
    if command == "":
        return ""
    if ";" in command or "\n" in command:
        raise CLICommandError(command, "You may not run multiple commands using execute().")
    if not _valid(command):
        raise CLICommandError(command, "You have to specify the configuration mode")
    return _exec_one(command).strip("\n")


def _cli(command):
    command = command.strip()
    if command == "":
        return ""
    if not _valid(command):
        raise errors.cli_exec_error("You have to specify the configuration mode")
    outputs = []
    in_config = False
    for part in (p.strip() for p in command.split(";")):
        if not part:
            continue
        if REJECT_MARKER in part:
            raise errors.cli_syntax_error(part)
        if " ".join(part.split()) in ("configure terminal", "conf t", "config t"):
            in_config = True
            continue
        if in_config:
            if part == "end":
                in_config = False
            continue
        out = _exec_one(part)
        if out:
            outputs.append(out)
    return "\n".join(outputs) + ("\n" if outputs else "")


# ---------------------------------------------------------------- public API

def execute(command):
    """Run one exec-mode command and return its output."""
    _record({"fn": "execute", "command": command})
    return _execute(command)


def executep(command):
    """Run one exec-mode command and print its output."""
    _record({"fn": "executep", "command": command})
    try:
        text = _execute(command)
        if text:
            print(text)
    except CLICommandError as e:
        print(e.message)


def configure(configuration):
    """Apply config-mode lines (list or newline-separated string)."""
    lines = _config_lines(configuration)
    _record({"fn": "configure", "lines": lines})
    if not lines:
        return []
    return _configure(lines)


def configurep(configuration):
    """Apply config-mode lines and print one result line per line."""
    lines = _config_lines(configuration)
    _record({"fn": "configurep", "lines": lines})
    try:
        for r in _configure(lines):
            print(r)
    except CLIConfigurationError as e:
        print(e.message)
        for r in e.commands:
            print(r)


def cli(command):
    """Run exec or config command(s), batch separated by " ;"; return output."""
    _record({"fn": "cli", "command": command})
    return _cli(command)


def clip(command):
    """Run exec or config command(s) and print the output."""
    _record({"fn": "clip", "command": command})
    try:
        text = _cli(command)
        if text:
            print(text)
    except (errors.cli_exec_error, errors.cli_syntax_error) as e:
        print(e)
