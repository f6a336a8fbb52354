"""The errors a user can cause: the CLI prints them on one line and exits with code 2."""


class UsageError(Exception):
    """Bad input from the user (an unknown name, an invalid option value, a missing file)."""


class DataError(UsageError):
    """Data that cannot be used: a missing or empty folder, a malformed dataset file."""
