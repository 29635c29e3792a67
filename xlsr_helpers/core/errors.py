"""One base class for the errors the CLI reports as a clean message (exit code 2)."""

import errno
import shutil
from contextlib import contextmanager
from pathlib import Path


class XlsrError(Exception):
    """An input or environment problem the user can fix; the message says what and where."""


class ConfigError(XlsrError, ValueError):
    """A parameter with an unknown name or an invalid value."""


class ManifestError(XlsrError, ValueError):
    """Bad protocol/key input or descriptor; the message names the file and line (or field) of each problem."""


class PipelineError(XlsrError, RuntimeError):
    """A preset/parameter problem, or a notebook that failed (named with its cell and error)."""


class RunFolderError(PipelineError):
    """A run folder in use by another run, or holding files this project did not write."""


class DiskFullError(XlsrError, OSError):
    """The disk filled up while writing; the message names where."""


def failure_reason(exc: BaseException) -> str:
    """One line for one file's error row: an ``XlsrError``'s reason (its ``reason`` if it has one,
    e.g. an unreadable file's), else the exception's type and message."""
    if isinstance(exc, XlsrError):
        return " ".join(str(getattr(exc, "reason", None) or exc).split())
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    text = " ".join(str(exc).split())  # CUDA and library errors span lines; a row holds one
    return f"unexpected {type(exc).__name__}" + (f": {text[:300]}" if text else "")


@contextmanager
def disk_full_named(where: str | Path):
    """Turn "No space left on device" into one line that names the folder and what to do."""
    try:
        yield
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        free = shutil.disk_usage(where).free if Path(where).exists() else 0
        raise DiskFullError(f"disk full while writing {exc.filename or where} ({free / 2**30:.1f} GiB free): "
                            "free space, or put run_dir / cache_dir on a larger disk (on Kaggle: /tmp for caches); "
                            "the last complete checkpoint is kept, so the same command resumes") from None
