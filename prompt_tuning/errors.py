"""The error a run raises when it cannot start or go on; the CLI prints it as one line."""


class RunError(RuntimeError):
    """A run that cannot start or go on; the message says why and what to do."""
