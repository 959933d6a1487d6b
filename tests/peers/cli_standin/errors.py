"""Stand-in for the guestshell ``errors`` module that ``cli.cli()`` raises from."""


class cli_syntax_error(Exception):  # noqa: N801 - name as on the device
    """The command is not valid IOS syntax."""


class cli_exec_error(Exception):  # noqa: N801 - name as on the device
    """The command could not be executed."""
