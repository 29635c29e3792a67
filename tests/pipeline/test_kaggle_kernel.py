"""The Kaggle kernels `xlsr kaggle-kernel` writes, executed here under papermill against a stand-in
for /kaggle/input + /kaggle/working (XLSR_KAGGLE_ROOT), with the code attached as a dataset."""

import json
import shutil

import nbformat
import papermill as pm
import pytest

from xlsr_helpers.cli.main import main
from xlsr_helpers.core.errors import ConfigError
from xlsr_helpers.pipeline.kaggle_kernel import write_kernel_folder
from xlsr_helpers.runtime.kaggle_env import KAGGLE_ROOT_ENV, pascal_fix_command


@pytest.fixture
def kaggle(tmp_path, monkeypatch):
    root = tmp_path / "kaggle"
    (root / "input").mkdir(parents=True)
    (root / "working").mkdir()
    monkeypatch.setenv(KAGGLE_ROOT_ENV, str(root))
    return root


def push_folder(tmp_path, *args):
    out = tmp_path / "push"
    assert main(["kaggle-kernel", *args, "--id", "me/xlsr-run", "--out", str(out), "--code-dataset", "me/xlsr-code"]) == 0
    return out


def attach(folder, kaggle, slug):
    """What Kaggle does with an attached dataset: a read-only copy under /kaggle/input/<slug>."""
    return shutil.copytree(folder, kaggle / "input" / slug, ignore=shutil.ignore_patterns("dataset-metadata.json"))


def test_chain_kernel_runs_the_whole_chain_on_kaggle(tmp_path, kaggle):
    out = push_folder(tmp_path, "chain", "--preset", "cpu-smoke")
    meta = json.loads((out / "kernel" / "kernel-metadata.json").read_text())
    assert meta["code_file"] == "xlsr-chain.ipynb" and meta["enable_gpu"] and meta["enable_internet"]
    assert meta["dataset_sources"] == ["awsaf49/asvpoof-2019-dataset", "me/xlsr-code"]
    assert json.loads((out / "code" / "dataset-metadata.json").read_text())["id"] == "me/xlsr-code"
    code = attach(out / "code", kaggle, "xlsr-code")
    executed = tmp_path / "executed.ipynb"
    pm.execute_notebook(str(out / "kernel" / "xlsr-chain.ipynb"), str(executed), kernel_name="python3",
                        cwd=str(kaggle / "working"), progress_bar=False)
    text = json.dumps(nbformat.read(executed, as_version=4).cells)
    assert f"code: {code}" in text  # found the attached code, not this checkout
    assert "nothing to reinstall" in text  # no P100 here
    run = kaggle / "working" / "xlsr-run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["split"] == "eval" and 0 <= metrics["eer"] <= 1
    assert (run / "stage2" / "detector" / "model.safetensors").exists()
    assert "image/png" in text  # the figures are shown in the kernel


def test_single_notebook_kernel_runs_inline(tmp_path, kaggle):
    out = push_folder(tmp_path, "01")
    nb = nbformat.read(out / "kernel" / "01_data_prep.ipynb", as_version=4)
    assert [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])][0].source.startswith("run_dir")
    attach(out / "code", kaggle, "xlsr-code")
    executed = tmp_path / "executed.ipynb"
    pm.execute_notebook(str(out / "kernel" / "01_data_prep.ipynb"), str(executed), kernel_name="python3",
                        parameters={"data_root": "demo:tiny", "check_audio": True, "duration_sample": 50},
                        cwd=str(kaggle / "working"), progress_bar=False)
    assert (kaggle / "working" / "xlsr-run" / "manifests" / "train.csv").exists()


def test_kernel_needs_a_way_to_the_code(tmp_path):
    with pytest.raises(ConfigError, match="--code-dataset .* or --repo-url"):
        write_kernel_folder(tmp_path, "me/k")
    with pytest.raises(ConfigError, match="owner/slug"):
        write_kernel_folder(tmp_path, "not an id", code_dataset="me/code")
    folder = write_kernel_folder(tmp_path, "me/k", "03", repo_url="https://example.org/xlsr.git", internet=True)
    assert json.loads((folder / "kernel-metadata.json").read_text())["code_file"] == "03_stage2_finetune.ipynb"


@pytest.mark.parametrize("version,expected", [
    ("2.10.0+cu128", "pip install torch==2.10.0+cu126 torchaudio==2.10.0+cu126 torchvision==0.25.0+cu126 "
                     "--index-url https://download.pytorch.org/whl/cu126"),
    ("2.6.0+cu124", None),  # a cu124 build still has sm_60
    ("2.14.1+cu130", "pip install torch==2.14.1+cu126 torchaudio==2.14.1+cu126 torchvision==0.29.1+cu126 "
                     "--index-url https://download.pytorch.org/whl/cu126"),
])
def test_p100_cell_reinstalls_the_same_torch_for_cuda_126(version, expected):
    assert pascal_fix_command(["Tesla P100-PCIE-16GB"], version, torchvision=True) == expected
    assert pascal_fix_command(["Tesla T4", "Tesla T4"], version, torchvision=True) is None
    assert pascal_fix_command([], version, torchvision=True) is None


@pytest.mark.parametrize("version,why", [("2.15.0+cu128", "no CUDA 12.6 wheel of torch 2.15"),
                                         ("2.5.1", "transformers 5 needs torch >= 2.6")])
def test_p100_without_a_wheel_says_so(version, why):
    with pytest.raises(ConfigError, match=why):
        pascal_fix_command(["Tesla P100-PCIE-16GB"], version, torchvision=False)
