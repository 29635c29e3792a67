"""``kernel-metadata.json`` for ``kaggle kernels push``: one notebook, GPU on, the ASVspoof dataset attached."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from .errors import ConfigError
from .runner import NOTEBOOK_DIR, NOTEBOOKS

ASVSPOOF2019_DATASET = "awsaf49/asvpoof-2019-dataset"


def kernel_metadata(kernel_id: str, notebook: str, title: str | None = None,
                    datasets: tuple[str, ...] = (ASVSPOOF2019_DATASET,), private: bool = True) -> dict:
    """The metadata Kaggle's API expects for a notebook kernel."""
    if not re.fullmatch(r"[\w-]+/[\w-]+", kernel_id):
        raise ConfigError(f"kernel id must look like 'username/kernel-slug', got {kernel_id!r}")
    name = next((nb for nb in NOTEBOOKS if nb == notebook or nb.startswith(str(notebook).zfill(2))), None)
    if name is None:
        raise ConfigError(f"unknown notebook {notebook!r}: one of {NOTEBOOKS}")
    return {"id": kernel_id, "title": title or kernel_id.split("/")[1].replace("-", " "),
            "code_file": f"{name}.ipynb", "language": "python", "kernel_type": "notebook",
            "is_private": private, "enable_gpu": True, "enable_internet": True,
            "dataset_sources": list(datasets), "competition_sources": [], "kernel_sources": [], "model_sources": []}


def write_kernel_folder(out_dir: str | Path, kernel_id: str, notebook: str, **kw) -> Path:
    """A folder ready for ``kaggle kernels push -p OUT_DIR``: the notebook plus its metadata."""
    meta = kernel_metadata(kernel_id, notebook, **kw)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(NOTEBOOK_DIR / meta["code_file"], out / meta["code_file"])
    (out / "kernel-metadata.json").write_text(json.dumps(meta, indent=2))
    return out
