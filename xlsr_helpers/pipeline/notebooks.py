"""The four notebooks of the chain: their names and order, presets, declared parameters."""


from __future__ import annotations

import shutil
from pathlib import Path

from xlsr_helpers.core.errors import PipelineError
from xlsr_helpers.core.resources import NOTEBOOK_DIR, PRESET_DIR
from xlsr_helpers.core.textfile import read_yaml_mapping

NOTEBOOKS = ["01_data_prep", "02_stage1_head", "03_stage2_finetune", "04_eval_eer"]

# The first code cell after the parameters, the same in all four notebooks (tests/pipeline/test_notebooks.py
# checks it): the package cannot find itself before it is importable, so this cell is the one copied step.
# The glob patterns are Kaggle's layouts of an attached dataset, kept shallow: /kaggle/input also holds the corpora.
STARTUP_CELL = '''# The package: pip-installed, else a clone (here or one folder up) or the code attached on Kaggle (Add input).
import glob
import importlib.util
import os
import sys

if importlib.util.find_spec("xlsr_helpers") is None:
    kaggle = os.environ.get("XLSR_KAGGLE_ROOT", "/kaggle")  # a stand-in root for rehearsals and tests
    attached = ("*", "*/*", "datasets/*/*", "datasets/*/*/*")  # Kaggle's layouts of an attached dataset
    places = ["", "../", f"{kaggle}/working/xlsr/", *(f"{kaggle}/input/{g}/" for g in attached)]
    code = [os.path.abspath(f"{p}/../..") for g in places for p in sorted(glob.glob(f"{g}xlsr_helpers/__init__.py"))]
    if not code:
        raise FileNotFoundError("xlsr_helpers not found: pip install it, open the notebook in a clone, "
                                "clone it to /kaggle/working/xlsr, or attach it as a Kaggle dataset (Add input)")
    sys.path.insert(0, code[0])'''


# What a stage needs from the earlier ones when the chain starts there (--from).
REQUIRED_BEFORE = {
    "02_stage1_head": ["manifests/train.csv", "manifests/dev.csv"],
    "03_stage2_finetune": ["manifests/train.csv", "stage1/detector/config.json"],
    "04_eval_eer": ["manifests"],  # the detector may live elsewhere (parameter `detector`)
}


def preset_names() -> list[str]:
    """The presets that come with the package (``presets/<name>.yaml``)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name: str) -> dict:
    """A preset by name (``presets/<name>.yaml``) or path: a mapping; a python tag, a list or a broken
    file is refused naming the file and line."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise PipelineError(f"unknown preset {name!r}: choose one of {preset_names()} or give a .yaml path")
    return read_yaml_mapping(path, "a preset is a flat mapping of notebook parameters", PipelineError)


def notebook_parameters(name: str) -> dict:
    """Declared parameters (name -> default) of one notebook, via papermill's inspector."""
    import papermill as pm  # papermill starts slowly: only when parameters are inspected
    params = pm.inspect_notebook(str(NOTEBOOK_DIR / f"{name}.ipynb"))
    return {k: v["default"] for k, v in params.items()}


def notebook_name(ref: str) -> str:
    """'2', '02' or '02_stage1_head' -> '02_stage1_head'."""
    for nb in NOTEBOOKS:
        if nb == ref or nb.startswith(str(ref).strip().zfill(2) + "_"):
            return nb
    raise PipelineError(f"unknown notebook {ref!r}: expected one of 01, 02, 03, 04")


def select_notebooks(start_from: str | None = None, only: list[str] | None = None) -> list[str]:
    """All notebooks, those from ``start_from`` on, or exactly ``only`` (kept in chain order)."""
    if start_from and only:
        raise PipelineError("use either --from or --only, not both")
    if only:
        chosen = {notebook_name(r) for r in only}
        return [nb for nb in NOTEBOOKS if nb in chosen]
    return NOTEBOOKS[NOTEBOOKS.index(notebook_name(start_from)):] if start_from else list(NOTEBOOKS)


def describe_parameters() -> str:
    """Every notebook parameter with its default, for ``xlsr run --list-params``."""
    lines = []
    for nb in NOTEBOOKS:
        lines.append(f"{nb}:")
        lines += [f"  {k} = {v}" for k, v in notebook_parameters(nb).items()]
    return "\n".join(lines)


def copy_notebooks(out_dir: str | Path) -> list[Path]:
    """Copy the four notebooks (the checkout's, or the installed package's) into ``out_dir``; an
    existing notebook there is never overwritten (it may hold the user's edits): refused, named."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise PipelineError(f"{out} is a file; give a folder for the notebooks")
    targets = [out / f"{nb}.ipynb" for nb in NOTEBOOKS]
    existing = [str(t) for t in targets if t.exists()]
    if existing:
        raise PipelineError(f"{len(existing)} notebook(s) already exist and are kept: {existing[:4]}; "
                            "give another folder or move them away")
    out.mkdir(parents=True, exist_ok=True)
    for nb, target in zip(NOTEBOOKS, targets, strict=True):
        shutil.copyfile(NOTEBOOK_DIR / f"{nb}.ipynb", target)
    return targets
