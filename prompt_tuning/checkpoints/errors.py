"""The one exception type that every checkpoint reader and writer raises."""


class CheckpointError(ValueError):
    """A checkpoint path is missing, malformed or inconsistent.

    The message always names the offending path and says what was wrong or
    what was looked for, so a user can fix the path without reading code.
    """
