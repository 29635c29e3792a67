"""Folders for ``kaggle kernels push`` and ``kaggle datasets create``: the whole chain, or one notebook,
as a Kaggle kernel that finds (or clones) the code, installs what the image lacks, fixes torch on a
P100, and runs; plus this repository's code as a Kaggle dataset to attach to it.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat

from xlsr_helpers.core.errors import ConfigError
from xlsr_helpers.core.resources import CHECKOUT, NOTEBOOK_DIR
from xlsr_helpers.pipeline.notebooks import NOTEBOOKS, notebook_name

ASVSPOOF2019_DATASET = "awsaf49/asvpoof-2019-dataset"
CHAIN = "chain"
CODE_PATHS = ["xlsr_helpers", "notebooks", "presets", "data_manifest", "kaggle", "requirements-kaggle.txt",
              "requirements.txt", "pyproject.toml", "README.md", "LICENSE"]
ID_PATTERN = r"[\w-]+/[\w-]+"

# The first cell of every kernel: the package is not importable yet, so this finds the code by hand.
FIND_CODE = '''# Find the code: attached as a Kaggle dataset, already cloned, or cloned now (internet on).
import os
import subprocess
import sys
from pathlib import Path

kaggle = Path(os.environ.get("XLSR_KAGGLE_ROOT", "/kaggle"))  # a stand-in root for rehearsals and tests
patterns = ("*/", "*/*/", "datasets/*/*/", "datasets/*/*/*/")
code = [kaggle / "working" / "xlsr", *(p.parent for g in patterns for p in (kaggle / "input").glob(g + "xlsr_helpers"))]
repo = next((c for c in code if (c / "xlsr_helpers").is_dir()), None)
if repo is None and repo_url:
    repo = kaggle / "working" / "xlsr"
    subprocess.run(["git", "clone", "--depth", "1", repo_url, str(repo)], check=True)
if repo is None:
    raise FileNotFoundError("the xlsr code is neither attached as a dataset nor cloned: attach it (Add input) "
                            "or set repo_url and turn the internet on")
sys.path.insert(0, str(repo))
print("code:", repo)'''

P100_CELL = '''# A P100 needs a torch with sm_60 kernels (Kaggle's CUDA 12.8 torch has none): same version, CUDA 12.6 build.
# Runs before anything imports torch; the notebooks run in fresh kernels that load the new build.
from xlsr_helpers.runtime.kaggle_env import pascal_fix_command

fix = pascal_fix_command() if p100_fix == "auto" else None
print(fix or "no P100, or its torch already has sm_60 kernels: nothing to reinstall")
if fix:
    subprocess.run([sys.executable, "-m", *fix.split()], check=True)'''

INSTALL_CELL = '''# Only what the image lacks, as ranges: Kaggle's torch, numpy, pandas and Jupyter stay as they are.
if install:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", str(repo / "requirements-kaggle.txt")],
                   check=True)'''

RUN_CELL = '''# The whole chain headless (01 -> 04), continuing an earlier kernel's run when its output is attached.
from xlsr_helpers.cli.model_commands import parse_assignments
from xlsr_helpers.pipeline.runner import run_pipeline

run_pipeline(preset=preset, overrides=parse_assignments(overrides.split()), resume_from=resume_from or None,
             progress_bar=False)'''

REPORT_CELL = '''# What the run produced: metrics and figures (also under /kaggle/working/xlsr-run/).
from xlsr_helpers.pipeline.kaggle_kernel import show_run

show_run()'''


def kernel_metadata(kernel_id: str, code_file: str, title: str | None = None,
                    datasets: tuple[str, ...] = (ASVSPOOF2019_DATASET,), private: bool = True,
                    internet: bool = True, models: tuple[str, ...] = (), kernels: tuple[str, ...] = ()) -> dict:
    """The metadata Kaggle's API expects for a notebook kernel (GPU on)."""
    for ref in (kernel_id, *datasets, *kernels):
        if not re.fullmatch(ID_PATTERN, ref):
            raise ConfigError(f"a Kaggle id must look like 'owner/slug', got {ref!r}")
    return {"id": kernel_id, "title": title or kernel_id.split("/")[1].replace("-", " "),
            "code_file": code_file, "language": "python", "kernel_type": "notebook",
            "is_private": private, "enable_gpu": True, "enable_internet": internet,
            "dataset_sources": list(datasets), "competition_sources": [], "kernel_sources": list(kernels),
            "model_sources": list(models)}


def _cell(source: str, tags: tuple[str, ...] = ()) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def _bootstrap_cells(repo_url: str, install: bool, extra_parameters: str = "") -> list:
    params = (f'repo_url = "{repo_url}"  # cloned when the code is not attached as a dataset; needs internet\n'
              f'install = {install}  # pip install requirements-kaggle.txt: adds only what the image lacks\n'
              'p100_fix = "auto"  # auto: on a P100, reinstall this torch version built for CUDA 12.6; off\n'
              + extra_parameters)
    return [_cell(params.rstrip("\n"), ("parameters",)), _cell(FIND_CODE), _cell(P100_CELL), _cell(INSTALL_CELL)]


def chain_notebook(preset: str, repo_url: str = "", install: bool = True) -> nbformat.NotebookNode:
    """One kernel that runs notebooks 01-04 with papermill and shows the results."""
    intro = nbformat.v4.new_markdown_cell(
        "# XLS-R deepfake detection: the whole chain\n\nRuns `01_data_prep` to `04_eval_eer` headless into "
        "`/kaggle/working/xlsr-run/` (executed notebooks with their plots in `notebooks/`). To go on after a "
        "kernel ran out of time, add this kernel's earlier output as an input: `resume_from = \"auto\"` finds it "
        "and continues at the first unfinished notebook or epoch.")
    extra = (f'preset = "{preset}"  # presets/: kaggle-t4, kaggle-p100, demo, cpu-smoke\n'
             'overrides = ""  # more parameters, e.g. "s1_epochs=10 s2_top_layers=6"\n'
             'resume_from = "auto"  # an earlier run folder; auto: an earlier kernel output attached as input\n')
    cells = [intro, *_bootstrap_cells(repo_url, install, extra), _cell(RUN_CELL), _cell(REPORT_CELL)]
    return _notebook(cells)


def single_notebook(name: str, repo_url: str = "", install: bool = True) -> nbformat.NotebookNode:
    """A repository notebook with the find-code, P100 and install cells in front, its plots inline."""
    nb = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
    boot = _bootstrap_cells(repo_url, install)
    boot[0].metadata["tags"] = []  # the notebook's own cell stays the one papermill fills in
    nb.cells = [nb.cells[0], *boot, *nb.cells[1:]]
    return _notebook(nb.cells)


def _notebook(cells: list) -> nbformat.NotebookNode:
    for i, cell in enumerate(cells):  # cells from the repository's notebooks carry no id (nbformat 4.5 wants one)
        cell.setdefault("id", f"xlsr-{i:03d}")
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def write_code_dataset(out_dir: str | Path, dataset_id: str, title: str | None = None) -> Path:
    """This repository's code as a folder for ``kaggle datasets create -p OUT --dir-mode zip``."""
    if not re.fullmatch(ID_PATTERN, dataset_id):
        raise ConfigError(f"a Kaggle id must look like 'owner/slug', got {dataset_id!r}")
    if CHECKOUT is None:
        raise ConfigError("a code dataset is made from a checkout of the repository (its kaggle/ folder and "
                          "requirements files are not in the installed package): run this from a clone")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".venv*")
    for rel in CODE_PATHS:
        src = CHECKOUT / rel
        if src.is_dir():
            shutil.copytree(src, out / rel, dirs_exist_ok=True, ignore=skip)
        elif src.exists():
            shutil.copy2(src, out / rel)
    meta = {"title": title or dataset_id.split("/")[1].replace("-", " "), "id": dataset_id,
            "licenses": [{"name": "MIT"}]}
    (out / "dataset-metadata.json").write_text(json.dumps(meta, indent=2))
    return out


def write_kernel_folder(out_dir: str | Path, kernel_id: str, notebook: str = CHAIN, preset: str = "kaggle-t4",
                        code_dataset: str | None = None, repo_url: str = "",
                        datasets: tuple[str, ...] = (ASVSPOOF2019_DATASET,), **meta) -> Path:
    """A folder ready for ``kaggle kernels push -p OUT_DIR``: the kernel notebook and its metadata."""
    if not code_dataset and not repo_url:
        raise ConfigError("say where the kernel gets the code: --code-dataset you/xlsr-code (this repository "
                          "uploaded as a dataset; written next to the kernel) or --repo-url URL (cloned; internet on)")
    if notebook == CHAIN:
        nb, code_file = chain_notebook(preset, repo_url), "xlsr-chain.ipynb"
    else:
        name = notebook_name(notebook) if notebook not in NOTEBOOKS else notebook
        nb, code_file = single_notebook(name, repo_url), f"{name}.ipynb"
    sources = tuple(dict.fromkeys([*datasets, *([code_dataset] if code_dataset else [])]))
    metadata = kernel_metadata(kernel_id, code_file, datasets=sources, **meta)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out / code_file)
    (out / "kernel-metadata.json").write_text(json.dumps(metadata, indent=2))
    return out


def show_run(run_dir: str | Path | None = None) -> None:
    """Display a finished run's metrics table and figures in the kernel."""
    from IPython.display import Image, display

    from xlsr_helpers.runtime.kaggle_env import kaggle_working
    run = Path(run_dir) if run_dir else kaggle_working() / "xlsr-run"
    metrics = run / "metrics.json"
    if metrics.exists():
        m = json.loads(metrics.read_text())
        print(json.dumps({k: m[k] for k in ("dataset", "split", "eer", "min_tdcf", "threshold") if k in m}, indent=2))
    for png in sorted((run / "figures").glob("*.png")):
        print(png.name)
        display(Image(filename=str(png)))
