"""Errors a user can act on: the CLI reports them in one line (no traceback) with a non-zero status."""


class StageError(Exception):
    """Bad input or an unusable output location; the message names the key or the file."""
