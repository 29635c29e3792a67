"""The wheel: every subpackage, the heads, and the descriptors, presets and notebooks as package data."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]  # the checkout: tests/packaging/ -> .


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    pytest.importorskip("setuptools", minversion="68")  # the build backend (requirements.txt pins it; Kaggle lacks it)
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-deps",
                        "--no-build-isolation", "-w", str(out), str(ROOT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    (path,) = out.glob("xlsr_helpers-*.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_carries_every_module_of_the_checkout(wheel):
    names = set(wheel.namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "xlsr_helpers").rglob("*.py")}
    assert len(modules) > 40 and modules <= names, sorted(modules - names)
    assert "xlsr_helpers/model/heads/aasist.py" in names


@pytest.mark.parametrize("folder", ["data_manifest", "presets", "notebooks"])
def test_the_wheel_bundles_descriptors_presets_and_notebooks(wheel, folder):
    names = set(wheel.namelist())
    files = {p.relative_to(ROOT / folder).as_posix() for p in (ROOT / folder).iterdir() if p.is_file()}
    assert files and {f"xlsr_helpers/_bundled/{folder}/{f}" for f in files} <= names
    for f in files:  # byte-identical copies
        assert wheel.read(f"xlsr_helpers/_bundled/{folder}/{f}") == (ROOT / folder / f).read_bytes()


def test_the_wheel_names_the_xlsr_command(wheel):
    entry = next(n for n in wheel.namelist() if n.endswith("entry_points.txt"))
    assert "xlsr = xlsr_helpers.cli:main" in wheel.read(entry).decode()
