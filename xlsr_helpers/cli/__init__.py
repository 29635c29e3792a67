"""The `xlsr` command line."""

from xlsr_helpers.cli.main import main

__all__ = ["main"]
