"""
fakenos custom NOS platform: Cisco IOS XE as seen by ztpd's day-0 push.

This file is a fakenos "NOS plugin from Python file" (see fakenos
core/nos.py ``Nos._from_module``): fakenos reads the module-level names
NAME, INITIAL_PROMPT, ENABLE_PROMPT, CONFIG_PROMPT, DEVICE_NAME,
``commands`` and instantiates the class named by DEVICE_NAME as the device
whose methods produce command output.

It starts from fakenos's built-in ``cisco_ios`` platform (its YAML command
set plus its Python module, loaded exactly the way fakenos loads a built-in
platform) and extends it with:

* ``configure terminal`` / ``conf t``  -> ``{base_prompt}(config)#``
* ``end`` (config mode)                -> ``{base_prompt}#``
* ``write memory`` / ``write``         -> ``Building configuration...`` + ``[OK]``
* ``show version`` also valid at ``>``
* ``exit`` at exec level closes the session (as on IOS)
* ``_catch_all_`` (config mode): every other line typed in config mode is
  handed to ``ZtpdIosXE.config_line``, which records it or rejects it; the
  device tracks its local users (``username X ...`` adds, ``no username X``
  removes, without IOS's ``[confirm]`` question);
* ``show running-config | include ^username X`` (exec) lists that user if the
  device still has it (also through ``_catch_all_``).

``_catch_all_`` is the one thing fakenos's stock shell cannot dispatch on its
own (its command table is an exact-match dict and its ``_default_`` entry is a
static string). ``fakenos_iosxe.py`` supplies a CMDShell subclass that calls
this entry for lines that match no command valid at the current prompt.

The record file path is not known at import time; the runner sets
``device.record_path`` on the loaded Nos object before starting the server.
"""

from __future__ import annotations

import threading
from typing import Optional

from fakenos.core.nos import Nos
from fakenos.plugins.nos import nos_plugins
from fakenos.plugins.nos.platforms_py.cisco_ios import CiscoIOS

NAME: str = "ztpd_cisco_iosxe"
# ztpd logs in as a privilege-15 user, so the session starts in privileged
# exec (like a device whose local user has "privilege 15"). The runner's
# --user-exec flag switches this back to "{base_prompt}>".
INITIAL_PROMPT: str = "{base_prompt}#"
USER_PROMPT: str = "{base_prompt}>"
ENABLE_PROMPT: str = "{base_prompt}#"
CONFIG_PROMPT: str = "{base_prompt}(config)#"
DEVICE_NAME: str = "ZtpdIosXE"

# Marker texts (substring match, anywhere in the line) and the IOS error each
# one produces. The rejected line is not recorded.
REJECT_MARKER = "ztpd-reject-me"
INCOMPLETE_MARKER = "ztpd-incomplete-me"
AMBIGUOUS_MARKER = "ztpd-ambiguous-me"


class ZtpdIosXE(CiscoIOS):
    """Device state: where accepted config lines are appended."""

    def __init__(self, configuration_file: Optional[str]) -> None:
        super().__init__(configuration_file=configuration_file)
        self.record_path: Optional[str] = None
        # The runner adds the login user (the temporary user the ZTP script created).
        self.users: set = set()
        self._lock = threading.Lock()

    def record(self, line: str) -> None:
        if not self.record_path:
            return
        with self._lock:
            with open(self.record_path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
                f.flush()

    # pylint: disable=unused-argument
    def config_line(self, base_prompt: str, current_prompt: str, command: str) -> Optional[str]:
        """Handle one raw line (leading/trailing blanks kept): config mode, or the
        one exec command this platform adds."""
        words = command.split()
        if "(config" not in current_prompt:
            if command.strip().startswith("show running-config | include ^username "):
                wanted = command.strip().rsplit(" ", 1)[-1]
                return "".join(
                    f"username {u} privilege 15 secret 9 $9$fakenos\n"
                    for u in sorted(self.users) if u == wanted
                )
            return "% Invalid input detected at '^' marker.\n"
        if words[:1] == ["username"] and len(words) > 1:
            self.users.add(words[1])
        if words[:2] == ["no", "username"] and len(words) > 2:
            self.users.discard(words[2])
        if REJECT_MARKER in command:
            # IOS echoes the line after the prompt, then puts a caret under
            # the first character it could not parse.
            column = len(current_prompt) + command.index(REJECT_MARKER)
            return " " * column + "^\n% Invalid input detected at '^' marker.\n\n"
        if INCOMPLETE_MARKER in command:
            return "% Incomplete command.\n\n"
        if AMBIGUOUS_MARKER in command:
            return f'% Ambiguous command:  "{command.strip()}"\n'
        self.record(command)
        return None


# The built-in cisco_ios platform, loaded from the same files fakenos uses
# for ``platform: cisco_ios`` (platforms_yaml/cisco_ios.yaml then
# platforms_py/cisco_ios.py).
_builtin = Nos(name="cisco_ios", filename=list(nos_plugins["cisco_ios"]))

commands: dict = dict(_builtin.commands)
commands.update(
    {
        "show version": {
            **_builtin.commands["show version"],
            "prompt": [USER_PROMPT, ENABLE_PROMPT],
        },
        "terminal length 0": {
            "output": "",
            "help": "Set terminal length to 0",
            "prompt": [USER_PROMPT, ENABLE_PROMPT],
        },
        "terminal width 511": {
            "output": "",
            "help": "Set terminal width to 511",
            "prompt": [USER_PROMPT, ENABLE_PROMPT],
        },
        "configure terminal": {
            "output": "Enter configuration commands, one per line.  End with CNTL/Z.",
            "new_prompt": CONFIG_PROMPT,
            "help": "Enter configuration mode",
            "prompt": ENABLE_PROMPT,
        },
        "conf t": {"alias": "configure terminal"},
        "end": {
            "output": None,
            "new_prompt": ENABLE_PROMPT,
            "help": "Exit from configure mode",
            "prompt": CONFIG_PROMPT,
        },
        "write memory": {
            "output": "Building configuration...\n[OK]",
            "help": "Write running configuration to memory",
            "prompt": ENABLE_PROMPT,
        },
        "write": {"alias": "write memory"},
        "exit": {
            "output": True,
            "help": "Exit from the EXEC",
            "prompt": [USER_PROMPT, ENABLE_PROMPT],
        },
        "_catch_all_": {
            "output": ZtpdIosXE.config_line,
            "help": "Any other line in config mode: record it (or reject it on a marker); the users command in exec mode",
            "prompt": [CONFIG_PROMPT, ENABLE_PROMPT],
        },
    }
)
