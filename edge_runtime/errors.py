"""Errors that reach the user as one clear line (what, what was expected, how to fix)."""


class UserError(RuntimeError):
    """Bad input or environment; the CLI prints the message and exits with ``exit_code``."""

    exit_code = 2

    def __init__(self, message, exit_code=None):
        RuntimeError.__init__(self, message)
        if exit_code is not None:
            self.exit_code = exit_code
