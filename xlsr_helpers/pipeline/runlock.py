"""One run per run folder: ``RUN/.xlsr-run.lock`` holds the owner's pid, host and start time.

A second ``xlsr run`` on the folder is refused while the owner lives; a lock whose process is gone
(same host, pid not alive) is taken over with a line saying so; a lock from another host is never
taken over (this machine cannot see that host's processes): the message says how to remove it. On
the same host an advisory ``flock`` on the file closes the race of two runs starting at once.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from xlsr_helpers.core.errors import RunFolderError

try:
    import fcntl
except ImportError:  # not on Linux/macOS: the pid check alone
    fcntl = None

LOCK_FILE = ".xlsr-run.lock"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def _read(fd: int) -> dict | None:
    """The owner's record; ``{}`` for a new (empty) file, None for one that cannot be read."""
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 65536).decode("utf-8", "replace")
    if not text.strip():
        return {}
    try:
        info = json.loads(text)
    except json.JSONDecodeError:
        return None
    ok = isinstance(info, dict) and isinstance(info.get("pid"), int) and isinstance(info.get("host"), str)
    return info if ok else None


def _owner(info: dict) -> str:
    return f"pid {info['pid']} on host {info['host']}, started {info.get('started', '?')}"


def _check_owner(lock: Path, info: dict | None, run_dir: Path) -> None:
    """Refuse a live owner or a foreign host's; say so when a dead owner's lock is taken over."""
    if info is None:
        print(f"[xlsr run] {lock} was unreadable (a run that died while writing it): taking it over", file=sys.stderr)
        return
    if not info:
        return
    host = socket.gethostname()
    if info["host"] != host:
        raise RunFolderError(f"{run_dir} is locked by an xlsr run on another host ({_owner(info)}); this machine "
                             f"cannot tell whether it still runs: if it does not, remove {lock}")
    if info["pid"] == os.getpid() or pid_alive(info["pid"]):
        raise RunFolderError(f"{run_dir} is in use by another xlsr run ({_owner(info)}); wait for it to finish, "
                             f"or give another --run-dir (if no xlsr run is going on, its pid was reused: remove {lock})")
    print(f"[xlsr run] taking over {lock}: its run ({_owner(info)}) is gone", file=sys.stderr)


def _open_locked(lock: Path, run_dir: Path) -> int:
    """An open descriptor of the lock file, flocked, on the file that is at ``lock`` now."""
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                info = _read(fd) or {"pid": "?", "host": "?"}
                os.close(fd)
                raise RunFolderError(f"{run_dir} is in use by another xlsr run ({_owner(info)}); wait for it "
                                     "to finish, or give another --run-dir") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # its owner removed it between our open and our lock: try the new one


@contextmanager
def run_folder_lock(run_dir: Path):
    """Hold ``RUN/.xlsr-run.lock`` for the duration of the block; removed at the end (also on errors)."""
    lock = Path(run_dir) / LOCK_FILE
    fd = _open_locked(lock, Path(run_dir))
    try:
        _check_owner(lock, _read(fd), Path(run_dir))
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": " ".join(sys.argv)}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(info).encode())
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        raise
    try:
        yield lock
    finally:
        try:
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                lock.unlink()
        except FileNotFoundError:
            pass
        os.close(fd)
