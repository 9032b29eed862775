"""gandyn's exceptions, in one place: every layer raises these and the CLI maps them to
exit codes (``ConfigError`` and ``FolderInUse``: 2)."""


class ConfigError(ValueError):
    """Bad user input: the message names the key and what is allowed."""


class FolderInUse(ConfigError):
    """A run folder another live process is writing (its lock is held)."""
