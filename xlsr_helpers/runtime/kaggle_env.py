"""Where Kaggle puts things, and what a Kaggle GPU needs; importable without torch.

Kaggle mounts attached datasets and models read-only under ``/kaggle/input`` (older mounts as
``/kaggle/input/<slug>``, newer ones as ``/kaggle/input/datasets/<owner>/<slug>``) and keeps what
a kernel writes to ``/kaggle/working`` (20 GB, kept as the kernel's output); ``/kaggle/temp`` is
the session's scratch space on the rest of the disk, gone when the session ends. ``XLSR_KAGGLE_ROOT``
replaces ``/kaggle`` (tests, and a local rehearsal of a Kaggle run).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import stat
import subprocess
import time
from pathlib import Path

from xlsr_helpers.core.errors import ConfigError

KAGGLE_ROOT_ENV = "XLSR_KAGGLE_ROOT"
CU126_INDEX = "https://download.pytorch.org/whl/cu126"
# PyTorch publishes CUDA 12.6 wheels (which still carry Pascal sm_60 kernels) for torch 2.6 to 2.14;
# transformers 5 needs torch >= 2.6 anyway.
CU126_FIRST, CU126_LAST = (2, 6), (2, 14)


def kaggle_root() -> Path:
    return Path(os.environ.get(KAGGLE_ROOT_ENV, "/kaggle"))


def kaggle_input() -> Path:
    """Read-only mounts of attached datasets, models and earlier kernel outputs."""
    return kaggle_root() / "input"


def kaggle_working() -> Path:
    """The kernel's writable output folder (kept as the kernel's output, 20 GB)."""
    return kaggle_root() / "working"


def kaggle_scratch() -> Path:
    """The session's scratch folder: room for caches beside the 20 GB output, not kept after the session."""
    return kaggle_root() / "temp"


def on_kaggle() -> bool:
    return kaggle_working().is_dir()


def in_kaggle_output(path: str | Path) -> bool:
    """Whether ``path`` lies in the folder Kaggle keeps as the kernel's output (on Kaggle only)."""
    return on_kaggle() and Path(path).resolve().is_relative_to(kaggle_working().resolve())


# Kaggle keeps at most 20 GB of /kaggle/working; counted here in 10^9 bytes, the smaller reading of "GB".
OUTPUT_QUOTA_BYTES = 20 * 10**9
QUOTA_WARN_SHARE = 0.8  # above this share of the quota the output is near being cut


def folder_bytes(folder: str | Path, skip: tuple[str, ...] = ()) -> int:
    """Bytes of the regular files under ``folder`` (links not followed), leaving out the top-level names in ``skip``."""
    total = 0
    for top, dirs, files in os.walk(folder):
        if Path(top) == Path(folder):
            dirs[:] = [d for d in dirs if d not in skip]
            files = [f for f in files if f not in skip]
        for name in files:
            st = os.lstat(os.path.join(top, name))
            total += st.st_size if stat.S_ISREG(st.st_mode) else 0
    return total


def kept_note(folder: str | Path, kept: int) -> tuple[str, bool]:
    """One line on what ``folder`` keeps (``kept`` bytes) and, inside Kaggle's output, on the whole output
    against its quota; and whether that is above ``QUOTA_WARN_SHARE`` of the quota."""
    line = f"{folder} keeps {kept:,} bytes ({kept / 1e9:.2f} GB)"
    if not in_kaggle_output(folder):
        return line, False
    output = folder_bytes(kaggle_working()) - folder_bytes(folder) + kept  # with what the folder keeps, not holds now
    share = output / OUTPUT_QUOTA_BYTES
    line += f"; {kaggle_working()} holds {output:,} bytes, {100 * share:.1f} % of Kaggle's 20 GB output quota"
    if share > QUOTA_WARN_SHARE:
        line += (" (over it: the output is cut)" if share > 1 else f" (above {100 * QUOTA_WARN_SHARE:.0f} %)") + \
            ": move caches to /kaggle/temp (cache_dir), lower save_total_limit, or delete what the next session does not need"
    return line, share > QUOTA_WARN_SHARE


def mount_patterns(patterns: list[str]) -> list[str]:
    """Each glob pattern as an old-style mount (``<slug>/...``) and a new one (``datasets/<owner>/<slug>/...``)."""
    out = []
    for p in patterns:
        out += [p, f"datasets/*/{p}"] if not p.startswith("datasets/") else [p]
    return out


def glob_input(patterns: list[str]) -> list[Path]:
    """Folders under the Kaggle input root matching any pattern, in pattern order (no duplicates)."""
    base, seen, found = kaggle_input(), set(), []
    if not base.is_dir():
        return []
    for pattern in mount_patterns(patterns):
        for p in sorted(base.glob(pattern.rstrip("/") + "/")):  # folders only: no stat of audio files
            if p not in seen:
                seen.add(p)
                found.append(p)
    return found


def torch_release(version: str) -> tuple[int, int, int]:
    """``'2.10.0+cu128'`` -> ``(2, 10, 0)``."""
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    if not m:
        raise ValueError(f"not a torch version: {version!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def pascal_reinstall_command(torch_version: str, torchvision: bool = True) -> str | None:
    """The pip command that swaps the installed torch for the same version's CUDA 12.6 build (which
    still has sm_60 kernels for a P100), or None when PyTorch publishes no such wheel."""
    major, minor, patch = torch_release(torch_version)
    if not CU126_FIRST <= (major, minor) <= CU126_LAST:
        return None
    v = f"{major}.{minor}.{patch}+cu126"
    pkgs = [f"torch=={v}", f"torchaudio=={v}"]
    if torchvision and major == 2:  # torchvision 0.(minor+15) pairs with torch 2.minor
        pkgs.append(f"torchvision==0.{minor + 15}.{patch}+cu126")
    return f"pip install {' '.join(pkgs)} --index-url {CU126_INDEX}"


def pascal_advice(torch_version: str, torchvision: bool = True) -> str:
    """What a P100 user can do with this torch: the exact reinstall command, or why there is none."""
    cmd = pascal_reinstall_command(torch_version, torchvision)
    if cmd is None:
        major, minor, _ = torch_release(torch_version)
        why = ("transformers 5 needs torch >= 2.6" if (major, minor) < CU126_FIRST
               else f"PyTorch publishes no CUDA 12.6 wheel of torch {major}.{minor} (the last is 2.14)")
        return (f"no torch wheel with P100 (sm_60) kernels exists for torch {torch_version}: {why}. "
                "Switch the accelerator to 'GPU T4 x2' or 'GPU L4', or install a torch between 2.6 and 2.14 "
                f"from {CU126_INDEX} (torch, torchaudio and torchvision of matching versions).")
    return (f"reinstall the same torch built for CUDA 12.6 (it keeps sm_60), with internet on, then restart the kernel: "
            f"{cmd}")


PASCAL_GPUS = ("P100", "P40", "P4", "P6")  # sm_60/sm_61: Kaggle offers the P100
SM60_BUILDS = ("+cu118", "+cu121", "+cu124", "+cu126")  # CUDA builds of torch that still carry sm_60


def gpu_names() -> list[str]:
    """The GPUs nvidia-smi sees, without importing torch (which must not load before a reinstall)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def pascal_fix_command(gpus: list[str] | None = None, torch_version: str | None = None,
                       torchvision: bool | None = None) -> str | None:
    """The reinstall a Pascal GPU needs with the installed torch, or None when nothing is needed;
    ``ConfigError`` with the advice when no suitable wheel exists."""
    gpus = gpu_names() if gpus is None else gpus
    if not any(f"{p}-" in g or g.endswith(f" {p}") or f" {p} " in g for g in gpus for p in PASCAL_GPUS):
        return None
    version = torch_version or importlib.metadata.version("torch")
    if any(tag in version for tag in SM60_BUILDS):
        return None
    if torchvision is None:
        torchvision = importlib.util.find_spec("torchvision") is not None
    cmd = pascal_reinstall_command(version, torchvision)
    if cmd is None:
        raise ConfigError(f"{gpus[0]}: {pascal_advice(version, torchvision)}")
    return cmd


# The accelerator names kaggle-cli documents for `kaggle kernels push --accelerator` and the kernel
# metadata's `machine_shape` (Kaggle/kaggle-cli docs/kernels.md, "Accelerators available as of Feb 2026";
# some are for competitions or admins only). A kernel that names none gets the P100 ("aka default GPU").
KAGGLE_ACCELERATORS = ("NvidiaTeslaT4", "NvidiaTeslaT4Highmem", "NvidiaL4", "NvidiaL4X1", "NvidiaTeslaP100",
                       "NvidiaTeslaA100", "NvidiaH100", "NvidiaRtxPro6000")
ACCELERATOR_ALIASES = {"t4": "NvidiaTeslaT4", "l4": "NvidiaL4", "l4x1": "NvidiaL4X1", "p100": "NvidiaTeslaP100",
                       "a100": "NvidiaTeslaA100", "h100": "NvidiaH100"}
DEFAULT_ACCELERATOR = "NvidiaTeslaT4"  # runs Kaggle's current torch (CUDA 12.8 has sm_75 kernels, not sm_60)


def kaggle_accelerator(name: str) -> str:
    """A kaggle-cli accelerator name from that name or a short alias (t4, l4, p100, ...)."""
    found = ACCELERATOR_ALIASES.get(str(name).lower(), name)
    if found not in KAGGLE_ACCELERATORS:
        raise ConfigError(f"--accelerator {name!r}: expected one of {list(KAGGLE_ACCELERATORS)} "
                          f"(or {sorted(ACCELERATOR_ALIASES)})")
    return found


SESSION_HOURS_ENV = "XLSR_SESSION_HOURS"  # a kernel session's limit: 12 h (9 h for some kernels)


def session_seconds_left(now: float | None = None) -> float | None:
    """Seconds left in this Kaggle session, or None off Kaggle. The session started with the
    container, whose first process (pid 1) started then; its limit is 12 hours unless
    ``XLSR_SESSION_HOURS`` says otherwise."""
    if not on_kaggle():
        return None
    try:
        started = Path("/proc/1").stat().st_ctime
    except OSError:
        return None
    hours = float(os.environ.get(SESSION_HOURS_ENV, "12"))
    return hours * 3600 - ((time.time() if now is None else now) - started)
