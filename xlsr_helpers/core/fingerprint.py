"""Content fingerprints: what a trained stage or a result was computed from.

A stage folder records the fingerprints of its inputs (manifests, their audio, starting model) so
that a re-run with other inputs is never mistaken for a resume, and a folder copied elsewhere (a
Kaggle run resumed from an earlier kernel's output) is still recognised as the same run.

The audio of a manifest is identified by content, not by path or time stamp (a copied corpus is the
same data; other audio under the same ids is not): each file's size and its first and last
``AUDIO_SAMPLE_BYTES`` (the whole file when it is shorter than both). Reading and hashing every byte
of 121k files at each stage start costs minutes on Kaggle's input disk; the two ends cost one open
and two page reads per file (``benchmarks/bench_audio_identity.py``). A FLAC file's header holds
an MD5 of its decoded audio, so for FLAC the head alone follows any change of the audio.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import pandas as pd

from xlsr_helpers.core.errors import ManifestError

WEIGHT_SUFFIXES = (".safetensors", ".bin")
CHUNK = 1 << 20
AUDIO_SAMPLE_BYTES = 4 << 10  # read from each end of an audio file: one page
AUDIO_THREADS = 8  # opens overlap: a network disk (Kaggle's input) answers each one slowly
MAX_LISTED = 5


@lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes (memoised while the file is unchanged)."""
    st = Path(path).stat()
    return _file_digest(str(path), st.st_size, st.st_mtime_ns)


def model_identity(name_or_path: str | Path) -> str:
    """A model folder's content (config + weight files), or the hub id it would be loaded from."""
    p = Path(name_or_path)
    if not p.is_dir():
        return f"hub:{name_or_path}"
    files = sorted(f for f in p.iterdir() if f.name == "config.json" or f.suffix in WEIGHT_SUFFIXES)
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name}:{file_digest(f)}\n".encode())
    return f"sha256:{h.hexdigest()[:16]}"


def manifest_fingerprint(manifest: pd.DataFrame) -> str:
    """The trials and labels of a manifest, in order (not where the audio lies: a moved copy of the
    same corpus is the same data)."""
    rows = pd.util.hash_pandas_object(manifest[["utt_id", "label"]].astype(str), index=False).to_numpy()
    return f"{len(manifest)}:{hashlib.sha256(rows.tobytes()).hexdigest()[:16]}"


def _read_at(fd: int, n: int, offset: int) -> bytes:
    """``n`` bytes from ``offset`` (fewer at the end of the file): a network disk may return them in parts."""
    parts = []
    while n > 0 and (block := os.pread(fd, n, offset)):
        parts.append(block)
        n, offset = n - len(block), offset + len(block)
    return b"".join(parts)


@lru_cache(maxsize=1 << 18)  # 04 checks both stages against the same files: read them once per process
def _audio_digest(path: str, size: int, mtime_ns: int) -> bytes:
    h = hashlib.sha256(size.to_bytes(8, "little"))
    fd = os.open(path, os.O_RDONLY)
    try:
        if size <= 2 * AUDIO_SAMPLE_BYTES:
            h.update(_read_at(fd, size, 0))
        else:
            h.update(_read_at(fd, AUDIO_SAMPLE_BYTES, 0))
            h.update(_read_at(fd, AUDIO_SAMPLE_BYTES, size - AUDIO_SAMPLE_BYTES))
    finally:
        os.close(fd)
    return h.digest()


def _audio_digests(paths: list[str]) -> list[bytes | str]:
    """Each file's digest, or why it cannot be read (missing, a folder, unreadable)."""
    out: list[bytes | str] = []
    for path in paths:
        try:
            st = os.stat(path)
            out.append(_audio_digest(path, st.st_size, st.st_mtime_ns))
        except OSError as exc:
            out.append(exc.strerror or type(exc).__name__)
    return out


def audio_fingerprint(paths: Sequence[str], what: str = "manifest") -> str:
    """What the listed audio files hold, in order: ``'<n>:<hash>'`` over each file's size and its
    first and last ``AUDIO_SAMPLE_BYTES``. A file that cannot be read is a ``ManifestError`` naming
    ``what`` (the manifest) and the files."""
    paths = [str(p) for p in paths]
    n = max(1, min(AUDIO_THREADS, len(paths) // 64))  # one slice per thread: no task per file
    with ThreadPoolExecutor(n) as pool:
        parts = list(pool.map(_audio_digests, [paths[i::n] for i in range(n)]))
    digests: list[bytes | str] = [b""] * len(paths)
    for i, part in enumerate(parts):
        digests[i::n] = part
    bad = [f"{p} ({d})" for p, d in zip(paths, digests, strict=True) if isinstance(d, str)]
    if bad:
        more = f" and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
        raise ManifestError(f"{what}: {len(bad)} of {len(paths)} audio file(s) cannot be read: "
                            f"{', '.join(bad[:MAX_LISTED])}{more}; build the manifests again (notebook 01)")
    return f"{len(paths)}:{hashlib.sha256(b''.join(digests)).hexdigest()[:16]}"
