"""``xlsr space DETECTOR --out DIR``: a Hugging Face Space folder that serves the demo page of one detector,
and ``push_space``: publishing it (``xlsr push DIR --space you/name``).

The folder runs as it is with ``python app.py``: the README's front matter says ``sdk: gradio``,
``requirements.txt`` pins the versions this package runs with here, ``xlsr_helpers/`` is a copy of this
package (the Space runs the code that wrote it; it is not on PyPI), and the detector is bundled in
``detector/`` or, with ``model_id``, fetched from the Hub when the Space starts.
"""

from __future__ import annotations

import re
import shutil
from importlib import metadata
from pathlib import Path

from huggingface_hub import HfApi

from xlsr_helpers.core.errors import ConfigError, short_text
from xlsr_helpers.core.outputs import check_output_folder
from xlsr_helpers.model.card import (
    PushError,
    check_pushable,
    check_repo_id,
    hub_token,
    model_card,
    read_settings,
    upload_folder,
)
from xlsr_helpers.model.loading import check_model_ref
from xlsr_helpers.serve.analysis import MAX_SECONDS
from xlsr_helpers.serve.app import check_app_settings

PACKAGE = Path(__file__).resolve().parent.parent  # the xlsr_helpers folder copied into the Space
DISTRIBUTION = "xlsr-helpers"
APP_PACKAGES = ("gradio", "gradio_client")  # the `app` extra, pinned beside the package's own dependencies
DETECTOR_FILES = ("config.json", "model.safetensors", "preprocessor_config.json", "xlsr_detector.json", "README.md")
SPACE_FILES = ("README.md", "app.py", "requirements.txt")
PYTHON = "3.11"  # a Python the package supports (pyproject's requires-python)

APP_TEMPLATE = '''"""Hugging Face Space: the xlsr-helpers demo page of one audio deepfake detector (run: python app.py)."""

from pathlib import Path

from xlsr_helpers.serve.app import serve

MODEL_ID = {model_id!r}  # a Hub model id, or None: the detector bundled in detector/
if MODEL_ID:
    from huggingface_hub import snapshot_download
    DETECTOR = snapshot_download(MODEL_ID)
else:
    DETECTOR = Path(__file__).resolve().parent / "detector"

if __name__ == "__main__":
    # host and port None: GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, which a Space sets; else 127.0.0.1:7860
    serve(DETECTOR, host=None, max_seconds={max_seconds!r})
'''


def pinned_requirements() -> list[str]:
    """``name==version`` for every dependency of this package and of its ``app`` extra, at the version
    installed here (the versions this folder was written and tested with)."""
    try:
        declared = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        raise ConfigError(f"{DISTRIBUTION} is not installed (its dependencies are what the Space pins): "
                          "pip install -e . in the checkout") from None
    names = [re.match(r"[A-Za-z0-9_.-]+", d).group(0) for d in declared if "extra ==" not in d]
    out = []
    for name in dict.fromkeys([*names, *APP_PACKAGES]):
        try:
            out.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            raise ConfigError(f"{name} is not installed here, so the Space cannot pin it: "
                              "pip install 'xlsr-helpers[app]'") from None
    return out


def space_readme(settings: dict, title: str, model_id: str | None) -> str:
    """The Space's README: its front matter, then the detector's model card without the card's own."""
    card = model_card(settings).split("---\n", 2)[2].lstrip()
    front = ["---", f"title: {title}", "emoji: 🎙️", "colorFrom: blue", "colorTo: gray", "sdk: gradio",
             f"sdk_version: {metadata.version('gradio')}", f"python_version: \"{PYTHON}\"", "app_file: app.py",
             "pinned: false", "license: apache-2.0", *([f"models: [{model_id}]"] if model_id else []), "---"]
    where = f"the Hub model `{model_id}`" if model_id else "`detector/` (bundled)"
    return "\n".join(front) + f"""

Upload or record a clip to see whether this detector hears it as bona fide or spoofed, `p_spoof` at a
chosen prior (calibrated detectors only) and which seconds look spoofed. The detector: {where}.
Run it locally with `pip install -r requirements.txt && python app.py`.

{card}"""


def write_space(detector: str | Path, out: str | Path, model_id: str | None = None,
                title: str = "XLS-R deepfake detector", max_seconds: float = MAX_SECONDS) -> Path:
    """Write the Space folder ``out`` (new or empty) for a detector folder; ``model_id``: reference the
    detector by this Hub id (pushed with ``xlsr push``) instead of bundling it. Returns ``out``."""
    detector, out = Path(detector), Path(out)
    check_app_settings(max_seconds=max_seconds)
    check_output_folder(out, "--out")
    if out.is_dir() and any(out.iterdir()):
        raise ConfigError(f"--out {short_text(out, 200)} is not empty; give a new or empty folder for the Space")
    if model_id is not None:
        check_repo_id(model_id)
    check_model_ref(detector, detector=True)
    if not detector.is_dir():
        raise ConfigError(f"{short_text(detector, 200)} is not a detector folder (a Hub id goes in --model-id, "
                          "with the detector's folder for its facts)")
    settings = read_settings(detector)
    requirements = pinned_requirements()  # before anything is written: a missing package refuses here
    out.mkdir(parents=True, exist_ok=True)
    if model_id is None:
        (out / "detector").mkdir()
        for name in DETECTOR_FILES:
            if (detector / name).is_file():
                shutil.copy2(detector / name, out / "detector" / name)
    shutil.copytree(PACKAGE, out / "xlsr_helpers", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "_bundled"))
    (out / "app.py").write_text(APP_TEMPLATE.format(model_id=model_id, max_seconds=max_seconds))
    (out / "requirements.txt").write_text("# the versions this Space was written with (xlsr space)\n"
                                          + "\n".join(requirements) + "\n")
    (out / "README.md").write_text(space_readme(settings, title, model_id), encoding="utf-8")
    return out


def check_space_folder(folder: Path) -> None:
    """A folder ``write_space`` wrote: its files, and a bundled detector that loads (before any upload)."""
    missing = [f for f in SPACE_FILES if not (folder / f).is_file()]
    if missing:
        raise PushError(f"{folder} is not a Space folder (missing {missing}); write one with `xlsr space`")
    if "sdk: gradio" not in (folder / "README.md").read_text(encoding="utf-8", errors="replace"):
        raise PushError(f"{folder / 'README.md'} has no 'sdk: gradio' front matter; write the folder with `xlsr space`")
    if (folder / "detector").is_dir():
        check_pushable(folder / "detector")


def push_space(folder: str | Path, space_id: str, private: bool = True, token: str | None = None,
               message: str = "Upload XLS-R deepfake detector demo") -> str:
    """Publish a Space folder to the Hub as a gradio Space; the id, the folder and the credentials are
    checked before any network call. Returns the commit's address."""
    check_repo_id(space_id)
    folder = Path(folder)
    check_space_folder(folder)
    api = HfApi(token=hub_token(token))
    return upload_folder(api, folder, space_id, "space", private, message, space_sdk="gradio")
