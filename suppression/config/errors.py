"""The one error of reading settings."""


class ConfigError(RuntimeError):
    """The environment does not describe a service that may start."""
