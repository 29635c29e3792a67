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


# ----------------------------------------------------------------------------- values in the kernel's code

HOSTILE = ['x"; open("PWNED", "w")  #', "it's", "back\\slash\\n", "two\nlines", "\\", '"""', "'''", "{curly}",
           "\x00nul", "\u00e9t\u00e9"]


def parameters_cell(nb):
    return next(c.source for c in nb.cells if c.cell_type == "code" and c.source.startswith("repo_url = "))


def literal_values(source):
    """name -> value of a cell that must be nothing but ``name = literal`` lines."""
    import ast
    tree = ast.parse(source)
    assert all(isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant) for n in tree.body), source
    return {n.targets[0].id: n.value.value for n in tree.body}


@pytest.mark.parametrize("value", HOSTILE)
def test_every_value_in_a_kernel_is_a_python_literal(value, tmp_path, monkeypatch):
    from xlsr_helpers.pipeline.kaggle_kernel import chain_notebook, single_notebook
    chain = parameters_cell(chain_notebook(preset=value, repo_url=value))
    assert literal_values(chain) == {"repo_url": value, "internet": True, "install": True, "p100_fix": "auto",
                                     "preset": value, "overrides": "", "resume_from": "auto"}
    single = parameters_cell(single_notebook("01_data_prep", repo_url=value, install=False, internet=False))
    assert literal_values(single) == {"repo_url": value, "internet": False, "install": False, "p100_fix": "auto"}
    monkeypatch.chdir(tmp_path)
    exec(chain, {})  # the cell runs as Kaggle runs it: it assigns, nothing else
    assert not (tmp_path / "PWNED").exists()


def test_a_url_with_a_quote_is_written_exactly(tmp_path, capsys):
    import shlex
    url = "https://example.org/o'brien/xlsr.git"
    out = tmp_path / "my push"
    assert main(["kaggle-kernel", "--id", "me/xlsr-run", "--out", str(out), "--repo-url", url, "--preset",
                 "kaggle-p100"]) == 0
    nb = nbformat.read(out / "kernel" / "xlsr-chain.ipynb", as_version=4)
    values = literal_values(parameters_cell(nb))
    assert values["repo_url"] == url and values["preset"] == "kaggle-p100"
    push = capsys.readouterr().out.splitlines()[-1]
    assert shlex.split(push) == ["1.", "kaggle", "kernels", "push", "-p", str(out / "kernel"),  # pastes as one path
                                 "--accelerator", "NvidiaTeslaT4"]
    find_code = next(c.source for c in nb.cells if '"clone"' in c.source)
    assert '"--", repo_url' in find_code  # a URL is never read by git as an option


REFUSED = [  # (arguments, words): each refused when the kernel is generated, nothing written
    (["--repo-url", 'https://example.org/x".git'], "--repo-url 'https://example.org/x\".git': expected a URL"),
    (["--repo-url", "https://example.org/a\\b.git"], "--repo-url"),
    (["--repo-url", "https://example.org/a b.git"], "--repo-url"),
    (["--repo-url", "https://example.org/x.git\nimport os"], "--repo-url"),
    (["--repo-url=--upload-pack=touch /tmp/x"], "--repo-url"),
    (["--repo-url", "ext::sh -c touch% /tmp/x"], "--repo-url"),
    (["--repo-url", "file:///home/me/xlsr"], "a local path is not on Kaggle"),
    (["--repo-url", "/home/me/xlsr"], "a local path is not on Kaggle"),
    (["--repo-url", "https://example.org/x.git", "--offline"], "--offline turns the kernel's internet off"),
    (["--code-dataset", "me/code", "--preset", 'kaggle-t4"'], "--preset 'kaggle-t4\"': a kernel runs one of"),
    (["--code-dataset", "me/code", "--preset", "bogus"], "['cpu-smoke', 'demo', 'kaggle-p100', 'kaggle-t4']"),
    (["--code-dataset", "me/code", "--preset", "presets/kaggle-t4.yaml"], "a preset file on this machine"),
    (["02", "--code-dataset", "me/code", "--preset", "kaggle-p100"], "--preset applies to the chain kernel"),
    (["--code-dataset", "me/code", "--model-source", "alice/xls-r-300m"],
     "--model-source 'alice/xls-r-300m': a Kaggle id must look like 'owner/model/framework/variation/version'"),
    (["--code-dataset", "me/code", "--model-source", "a/m/transformers/default/latest"], "--model-source"),
    (["--code-dataset", "me/code", "--model-source", 'a/m/transformers/default/1"'], "--model-source"),
    (["--code-dataset", "me/code", "--kernel-source", "me/old run"], "--kernel-source 'me/old run'"),
    (["--code-dataset", "me/code", "--dataset", "me/data\n"], "--dataset"),
    (["--code-dataset", "me/c\u00f6de"], "--code-dataset 'me/c\u00f6de': a Kaggle id must look like 'owner/slug'"),
    (["--code-dataset", "me/code", "--id", "\u00e4lice/x"], "--id '\u00e4lice/x'"),
]


@pytest.mark.parametrize("args,words", REFUSED, ids=[" ".join(a)[:60] for a, _ in REFUSED])
def test_bad_kernel_values_are_refused_when_generated(args, words, tmp_path, capsys):
    argv = ["kaggle-kernel", "--id", "me/xlsr-run", "--out", str(tmp_path / "push"), *args]  # a later --id wins
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "push").exists()


def test_a_preset_is_checked_as_the_runner_checks_it(tmp_path, monkeypatch):
    from xlsr_helpers.core.errors import PipelineError
    from xlsr_helpers.pipeline import notebooks
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "typo.yaml").write_text("s1_epochs: abc\n")
    (presets / "unknown.yaml").write_text("s1_epoch: 3\n")
    (presets / "fine.yaml").write_text("s1_epochs: 3\n")
    monkeypatch.setattr(notebooks, "PRESET_DIR", presets)
    with pytest.raises(ConfigError, match=r"s1_epochs='abc': expected an integer"):
        write_kernel_folder(tmp_path / "a", "me/k", preset="typo", code_dataset="me/code")
    with pytest.raises(PipelineError, match=r"\['s1_epoch'\] are declared by no notebook"):
        write_kernel_folder(tmp_path / "b", "me/k", preset="unknown", code_dataset="me/code")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    folder = write_kernel_folder(tmp_path / "c", "me/k", preset="fine", code_dataset="me/code")
    assert literal_values(parameters_cell(nbformat.read(folder / "xlsr-chain.ipynb", as_version=4)))["preset"] == "fine"


@pytest.mark.parametrize("url", ["https://github.com/me/xlsr.git", "http://host:8080/x", "ssh://git@host/me/x.git",
                                 "git://host/x", "git@github.com:me/xlsr.git",
                                 "https://user:t0ken@host/path?x=1#frag"])
def test_clonable_urls_are_accepted(url, tmp_path):
    folder = write_kernel_folder(tmp_path, "me/k", "01", repo_url=url)
    nb = nbformat.read(folder / "01_data_prep.ipynb", as_version=4)
    assert literal_values(parameters_cell(nb))["repo_url"] == url


# ----------------------------------------------------------------------------- the GPU a kernel asks for

@pytest.mark.parametrize("extra,shape", [
    ([], "NvidiaTeslaT4"),  # not Kaggle's default P100, which today's torch cannot use
    (["--preset", "kaggle-p100"], "NvidiaTeslaP100"), (["--preset", "kaggle-t4"], "NvidiaTeslaT4"),
    (["--accelerator", "l4"], "NvidiaL4"), (["--accelerator", "NvidiaL4X1"], "NvidiaL4X1"),
    (["--accelerator", "P100"], "NvidiaTeslaP100"), (["--preset", "kaggle-p100", "--accelerator", "t4"], "NvidiaTeslaT4"),
])
def test_a_kernel_names_its_gpu_in_the_metadata_and_the_push_command(extra, shape, tmp_path, capsys):
    from xlsr_helpers.cli.main import main
    out = tmp_path / "k"
    assert main(["kaggle-kernel", "--id", "alice/xlsr", "--out", str(out), "--repo-url", "https://example.org/x.git",
                 *extra]) == 0
    assert json.loads((out / "kernel" / "kernel-metadata.json").read_text())["machine_shape"] == shape
    printed = capsys.readouterr().out
    assert f"kaggle kernels push -p {out / 'kernel'} --accelerator {shape}" in printed and f"(GPU: {shape})" in printed


@pytest.mark.parametrize("extra,words", [
    (["--accelerator", "v100"], "--accelerator 'v100': expected one of ['NvidiaTeslaT4', "),
    (["--accelerator", "p100", "--offline", "--code-dataset", "alice/code"], "--offline on a P100"),
    (["--preset", "kaggle-p100", "--offline", "--code-dataset", "alice/code"], "--offline on a P100"),
])
def test_an_unusable_gpu_choice_is_refused_when_generated(extra, words, tmp_path, capsys):
    from xlsr_helpers.cli.main import main
    args = ["kaggle-kernel", "--id", "alice/xlsr", "--out", str(tmp_path / "k")]
    if "--code-dataset" not in extra:
        args += ["--repo-url", "https://example.org/x.git"]
    assert main([*args, *extra]) == 2
    assert words in capsys.readouterr().err and not (tmp_path / "k").exists()


@pytest.mark.parametrize("internet", [True, False])
def test_the_p100_cell_reinstalls_with_internet_and_stops_at_once_without(internet, monkeypatch):
    import subprocess
    import sys

    from xlsr_helpers.pipeline.kaggle_kernel import P100_CELL
    from xlsr_helpers.runtime import kaggle_env
    monkeypatch.setattr(kaggle_env, "pascal_fix_command", lambda: "pip install torch==2.10.0+cu126")
    ran = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, check: ran.append(cmd))
    namespace = {"p100_fix": "auto", "internet": internet, "sys": sys, "subprocess": subprocess}
    if internet:
        exec(P100_CELL, namespace)
        assert ran == [[sys.executable, "-m", "pip", "install", "torch==2.10.0+cu126"]]
    else:
        with pytest.raises(SystemExit, match="P100 without internet.*--accelerator NvidiaTeslaT4"):
            exec(P100_CELL, namespace)
        assert ran == []
