"""One base class for the errors the CLI reports as a clean message (exit code 2)."""


class XlsrError(Exception):
    """An input or environment problem the user can fix; the message says what and where."""


class ConfigError(XlsrError, ValueError):
    """A parameter with an unknown name or an invalid value."""
