"""Where the bundled files live: corpus descriptors, presets and notebooks.

In a checkout they are the repository's top-level folders (``data_manifest/``, ``presets/``,
``notebooks/``); an installed wheel carries copies as package data under ``xlsr_helpers/_bundled/``
(see ``setup.py``). Every module reads these paths from here, never from its own location.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent
BUNDLED = PACKAGE / "_bundled"
# The repository root when running from a checkout (its notebooks/ and data_manifest/ beside the
# package); None in an installed wheel, which has no kaggle/ folder or requirements files to copy.
CHECKOUT = PACKAGE.parent if (PACKAGE.parent / "pyproject.toml").is_file() and (PACKAGE.parent / "notebooks").is_dir() else None
RESOURCES = ("data_manifest", "presets", "notebooks")


def resource_dir(name: str) -> Path:
    """The folder of one kind of bundled file: the checkout's own, else the wheel's copy."""
    if name not in RESOURCES:
        raise ValueError(f"unknown resource folder {name!r}; known: {list(RESOURCES)}")
    return CHECKOUT / name if CHECKOUT is not None else BUNDLED / name


DESCRIPTOR_DIR = resource_dir("data_manifest")
PRESET_DIR = resource_dir("presets")
NOTEBOOK_DIR = resource_dir("notebooks")
