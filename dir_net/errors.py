"""User-facing errors: the CLI prints their message on one line and exits with code 2."""


class DirNetError(Exception):
    """An error caused by user input (a file, a config value, an argument), not by a bug."""


class ConfigError(DirNetError):
    """A config file or override is invalid; the message names the key."""


class DataError(DirNetError):
    """A dataset file is missing or malformed; the message names the file and field."""


class CheckpointError(DirNetError):
    """A checkpoint is unreadable or does not match the model; the message names the keys."""
