"""Build hook: the wheel carries the repository's corpus descriptors, presets and notebooks as
package data (``xlsr_helpers/_bundled/``), so an installed package finds them outside any checkout
(``xlsr_helpers.core.resources``). Everything else about the package is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
BUNDLED = ("data_manifest", "presets", "notebooks")  # = xlsr_helpers.core.resources.RESOURCES


class BuildWithResources(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "xlsr_helpers" / "_bundled"
        for name in BUNDLED:
            shutil.copytree(HERE / name, target / name, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithResources})
