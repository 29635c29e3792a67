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
from xlsr_helpers.pipeline.notebooks import load_preset, notebook_name, preset_names
from xlsr_helpers.pipeline.runner import resolve_parameters
from xlsr_helpers.runtime.kaggle_env import DEFAULT_ACCELERATOR, kaggle_accelerator, kaggle_working

ASVSPOOF2019_DATASET = "awsaf49/asvpoof-2019-dataset"
CHAIN = "chain"
DEFAULT_PRESET = "kaggle-t4"
CODE_PATHS = ["xlsr_helpers", "notebooks", "presets", "data_manifest", "kaggle", "requirements-kaggle.txt",
              "requirements.txt", "pyproject.toml", "README.md", "LICENSE"]
# What Kaggle accepts, ASCII only: datasets and kernels 'owner/slug', Models 'owner/model/framework/variation/version'.
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]+/[A-Za-z0-9_-]+", re.ASCII)
MODEL_PATTERN = re.compile(r"[A-Za-z0-9_-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_-]+/[A-Za-z0-9_.-]+/[0-9]+", re.ASCII)
# A URL git clones over the network: http(s), ssh or git scheme (or scp-like user@host:path), URL
# characters only; no local path, no file:// and no ext:: helper (it runs a command), no leading '-'.
_URL_CHAR = r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]"
GIT_URL = re.compile(rf"(?:https?|ssh|git)://[A-Za-z0-9\-._~:@!$&'()*+,;=%\[\]]+/{_URL_CHAR}+"
                     r"|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9\-._~/]+", re.ASCII)

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
    subprocess.run(["git", "clone", "--depth", "1", "--", repo_url, str(repo)], check=True)
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
if fix and not internet:  # the reinstall needs PyTorch's index: stop now, not at the first CUDA op
    raise SystemExit("this kernel runs on a P100 without internet, so the CUDA 12.6 torch cannot be installed: "
                     "push it with --accelerator NvidiaTeslaT4 (or NvidiaL4), or turn the internet on")
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


def check_kaggle_id(ref: str, option: str, pattern: re.Pattern = ID_PATTERN) -> str:
    """A Kaggle reference as Kaggle writes it; ``ConfigError`` naming the option otherwise."""
    if not isinstance(ref, str) or not pattern.fullmatch(ref):
        form = "'owner/model/framework/variation/version'" if pattern is MODEL_PATTERN else "'owner/slug'"
        raise ConfigError(f"{option} {ref!r}: a Kaggle id must look like {form} (ASCII letters, digits, - and _)")
    return ref


def check_repo_url(url: str) -> str:
    """A git URL the kernel can clone; refused here, not in the kernel, when it is not one."""
    if not GIT_URL.fullmatch(url):
        raise ConfigError(f"--repo-url {url!r}: expected a URL the kernel can clone over the internet "
                          "(https://, http://, ssh://, git:// or user@host:path, URL characters only); a local "
                          "path is not on Kaggle: attach the code with --code-dataset instead")
    return url


def check_preset(preset: str) -> str:
    """A preset the kernel can load (one that ships in presets/, as the code dataset or clone has it),
    its parameters checked as ``xlsr run`` checks them."""
    if preset not in preset_names():
        raise ConfigError(f"--preset {preset!r}: a kernel runs one of the presets in presets/, {preset_names()} "
                          "(a preset file on this machine is not on Kaggle: add it to presets/ and attach the code)")
    resolve_parameters(load_preset(preset), {}, Path("/kaggle/working/xlsr-run"))  # as `xlsr run` will
    return preset


def kernel_metadata(kernel_id: str, code_file: str, title: str | None = None,
                    datasets: tuple[str, ...] = (ASVSPOOF2019_DATASET,), private: bool = True,
                    internet: bool = True, models: tuple[str, ...] = (), kernels: tuple[str, ...] = (),
                    accelerator: str = DEFAULT_ACCELERATOR) -> dict:
    """The metadata Kaggle's API expects for a notebook kernel on the named GPU (``machine_shape``:
    without it Kaggle gives its default P100); every reference checked."""
    check_kaggle_id(kernel_id, "--id")
    for ref in datasets:
        check_kaggle_id(ref, "--dataset")
    for ref in kernels:
        check_kaggle_id(ref, "--kernel-source")
    for ref in models:
        check_kaggle_id(ref, "--model-source", MODEL_PATTERN)
    return {"id": kernel_id, "title": title or kernel_id.split("/")[1].replace("-", " "),
            "code_file": code_file, "language": "python", "kernel_type": "notebook",
            "is_private": private, "enable_gpu": True, "enable_internet": internet,
            "machine_shape": kaggle_accelerator(accelerator),
            "dataset_sources": list(datasets), "competition_sources": [], "kernel_sources": list(kernels),
            "model_sources": list(models)}


def _cell(source: str, tags: tuple[str, ...] = ()) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def _assignments(values: list[tuple[str, object, str]]) -> str:
    """``name = literal  # comment`` lines: every value written by ``repr``, so no value (a quote, a
    backslash, a newline) can end its string early or change what the kernel runs."""
    return "\n".join(f"{name} = {value!r}  # {comment}" for name, value, comment in values)


def _bootstrap_cells(repo_url: str, install: bool, extra: list[tuple[str, object, str]] = (),
                     internet: bool = True) -> list:
    params = _assignments([
        ("repo_url", repo_url, "cloned when the code is not attached as a dataset; needs internet"),
        ("internet", bool(internet), "the kernel's internet setting: a P100 needs it for its torch reinstall"),
        ("install", bool(install), "pip install requirements-kaggle.txt: adds only what the image lacks"),
        ("p100_fix", "auto", "auto: on a P100, reinstall this torch version built for CUDA 12.6; off"), *extra])
    return [_cell(params, ("parameters",)), _cell(FIND_CODE), _cell(P100_CELL), _cell(INSTALL_CELL)]


def chain_notebook(preset: str, repo_url: str = "", install: bool = True, internet: bool = True) -> nbformat.NotebookNode:
    """One kernel that runs notebooks 01-04 with papermill and shows the results."""
    intro = nbformat.v4.new_markdown_cell(
        "# XLS-R deepfake detection: the whole chain\n\nRuns `01_data_prep` to `04_eval_eer` headless into "
        "`/kaggle/working/xlsr-run/` (executed notebooks with their plots in `notebooks/`). To go on after a "
        "kernel ran out of time, add this kernel's earlier output as an input: `resume_from = \"auto\"` finds it "
        "and continues at the first unfinished notebook or epoch.")
    extra = [("preset", preset, "presets/: kaggle-t4, kaggle-p100, demo, cpu-smoke"),
             ("overrides", "", 'more parameters, e.g. "s1_epochs=10 s2_top_layers=6"'),
             ("resume_from", "auto", "an earlier run folder; auto: an earlier kernel output attached as input")]
    cells = [intro, *_bootstrap_cells(repo_url, install, extra, internet), _cell(RUN_CELL), _cell(REPORT_CELL)]
    return _notebook(cells)


def single_notebook(name: str, repo_url: str = "", install: bool = True, internet: bool = True) -> nbformat.NotebookNode:
    """A repository notebook with the find-code, P100 and install cells in front, its plots inline."""
    nb = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
    boot = _bootstrap_cells(repo_url, install, internet=internet)
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


def check_code_dataset(dataset_id: str) -> str:
    """A code dataset can be written: a valid id, and a checkout to copy the code from."""
    check_kaggle_id(dataset_id, "--code-dataset")
    if CHECKOUT is None:
        raise ConfigError("a code dataset is made from a checkout of the repository (its kaggle/ folder and "
                          "requirements files are not in the installed package): run this from a clone")
    return dataset_id


def write_code_dataset(out_dir: str | Path, dataset_id: str, title: str | None = None) -> Path:
    """This repository's code as a folder for ``kaggle datasets create -p OUT --dir-mode zip``."""
    check_code_dataset(dataset_id)
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


def kernel_notebook(notebook: str = CHAIN, preset: str | None = None, code_dataset: str | None = None,
                    repo_url: str = "", internet: bool = True) -> tuple[nbformat.NotebookNode, str]:
    """The kernel's notebook and file name, every value checked here rather than inside Kaggle."""
    if not code_dataset and not repo_url:
        raise ConfigError("say where the kernel gets the code: --code-dataset you/xlsr-code (this repository "
                          "uploaded as a dataset; written next to the kernel) or --repo-url URL (cloned; internet on)")
    if repo_url:
        check_repo_url(repo_url)
    if not internet and not code_dataset:
        raise ConfigError("--offline turns the kernel's internet off, so it cannot clone --repo-url: attach the "
                          "code with --code-dataset you/xlsr-code")
    if notebook == CHAIN:
        return chain_notebook(check_preset(preset or DEFAULT_PRESET), repo_url, internet=internet), "xlsr-chain.ipynb"
    name = notebook_name(notebook)
    if preset is not None:
        raise ConfigError(f"--preset applies to the chain kernel; the {name} kernel runs with the notebook's own "
                          "parameters (edit its parameters cell on Kaggle)")
    return single_notebook(name, repo_url, internet=internet), f"{name}.ipynb"


PRESET_ACCELERATORS = {"kaggle-p100": "NvidiaTeslaP100"}  # a preset made for one GPU asks for it


def choose_accelerator(given: str | None, preset: str | None, internet: bool = True) -> str:
    """The GPU to ask for: the one given, else the preset's own (kaggle-p100), else a T4, which runs
    Kaggle's current torch. A P100 without internet is refused: its torch reinstall needs PyTorch's index."""
    chosen = kaggle_accelerator(given) if given else PRESET_ACCELERATORS.get(preset or "", DEFAULT_ACCELERATOR)
    if chosen == "NvidiaTeslaP100" and not internet:
        raise ConfigError("--offline on a P100: Kaggle's torch has no P100 kernels and the CUDA 12.6 build cannot be "
                          "installed without internet; use --accelerator NvidiaTeslaT4 (or NvidiaL4), or drop --offline")
    return chosen


def write_kernel_folder(out_dir: str | Path, kernel_id: str, notebook: str = CHAIN, preset: str | None = None,
                        code_dataset: str | None = None, repo_url: str = "",
                        datasets: tuple[str, ...] = (ASVSPOOF2019_DATASET,), **meta) -> Path:
    """A folder ready for ``kaggle kernels push -p OUT_DIR``: the kernel notebook and its metadata
    (nothing is written unless every value is valid)."""
    meta["accelerator"] = choose_accelerator(meta.get("accelerator"), preset, meta.get("internet", True))
    nb, code_file = kernel_notebook(notebook, preset, code_dataset, repo_url, meta.get("internet", True))
    if code_dataset:
        check_kaggle_id(code_dataset, "--code-dataset")
    sources = tuple(dict.fromkeys([*datasets, *([code_dataset] if code_dataset else [])]))
    metadata = kernel_metadata(kernel_id, code_file, datasets=sources, **meta)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out / code_file)
    (out / "kernel-metadata.json").write_text(json.dumps(metadata, indent=2))
    return out


def show_run(run_dir: str | Path | None = None) -> None:
    """Display a finished run's metrics table and figures in the kernel."""
    from IPython.display import Image, display  # IPython: only in a kernel
    run = Path(run_dir) if run_dir else kaggle_working() / "xlsr-run"
    metrics = run / "metrics.json"
    if metrics.exists():
        m = json.loads(metrics.read_text())
        print(json.dumps({k: m[k] for k in ("dataset", "split", "eer", "min_tdcf", "threshold") if k in m}, indent=2))
    for png in sorted((run / "figures").glob("*.png")):
        print(png.name)
        display(Image(filename=str(png)))
