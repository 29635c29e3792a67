"""Content fingerprints: what a trained stage or a result was computed from.

A stage folder records the fingerprints of its inputs (manifests, starting model) so that a
re-run with other inputs is never mistaken for a resume, and a folder copied elsewhere (a Kaggle
run resumed from an earlier kernel's output) is still recognised as the same run.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import pandas as pd

WEIGHT_SUFFIXES = (".safetensors", ".bin")
CHUNK = 1 << 20


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
