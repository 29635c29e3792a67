"""One base class for the errors the CLI reports as a clean message (exit code 2)."""

import errno
import shutil
from contextlib import contextmanager
from pathlib import Path

QUOTE_LIMIT = 80  # a quoted value longer than this is cut: a 20 MB id must not become a 20 MB message


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


def short(value, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` as a message quotes it: one line, at most ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:60]}... ({len(text)} characters)"


def short_text(text: str, limit: int = QUOTE_LIMIT) -> str:
    """A path or name as a message writes it (unquoted), cut like ``short``."""
    text = str(text).replace("\n", "\\n")
    return text if len(text) <= limit else f"{text[:60]}... ({len(text)} characters)"


def one_line(message: str, limit: int = 400) -> str:
    """A message as the CLI prints it: its lines joined with '; ', any word longer than ``limit`` cut
    (the last guard: a library's message may quote a value whole)."""
    out = ""
    for line in message.split("\n"):
        part = " ".join(short_text(w, limit) for w in line.strip().split(" "))
        if part:
            out += (" " if out.endswith(":") else "; " if out else "") + part
    return out


def gib(n_bytes: float) -> str:
    """A size as messages write it: GiB, MiB or KiB, one decimal."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{int(n_bytes)} bytes"


def free_bytes(where: str | Path) -> int:
    """Free bytes on the disk that holds ``where`` (or its nearest existing folder)."""
    p = Path(where)
    while p != p.parent and not _exists(p):
        p = p.parent
    return shutil.disk_usage(p).free


def _exists(p: Path) -> bool:
    try:
        return p.exists()
    except OSError:  # a name too long for the file system
        return False


def check_free_space(where: str | Path, needed: int, what: str) -> None:
    """Refuse before the work starts when ``needed`` bytes (within 95 % of the free space) do not fit."""
    free = free_bytes(where)
    if needed > 0.95 * free:
        raise DiskFullError(f"{what} needs about {gib(needed)} in {where}, but only {gib(free)} are free: "
                            "free space, or write to a larger disk (on Kaggle: /tmp for caches)")


RESUME_ADVICE = ("free space, or put run_dir / cache_dir on a larger disk (on Kaggle: /tmp for caches); "
                 "the last complete checkpoint is kept, so the same command resumes")
FREE_ADVICE = "free space, or write to a larger disk"


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
def disk_full_named(where: str | Path, needed: int | None = None, advice: str = RESUME_ADVICE):
    """Turn "No space left on device" into one line that names the file, the free space and, when
    known, how much the work needs."""
    try:
        yield
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        raise disk_full_error(exc, where, needed, advice) from None


def disk_full_error(exc: OSError, where: str | Path, needed: int | None = None,
                    advice: str = FREE_ADVICE) -> DiskFullError:
    """The one-line error for an ENOSPC ``exc`` raised while writing below ``where``."""
    target = short_text(exc.filename or where, 200)
    need = f"; it needs about {gib(needed)}" if needed else ""
    return DiskFullError(f"disk full while writing {target} ({gib(free_bytes(where))} free{need}): {advice}")


WRITE_ERRNOS = {errno.EACCES: "permission denied", errno.EPERM: "not permitted", errno.EROFS: "read-only file system"}


def os_error_line(exc: OSError) -> str | None:
    """One line for an OSError about a named file (a full disk, a read-only folder, a path that is a
    file, a name too long); None for one that names no file (left to the traceback: likely a bug)."""
    if exc.errno == errno.ENOSPC:
        return str(disk_full_error(exc, Path(exc.filename or ".").parent))
    if exc.filename is None:
        return None
    reason = WRITE_ERRNOS.get(exc.errno) or exc.strerror or type(exc).__name__
    hint = " (a read-only folder? give a writable --out / --run-dir)" if exc.errno in WRITE_ERRNOS else ""
    return f"{short_text(exc.filename, 200)}: {reason}{hint}"
