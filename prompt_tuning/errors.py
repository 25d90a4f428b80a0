"""The errors a run or tool stops with; each is printed as one `error:` line, exit status 2."""

import sys


class RunError(RuntimeError):
    """A run that cannot start or go on; the message says why and what to do."""


class InputError(RunError, ValueError):
    """A file, name or setting the user gave that cannot be used.

    Also a ValueError, the type callers of the library catch for bad input.
    """


class ToolExit(SystemExit):
    """Exit status 2 (as the jobs and argparse use) for a standalone tool's error.

    The message, `<tool>: error: ...`, goes to stderr once, when it is made.
    """

    def __init__(self, tool: str, message: object) -> None:
        self.message = f"{tool}: error: {message}"
        print(self.message, file=sys.stderr, flush=True)
        super().__init__(2)

    def __str__(self) -> str:
        return self.message
